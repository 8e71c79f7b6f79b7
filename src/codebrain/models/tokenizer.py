"""Stage 1 of CodeBrain: the TFDual-Tokenizer (arXiv 2506.09110, §3.2).

A VQ-VAE that maps every 1 s EEG patch to two discrete tokens, one from a temporal codebook and
one from a frequency codebook; the token ids ``(B, C, P)`` are the targets of Stage 2
masked-token pretraining (:mod:`codebrain.training.pretrain`).

Architecture (defaults = the released sizes where the paper gives them, LaBraM's neural
tokenizer where it does not):

- **TFConv** (shared encoder front end). Each patch ``(S,)`` and its DFT are processed in
  parallel: a temporal branch of 1-D convolutions over samples (GroupNorm + GELU, as the
  Stage 2 patch embedding) and a spectral branch of 1-D convolutions over frequency bins whose
  two input channels are the real and imaginary parts of ``rfft(patch, norm="forward")``
  (computed in float32). Both are flattened, projected to ``D``, concatenated and fused by a
  linear layer.
- Learned channel and patch-position embeddings are added, and a pre-norm Transformer encoder
  with full attention over the ``C·P`` patches of a window gives one embedding per patch.
- Two task heads (Linear–Tanh–Linear, as LaBraM) project each embedding into the temporal and
  the frequency codebook spaces; each :class:`~codebrain.layers.quantize.Codebook`
  (l2-normalised, EMA, k-means init) picks its nearest code independently.
- The temporal decoder (Transformer over the temporal codes) reconstructs the patch waveform;
  the frequency decoder (Transformer over the frequency codes) reconstructs the Fourier
  amplitude and phase.

Targets and losses (documented choices):

- **Normalisation.** Reconstruction targets are standardised per patch (zero mean, unit
  standard deviation over the patch's own samples, resp. frequency bins), as LaBraM — whose
  tokenizer CodeBrain extends — does for its amplitude/phase targets. The encoder sees the
  un-normalised input, so absolute scale still reaches the codes through the encoder, but the
  decoders are not asked to regress scale across patches whose power differs by orders of
  magnitude. ``target_norm="none"`` disables it.
- **Phase.** The phase is a circular quantity: MSE on raw angles penalises ``-π`` vs ``π``. The
  frequency decoder therefore predicts, per bin, a 2-vector regressed onto
  ``(cos φ, sin φ)`` (MSE, averaged over bins); ``recon_phase`` is ``atan2`` of the prediction.
  Bins are weighted equally (no amplitude weighting).
- **Loss.** ``w_time·MSE(time) + w_amp·MSE(amp) + w_phase·MSE(cos/sin phase) +
  w_commit·(commit_t + commit_f)``. The codebook term of the VQ objective is implemented by
  the EMA updates of the codebooks (VQ-VAE-2), so it has no gradient term.

Shape legend: B = batch, C = EEG channels, P = patches per channel, S = samples per patch,
F = ``S // 2 + 1`` frequency bins, D = width, K = codebook size.

References
----------
.. [1] CodeBrain: "Towards Decoupled Interpretability and Multi-Scale Architecture for EEG
   Foundation Model", arXiv 2506.09110, §3.2.
.. [2] Jiang et al., "Large Brain Model for Learning Generic Representations with Tremendous
   EEG Data in BCI" (LaBraM), ICLR 2024 — neural tokenizer.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from codebrain.layers.quantize import Codebook
from codebrain.models._hub import (
    PAPER_URL,
    HubMixin,
    _resolve_files,
    read_config_file,
)
from codebrain.utils.config import JSONConfig

__all__ = [
    "TFDualTokenizer",
    "TokenizerConfig",
    "TokenizerLosses",
    "TokenizerOutput",
    "TokenizerTargets",
]

logger = logging.getLogger(__name__)

_MODEL_TYPE = "codebrain-tfdual-tokenizer"


# ------------------------------------------------------------------------------- config
@dataclass
class TokenizerConfig(JSONConfig):
    """Hyper-parameters of :class:`TFDualTokenizer` (JSON-serialisable).

    Parameters
    ----------
    patch_size : int
        S, samples per patch (200 = 1 s at 200 Hz).
    max_chans : int
        Size of the channel embedding: inputs may have up to this many channels.
    max_patches : int
        Size of the patch-position embedding: windows may have up to this many patches.
    embed_dim : int
        D, width of the encoder and decoders.
    conv_channels : int
        Channels of the TFConv convolution branches.
    depth : int
        Transformer encoder layers.
    num_heads : int
        Attention heads (``embed_dim % num_heads == 0``).
    decoder_depth : int
        Transformer layers of each decoder.
    mlp_ratio : float
        Hidden width of the Transformer MLPs as a multiple of ``embed_dim``.
    dropout : float
        Dropout in the Transformer blocks.
    codebook_size_t, codebook_size_f : int
        K of the temporal and frequency codebooks.
    code_dim : int
        Dimension of both codebook spaces.
    ema_decay : float
        EMA decay of the codebooks.
    kmeans_init : bool
        k-means initialisation of the codebooks on the first training batch.
    dead_code_threshold : float
        EMA usage below which a code is restarted (0 disables).
    commitment_weight, time_weight, amp_weight, phase_weight : float
        Loss weights.
    target_norm : {"patch", "none"}
        Per-patch standardisation of the reconstruction targets.
    """

    _ignored_keys: ClassVar[frozenset[str]] = frozenset({"model_type"})

    patch_size: int = 200
    max_chans: int = 19
    max_patches: int = 30
    embed_dim: int = 200
    conv_channels: int = 8
    depth: int = 12
    num_heads: int = 10
    decoder_depth: int = 3
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    codebook_size_t: int = 4096
    codebook_size_f: int = 4096
    code_dim: int = 32
    ema_decay: float = 0.99
    kmeans_init: bool = True
    dead_code_threshold: float = 1.0
    commitment_weight: float = 1.0
    time_weight: float = 1.0
    amp_weight: float = 1.0
    phase_weight: float = 1.0
    target_norm: Literal["patch", "none"] = "patch"

    def __post_init__(self) -> None:
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
        if self.embed_dim % self.num_heads:
            raise ValueError(
                f"TokenizerConfig.embed_dim ({self.embed_dim}) must be divisible by num_heads "
                f"({self.num_heads})."
            )
        for name in ("codebook_size_t", "codebook_size_f"):
            if getattr(self, name) < 2:
                raise ValueError(f"TokenizerConfig.{name} must be >= 2, got {getattr(self, name)}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"TokenizerConfig.dropout must be in [0, 1), got {self.dropout}.")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"TokenizerConfig.ema_decay must be in [0, 1), got {self.ema_decay}.")
        if self.mlp_ratio <= 0:
            raise ValueError(f"TokenizerConfig.mlp_ratio must be > 0, got {self.mlp_ratio}.")
        for name in (
            "dead_code_threshold",
            "commitment_weight",
            "time_weight",
            "amp_weight",
            "phase_weight",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"TokenizerConfig.{name} must be >= 0, got {getattr(self, name)}.")
        if self.target_norm not in ("patch", "none"):
            raise ValueError(
                f"TokenizerConfig.target_norm must be 'patch' or 'none', got {self.target_norm!r}."
            )

    @property
    def n_freqs(self) -> int:
        """F = ``patch_size // 2 + 1``, the number of rfft bins."""
        return self.patch_size // 2 + 1


