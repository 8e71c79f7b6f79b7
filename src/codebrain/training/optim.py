"""AdamW parameter groups for the three training loops: one weight-decay rule, layer-wise lr decay.

The rule (used by tokenizer training, pretraining and fine-tuning alike)
-------------------------------------------------------------------------
A trainable parameter gets **no weight decay** when any of these holds:

- it belongs to a normalisation layer: ``nn.LayerNorm``, ``nn.GroupNorm``, batch/instance
  norms (``nn.modules.batchnorm._NormBase``), ``nn.RMSNorm``;
- its name ends in ``bias`` (``.bias``, ``in_proj_bias``, ``q_bias``, ...);
- it has fewer than 2 dimensions (gains, scales, offsets);
- the module that defines it lists it in its ``no_weight_decay()`` method (below).

Every other trainable parameter decays with the loop's ``weight_decay``. Frozen parameters
(``requires_grad=False``) are left out. A loop's ``decay_all_params=True`` (the authors' recipes)
bypasses the rule and decays everything.

Declaring "no decay" where a parameter is defined
-------------------------------------------------
A module opts parameters out of weight decay with a method, like timm's ``no_weight_decay()``
but local to the module::

    def no_weight_decay(self) -> set[str]:
        return {"skip_weight", "kernel_list.0", ...}

It returns names *relative to that module* (as in its own ``named_parameters()``); the rule
collects them over ``model.named_modules()`` and prefixes each with the module's path. A method,
not an attribute on the ``nn.Parameter``, because ``copy.deepcopy``, ``load_state_dict(assign=True)``
and tensor swapping in ``Module.to`` create new ``Parameter`` objects and drop such attributes.
In ``codebrain.layers``: :class:`~codebrain.layers.sgconv.SGConv` (multi-scale kernels
``kernel_list.N`` and ``skip_weight``), :class:`~codebrain.layers.residual.RMSNorm` (``scale``)
and the weight-normalised convs of :mod:`codebrain.layers.residual` (the gains
``parametrizations.weight.original0``).

Layer-wise learning-rate decay (fine-tuning)
--------------------------------------------
:func:`codebrain_layer_depth` numbers CodeBrain's parameters from the input (0: patch embedding
and ``init_conv``; ``i + 1``: residual block ``i``; ``N + 1``: everything after the blocks) and
:func:`layer_decay_lr` gives depth ``d`` of ``N`` blocks ``base_lr * decay ** (N + 1 - d)``.
"""

from __future__ import annotations

import logging
import numbers
import re
from collections.abc import Callable, Iterable
from typing import Any

from torch import nn

from codebrain.utils.check import check_type, check_value

__all__ = [
    "NORM_LAYERS",
    "codebrain_layer_depth",
    "layer_decay_lr",
    "merge_param_groups",
    "no_weight_decay_names",
    "param_groups",
]

logger = logging.getLogger(__name__)

NORM_LAYERS: tuple[type[nn.Module], ...] = (
    nn.LayerNorm,
    nn.GroupNorm,
    nn.modules.batchnorm._NormBase,  # BatchNorm*, InstanceNorm*, SyncBatchNorm
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)
"""Module types whose parameters never decay (torch's own; ours declare ``no_weight_decay``)."""

_BLOCK_RE = re.compile(r"^residual_layer\.residual_blocks\.(\d+)\.")


def no_weight_decay_names(model: nn.Module) -> set[str]:
    """Full names of the parameters of ``model`` that the rule exempts from weight decay.

    Parameters
    ----------
    model : nn.Module

    Returns
    -------
    set of str
        Names as in ``model.named_parameters()`` (frozen parameters included).

    Raises
    ------
    ValueError
        A module's ``no_weight_decay()`` names a parameter the module does not have.
    """
    names: set[str] = set()
    for mname, module in model.named_modules():
        prefix = f"{mname}." if mname else ""
        own = dict(module.named_parameters())
        declared = (
            module.no_weight_decay() if callable(getattr(module, "no_weight_decay", None)) else ()
        )
        unknown = sorted(set(declared) - set(own))
        if unknown:
            raise ValueError(
                f"{type(module).__name__}.no_weight_decay() names {unknown}, which are not "
                f"parameters of the module; expected names from its named_parameters()."
            )
        names.update(prefix + n for n in declared)
        is_norm = isinstance(module, NORM_LAYERS)
        for pname, p in module.named_parameters(recurse=False):
            if is_norm or pname.endswith("bias") or p.ndim < 2:
                names.add(prefix + pname)
    return names


