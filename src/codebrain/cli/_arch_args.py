"""One set of CodeBrain architecture flags, derived from ``CodeBrain.__init__``'s signature.

Every command that builds a :class:`~codebrain.CodeBrain` (``finetune``, ``pretrain``,
``demo``, ``benchmark``, ``info``, ``convert``) adds its architecture flags here, so a
parameter has one spelling everywhere (``--res-channels``, ``--num-res-layers``,
``--patch-size``, ...) and its default comes from the signature alone. Two short forms stay:
``--width N`` sets ``res_channels``, ``skip_channels`` and ``out_channels`` at once (each can
still be given on its own and then wins) and ``--layers N`` is ``--num-res-layers N``. The
signal parameters (``n_outputs``, ``n_chans``, ``chs_info``, ``n_times``,
``input_window_seconds``, ``sfreq``) come from the data or from command-specific flags, and
``activation``/``pretrain_mode`` are not architecture choices of a command.
"""

from __future__ import annotations

import argparse
import inspect
import typing
from collections.abc import Iterable
from typing import Any

from codebrain.cli import CLIError
from codebrain.cli._config_flags import flag_name
from codebrain.cli._config_help import _help, field_docs
from codebrain.cli._config_types import _split_optional, argparse_kwargs

__all__ = [
    "ARCH_EXCLUDED",
    "architecture_parameters",
    "add_architecture_arguments",
    "architecture_from_args",
    "default_patch_size",
    "n_tokens",
]

#: ``CodeBrain.__init__`` parameters that are not architecture flags (see the module docstring)
ARCH_EXCLUDED = (
    "self",
    "n_outputs",
    "n_chans",
    "chs_info",
    "n_times",
    "input_window_seconds",
    "sfreq",
    "activation",
    "pretrain_mode",
)
#: the widths ``--width`` sets
WIDTH_FIELDS = ("res_channels", "skip_channels", "out_channels")
#: integer parameters for which 0 is a valid value
_MAY_BE_ZERO = ("proj_padding",)
#: namespace attribute naming the architecture dests a parser registered
_REGISTRY = "_arch_dests"


def _codebrain() -> type:
    from codebrain.models.codebrain import CodeBrain

    return CodeBrain


def architecture_parameters() -> dict[str, tuple[Any, Any]]:
    """``{name: (type hint, default)}`` of ``CodeBrain.__init__``'s architecture parameters."""
    cls = _codebrain()
    hints = typing.get_type_hints(cls.__init__)
    out: dict[str, tuple[Any, Any]] = {}
    for name, param in inspect.signature(cls.__init__).parameters.items():
        if name in ARCH_EXCLUDED or param.kind not in (
            param.POSITIONAL_OR_KEYWORD,
            param.KEYWORD_ONLY,
        ):
            continue
        out[name] = (hints.get(name, Any), param.default)
    return out


def default_patch_size() -> int:
    """``CodeBrain``'s default patch size (samples per patch)."""
    return int(architecture_parameters()["patch_size"][1])


def n_tokens(n_chans: int, n_times: int, patch_size: int | None = None) -> int:
    """Tokens of one window, ``n_chans * (n_times // patch_size)``.

    This is the SGConv design length the commands give a fresh backbone (the paper's 570 =
    19 channels x 30 patches).
    """
    return n_chans * (n_times // (patch_size or default_patch_size()))


def add_architecture_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    *,
    include: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    short_forms: bool = True,
    defaults: dict[str, Any] | None = None,
    notes: dict[str, str] | None = None,
) -> list[str]:
    """Add ``--<parameter>`` for each architecture parameter of ``CodeBrain.__init__``.

    Parameters
    ----------
    parser : argparse.ArgumentParser or argument group
    include : iterable of str, optional
        Only these parameters (default: all of :func:`architecture_parameters`).
    exclude : iterable of str
        Parameters left out (the command sets them itself).
    short_forms : bool
        Add ``--width`` (the three widths) and ``--layers`` (``--num-res-layers``).
    defaults : dict, optional
        ``{name: value}`` shown as the default when the command's differs from the
        signature's (the demo's small model).
    notes : dict, optional
        ``{name: text}`` added to a flag's help.

    Returns
    -------
    list of str
        The parameters that got a flag (dest = the name, default ``argparse.SUPPRESS``: an
        absent attribute means "not given").
    """
    docs = field_docs(_codebrain())
    shown, extra = dict(defaults or {}), dict(notes or {})
    wanted = None if include is None else set(include)
    skip = set(exclude)
    added: list[str] = []
    for name, (hint, default) in architecture_parameters().items():
        if name in skip or (wanted is not None and name not in wanted):
            continue
        kw = argparse_kwargs(hint)
        doc = docs.get(name, "")
        _, optional = _split_optional(hint)
        kw["help"] = _help(
            doc, shown.get(name, default), optional=optional, extra=extra.get(name, "")
        )
        parser.add_argument(flag_name(name), dest=name, default=argparse.SUPPRESS, **kw)
        added.append(name)
    if short_forms:
        params = architecture_parameters()
        width = shown.get("res_channels", params["res_channels"][1])
        layers = shown.get("num_res_layers", params["num_res_layers"][1])
        long_forms = set(WIDTH_FIELDS) <= set(added)
        parser.add_argument(
            "--width",
            dest="_width",
            type=int,
            default=argparse.SUPPRESS,
            metavar="N",
            help=(
                "short form: --res-channels, --skip-channels and --out-channels N (each given "
                f"on its own wins; default: {width})"
                if long_forms
                else f"residual, skip and output width (default: {width})"
            ),
        )
        parser.add_argument(
            "--layers",
            dest="num_res_layers",
            type=int,
            default=argparse.SUPPRESS,
            metavar="N",
            help=(
                f"short form of --num-res-layers (default: {layers})"
                if "num_res_layers" in added
                else f"residual blocks (default: {layers})"
            ),
        )
        if "num_res_layers" not in added:
            added.append("num_res_layers")
    parser.set_defaults(**{_REGISTRY: tuple(added)})
    return added


def architecture_from_args(
    args: argparse.Namespace, base: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``CodeBrain`` keyword arguments: ``base`` updated with the architecture flags given.

    ``--width`` fills the widths not given on their own; tuples are passed as tuples.

    Raises
    ------
    CLIError
        An integer flag below 1 (``--proj-padding`` below 0).
    """
    given = vars(args)
    arch = dict(base or {})
    flags: dict[str, str] = {}
    if "_width" in given:
        for name in WIDTH_FIELDS:
            arch[name], flags[name] = given["_width"], "--width"
    for name in given.get(_REGISTRY, ()):
        if name in given:
            value = given[name]
            arch[name] = tuple(value) if isinstance(value, list) else value
            flags[name] = flag_name(name)
    for name, flag in flags.items():
        values = arch[name] if isinstance(arch[name], tuple) else (arch[name],)
        least = 0 if name in _MAY_BE_ZERO else 1
        for v in values:
            if isinstance(v, int) and not isinstance(v, bool) and v < least:
                what = "a non-negative" if least == 0 else "a positive"
                raise CLIError(f"{flag} must be {what} integer, got {v}.")
    return arch
