"""Hyper-parameters of the TFDual-Tokenizer (:class:`TokenizerConfig`), validated on creation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from codebrain.layers.tfconv import tfconv_out_dim
from codebrain.utils.check import check_int, check_number, check_option, check_value
from codebrain.utils.config import JSONConfig

__all__ = ["TokenizerConfig"]

_REMOVED_TARGET_NORMS = ("patch", "none")


@dataclass
class TokenizerConfig(JSONConfig):
    """Hyper-parameters of :class:`~codebrain.models.tokenizer.TFDualTokenizer` (JSON-serialisable).

    The defaults are the authors' released configuration.

    Parameters
    ----------
    patch_size : int
        S, samples per patch (200 = 1 s at 200 Hz).
    max_chans : int
        Channels the channel table can hold; it has ``max_chans + 1`` slots (class token
        first). 128 in the release.
    max_patches : int
        Rows of the time table: windows may have up to this many patches (60 in the release).
    embed_dim : int
        D, width of the encoder and decoders. Must equal the TFConv width
        ``2 · (conv_channels // 2) · ((patch_size - 1) // 8 + 1)`` (200 for the release).
    conv_channels : int
        Channels of the first TFConv convolution (even; 8 in the release).
    conv_dropout : float
        Dropout inside TFConv (0.3).
    depth : int
        Encoder blocks (12).
    num_heads : int
        Attention heads (``embed_dim % num_heads == 0``; 10).
    decoder_depth : int
        Blocks of each decoder (3).
    mlp_ratio : float
        Hidden width of the MLPs as a multiple of ``embed_dim`` (4).
    dropout : float
        Dropout inside the Transformer blocks (0).
    codebook_size_t, codebook_size_f : int
        K of the temporal and frequency codebooks (4096).
    code_dim : int
        Dimension of both codebook spaces (32).
    ema_decay : float
        EMA decay of the codebooks (0.99).
    kmeans_init : bool
        Spherical k-means initialisation of the codebooks on the first training batch
        (the authors' CLI default is off: random unit codes).
    codebook_update : {"norm_ema", "sum_ema"}
        Codebook EMA rule (see :class:`~codebrain.layers.quantize.Codebook`); ``"norm_ema"``
        is the authors'.
    dead_code_threshold : float
        EMA usage below which a code is restarted (0, the release: never).
    commitment_weight, time_weight, amp_weight, phase_weight, contrastive_weight : float
        Loss weights (all 1).
    contrastive_temperature : float
        NT-Xent temperature (0.1).
    target_norm : {"sample"}
        Amplitude and phase targets are z-scored per sample (the authors'). The per-patch
        normalisation of codebrain's earlier tokenizer design (``"patch"``, ``"none"``) was
        removed with that design.
    """

    _ignored_keys: ClassVar[frozenset[str]] = frozenset({"model_type"})

    patch_size: int = 200
    max_chans: int = 128
    max_patches: int = 60
    embed_dim: int = 200
    conv_channels: int = 8
    conv_dropout: float = 0.3
    depth: int = 12
    num_heads: int = 10
    decoder_depth: int = 3
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    codebook_size_t: int = 4096
    codebook_size_f: int = 4096
    code_dim: int = 32
    ema_decay: float = 0.99
    kmeans_init: bool = False
    codebook_update: Literal["norm_ema", "sum_ema"] = "norm_ema"
    dead_code_threshold: float = 0.0
    commitment_weight: float = 1.0
    time_weight: float = 1.0
    amp_weight: float = 1.0
    phase_weight: float = 1.0
    contrastive_weight: float = 1.0
    contrastive_temperature: float = 0.1
    target_norm: Literal["sample"] = "sample"

    def __post_init__(self) -> None:
        if self.target_norm in _REMOVED_TARGET_NORMS:
            raise ValueError(
                f"TokenizerConfig.target_norm={self.target_norm!r} belongs to codebrain's "
                "earlier tokenizer design, which was replaced by the authors' architecture; its "
                "weights cannot be loaded into this one. Retrain with `codebrain "
                "tokenizer-train` (or load the authors' CodeBrain_Tokenizer.pth)."
            )
        check_option("TokenizerConfig.target_norm", self.target_norm, ("sample",))
        for name in (
            "patch_size",
            "max_chans",
            "max_patches",
            "embed_dim",
            "conv_channels",
            "depth",
            "num_heads",
            "decoder_depth",
            "codebook_size_t",
            "codebook_size_f",
            "code_dim",
        ):
            check_int(f"TokenizerConfig.{name}", getattr(self, name))
        check_int("TokenizerConfig.patch_size", self.patch_size, minimum=8)
        check_value(
            "TokenizerConfig.conv_channels",
            self.conv_channels,
            self.conv_channels >= 2 and self.conv_channels % 2 == 0,
            "even and >= 2",
        )
        width = tfconv_out_dim(self.patch_size, self.conv_channels)
        if self.embed_dim != width:
            raise ValueError(
                f"TokenizerConfig.embed_dim ({self.embed_dim}) must equal the TFConv width "
                f"2 * (conv_channels // 2) * ((patch_size - 1) // 8 + 1) = {width} for "
                f"patch_size={self.patch_size}, conv_channels={self.conv_channels}."
            )
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"TokenizerConfig.embed_dim ({self.embed_dim}) must be divisible by num_heads "
                f"({self.num_heads})."
            )
        for name in ("codebook_size_t", "codebook_size_f"):
            check_int(f"TokenizerConfig.{name}", getattr(self, name), minimum=2)
        for name in ("dropout", "conv_dropout", "ema_decay"):
            check_number(f"TokenizerConfig.{name}", getattr(self, name), minimum=0, less=1)
        check_number("TokenizerConfig.mlp_ratio", self.mlp_ratio, greater=0)
        check_option(
            "TokenizerConfig.codebook_update", self.codebook_update, ("norm_ema", "sum_ema")
        )
        check_number(
            "TokenizerConfig.contrastive_temperature", self.contrastive_temperature, greater=0
        )
        for name in (
            "dead_code_threshold",
            "commitment_weight",
            "time_weight",
            "amp_weight",
            "phase_weight",
            "contrastive_weight",
        ):
            check_number(f"TokenizerConfig.{name}", getattr(self, name), minimum=0)

    @property
    def n_freqs(self) -> int:
        """Number of DFT bins of the amplitude and phase targets (= ``patch_size``)."""
        return self.patch_size
