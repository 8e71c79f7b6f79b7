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
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from codebrain.layers.contrastive import nt_xent
from codebrain.layers.quantize import Codebook
from codebrain.layers.tfconv import TFConv
from codebrain.layers.transformer import PatchTransformer
from codebrain.models._hub import CONFIG_NAME, WEIGHTS_NAME, HubMixin
from codebrain.models._paper import CARD_CITATION, PAPER_URL
from codebrain.models.checkpoints import (
    UPSTREAM_TOKENIZER_FILE,
    convert_upstream_tokenizer_state_dict,
    is_upstream_tokenizer_state_dict,
    load_checkpoint_file,
)
from codebrain.models.tokenizer_config import TokenizerConfig
from codebrain.models.tokenizer_outputs import TokenizerLosses, TokenizerOutput, TokenizerTargets
from codebrain.utils.check import check_type

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


# ------------------------------------------------------------------------------ helpers
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
        check_type("config", cfg, TokenizerConfig)
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
        check_type("x", x, torch.Tensor, "a torch.Tensor")
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}.")
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
    # through codebrain.models._hub.HubMixin (same folder convention as CodeBrain); the hooks
    # below say what is the tokenizer's own.
    _card_title = "CodeBrain TFDual-Tokenizer"
    _card_description = """
The TFDual-Tokenizer is Stage 1 of CodeBrain (Ma et al., ICLR 2026): it turns each EEG patch
into two discrete tokens, one from a temporal and one from a frequency codebook, by encoding
patches with a transformer, quantising the temporal and frequency projections against two
codebooks and reconstructing the signal, its amplitude and phase spectra. The token ids are the
targets of the EEGSSM backbone's masked-token pretraining."""
    _card_citation = CARD_CITATION

    def get_config(self) -> dict[str, Any]:
        """The configuration saved in ``config.json`` (``model_type`` + the config fields)."""
        return {"model_type": _MODEL_TYPE, **self.config.to_dict()}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TFDualTokenizer:
        """Build a tokenizer (fresh weights) from :meth:`get_config` output or a ``config.json``.

        Raises
        ------
        TypeError
            ``config`` is not a mapping, or a field has the wrong type.
        ValueError
            ``model_type`` names another model, or a field is unknown or out of range.
        """
        check_type("config", config, Mapping, "a dict")
        fields = dict(config)
        model_type = fields.pop("model_type", _MODEL_TYPE)
        if model_type != _MODEL_TYPE:
            raise ValueError(f"the config describes a {model_type!r} model, not a {_MODEL_TYPE!r}.")
        for key in cls._format_versions():
            fields.pop(key, None)
        return cls(TokenizerConfig.from_dict(fields))

    @classmethod
    def _weight_names(cls) -> tuple[str, ...]:
        return (WEIGHTS_NAME, UPSTREAM_TOKENIZER_FILE)

    @classmethod
    def _from_weights_only(
        cls,
        weights_path: Path,
        model_kwargs: dict[str, Any],
        *,
        map_location: str | torch.device,
        strict: bool,
    ) -> TFDualTokenizer:
        """A folder without ``config.json``.

        The authors' ``CodeBrain_Tokenizer.pth`` loads through :meth:`from_upstream`
        (``model_kwargs`` are config fields); anything else is an interrupted save.
        """
        if weights_path.name != UPSTREAM_TOKENIZER_FILE:
            raise FileNotFoundError(
                f"{weights_path.parent} has no {CONFIG_NAME}; expected a folder written by "
                "TFDualTokenizer.save_pretrained (an interrupted save leaves only the weights)."
            )
        return cls.from_upstream(weights_path, map_location=map_location, **model_kwargs)


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
