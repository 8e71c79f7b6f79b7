"""CodeBrain Stage 2: the EEGSSM backbone with its masked-token and classification heads.

Reference: Ding et al., "CodeBrain: Scalable Code EEG Pre-Training for Unified Downstream BCI
Tasks", arXiv 2506.09110, §3.3. The state dict is interchangeable with braindecode's
``CodeBrain`` (same keys, shapes and outputs for the same arguments) and the authors'
``CodeBrain.pth`` loads through :meth:`CodeBrain.load_state_dict`.

Shape legend: B = batch, C = EEG channels, T = samples, P = patches per channel
(``T // patch_size``), S = samples per patch, D = embedding width, L = C·P tokens,
K = codebook size.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from codebrain.layers.activations import resolve_activation
from codebrain.layers.patch_embedding import PatchEmbedding
from codebrain.layers.residual import ResidualGroup, WNConv1d
from codebrain.models._hub import HubMixin
from codebrain.models._signal import EEGSignalParams
from codebrain.models.checkpoints import convert_upstream_state_dict, is_upstream_state_dict
from codebrain.utils.check import check_int

__all__ = ["CodeBrain"]

logger = logging.getLogger(__name__)

# Inputs around this magnitude overflow float32 inside the model (squares in the norms).
_OVERFLOW_HINT = 1e19


def _tracing() -> bool:
    """True while torch.compile / torch.export / torch.jit trace the model."""
    return bool(
        torch.compiler.is_compiling()
        or torch.compiler.is_exporting()
        or torch.jit.is_tracing()
        or torch.jit.is_scripting()
    )


class CodeBrain(HubMixin, EEGSignalParams, nn.Module):
    r"""CodeBrain: Scalable Code EEG Pre-Training for Unified Downstream BCI Tasks.

    The EEGSSM backbone (Stage 2): patches of ``patch_size`` samples are embedded by a
    temporal conv stack plus a spectral projection and a convolutional positional encoding,
    flattened channel-major into ``L = n_chans * n_patches`` tokens, processed by
    ``num_res_layers`` residual blocks that combine a structured global convolution (SGConv)
    with sliding-window attention, and normalised into per-patch features. Two heads predict
    the temporal and frequency token ids of the TFDual-Tokenizer (pretraining); a 3-layer MLP
    on the flattened features classifies (fine-tuning).

    Parameters
    ----------
    n_outputs : int
        Number of outputs of the classification head.
    n_chans : int
        Number of EEG channels.
    chs_info : list of dict
        Channel descriptions (``mne.Info["chs"]``); gives ``n_chans``.
    n_times : int
        Samples per input window.
    input_window_seconds : float
        Window length in seconds (with ``sfreq`` gives ``n_times``).
    sfreq : float
        Sampling frequency in Hz.
    patch_size : int
        Samples per patch (200 = 1 s at 200 Hz). Samples after the last full patch are dropped.
    res_channels : int
        Width of the residual stream.
    skip_channels : int
        Width of the skip stream summed across blocks.
    out_channels : int
        Width of the output features.
    num_res_layers : int
        Number of residual blocks.
    drop_prob : float
        Dropout in SGConv, attention and the classification head.
    s4_bidirectional : bool
        Non-causal (bidirectional) SGConv kernels.
    s4_layernorm : bool
        LayerNorm inside SGConv (False for the released checkpoint).
    s4_lmax : int
        Design length of the SGConv kernel (570 = 19 channels x 30 patches).
    s4_d_state : int
        Kept for signature compatibility with braindecode; SGConv has no state dimension.
    conv_out_chans : int
        Channels of the temporal patch convs (also the stride of the first one).
    conv_groups : int
        GroupNorm groups in the temporal patch convs.
    proj_kernel_size : int
        Kernel of the first (strided) temporal conv.
    proj_padding : int
        Padding of the first temporal conv.
    proj_refine_kernel : int
        Kernel of the two refining temporal convs.
    pos_kernel : tuple of int
        (channel, patch) kernel of the depth-wise positional conv.
    spectral_dropout : float
        Dropout after the spectral projection.
    mlp_hidden_multiplier : int
        Hidden width of the classification MLP is ``mlp_hidden_multiplier * out_channels``.
    swa_window_size : int
        Odd attention window in tokens (1 = each token attends to itself).
    codebook_size_t : int
        Temporal codebook size (output of ``lm_head_t``).
    codebook_size_f : int
        Frequency codebook size (output of ``lm_head_f``).
    pretrain_mode : bool
        ``forward`` returns ``(logits_t, logits_f)`` instead of class logits.
    activation : type of nn.Module
        Activation class used in ``init_conv`` and ``final_conv``.

    Raises
    ------
    ValueError
        A signal parameter cannot be inferred, values contradict each other, or a
        hyper-parameter is invalid (e.g. an even ``swa_window_size``).

    References
    ----------
    .. [1] Ding, Y., Chen, X., Li, Y., Yan, R., Wang, T., Wu, L. (2025). CodeBrain: Scalable
       Code EEG Pre-Training for Unified Downstream BCI Tasks. arXiv:2506.09110.
    """

    def __init__(
        self,
        n_outputs: int | None = None,
        n_chans: int | None = None,
        chs_info: Sequence[dict] | None = None,
        n_times: int | None = None,
        input_window_seconds: float | None = None,
        sfreq: float | None = None,
        patch_size: int = 200,
        res_channels: int = 200,
        skip_channels: int = 200,
        out_channels: int = 200,
        num_res_layers: int = 8,
        drop_prob: float = 0.1,
        s4_bidirectional: bool = True,
        s4_layernorm: bool = False,
        s4_lmax: int = 570,
        s4_d_state: int = 64,
        conv_out_chans: int = 25,
        conv_groups: int = 5,
        proj_kernel_size: int = 49,
        proj_padding: int = 24,
        proj_refine_kernel: int = 3,
        pos_kernel: tuple[int, int] = (19, 7),
        spectral_dropout: float = 0.1,
        mlp_hidden_multiplier: int = 4,
        swa_window_size: int = 1,
        codebook_size_t: int = 4096,
        codebook_size_f: int = 4096,
        pretrain_mode: bool = False,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        nn.Module.__init__(self)
        self._init_signal_params(n_outputs, n_chans, chs_info, n_times, input_window_seconds, sfreq)
        activation = resolve_activation(activation)
        _check_hparams(
            patch_size=patch_size,
            res_channels=res_channels,
            skip_channels=skip_channels,
            out_channels=out_channels,
            num_res_layers=num_res_layers,
            s4_lmax=s4_lmax,
            conv_out_chans=conv_out_chans,
            conv_groups=conv_groups,
            mlp_hidden_multiplier=mlp_hidden_multiplier,
            codebook_size_t=codebook_size_t,
            codebook_size_f=codebook_size_f,
        )
        for name, p in (("drop_prob", drop_prob), ("spectral_dropout", spectral_dropout)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {p}.")
        if isinstance(swa_window_size, bool) or not isinstance(swa_window_size, int):
            raise TypeError(
                f"swa_window_size must be an int, got {type(swa_window_size).__name__}."
            )
        if swa_window_size < 1 or swa_window_size % 2 == 0:
            raise ValueError(
                f"swa_window_size must be a positive odd integer (1, 3, 5, ...), got {swa_window_size}."
            )
        if len(tuple(pos_kernel)) != 2:
            raise ValueError(f"pos_kernel must be a (channel, patch) pair, got {pos_kernel!r}.")
        if self.n_times < patch_size:
            raise ValueError(
                f"n_times={self.n_times} is shorter than one patch (patch_size={patch_size})."
            )

        self._hparams: dict[str, Any] = dict(
            patch_size=patch_size,
            res_channels=res_channels,
            skip_channels=skip_channels,
            out_channels=out_channels,
            num_res_layers=num_res_layers,
            drop_prob=drop_prob,
            s4_bidirectional=s4_bidirectional,
            s4_layernorm=s4_layernorm,
            s4_lmax=s4_lmax,
            s4_d_state=s4_d_state,
            conv_out_chans=conv_out_chans,
            conv_groups=conv_groups,
            proj_kernel_size=proj_kernel_size,
            proj_padding=proj_padding,
            proj_refine_kernel=proj_refine_kernel,
            pos_kernel=tuple(pos_kernel),
            spectral_dropout=spectral_dropout,
            mlp_hidden_multiplier=mlp_hidden_multiplier,
            swa_window_size=swa_window_size,
            codebook_size_t=codebook_size_t,
            codebook_size_f=codebook_size_f,
            pretrain_mode=pretrain_mode,
            activation=activation,
        )
        self.patch_size = patch_size
        self.out_channels = out_channels
        self.drop_prob = drop_prob
        self.mlp_hidden_multiplier = mlp_hidden_multiplier
        self.activation = activation
        self.pretrain_mode = pretrain_mode
        self._warned_trim = False

        self.patch_embedding = PatchEmbedding(
            patch_size=patch_size,
            conv_out_chans=conv_out_chans,
            conv_groups=conv_groups,
            proj_kernel_size=proj_kernel_size,
            proj_padding=proj_padding,
            proj_refine_kernel=proj_refine_kernel,
            pos_kernel=tuple(pos_kernel),
            spectral_dropout=spectral_dropout,
        )
        emb_dim = self.patch_embedding.emb_dim
        self.init_conv = nn.Sequential(WNConv1d(emb_dim, res_channels, 1), activation())
        self.residual_layer = ResidualGroup(
            num_res_layers,
            res_channels=res_channels,
            skip_channels=skip_channels,
            s4_lmax=s4_lmax,
            dropout=drop_prob,
            bidirectional=s4_bidirectional,
            layer_norm=s4_layernorm,
            swa_window_size=swa_window_size,
        )
        self.final_conv = nn.Sequential(
            WNConv1d(skip_channels, skip_channels, 1),
            activation(),
            _PlainConv1d(skip_channels, out_channels),
        )
        self.norm = nn.LayerNorm(out_channels)
        self.lm_head_t = nn.Linear(out_channels, codebook_size_t, bias=False)
        self.lm_head_f = nn.Linear(out_channels, codebook_size_f, bias=False)
        self.final_layer = self._build_head(self.n_outputs)

    # ------------------------------------------------------------------ heads
    @property
    def n_patches(self) -> int:
        """Patches per channel the classification head expects (``n_times // patch_size``)."""
        return self.n_times // self.patch_size

    def _build_head(self, n_outputs: int) -> nn.Sequential:
        d, hidden = self.out_channels, self.mlp_hidden_multiplier * self.out_channels
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(self.n_chans * self.n_patches * d, hidden),
            nn.ELU(),
            nn.Dropout(self.drop_prob),
            nn.Linear(hidden, d),
            nn.ELU(),
            nn.Dropout(self.drop_prob),
            nn.Linear(d, n_outputs),
        )

    def reset_head(self, n_outputs: int) -> None:
        """Replace the output layer of the classification head for ``n_outputs`` classes.

        The two hidden layers of the MLP are kept; the last ``Linear`` is freshly initialised
        (on the model's device and dtype).
        """
        check_int("n_outputs", n_outputs)
        old = self.final_layer[-1]
        new = nn.Linear(old.in_features, n_outputs).to(
            device=old.weight.device, dtype=old.weight.dtype
        )
        self.final_layer[-1] = new
        self._n_outputs = n_outputs

    # ---------------------------------------------------------------- forward
    def forward(
        self,
        inputs: torch.Tensor,
        mask: torch.Tensor | None = None,
        return_features: bool = False,
    ) -> torch.Tensor | dict[str, torch.Tensor | None] | tuple[torch.Tensor, torch.Tensor]:
        """Run the model (braindecode-compatible entry point).

        Parameters
        ----------
        inputs : torch.Tensor, shape (B, C, T)
            EEG windows (units of 100 µV for the released weights).
        mask : torch.Tensor of bool or {0, 1}, shape (B, C, P), optional
            Patches to replace by the mask encoding (pretraining).
        return_features : bool
            Return ``{"features": (B, C, P, D), "cls_token": None}``.

        Returns
        -------
        torch.Tensor or dict or tuple
            Class logits ``(B, n_outputs)`` by default; the features dict with
            ``return_features``; with ``pretrain_mode``, ``(logits_t, logits_f)`` of shape
            ``(n_masked, K)`` for the masked positions when ``mask`` is given, else
            ``(B, C, P, K)``. Prefer :meth:`encode`, :meth:`classify` and
            :meth:`token_logits`, which have one return type each.
        """
        x = self.encode(inputs, mask=mask)
        if return_features:
            return {"features": x, "cls_token": None}
        if self.pretrain_mode:
            if mask is not None:
                x = x[mask.bool()]
            return self.lm_head_t(x), self.lm_head_f(x)
        return self._classify_features(x)

    def encode(self, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Per-patch features.

        Parameters
        ----------
        inputs : torch.Tensor, shape (B, C, T)
        mask : torch.Tensor, shape (B, C, P), optional

        Returns
        -------
        torch.Tensor, shape (B, C, P, D)
        """
        patches, mask = self._prepare(inputs, mask)
        b, c, p, _ = patches.shape
        x = self.patch_embedding(patches, mask=mask)  # (B, C, P, D)
        x = x.permute(0, 3, 1, 2).reshape(b, -1, c * p)  # (B, D, L) channel-major tokens
        x = self.init_conv(x)  # (B, R, L)
        x = self.residual_layer(x)  # (B, S, L)
        x = self.final_conv(x)  # (B, D_out, L)
        x = x.view(b, -1, c, p).permute(0, 2, 3, 1)  # (B, C, P, D_out)
        return self._check_output(self.norm(x), inputs, "features")

    def classify(self, inputs: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, C, T) -> (B, n_outputs)``."""
        return self._classify_features(self.encode(inputs))

    def token_logits(
        self, inputs: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Temporal and frequency token logits at every position.

        Parameters
        ----------
        inputs : torch.Tensor, shape (B, C, T)
        mask : torch.Tensor, shape (B, C, P), optional
            Masked patches are replaced by the mask encoding before encoding.

        Returns
        -------
        logits_t : torch.Tensor, shape (B, C, P, K_t)
        logits_f : torch.Tensor, shape (B, C, P, K_f)
        """
        x = self.encode(inputs, mask=mask)
        return (
            self._check_output(self.lm_head_t(x), inputs, "temporal token logits"),
            self._check_output(self.lm_head_f(x), inputs, "frequency token logits"),
        )

    def _check_output(self, out: torch.Tensor, inputs: torch.Tensor, what: str) -> torch.Tensor:
        """In eval mode, refuse NaN/Inf outputs of finite inputs and say why they appeared.

        One ``isfinite`` reduction over ``out``; the diagnosis (input magnitude, non-finite
        weights) runs only on failure. Skipped in training mode (the training loops check
        their losses) and while compiling or exporting (a data-dependent branch).
        """
        if self.training or _tracing() or bool(torch.isfinite(out).all()):
            return out
        bad = [n for n, t in self.named_parameters() if not bool(torch.isfinite(t).all())]
        if bad:
            shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
            raise ValueError(
                f"CodeBrain produced NaN/Inf {what}: its weights hold NaN/Inf ({shown}); the "
                "checkpoint is corrupt or its training diverged."
            )
        peak = float(inputs.detach().abs().amax())
        raise ValueError(
            f"CodeBrain produced NaN/Inf {what} (float overflow) from finite inputs with "
            f"largest |value| {peak:.3g}; inputs are expected in units of 100 µV (the released "
            f"weights see |x| of order 1-100; float32 overflows beyond about "
            f"{_OVERFLOW_HINT:.0e}): rescale the data."
        )

    def _classify_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, P, D) -> (B, n_outputs)`` with a shape check the head can act on."""
        if x.shape[2] != self.n_patches:
            raise ValueError(
                f"The classification head was built for {self.n_patches} patches per channel "
                f"(n_times={self.n_times}, patch_size={self.patch_size}) but the input has "
                f"{x.shape[2]}; use encode()/return_features for other lengths, or build the "
                f"model with the matching n_times."
            )
        return self._check_output(self.final_layer(x), x, "class logits")

    def _prepare(
        self, inputs: torch.Tensor, mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Validate inputs and cut them into patches ``(B, C, P, S)``; mask to bool."""
        if not isinstance(inputs, torch.Tensor):
            raise TypeError(
                f"inputs must be a torch.Tensor of shape (batch, n_chans, n_times), got {type(inputs).__name__}."
            )
        if inputs.ndim != 3:
            raise ValueError(
                f"inputs must have shape (batch, n_chans, n_times); got {inputs.ndim} dimensions "
                f"{tuple(inputs.shape)}."
            )
        if not inputs.is_floating_point():
            raise TypeError(f"inputs must be a floating-point tensor, got dtype {inputs.dtype}.")
        b, c, t = inputs.shape
        if b == 0:
            raise ValueError(
                f"inputs have batch size 0 (shape {tuple(inputs.shape)}); give at least one window."
            )
        weight_dtype = self.patch_embedding.mask_encoding.dtype
        if inputs.dtype != weight_dtype and not torch.is_autocast_enabled(inputs.device.type):
            raise TypeError(
                f"inputs are {inputs.dtype} but the model's weights are {weight_dtype}; cast "
                f"the inputs (x.to({weight_dtype})) or the model (model.to({inputs.dtype}))."
            )
        if c != self.n_chans:
            raise ValueError(
                f"inputs have {c} channels but the model was built for n_chans={self.n_chans}."
            )
        s = self.patch_size
        if t < s:
            raise ValueError(f"inputs have {t} samples, fewer than one patch (patch_size={s}).")
        p = t // s
        compiling = torch.compiler.is_compiling()
        if not compiling:
            if not bool(torch.isfinite(inputs).all()):
                raise ValueError("inputs contain NaN or Inf values.")
            if t % s and not self._warned_trim:
                logger.warning(
                    "n_times=%d is not a multiple of patch_size=%d: the last %d samples are dropped.",
                    t,
                    s,
                    t - p * s,
                )
                self._warned_trim = True
        patches = inputs[:, :, : p * s].reshape(b, c, p, s)
        if mask is not None:
            if not isinstance(mask, torch.Tensor):
                raise TypeError(f"mask must be a torch.Tensor, got {type(mask).__name__}.")
            if tuple(mask.shape) != (b, c, p):
                raise ValueError(
                    f"mask must have shape (batch, n_chans, n_patches) = {(b, c, p)}, got {tuple(mask.shape)}."
                )
            if mask.dtype != torch.bool:
                if not compiling and not bool(((mask == 0) | (mask == 1)).all()):
                    raise ValueError("mask must be boolean or contain only 0 and 1.")
                mask = mask == 1
        return patches, mask

    # ----------------------------------------------------------- checkpoints
    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ):  # noqa: ANN201 - returns torch's _IncompatibleKeys
        """Load weights; checkpoints of the authors' release are remapped first.

        See :func:`codebrain.convert_upstream_state_dict` for the rules.
        """
        if is_upstream_state_dict(state_dict):
            state_dict, report = convert_upstream_state_dict(state_dict)
            logger.info("Remapped %d upstream checkpoint keys.", len(report.renamed))
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def get_output_shape(self) -> tuple[int, ...]:
        """Output shape for a batch of one (runs a forward under ``torch.inference_mode``)."""
        p = next(self.parameters())
        with torch.inference_mode():
            out = self(torch.zeros(self.input_shape, dtype=p.dtype, device=p.device))
        if isinstance(out, tuple):
            return tuple(out[0].shape)
        return tuple(out.shape)


class _PlainConv1d(nn.Module):
    """A 1x1 ``Conv1d`` held as ``.conv`` (checkpoint key layout of ``final_conv.2``)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, L) -> (B, C_out, L)``."""
        return self.conv(x)


def _check_hparams(**values: int) -> None:
    for name, v in values.items():
        check_int(name, v)
