"""Stage 1 of CodeBrain: the TFDual-Tokenizer, as the authors released it (arXiv 2506.09110, §3.2).

A VQ-VAE that maps every 1 s EEG patch to two discrete tokens, one from a temporal codebook and
one from a frequency codebook; the token ids ``(B, C, P)`` are the targets of Stage 2
masked-token pretraining (:mod:`codebrain.training.pretrain`). The architecture, module sizes
and loss are those of the authors' code (``Models/modeling_tokenizer.py``,
``Models/modeling_finetune.py``, ``Models/norm_ema_quantizer.py``), so their released
``CodeBrain_Tokenizer.pth`` loads (:meth:`TFDualTokenizer.load_state_dict` accepts its key
names; :func:`~codebrain.models.checkpoints.convert_upstream_tokenizer_state_dict`) and gives
their token ids:

- **TFConv** (:class:`~codebrain.layers.tfconv.TFConv`): two unshared Conv2d stacks, on the raw
  patch and on the real part of its full S-point DFT, concatenated to ``D`` features.
- **Encoder** (:class:`~codebrain.layers.transformer.PatchTransformer`, LaBraM's
  ``NeuralTransformer``): class token, a channel table of ``max_chans + 1`` slots (slot 0 for
  the class token; input channel ``i`` uses slot ``i + 1``), a time table of ``max_patches``
  slots, pre-norm blocks with q/v biases only, a final LayerNorm on the patch tokens.
- Two task heads (Linear–Tanh–Linear) project each patch embedding to ``code_dim``; two
  l2-normalised EMA codebooks (:class:`~codebrain.layers.quantize.Codebook`, the authors'
  ``NormEMAVectorQuantizer`` update, random unit init unless ``kmeans_init``, no dead-code
  restart unless ``dead_code_threshold > 0``) pick the nearest code independently.
- **Decoders**: a ``decoder_depth``-layer PatchTransformer per codebook, fed the codes through
  a linear map (the authors' 1×1 convolution). The temporal head reconstructs the raw patch;
  the frequency decoder has an amplitude and a phase head over all ``S`` DFT bins.
- **Loss** (all weights 1 by default): ``commit_t + commit_f + MSE(time) + MSE(amplitude) +
  MSE(phase) + NT-Xent``. Time target: the input patch itself (µV / 100 for the released model,
  not standardised). Amplitude ``|fft(patch)|`` and phase ``angle(fft(patch))`` are each
  z-scored per sample over all channels × patches × bins. The contrastive term is NT-Xent
  (temperature 0.1, cosine similarity) between the flattened encoder outputs of the first and
  the second half of the window's patches, the other windows of the batch being negatives; it
  is computed only when gradients are enabled (the encoder then runs three times).

Shape legend: B = batch, C = EEG channels, P = patches per channel, S = samples per patch
(also the number of DFT bins), D = width, K = codebook size.

References
----------
.. [1] J. Ma, F. Wu, Q. Lin, Y. Xing, C. Liu, Z. Jia, M. Feng, "CodeBrain: Bridging Decoupled
   Tokenizer and Multi-Scale Architecture for EEG Foundation Model", ICLR 2026,
   arXiv 2506.09110, §3.2.
.. [2] Jiang et al., "Large Brain Model for Learning Generic Representations with Tremendous
   EEG Data in BCI" (LaBraM), ICLR 2024 — neural tokenizer and quantiser.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from codebrain.layers.quantize import Codebook
from codebrain.layers.tfconv import TFConv, tfconv_out_dim
from codebrain.layers.transformer import PatchTransformer
from codebrain.models._hub import (
    PAPER_URL,
    WEIGHTS_NAME,
    HubMixin,
    _resolve_files,
    read_config_file,
)
from codebrain.models.checkpoints import (
    UPSTREAM_TOKENIZER_FILE,
    convert_upstream_tokenizer_state_dict,
    is_upstream_tokenizer_state_dict,
    load_checkpoint_file,
)
from codebrain.utils.config import JSONConfig

__all__ = [
    "TFDualTokenizer",
    "TokenizerConfig",
    "TokenizerLosses",
    "TokenizerOutput",
    "TokenizerTargets",
    "nt_xent",
]

logger = logging.getLogger(__name__)

_MODEL_TYPE = "codebrain-tfdual-tokenizer"
_REMOVED_TARGET_NORMS = ("patch", "none")


# ------------------------------------------------------------------------------- config
@dataclass
class TokenizerConfig(JSONConfig):
    """Hyper-parameters of :class:`TFDualTokenizer` (JSON-serialisable).

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
        if self.target_norm != "sample":
            raise ValueError(
                f"TokenizerConfig.target_norm must be 'sample', got {self.target_norm!r}."
            )
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
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"TokenizerConfig.{name} must be an int, got {value!r}.")
            if value < 1:
                raise ValueError(f"TokenizerConfig.{name} must be >= 1, got {value}.")
        if self.patch_size < 8:
            raise ValueError(f"TokenizerConfig.patch_size must be >= 8, got {self.patch_size}.")
        if self.conv_channels < 2 or self.conv_channels % 2:
            raise ValueError(
                f"TokenizerConfig.conv_channels must be even and >= 2, got {self.conv_channels}."
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
            if getattr(self, name) < 2:
                raise ValueError(f"TokenizerConfig.{name} must be >= 2, got {getattr(self, name)}.")
        for name in ("dropout", "conv_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(
                    f"TokenizerConfig.{name} must be in [0, 1), got {getattr(self, name)}."
                )
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"TokenizerConfig.ema_decay must be in [0, 1), got {self.ema_decay}.")
        if self.mlp_ratio <= 0:
            raise ValueError(f"TokenizerConfig.mlp_ratio must be > 0, got {self.mlp_ratio}.")
        if self.codebook_update not in ("norm_ema", "sum_ema"):
            raise ValueError(
                "TokenizerConfig.codebook_update must be 'norm_ema' or 'sum_ema', got "
                f"{self.codebook_update!r}."
            )
        if not self.contrastive_temperature > 0:
            raise ValueError(
                "TokenizerConfig.contrastive_temperature must be > 0, got "
                f"{self.contrastive_temperature}."
            )
        for name in (
            "dead_code_threshold",
            "commitment_weight",
            "time_weight",
            "amp_weight",
            "phase_weight",
            "contrastive_weight",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"TokenizerConfig.{name} must be >= 0, got {getattr(self, name)}.")

    @property
    def n_freqs(self) -> int:
        """Number of DFT bins of the amplitude and phase targets (= ``patch_size``)."""
        return self.patch_size


