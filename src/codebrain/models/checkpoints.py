"""Checkpoints of the authors' CodeBrain release and their conversion.

The released ``CodeBrain.pth`` (Hugging Face ``YjMajy/CodeBrain``) is the state dict of a
``DataParallel`` model written with the original attribute names. Its keys differ from ours
(and braindecode's) in five ways, undone by :func:`convert_upstream_state_dict`:

1. ``module.`` prefix (``DataParallel``);
2. ``.S41.`` → ``.sgconv.`` and ``.sn.`` → ``.rms_norm.``;
3. a trailing ``.D`` → ``.skip_weight``;
4. ``.kernel_list.N.kernel`` → ``.kernel_list.N`` (the old ``KernelModule`` wrapper);
5. ``weight_g`` / ``weight_v`` → ``parametrizations.weight.original0`` / ``original1``
   (old ``torch.nn.utils.weight_norm`` API).
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

__all__ = [
    "ConversionReport",
    "convert_upstream_state_dict",
    "to_upstream_state_dict",
    "load_checkpoint_file",
    "is_upstream_state_dict",
]

_KERNEL_RE = re.compile(r"\.kernel_list\.(\d+)\.kernel$")


@dataclass
class ConversionReport:
    """What a conversion found when compared with the target model's state dict."""

    renamed: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shape_mismatch: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when keys and shapes match exactly."""
        return not (self.missing or self.unexpected or self.shape_mismatch)

    def describe(self, limit: int = 20) -> str:
        """Human-readable summary of every problem (at most ``limit`` keys per kind)."""
        lines = []
        for name, keys in (("missing", self.missing), ("unexpected", self.unexpected)):
            if keys:
                shown = ", ".join(keys[:limit]) + (
                    f", ... (+{len(keys) - limit})" if len(keys) > limit else ""
                )
                lines.append(f"{len(keys)} {name} key(s): {shown}")
        if self.shape_mismatch:
            items = list(self.shape_mismatch.items())[:limit]
            shown = ", ".join(f"{k}: checkpoint {a} vs model {b}" for k, (a, b) in items)
            lines.append(f"{len(self.shape_mismatch)} shape mismatch(es): {shown}")
        return "; ".join(lines) if lines else "keys and shapes match"


def _rename_upstream_key(key: str) -> str:
    new = key.removeprefix("module.")
    new = new.replace(".S41.", ".sgconv.").replace(".sn.", ".rms_norm.")
    if new.endswith(".D"):
        new = new[:-2] + ".skip_weight"
    new = _KERNEL_RE.sub(r".kernel_list.\1", new)
    new = new.replace(".weight_g", ".parametrizations.weight.original0")
    new = new.replace(".weight_v", ".parametrizations.weight.original1")
    return new


def is_upstream_state_dict(state_dict: Mapping[str, object]) -> bool:
    """True if any key uses the authors' naming (``module.``, ``S41``, ``weight_g``, ...)."""
    return any(_rename_upstream_key(k) != k for k in state_dict)


def convert_upstream_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    reference: Mapping[str, torch.Tensor] | torch.nn.Module | None = None,
    *,
    allow_missing: tuple[str, ...] = (),
    strict: bool = True,
) -> tuple[OrderedDict[str, torch.Tensor], ConversionReport]:
    """Rename the authors' checkpoint keys to codebrain / braindecode names and check them.

    Parameters
    ----------
    state_dict : mapping of str to Tensor
        Upstream (or already converted) state dict.
    reference : nn.Module or mapping, optional
        The model (or its state dict) the result must fit; keys and shapes are compared.
    allow_missing : tuple of str
        Key prefixes that may be absent (e.g. ``("final_layer.",)`` for a pretrained backbone
        without a classification head).
    strict : bool
        Raise ``ValueError`` when the comparison finds a problem.

    Returns
    -------
    converted : OrderedDict
        State dict with our names.
    report : ConversionReport
        Renamed keys, and missing/unexpected/mismatched keys against ``reference``.

    Raises
    ------
    ValueError
        Two keys map to the same name, or (``strict``) the result does not fit ``reference``.
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(
            f"state_dict must be a mapping of names to tensors, got {type(state_dict).__name__}."
        )
    report = ConversionReport()
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in state_dict.items():
        new = _rename_upstream_key(key)
        if new in out:
            raise ValueError(
                f"Checkpoint keys collide after conversion: {key!r} → {new!r} already present."
            )
        if new != key:
            report.renamed[key] = new
        out[new] = value
    if reference is not None:
        ref = reference.state_dict() if isinstance(reference, torch.nn.Module) else reference
        report.missing = [k for k in ref if k not in out and not k.startswith(allow_missing)]
        report.unexpected = [k for k in out if k not in ref]
        report.shape_mismatch = {
            k: (tuple(out[k].shape), tuple(ref[k].shape))
            for k in out
            if k in ref and tuple(out[k].shape) != tuple(ref[k].shape)
        }
        if strict and not report.ok:
            raise ValueError(f"Converted checkpoint does not fit the model: {report.describe()}")
    return out, report


def to_upstream_state_dict(
    state_dict: Mapping[str, torch.Tensor], *, data_parallel: bool = True
) -> OrderedDict[str, torch.Tensor]:
    """Inverse of :func:`convert_upstream_state_dict`: our names → the authors' naming."""
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in state_dict.items():
        new = key.replace(".sgconv.", ".S41.").replace(".rms_norm.", ".sn.")
        if new.endswith(".skip_weight"):
            new = new[: -len(".skip_weight")] + ".D"
        new = re.sub(r"\.kernel_list\.(\d+)$", r".kernel_list.\1.kernel", new)
        new = new.replace(".parametrizations.weight.original0", ".weight_g")
        new = new.replace(".parametrizations.weight.original1", ".weight_v")
        out[("module." if data_parallel else "") + new] = value
    return out


def load_checkpoint_file(path: str | os.PathLike) -> OrderedDict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors``, or ``.pth``/``.pt``/``.bin`` (``weights_only=True``).

    Containers such as ``{"model": sd}``, ``{"state_dict": sd}`` or ``{"model_state_dict": sd}``
    are unwrapped.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No checkpoint file at {path!r}.")
    if path.endswith(".safetensors"):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        if os.path.getsize(path) == 0:
            raise ValueError(
                f"Checkpoint {path!r} is empty (0 bytes); expected safetensors weights."
            )
        try:
            return OrderedDict(load_file(path))
        except (SafetensorError, OSError, ValueError) as err:
            raise ValueError(
                f"Could not read checkpoint {path!r} as safetensors ({err}): the file is "
                "truncated or not a safetensors file."
            ) from err
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - report any unpickling failure with the path
        raise ValueError(
            f"Could not read checkpoint {path!r} with torch.load(weights_only=True): {err}"
        ) from err
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"Checkpoint {path!r} does not contain a state dict of tensors.")
    return OrderedDict(obj)