# ------------------------------------------------------------------------------ outputs
@dataclass
class TokenizerTargets:
    """Reconstruction targets (after the per-patch normalisation of the config).

    Attributes
    ----------
    time : torch.Tensor, shape (B, C, P, S)
    amp : torch.Tensor, shape (B, C, P, F)
        Fourier amplitude ``|rfft(patch, norm="forward")|``.
    phase : torch.Tensor, shape (B, C, P, F)
        Fourier phase in ``(-π, π]`` (never normalised).
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
        MSE of the temporal reconstruction, the amplitude and the phase (on cos/sin).
    commit_t, commit_f : torch.Tensor
        Commitment losses of the two codebooks.
    """

    time: torch.Tensor
    amp: torch.Tensor
    phase: torch.Tensor
    commit_t: torch.Tensor
    commit_f: torch.Tensor

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
    recon_amp : torch.Tensor, shape (B, C, P, F)
    recon_phase : torch.Tensor, shape (B, C, P, F)
        Angles ``atan2(sin, cos)`` of the predicted phase vectors.
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


# ------------------------------------------------------------------------------- layers
def _conv_out(n: int, kernel: int, stride: int, pad: int) -> int:
    return (n + 2 * pad - kernel) // stride + 1


class _ConvBranch(nn.Module):
    """Three 1-D convolutions (GroupNorm + GELU) over one axis, flattened and projected.

    Input ``(N, in_ch, L)`` → output ``(N, D)``.
    """

    def __init__(self, in_ch: int, length: int, channels: int, out_dim: int) -> None:
        super().__init__()
        kernel = max(3, (length // 4) | 1)  # odd, about a quarter of the axis
        stride = max(1, length // 16)
        groups = math.gcd(channels, 4)
        self.net = nn.Sequential(
            nn.Conv1d(in_ch, channels, kernel, stride=stride, padding=kernel // 2),
            nn.GroupNorm(groups, channels),
            nn.GELU(),
            nn.Conv1d(channels, channels, 3, padding=1),
            nn.GroupNorm(groups, channels),
            nn.GELU(),
            nn.Conv1d(channels, channels, 3, padding=1),
            nn.GroupNorm(groups, channels),
            nn.GELU(),
        )
        n_out = _conv_out(length, kernel, stride, kernel // 2)
        self.proj = nn.Linear(channels * n_out, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.net(x).flatten(1))  # (N, ch, L') -> (N, D)


class TFConv(nn.Module):
    """Parallel temporal and spectral convolutions over each patch, fused to width D.

    Parameters
    ----------
    patch_size : int
        S.
    channels : int
        Convolution channels of each branch.
    embed_dim : int
        D.
    """

    def __init__(self, patch_size: int, channels: int, embed_dim: int) -> None:
        super().__init__()
        n_freqs = patch_size // 2 + 1
        self.temporal = _ConvBranch(1, patch_size, channels, embed_dim)
        self.spectral = _ConvBranch(2, n_freqs, channels, embed_dim)
        self.fuse = nn.Linear(2 * embed_dim, embed_dim)

    def forward(self, patches: torch.Tensor, spectrum: torch.Tensor) -> torch.Tensor:
        """Embed patches.

        Parameters
        ----------
        patches : torch.Tensor, shape (N, S)
        spectrum : torch.Tensor, complex, shape (N, F)
            ``rfft(patches, norm="forward")``.

        Returns
        -------
        torch.Tensor, shape (N, D)
        """
        t = self.temporal(patches[:, None, :])  # (N, D)
        spec = torch.stack([spectrum.real, spectrum.imag], dim=1).to(t.dtype)  # (N, 2, F)
        f = self.spectral(spec)  # (N, D)
        return self.fuse(torch.cat([t, f], dim=-1))  # (N, D)


class _Attention(nn.Module):
    """Multi-head self-attention over all tokens (SDPA): ``(B, N, D) -> (B, N, D)``."""

    def __init__(self, dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, H, N, d/H)
        out = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0
        )  # (B, H, N, d/H)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class _Block(nn.Module):
    """Pre-norm Transformer block: ``x + Attn(LN(x))``, ``x + MLP(LN(x))``; ``(B, N, D)``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        hidden = max(1, int(round(dim * mlp_ratio)))
        self.norm1 = nn.LayerNorm(dim)
        self.attn = _Attention(dim, num_heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x)))
        return x + self.drop(self.mlp(self.norm2(x)))


class _Transformer(nn.Module):
    """Channel/patch position embeddings + a stack of blocks + final LayerNorm.

    Input and output ``(B, C, P, D)``; attention runs over all ``C·P`` tokens of a window.
    """

    def __init__(self, cfg: TokenizerConfig, depth: int) -> None:
        super().__init__()
        d = cfg.embed_dim
        self.chan_embed = nn.Parameter(torch.zeros(cfg.max_chans, d))
        self.patch_embed = nn.Parameter(torch.zeros(cfg.max_patches, d))
        nn.init.trunc_normal_(self.chan_embed, std=0.02)
        nn.init.trunc_normal_(self.patch_embed, std=0.02)
        self.blocks = nn.ModuleList(
            _Block(d, cfg.num_heads, cfg.mlp_ratio, cfg.dropout) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, p, d = x.shape
        x = x + self.chan_embed[:c, None, :] + self.patch_embed[None, :p, :]  # (B, C, P, D)
        x = x.reshape(b, c * p, d)  # channel-major tokens (B, C·P, D)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x).reshape(b, c, p, d)


def _task_head(d_in: int, d_out: int) -> nn.Sequential:
    """Linear-Tanh-Linear head (LaBraM): ``(..., d_in) -> (..., d_out)``."""
    return nn.Sequential(nn.Linear(d_in, d_in), nn.Tanh(), nn.Linear(d_in, d_out))


def _standardize(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Zero mean, unit std over the last dimension (population std, ``eps`` floor)."""
    mean = x.mean(dim=-1, keepdim=True)
    std = x.std(dim=-1, keepdim=True, unbiased=False)
    return (x - mean) / (std + eps)


def _init_weights(module: nn.Module) -> None:
    """Xavier-uniform linear weights, zero biases, unit LayerNorm.

    Xavier (gain ~1 per layer) rather than ViT's fixed std 0.02: at the small widths used for
    EEG tokenizers a fixed 0.02 std shrinks the code signal through the decoder so much that
    training sits on a plateau for hundreds of steps before the reconstruction depends on the
    codes.
    """
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


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
    in the data's amplitude unit (µV / 100 for the released models). ``C <= max_chans`` and
    ``P <= max_patches``; channel ``i`` of the input gets channel embedding ``i``, so keep the
    montage order fixed between training and use.

    References
    ----------
    .. [1] CodeBrain, arXiv 2506.09110, §3.2.
    """

    def __init__(self, config: TokenizerConfig | None = None) -> None:
        super().__init__()
        cfg = config if config is not None else TokenizerConfig()
        if not isinstance(cfg, TokenizerConfig):
            raise TypeError(f"config must be a TokenizerConfig, got {type(cfg).__name__}.")
        self.config = cfg
        d = cfg.embed_dim
        self.tfconv = TFConv(cfg.patch_size, cfg.conv_channels, d)
        self.encoder = _Transformer(cfg, cfg.depth)
        self.proj_t = _task_head(d, cfg.code_dim)
        self.proj_f = _task_head(d, cfg.code_dim)
        codebook_kw = dict(
            decay=cfg.ema_decay,
            kmeans_init=cfg.kmeans_init,
            threshold_ema_dead_code=cfg.dead_code_threshold,
        )
        self.codebook_t = Codebook(cfg.codebook_size_t, cfg.code_dim, **codebook_kw)
        self.codebook_f = Codebook(cfg.codebook_size_f, cfg.code_dim, **codebook_kw)
        self.decoder_in_t = nn.Linear(cfg.code_dim, d)
        self.decoder_in_f = nn.Linear(cfg.code_dim, d)
        self.decoder_t = _Transformer(cfg, cfg.decoder_depth)
        self.decoder_f = _Transformer(cfg, cfg.decoder_depth)
        self.head_time = _task_head(d, cfg.patch_size)
        self.head_amp = _task_head(d, cfg.n_freqs)
        self.head_phase = _task_head(d, 2 * cfg.n_freqs)
        for name, module in self.named_children():
            if not name.startswith("codebook"):
                module.apply(_init_weights)

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
        """``rfft(patches, norm="forward")`` in float32 (autocast disabled).

        Parameters
        ----------
        patches : torch.Tensor, shape (..., S)

        Returns
        -------
        torch.Tensor, complex64, shape (..., F)
        """
        with torch.autocast(device_type=patches.device.type, enabled=False):
            return torch.fft.rfft(patches.float(), dim=-1, norm="forward")

    def make_targets(self, patches: torch.Tensor) -> TokenizerTargets:
        """Reconstruction targets of ``patches`` (B, C, P, S); see the module notes."""
        spec = self.spectrum(patches)  # (B, C, P, F)
        time = patches.float()
        amp = spec.abs()
        phase = torch.angle(spec)
        if self.config.target_norm == "patch":
            time = _standardize(time)
            amp = _standardize(amp)
        return TokenizerTargets(time=time, amp=amp, phase=phase)

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
        return self._encode_patches(patches, self.spectrum(patches))

    def _encode_patches(self, patches: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
        b, c, p, s = patches.shape
        h = self.tfconv(patches.reshape(-1, s), spec.reshape(b * c * p, -1))  # (B·C·P, D)
        return self.encoder(h.reshape(b, c, p, -1))  # (B, C, P, D)

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
        h = self.encode(x)  # (B, C, P, D)
        return self.codebook_t.lookup(self.proj_t(h)), self.codebook_f.lookup(self.proj_f(h))

    # ------------------------------------------------------------------ decoder
    @torch.no_grad()
    def decode(
        self, ids_t: torch.Tensor, ids_f: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruct (normalised) waveform, amplitude and phase from token ids (no grad).

        Parameters
        ----------
        ids_t, ids_f : torch.Tensor of int64, shape (B, C, P)

        Returns
        -------
        recon_time : torch.Tensor, shape (B, C, P, S)
        recon_amp : torch.Tensor, shape (B, C, P, F)
        recon_phase : torch.Tensor, shape (B, C, P, F)
            Angles in ``(-π, π]``.
        """
        if ids_t.shape != ids_f.shape or ids_t.ndim != 3:
            raise ValueError(
                f"ids_t and ids_f must both be (B, C, P); got {tuple(ids_t.shape)} and "
                f"{tuple(ids_f.shape)}."
            )
        time, amp, phase_vec = self._decode_codes(
            self.codebook_t.decode(ids_t), self.codebook_f.decode(ids_f)
        )
        return time, amp, torch.atan2(phase_vec[..., 1], phase_vec[..., 0])

    def _decode_codes(
        self, q_t: torch.Tensor, q_f: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Codes (B, C, P, code_dim) → time (B, C, P, S), amp (B, C, P, F), phase vectors
        (B, C, P, F, 2)."""
        h_t = self.decoder_t(self.decoder_in_t(q_t))  # (B, C, P, D)
        h_f = self.decoder_f(self.decoder_in_f(q_f))  # (B, C, P, D)
        time = self.head_time(h_t)  # (B, C, P, S)
        amp = self.head_amp(h_f)  # (B, C, P, F)
        phase_vec = self.head_phase(h_f).unflatten(-1, (self.config.n_freqs, 2))  # (B,C,P,F,2)
        return time, amp, phase_vec

    # ------------------------------------------------------------------ forward
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
        spec = self.spectrum(patches)  # (B, C, P, F)
        targets = self.make_targets(patches)
        h = self._encode_patches(patches, spec)  # (B, C, P, D)
        vq_t = self.codebook_t(self.proj_t(h))  # quantized (B, C, P, code_dim)
        vq_f = self.codebook_f(self.proj_f(h))
        time, amp, phase_vec = self._decode_codes(vq_t.quantized, vq_f.quantized)
        with torch.autocast(device_type=patches.device.type, enabled=False):
            phase_target = torch.stack([targets.phase.cos(), targets.phase.sin()], dim=-1)
            losses = TokenizerLosses(
                time=F.mse_loss(time.float(), targets.time),
                amp=F.mse_loss(amp.float(), targets.amp),
                phase=F.mse_loss(phase_vec.float(), phase_target),
                commit_t=vq_t.commit_loss,
                commit_f=vq_f.commit_loss,
            )
            loss = (
                cfg.time_weight * losses.time
                + cfg.amp_weight * losses.amp
                + cfg.phase_weight * losses.phase
                + cfg.commitment_weight * (losses.commit_t + losses.commit_f)
            )
        return TokenizerOutput(
            ids_t=vq_t.indices,
            ids_f=vq_f.indices,
            recon_time=time,
            recon_amp=amp,
            recon_phase=torch.atan2(phase_vec[..., 1], phase_vec[..., 0]),
            targets=targets,
            loss=loss,
            losses=losses,
            counts_t=vq_t.counts,
            counts_f=vq_f.counts,
        )

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
