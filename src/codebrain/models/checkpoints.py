"""Checkpoints of the authors' CodeBrain release and their conversion.

Two released files are handled: the Stage 2 backbone ``CodeBrain.pth`` (below) and the Stage 1
tokenizer ``CodeBrain_Tokenizer.pth`` (:func:`convert_upstream_tokenizer_state_dict`).

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

import argparse
import os
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

from codebrain.utils.check import check_type

__all__ = [
    "ConversionReport",
    "UPSTREAM_TOKENIZER_FILE",
    "convert_upstream_state_dict",
    "convert_upstream_tokenizer_state_dict",
    "is_upstream_tokenizer_state_dict",
    "to_upstream_tokenizer_state_dict",
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
    #: source keys deliberately not carried over (state the target model does not use)
    dropped: list[str] = field(default_factory=list)
    #: target keys absent from the source and derived from other tensors (e.g. statistics)
    filled: list[str] = field(default_factory=list)

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


def _convert(
    state_dict: Mapping[str, torch.Tensor],
    rename: Callable[[str], str],
    *,
    drop: tuple[str, ...] = (),
    transform: Callable[[str, torch.Tensor], torch.Tensor] | None = None,
    fill: Callable[[OrderedDict[str, torch.Tensor], ConversionReport], None] | None = None,
    reference: Mapping[str, torch.Tensor] | torch.nn.Module | None = None,
    allow_missing: tuple[str, ...] = (),
    strict: bool = True,
    what: str = "checkpoint",
) -> tuple[OrderedDict[str, torch.Tensor], ConversionReport]:
    """Rename every key, then compare with ``reference``: the loop both converters share.

    Keys (without ``module.``) in ``drop`` are left out (``report.dropped``); ``transform``
    reshapes a value given its new key; ``fill`` adds tensors the source lacks
    (``report.filled``). Raises ``ValueError`` when two keys collide, and (``strict``) when
    the result does not fit ``reference`` (``what`` names the checkpoint in the message).
    """
    check_type("state_dict", state_dict, Mapping, "a mapping of names to tensors")
    report = ConversionReport()
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in state_dict.items():
        if key.removeprefix("module.") in drop:
            report.dropped.append(key)
            continue
        new = rename(key)
        if new in out:
            raise ValueError(
                f"Checkpoint keys collide after conversion: {key!r} → {new!r} already present."
            )
        if new != key:
            report.renamed[key] = new
        out[new] = value if transform is None else transform(new, value)
    if fill is not None:
        fill(out, report)
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
            raise ValueError(f"Converted {what} does not fit the model: {report.describe()}")
    return out, report


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
    return _convert(
        state_dict,
        _rename_upstream_key,
        reference=reference,
        allow_missing=allow_missing,
        strict=strict,
        what="checkpoint",
    )


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
        # The authors' training scripts also pickle their argparse arguments next to the
        # weights ({"model": ..., "args": Namespace(...)}); a Namespace only holds attributes.
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # report any unpickling failure with the path
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


# ------------------------------------------------------------------ Stage 1 tokenizer
UPSTREAM_TOKENIZER_FILE = "CodeBrain_Tokenizer.pth"
"""File name of the authors' released tokenizer (Hugging Face ``YjMajy/CodeBrain``)."""