def param_groups(
    model: nn.Module,
    weight_decay: float,
    *,
    lr: float | Callable[[str], float] | None = None,
    exclude: Callable[[str, nn.Parameter], bool] | None = None,
    sort_by_name: bool = False,
) -> list[dict[str, Any]]:
    """AdamW parameter groups of the trainable parameters of ``model`` under the rule.

    Parameters
    ----------
    model : nn.Module
    weight_decay : float
        Decay of the parameters the rule does not exempt (must be >= 0).
    lr : float, callable or None
        ``None``: the groups carry no ``"lr"`` (the optimizer's default applies). A float: that
        learning rate for every group. A callable: ``lr(name)`` per parameter (full name), e.g.
        :func:`layer_decay_lr`.
    exclude : callable, optional
        ``exclude(name, param) -> True`` leaves a parameter out (besides frozen ones).
    sort_by_name : bool
        Order parameters by name instead of module order (the tokenizer trainer's order; the
        order of parameters is the layout of a saved optimizer state).

    Returns
    -------
    list of dict
        For each distinct learning rate, in order of first appearance, a decay group
        ``{"params", "names", "weight_decay": weight_decay[, "lr"]}`` then a no-decay group
        (``"weight_decay": 0.0``); either may be empty; no groups when nothing is trainable.
        ``"names"`` (the parameter names, for logs and tests) is not an optimizer option:
        drop it before building the optimizer to keep it out of the optimizer's state dict.

    Raises
    ------
    TypeError
        ``weight_decay`` is not a number.
    ValueError
        ``weight_decay`` is negative.
    """
    check_type("weight_decay", weight_decay, numbers.Real, "a number >= 0")
    check_value("weight_decay", weight_decay, weight_decay >= 0, ">= 0")
    exempt = no_weight_decay_names(model)
    named = list(model.named_parameters())
    if sort_by_name:
        named.sort(key=lambda kv: kv[0])
    groups: dict[float | None, tuple[dict[str, Any], dict[str, Any]]] = {}
    for name, p in named:
        if not p.requires_grad or (exclude is not None and exclude(name, p)):
            continue
        rate = lr(name) if callable(lr) else lr
        if rate not in groups:
            extra = {} if rate is None else {"lr": float(rate)}
            groups[rate] = (
                {"params": [], "names": [], "weight_decay": float(weight_decay), **extra},
                {"params": [], "names": [], "weight_decay": 0.0, **extra},
            )
        group = groups[rate][1 if name in exempt else 0]
        group["params"].append(p)
        group["names"].append(name)
    out = [g for pair in groups.values() for g in pair]
    _log_groups(out)
    return out


def merge_param_groups(groups: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge groups with the same ``lr`` and ``weight_decay``; drop empty ones.

    Parameters
    ----------
    groups : iterable of dict
        Outputs of :func:`param_groups` (e.g. a head's then a backbone's).

    Returns
    -------
    list of dict
        In order of first appearance of each ``(lr, weight_decay)``.
    """
    merged: dict[tuple[Any, float], dict[str, Any]] = {}
    for g in groups:
        if not g["params"]:
            continue
        key = (g.get("lr"), g["weight_decay"])
        if key not in merged:
            merged[key] = {**g, "params": [], "names": []}
        merged[key]["params"].extend(g["params"])
        merged[key]["names"].extend(g.get("names", []))
    return list(merged.values())


def codebrain_layer_depth(name: str, num_blocks: int) -> int:
    """Depth of a CodeBrain parameter for layer-wise lr decay.

    Parameters
    ----------
    name : str
        Full parameter name in a :class:`~codebrain.CodeBrain`.
    num_blocks : int
        Number of residual blocks ``N``.

    Returns
    -------
    int
        0 for ``patch_embedding.*`` and ``init_conv.*``; ``i + 1`` for
        ``residual_layer.residual_blocks.i.*``; ``N + 1`` otherwise (``final_conv``, ``norm``,
        heads).
    """
    m = _BLOCK_RE.match(name)
    if m:
        return int(m.group(1)) + 1
    if name.startswith(("patch_embedding.", "init_conv.")):
        return 0
    return num_blocks + 1


def layer_decay_lr(name: str, base_lr: float, layer_decay: float, num_blocks: int) -> float:
    """``base_lr * layer_decay ** (N + 1 - depth)`` with the depth of :func:`codebrain_layer_depth`.

    Parameters
    ----------
    name : str
        Full parameter name in a :class:`~codebrain.CodeBrain`.
    base_lr : float
        Learning rate of the top (depth ``N + 1``).
    layer_decay : float
        Factor per block towards the input; 1.0 gives every parameter ``base_lr``.
    num_blocks : int
        Number of residual blocks ``N``.

    Returns
    -------
    float
    """
    return base_lr * layer_decay ** (num_blocks + 1 - codebrain_layer_depth(name, num_blocks))


def _log_groups(groups: list[dict[str, Any]]) -> None:
    decay = [p for g in groups if g["weight_decay"] > 0 for p in g["params"]]
    no_decay = [p for g in groups if g["weight_decay"] == 0 for p in g["params"]]
    logger.info(
        "AdamW groups: %d tensors (%d values) with weight decay, %d tensors (%d values) without.",
        len(decay),
        sum(p.numel() for p in decay),
        len(no_decay),
        sum(p.numel() for p in no_decay),
    )