# ------------------------------------------------------------------------------ outputs
@dataclass
class TokenizerTargets:
    """Reconstruction targets.

    Attributes
    ----------
    time : torch.Tensor, shape (B, C, P, S)
        The input patches (float32).
    amp : torch.Tensor, shape (B, C, P, S)
        ``|fft(patch)|``, z-scored per sample over C × P × S.
    phase : torch.Tensor, shape (B, C, P, S)
        ``angle(fft(patch))``, z-scored per sample over C × P × S.
    """

    time: torch.Tensor
    amp: torch.Tensor
    phase: torch.Tensor


@dataclass
class TokenizerLosses:
    """Every term of the tokenizer loss (unweighted scalars).

    Attributes
    ----------
    time, amp, phase : torch.Tensor
        MSE of the temporal, amplitude and phase reconstructions.
    commit_t, commit_f : torch.Tensor
        Commitment losses of the two codebooks.
    contrastive : torch.Tensor
        NT-Xent between the two halves of each window (0 without gradients or with P < 2).
    """

    time: torch.Tensor
    amp: torch.Tensor
    phase: torch.Tensor
    commit_t: torch.Tensor
    commit_f: torch.Tensor
    contrastive: torch.Tensor

    def as_dict(self) -> dict[str, torch.Tensor]:
        """``{name: scalar tensor}``."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class TokenizerOutput:
    """Result of :meth:`TFDualTokenizer.forward`.

    Attributes
    ----------
    ids_t, ids_f : torch.Tensor of int64, shape (B, C, P)
        Temporal and frequency token ids.
    recon_time : torch.Tensor, shape (B, C, P, S)
    recon_amp : torch.Tensor, shape (B, C, P, S)
    recon_phase : torch.Tensor, shape (B, C, P, S)
        Predictions in the units of the targets (amplitude and phase z-scored).
    targets : TokenizerTargets
    loss : torch.Tensor, scalar
        Weighted total.
    losses : TokenizerLosses
        Every unweighted term.
    counts_t, counts_f : torch.Tensor, shape (K,)
        Code usage counts of this batch.
    """

    ids_t: torch.Tensor
    ids_f: torch.Tensor
    recon_time: torch.Tensor
    recon_amp: torch.Tensor
    recon_phase: torch.Tensor
    targets: TokenizerTargets
    loss: torch.Tensor
    losses: TokenizerLosses
    counts_t: torch.Tensor = field(repr=False)
    counts_f: torch.Tensor = field(repr=False)


# ------------------------------------------------------------------------------ helpers
def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """The authors' NT-Xent loss between two views (cosine similarity, float32).

    Row ``i`` of ``z1`` and row ``i`` of ``z2`` are a positive pair; every other row of
    either view is a negative. For each of the ``2B`` anchors the logits are the positive's
    similarity followed by the similarities to all ``2B - 1`` other rows, scaled by
    ``1 / temperature``, and the loss is the mean cross-entropy of the first logit.

    Notes
    -----
    The ``2B - 1`` "others" include the positive itself, so it enters the softmax
    denominator twice. That is what the authors' ``NTXentLoss`` computes (its mask of
    negatives is built with ``torch.roll`` by ``+B`` and ``-B``, which coincide on ``2B``
    columns, and ``1 - 2 = -1`` casts to ``True``); it is reproduced so that the released
    training objective is the one optimised here.

    Parameters
    ----------
    z1, z2 : torch.Tensor, shape (B, ...)
        Flattened per sample.
    temperature : float

    Returns
    -------
    torch.Tensor, scalar
    """
    b = z1.shape[0]
    with torch.autocast(device_type=z1.device.type, enabled=False):
        reps = F.normalize(torch.cat([z2.reshape(b, -1), z1.reshape(b, -1)]).float(), dim=-1)
        sim = reps @ reps.t() / temperature  # (2B, 2B)
        n = 2 * b
        partner = (torch.arange(n, device=sim.device) + b) % n
        positive = sim[torch.arange(n, device=sim.device), partner]  # (2B,)
        others = sim.masked_fill(torch.eye(n, dtype=torch.bool, device=sim.device), float("-inf"))
        logits = torch.cat([positive[:, None], others], dim=1)  # (2B, 1 + 2B)
        return F.cross_entropy(logits, torch.zeros(n, dtype=torch.long, device=sim.device))


def _std_norm(x: torch.Tensor) -> torch.Tensor:
    """z-score each sample over its C × P × S values (unbiased std, as the authors)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    std = x.std(dim=(1, 2, 3), keepdim=True)
    return (x - mean) / std.clamp_min(1e-12)