# (authors' prefix, our prefix), applied to the first matching prefix of each key.
_TOKENIZER_PREFIXES: tuple[tuple[str, str], ...] = (
    ("encoder.patch_embed.t_convs.conv.", "tfconv.temporal."),
    ("encoder.patch_embed.f_convs.conv.", "tfconv.spectral."),
    ("decoder_t.patch_embed.proj.", "decoder_in_t."),
    ("decoder_f.patch_embed.proj.", "decoder_in_f."),
    ("encode_task_layer_t.", "proj_t."),
    ("encode_task_layer_f.", "proj_f."),
    ("decode_task_layer_temp.", "head_time."),
    ("decode_task_layer_xrec.", "head_amp."),
    ("decode_task_layer_angle.", "head_phase."),
    ("quantize_t.embedding.weight", "codebook_t.embed"),
    ("quantize_f.embedding.weight", "codebook_f.embed"),
    ("quantize_t.embedding.initted", "codebook_t.initted"),
    ("quantize_f.embedding.initted", "codebook_f.initted"),
    ("quantize_t.cluster_size", "codebook_t.cluster_size"),
    ("quantize_f.cluster_size", "codebook_f.cluster_size"),
)
# Transformer tables and final norm: LaBraM's pos_embed / fc_norm are our chan_embed / norm.
_TOKENIZER_SUFFIXES: tuple[tuple[str, str], ...] = ((".pos_embed", ".chan_embed"),)
_TOKENIZER_INFIXES: tuple[tuple[str, str], ...] = ((".fc_norm.", ".norm."),)
# Upstream state that the authors' forward never reads (EmbeddingEMA.cluster_size is only set
# by k-means, embed_avg only by an unused method): dropped.
_TOKENIZER_UNUSED = (
    "quantize_t.embedding.cluster_size",
    "quantize_f.embedding.cluster_size",
    "quantize_t.embedding.embed_avg",
    "quantize_f.embedding.embed_avg",
)
_UPSTREAM_TOKENIZER_MARKERS = (
    "encode_task_layer_t.",
    "quantize_t.embedding.",
    "patch_embed.t_convs.",
)


def is_upstream_tokenizer_state_dict(state_dict: Mapping[str, object]) -> bool:
    """True if the keys are those of the authors' tokenizer.

    That is ``encode_task_layer_t``, ``quantize_t.embedding``, ``patch_embed.t_convs``, with or
    without ``module.``.
    """
    return any(
        k.removeprefix("module.").startswith(m) or m in k
        for k in state_dict
        for m in _UPSTREAM_TOKENIZER_MARKERS
    )


def _rename_tokenizer_key(key: str) -> str:
    new = key.removeprefix("module.")
    for old, ours in _TOKENIZER_PREFIXES:
        if new.startswith(old):
            return ours + new[len(old) :]
    for old, ours in _TOKENIZER_SUFFIXES:
        if new.endswith(old) and new.count(".") == 1:
            return new[: -len(old)] + ours
    for old, ours in _TOKENIZER_INFIXES:
        if new.count(".") == 2 and old in new:
            return new.replace(old, ours)
    return new


def convert_upstream_tokenizer_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    reference: Mapping[str, torch.Tensor] | torch.nn.Module | None = None,
    *,
    strict: bool = True,
) -> tuple[OrderedDict[str, torch.Tensor], ConversionReport]:
    """Convert the authors' tokenizer state dict (``CodeBrain_Tokenizer.pth``) to our names.

    The authors' ``Tokenizer`` (``Models/modeling_tokenizer.py``) and
    :class:`~codebrain.models.tokenizer.TFDualTokenizer` compute the same function; their
    modules are named differently:

    ========================================== ================================
    authors                                    codebrain
    ========================================== ================================
    ``encoder.patch_embed.t_convs.conv.N``     ``tfconv.temporal.N``
    ``encoder.patch_embed.f_convs.conv.N``     ``tfconv.spectral.N``
    ``{encoder,decoder_t,decoder_f}.pos_embed`` ``….chan_embed``
    ``{encoder,decoder_t,decoder_f}.fc_norm``   ``….norm``
    ``decoder_{t,f}.patch_embed.proj`` (1×1)   ``decoder_in_{t,f}`` (Linear)
    ``encode_task_layer_{t,f}``                ``proj_{t,f}``
    ``decode_task_layer_{temp,xrec,angle}``    ``head_{time,amp,phase}``
    ``quantize_{t,f}.embedding.weight``        ``codebook_{t,f}.embed``
    ``quantize_{t,f}.cluster_size``            ``codebook_{t,f}.cluster_size``
    ``quantize_{t,f}.embedding.initted`` ([1]) ``codebook_{t,f}.initted`` (bool)
    ========================================== ================================

    ``module.`` (DataParallel) is stripped; ``cls_token``, ``time_embed`` and ``blocks.*``
    keep their names. ``quantize_*.embedding.cluster_size`` and ``embed_avg``, which the
    authors' forward never reads, are dropped (``report.dropped``); our codebook statistics
    absent upstream (``embed_sum``, ``usage``, ``num_restarts``) are derived
    (``report.filled``). Keys already in our naming pass through unchanged.

    Parameters
    ----------
    state_dict : mapping of str to Tensor
        The authors' state dict (the ``"model"`` entry of their checkpoint).
    reference : nn.Module or mapping, optional
        The tokenizer (or its state dict) the result must fit; keys and shapes are compared.
    strict : bool
        Raise ``ValueError`` when the comparison finds a problem.

    Returns
    -------
    converted : OrderedDict
    report : ConversionReport
        ``renamed``, ``dropped``, ``filled``, and ``missing`` / ``unexpected`` /
        ``shape_mismatch`` against ``reference``.

    Raises
    ------
    ValueError
        Two keys map to the same name, or (``strict``) the result does not fit ``reference``.
    """
    return _convert(
        state_dict,
        _rename_tokenizer_key,
        drop=_TOKENIZER_UNUSED,
        transform=_tokenizer_value,
        fill=_fill_codebook_statistics,
        reference=reference,
        strict=strict,
        what="tokenizer checkpoint",
    )


def _tokenizer_value(new_key: str, value: torch.Tensor) -> torch.Tensor:
    """The authors' tensor as our module stores it (1×1 conv → Linear, ``initted`` → bool)."""
    if new_key.startswith("decoder_in_") and new_key.endswith(".weight") and value.ndim == 4:
        return value.reshape(value.shape[0], value.shape[1])
    if new_key.endswith(".initted") and new_key.startswith("codebook_"):
        return (value.reshape(-1)[:1] != 0).reshape(())  # float [1.] → bool scalar
    return value


def _fill_codebook_statistics(
    out: OrderedDict[str, torch.Tensor], report: ConversionReport
) -> None:
    """Derive our codebook statistics that the authors' state dict has no counterpart for."""
    for book in ("codebook_t", "codebook_f"):
        embed = out.get(f"{book}.embed")
        if embed is None:
            continue
        size = out.get(f"{book}.cluster_size", torch.zeros(embed.shape[0]))
        derived = {
            f"{book}.embed_sum": embed * size.to(embed.dtype)[:, None],
            f"{book}.usage": torch.zeros(embed.shape[0], dtype=torch.float64),
            f"{book}.num_restarts": torch.zeros((), dtype=torch.long),
        }
        for k, v in derived.items():
            if k not in out:
                out[k] = v
                report.filled.append(k)


def to_upstream_tokenizer_state_dict(
    state_dict: Mapping[str, torch.Tensor], *, data_parallel: bool = False
) -> OrderedDict[str, torch.Tensor]:
    """Inverse of :func:`convert_upstream_tokenizer_state_dict`: our names → the authors'.

    Our codebook statistics without an upstream counterpart (``embed_sum``, ``usage``,
    ``num_restarts``) are left out; the authors' unused ``embedding.cluster_size`` and
    ``embedding.embed_avg`` are written as zeros and a copy of the codes.
    """
    back = {ours: old for old, ours in _TOKENIZER_PREFIXES}
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in state_dict.items():
        book, _, leaf = key.partition(".")
        if book in ("codebook_t", "codebook_f") and leaf in ("embed_sum", "usage", "num_restarts"):
            continue
        new = key
        for ours, old in back.items():
            if key.startswith(ours):
                new = old + key[len(ours) :]
                break
        else:
            if key.count(".") == 1 and key.endswith(".chan_embed"):
                new = key[: -len(".chan_embed")] + ".pos_embed"
            elif key.count(".") == 2 and ".norm." in key and not key.startswith("tfconv"):
                new = key.replace(".norm.", ".fc_norm.")
        if new.startswith("decoder_") and ".patch_embed.proj.weight" in new:
            value = value.reshape(*value.shape, 1, 1)
        if new.endswith("embedding.initted"):
            value = value.reshape(1).float()
        out[("module." if data_parallel else "") + new] = value
    for t in ("t", "f"):
        w = out.get(("module." if data_parallel else "") + f"quantize_{t}.embedding.weight")
        if w is not None:
            pre = ("module." if data_parallel else "") + f"quantize_{t}.embedding."
            out[pre + "cluster_size"] = torch.zeros(w.shape[0], dtype=w.dtype)
            out[pre + "embed_avg"] = w.clone()
    return out