def _task_head(d_in: int, d_out: int) -> nn.Sequential:
    """Linear-Tanh-Linear head: ``(..., d_in) -> (..., d_out)``; LaBraM's init."""
    head = nn.Sequential(nn.Linear(d_in, d_in), nn.Tanh(), nn.Linear(d_in, d_out))
    for m in head:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
    return head


# -------------------------------------------------------------------------------- model
class TFDualTokenizer(
    HubMixin,
    nn.Module,
    library_name="codebrain",
    paper_url=PAPER_URL,
    tags=["eeg", "codebrain", "tokenizer", "vq-vae"],
):
    """The CodeBrain TFDual-Tokenizer: two discrete tokens per EEG patch.

    Parameters
    ----------
    config : TokenizerConfig, optional
        Hyper-parameters (default: the released sizes).

    Notes
    -----
    Inputs are raw windows ``(B, C, T)`` with ``T`` a multiple of ``patch_size``, or already
    cut patches ``(B, C, P, S)`` with ``S == patch_size`` (both accepted by every method),
    in the data's amplitude unit (µV / 100 for the released model). ``C <= max_chans`` and
    ``P <= max_patches``; input channel ``i`` uses channel slot ``i + 1`` (the authors'
    ``input_chans = range(C + 1)``), so keep the montage order fixed between training and use.

    :meth:`load_state_dict` also accepts the authors' state dict (``CodeBrain_Tokenizer.pth``,
    with or without the ``module.`` prefix); :meth:`from_upstream` builds the model from such
    a file, and :meth:`from_pretrained` accepts a folder holding it.

    References
    ----------
    .. [1] Ma et al., CodeBrain, ICLR 2026, arXiv 2506.09110, §3.2.
    """

    def __init__(self, config: TokenizerConfig | None = None) -> None:
        super().__init__()
        cfg = config if config is not None else TokenizerConfig()
        if not isinstance(cfg, TokenizerConfig):
            raise TypeError(f"config must be a TokenizerConfig, got {type(cfg).__name__}.")
        self.config = cfg
        d = cfg.embed_dim
        self.tfconv = TFConv(cfg.patch_size, cfg.conv_channels, cfg.conv_dropout)

        def transformer(depth: int) -> PatchTransformer:
            return PatchTransformer(
                d,
                depth,
                cfg.num_heads,
                mlp_ratio=cfg.mlp_ratio,
                dropout=cfg.dropout,
                n_chan_slots=cfg.max_chans + 1,
                n_time_slots=cfg.max_patches,
            )

        self.encoder = transformer(cfg.depth)
        self.proj_t = _task_head(d, cfg.code_dim)
        self.proj_f = _task_head(d, cfg.code_dim)
        codebook_kw = dict(
            decay=cfg.ema_decay,
            kmeans_init=cfg.kmeans_init,
            update=cfg.codebook_update,
            threshold_ema_dead_code=cfg.dead_code_threshold,
        )
        self.codebook_t = Codebook(cfg.codebook_size_t, cfg.code_dim, **codebook_kw)
        self.codebook_f = Codebook(cfg.codebook_size_f, cfg.code_dim, **codebook_kw)
        self.decoder_in_t = nn.Linear(cfg.code_dim, d)
        self.decoder_in_f = nn.Linear(cfg.code_dim, d)
        self.decoder_t = transformer(cfg.decoder_depth)
        self.decoder_f = transformer(cfg.decoder_depth)
        self.head_time = _task_head(d, cfg.patch_size)
        self.head_amp = _task_head(d, cfg.n_freqs)
        self.head_phase = _task_head(d, cfg.n_freqs)

    # ------------------------------------------------------------------- inputs
    def to_patches(self, x: torch.Tensor) -> torch.Tensor:
        """Validate the input and cut it into patches.

        Parameters
        ----------
        x : torch.Tensor, shape (B, C, T) or (B, C, P, S)
            ``T`` must be a multiple of ``patch_size``; ``S`` must equal it.

        Returns
        -------
        torch.Tensor, shape (B, C, P, S)

        Raises
        ------
        TypeError
            Not a floating-point tensor.
        ValueError
            Wrong number of dimensions, ``T`` not a multiple of ``patch_size``, ``S`` not equal
            to it, or too many channels/patches for the embeddings.
        """
        cfg = self.config
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"expected a torch.Tensor, got {type(x).__name__}.")
        if not x.is_floating_point():
            raise TypeError(f"expected a floating-point tensor, got dtype {x.dtype}.")
        if x.ndim == 3:
            b, c, t = x.shape
            if t == 0 or t % cfg.patch_size:
                raise ValueError(
                    f"n_times ({t}) must be a positive multiple of patch_size "
                    f"({cfg.patch_size}); crop or pad the windows, e.g. to "
                    f"{max(1, t // cfg.patch_size) * cfg.patch_size} samples."
                )
            x = x.reshape(b, c, t // cfg.patch_size, cfg.patch_size)  # (B, C, P, S)
        elif x.ndim == 4:
            if x.shape[-1] != cfg.patch_size:
                raise ValueError(
                    f"patches of shape {tuple(x.shape)} have S={x.shape[-1]} samples; expected "
                    f"S = patch_size = {cfg.patch_size}."
                )
        else:
            raise ValueError(
                f"expected windows (B, C, T) or patches (B, C, P, S), got shape {tuple(x.shape)}."
            )
        b, c, p, _ = x.shape
        if b == 0 or c == 0 or p == 0:
            raise ValueError(f"input has an empty dimension: shape {tuple(x.shape)}.")
        if c > cfg.max_chans:
            raise ValueError(
                f"input has {c} channels but the tokenizer embeds at most max_chans="
                f"{cfg.max_chans}."
            )
        if p > cfg.max_patches:
            raise ValueError(
                f"input has {p} patches per channel but the tokenizer embeds at most "
                f"max_patches={cfg.max_patches}."
            )
        return x

    @staticmethod
    def spectrum(patches: torch.Tensor) -> torch.Tensor:
        """Full DFT ``fft(patches)`` in float32 (autocast disabled).

        Parameters
        ----------
        patches : torch.Tensor, shape (..., S)

        Returns
        -------
        torch.Tensor, complex64, shape (..., S)
        """
        with torch.autocast(device_type=patches.device.type, enabled=False):
            return torch.fft.fft(patches.float(), dim=-1)

    def make_targets(self, patches: torch.Tensor) -> TokenizerTargets:
        """Reconstruction targets of ``patches`` (B, C, P, S); see :class:`TokenizerTargets`."""
        with torch.autocast(device_type=patches.device.type, enabled=False):
            spec = self.spectrum(patches)  # (B, C, P, S)
            return TokenizerTargets(
                time=patches.float(),
                amp=_std_norm(spec.abs()),
                phase=_std_norm(torch.angle(spec)),
            )

    # ------------------------------------------------------------------ encoder
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Patch embeddings from the shared encoder.

        Parameters
        ----------
        x : torch.Tensor, shape (B, C, T) or (B, C, P, S)

        Returns
        -------
        torch.Tensor, shape (B, C, P, D)
        """
        patches = self.to_patches(x)
        b, c, p, _ = patches.shape
        return self._encode_patches(patches).reshape(b, c, p, -1)

    def _encode_patches(self, patches: torch.Tensor) -> torch.Tensor:
        """(B, C, P, S) -> encoder tokens (B, C·P, D)."""
        return self.encoder(self.tfconv(patches), patches.shape[1])

    def _project(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Task heads in float32 (autocast off, as the authors): (..., D) -> 2 × (..., code_dim)."""
        with torch.autocast(device_type=h.device.type, enabled=False):
            h = h.float()
            return self.proj_t(h), self.proj_f(h)

    @torch.no_grad()
    def tokenize(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Temporal and frequency token ids (never updates the codebooks).

        Parameters
        ----------
        x : torch.Tensor, shape (B, C, T) or (B, C, P, S)

        Returns
        -------
        ids_t, ids_f : torch.Tensor of int64, shape (B, C, P)
        """
        z_t, z_f = self._project(self.encode(x))  # (B, C, P, code_dim)
        return self.codebook_t.lookup(z_t), self.codebook_f.lookup(z_f)

    # ------------------------------------------------------------------ decoder
    @torch.no_grad()
    def decode(
        self, ids_t: torch.Tensor, ids_f: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruct waveform, amplitude and phase from token ids (no grad).

        Parameters
        ----------
        ids_t, ids_f : torch.Tensor of int64, shape (B, C, P)

        Returns
        -------
        recon_time : torch.Tensor, shape (B, C, P, S)
        recon_amp, recon_phase : torch.Tensor, shape (B, C, P, S)
            In the units of the (z-scored) targets.
        """
        if ids_t.shape != ids_f.shape or ids_t.ndim != 3:
            raise ValueError(
                f"ids_t and ids_f must both be (B, C, P); got {tuple(ids_t.shape)} and "
                f"{tuple(ids_f.shape)}."
            )
        return self._decode_codes(self.codebook_t.decode(ids_t), self.codebook_f.decode(ids_f))

    def _decode_codes(
        self, q_t: torch.Tensor, q_f: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Codes (B, C, P, code_dim) → time, amp, phase, each (B, C, P, S)."""
        b, c, p, _ = q_t.shape
        h_t = self.decoder_t(self.decoder_in_t(q_t).reshape(b, c * p, -1), c)  # (B, C·P, D)
        h_f = self.decoder_f(self.decoder_in_f(q_f).reshape(b, c * p, -1), c)
        time = self.head_time(h_t).reshape(b, c, p, -1)
        amp = self.head_amp(h_f).reshape(b, c, p, -1)
        phase = self.head_phase(h_f).reshape(b, c, p, -1)
        return time, amp, phase

    # ------------------------------------------------------------------ forward
    def contrastive_loss(self, patches: torch.Tensor) -> torch.Tensor:
        """NT-Xent between the encoder outputs of the first and the second half of each window.

        The halves are patches ``[0, P//2)`` and ``[P - P//2, P)`` (the two halves of an even
        window), each encoded on its own (time slots from 0).

        Parameters
        ----------
        patches : torch.Tensor, shape (B, C, P, S)

        Returns
        -------
        torch.Tensor, scalar
            0 when ``P < 2``.
        """
        p = patches.shape[2]
        half = p // 2
        if half == 0:
            return patches.new_zeros((), dtype=torch.float32)
        h1 = self._encode_patches(patches[:, :, :half])  # (B, C·P/2, D)
        h2 = self._encode_patches(patches[:, :, p - half :])
        return nt_xent(h1, h2, self.config.contrastive_temperature)

    def forward(self, x: torch.Tensor) -> TokenizerOutput:
        """Encode, quantise (updating the codebooks in training mode), decode, and score.

        Parameters
        ----------
        x : torch.Tensor, shape (B, C, T) or (B, C, P, S)

        Returns
        -------
        TokenizerOutput
        """
        cfg = self.config
        patches = self.to_patches(x)  # (B, C, P, S)
        b, c, p, _ = patches.shape
        targets = self.make_targets(patches)
        h = self._encode_patches(patches).reshape(b, c, p, -1)  # (B, C, P, D)
        if torch.is_grad_enabled() and cfg.contrastive_weight > 0:
            contrastive = self.contrastive_loss(patches)
        else:
            contrastive = torch.zeros((), device=patches.device)
        z_t, z_f = self._project(h)
        vq_t = self.codebook_t(z_t)  # quantized (B, C, P, code_dim)
        vq_f = self.codebook_f(z_f)
        time, amp, phase = self._decode_codes(vq_t.quantized, vq_f.quantized)
        with torch.autocast(device_type=patches.device.type, enabled=False):
            losses = TokenizerLosses(
                time=F.mse_loss(time.float(), targets.time),
                amp=F.mse_loss(amp.float(), targets.amp),
                phase=F.mse_loss(phase.float(), targets.phase),
                commit_t=vq_t.commit_loss,
                commit_f=vq_f.commit_loss,
                contrastive=contrastive.float(),
            )
            loss = (
                cfg.commitment_weight * (losses.commit_t + losses.commit_f)
                + cfg.time_weight * losses.time
                + cfg.amp_weight * losses.amp
                + cfg.phase_weight * losses.phase
                + cfg.contrastive_weight * losses.contrastive
            )
        return TokenizerOutput(
            ids_t=vq_t.indices,
            ids_f=vq_f.indices,
            recon_time=time,
            recon_amp=amp,
            recon_phase=phase,
            targets=targets,
            loss=loss,
            losses=losses,
            counts_t=vq_t.counts,
            counts_f=vq_f.counts,
        )

    # ------------------------------------------------------- upstream weights
    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        """Load weights; the authors' key names (``CodeBrain_Tokenizer.pth``) are converted.

        A state dict in the authors' naming (with or without DataParallel's ``module.``
        prefix) goes through
        :func:`~codebrain.models.checkpoints.convert_upstream_tokenizer_state_dict`, which
        raises ``ValueError`` naming every missing, unexpected or mis-shaped key when
        ``strict``. Our own state dicts load as usual.
        """
        if is_upstream_tokenizer_state_dict(state_dict):
            state_dict, report = convert_upstream_tokenizer_state_dict(
                state_dict, self, strict=strict
            )
            logger.debug("Converted the authors' tokenizer state dict: %s", report.describe())
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    @classmethod
    def from_upstream(
        cls,
        checkpoint: str | os.PathLike | Mapping[str, torch.Tensor],
        *,
        map_location: str | torch.device = "cpu",
        **overrides: Any,
    ) -> TFDualTokenizer:
        """Build a tokenizer from the authors' checkpoint (e.g. ``CodeBrain_Tokenizer.pth``).

        The sizes (width, depth, codebooks, table slots, patch size) are read from the tensor
        shapes; the number of heads, which shapes do not show, defaults to the release's 10.

        Parameters
        ----------
        checkpoint : path-like or mapping
            A ``.pth`` file (read with ``weights_only=True``; ``{"model": ...}`` containers are
            unwrapped) or an upstream state dict.
        map_location : str or torch.device
        **overrides
            Further :class:`TokenizerConfig` fields (e.g. ``num_heads``).

        Returns
        -------
        TFDualTokenizer
            In eval mode.
        """
        state = checkpoint if isinstance(checkpoint, Mapping) else load_checkpoint_file(checkpoint)
        converted, _ = convert_upstream_tokenizer_state_dict(state)
        model = cls(TokenizerConfig(**{**_config_from_shapes(converted), **overrides}))
        model.load_state_dict(converted)
        return model.to(map_location).eval()

    # -------------------------------------------------------------- persistence
    # save_pretrained / push_to_hub / from_pretrained: huggingface_hub.PyTorchModelHubMixin
    # through codebrain.models._hub.HubMixin (same folder convention as CodeBrain).
    _card_title = "CodeBrain TFDual-Tokenizer"
    _card_description = """
The TFDual-Tokenizer is Stage 1 of CodeBrain (Ma et al., ICLR 2026): it turns each EEG patch
into two discrete tokens, one from a temporal and one from a frequency codebook, by encoding
patches with a transformer, quantising the temporal and frequency projections against two
codebooks and reconstructing the signal, its amplitude and phase spectra. The token ids are the
targets of the EEGSSM backbone's masked-token pretraining."""

    def get_config(self) -> dict[str, Any]:
        """The configuration saved in ``config.json`` (``model_type`` + the config fields)."""
        return {"model_type": _MODEL_TYPE, **self.config.to_dict()}

    @classmethod
    def _weight_names(cls) -> tuple[str, ...]:
        return (WEIGHTS_NAME, UPSTREAM_TOKENIZER_FILE)

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        force_download: bool = False,
        local_files_only: bool = False,
        token: str | bool | None = None,
        map_location: str | torch.device = "cpu",
        config: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> TFDualTokenizer:
        """Hook of ``ModelHubMixin.from_pretrained``: a tokenizer saved by ``save_pretrained``.

        A folder without ``config.json`` that holds the authors' ``CodeBrain_Tokenizer.pth``
        loads through :meth:`from_upstream`.

        Parameters
        ----------
        model_id : str
            A folder, or a Hugging Face repo id (respects ``HF_HUB_OFFLINE``).
        revision, cache_dir, force_download, local_files_only, token
            Passed to ``huggingface_hub.hf_hub_download`` for repo ids.
        map_location : str or torch.device
            Device of the loaded weights.
        config : dict, optional
            The saved ``config.json`` (given by ``from_pretrained``).
        **overrides
            Config fields to change that do not alter weight shapes (e.g. ``dropout``,
            loss weights, ``dead_code_threshold``).

        Returns
        -------
        TFDualTokenizer
            In eval mode.
        """
        from codebrain.models.checkpoints import load_checkpoint_file

        config_path, weights_path = _resolve_files(
            model_id,
            cls._weight_names(),
            revision=revision,
            cache_dir=cache_dir,
            force_download=force_download,
            token=token,
            local_files_only=local_files_only,
        )
        if config_path is None and weights_path.name == UPSTREAM_TOKENIZER_FILE:
            return cls.from_upstream(weights_path, map_location=map_location, **overrides)
        if config_path is None:
            raise FileNotFoundError(
                f"{weights_path.parent} has no config.json; expected a folder written by "
                "TFDualTokenizer.save_pretrained (an interrupted save leaves only the weights)."
            )
        raw = dict(config) if isinstance(config, dict) else read_config_file(config_path)
        model_type = raw.pop("model_type", _MODEL_TYPE)
        if model_type != _MODEL_TYPE:
            raise ValueError(
                f"{config_path} describes a {model_type!r} model, not a {_MODEL_TYPE!r}."
            )
        for key in ("braindecode_version", "codebrain_version"):
            raw.pop(key, None)
        raw.update(overrides)
        try:
            model = cls(TokenizerConfig.from_dict(raw))
        except (TypeError, ValueError) as err:
            raise type(err)(f"Cannot build TFDualTokenizer from {config_path}: {err}") from err
        model.load_state_dict(load_checkpoint_file(weights_path))
        model.to(map_location)
        return model.eval()


def _config_from_shapes(sd: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """TokenizerConfig fields implied by a state dict in our naming."""

    def shape(key: str) -> tuple[int, ...]:
        if key not in sd:
            raise ValueError(f"the tokenizer state dict has no {key!r}.")
        return tuple(sd[key].shape)

    def depth(prefix: str) -> int:
        ids = {int(k[len(prefix) :].split(".")[0]) for k in sd if k.startswith(prefix)}
        return max(ids) + 1 if ids else 0

    d = shape("encoder.cls_token")[-1]
    return {
        "patch_size": shape("head_time.2.weight")[0],
        "max_chans": shape("encoder.chan_embed")[1] - 1,
        "max_patches": shape("encoder.time_embed")[1],
        "embed_dim": d,
        "conv_channels": shape("tfconv.temporal.0.weight")[0],
        "depth": depth("encoder.blocks."),
        "decoder_depth": depth("decoder_t.blocks."),
        "mlp_ratio": shape("encoder.blocks.0.mlp.fc1.weight")[0] / d,
        "codebook_size_t": shape("codebook_t.embed")[0],
        "codebook_size_f": shape("codebook_f.embed")[0],
        "code_dim": shape("codebook_t.embed")[1],
    }
