"""CodeBrain Stage 2: the EEGSSM backbone with its masked-token and classification heads.

Reference: Ma et al., "CodeBrain: Bridging Decoupled Tokenizer and Multi-Scale Architecture for
EEG Foundation Model", ICLR 2026, arXiv 2506.09110, §3.3. The state dict is interchangeable with braindecode's
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

from codebrain.layers.activations import activation_path, resolve_activation
from codebrain.layers.patch_embedding import PatchEmbedding
from codebrain.layers.residual import ResidualGroup, WNConv1d
from codebrain.models._codebrain_hub import CodeBrainHubMixin
from codebrain.models._paper import PAPER_URL
from codebrain.models._signal import EEGSignalParams
from codebrain.models.checkpoints import convert_upstream_state_dict, is_upstream_state_dict
from codebrain.utils.check import check_int, check_number, check_type, check_value

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


class CodeBrain(
    CodeBrainHubMixin,
    EEGSignalParams,
    nn.Module,
    library_name="codebrain",
    paper_url=PAPER_URL,
    tags=["eeg", "codebrain", "foundation-model", "eeg-ssm"],
    coders={type: (activation_path, resolve_activation)},
):
    r"""CodeBrain: Bridging Decoupled Tokenizer and Multi-Scale Architecture for EEG Foundation Model.

    :bdg-danger:`Foundation Model` :bdg-info:`Attention/Transformer`

    CodeBrain is a foundation model for EEG that pre-trains on large unlabelled corpora with a
    two-stage vector-quantised masking strategy, then fine-tunes on downstream BCI tasks. It
    segments EEG signals into fixed-size patches, embeds them with convolutional and spectral
    projections, and processes them through stacked residual blocks that combine a multi-scale
    structured global convolution (SGConv) with sliding-window self-attention.

    .. rubric:: Stage 2: EEGSSM backbone (this class)

    This class implements Stage 2 of CodeBrain, the EEGSSM backbone of Section 3.3 of [1]_.
    Stage 1, the TFDual-Tokenizer (:class:`codebrain.TFDualTokenizer`), turns each patch into
    a temporal and a frequency token ("the TFDual-Tokenizer, which decouples heterogeneous
    temporal and frequency EEG signals into discrete tokens to enhance discriminative power");
    the backbone is pre-trained to predict the token ids of masked patches (cross-entropy) with
    the two heads ``lm_head_t``/``lm_head_f``, and a 3-layer MLP on the flattened features
    (``final_layer``) classifies when fine-tuning.

    .. rubric:: Macro components

    - ``patch_embedding``: splits ``(batch, n_chans, n_times)`` into
      ``(batch, n_chans, n_patches, patch_size)`` patches, projects each patch with a
      temporal convolution stack, adds an FFT-based spectral embedding and a depth-wise
      convolutional positional encoding. Patches are flattened channel-major into
      ``L = n_chans * n_patches`` tokens.
    - ``residual_layer`` (``ResidualGroup``): ``num_res_layers`` blocks, each applying RMSNorm,
      an SGConv layer and sliding-window multi-head attention with a gated activation and
      separate residual/skip paths.
    - ``final_conv`` + ``norm``: per-patch features ``(batch, n_chans, n_patches, out_channels)``.
    - ``final_layer``: flattens the features and maps them to ``n_outputs`` classes.

    .. important::

       **Pre-trained weights.** The authors' released ``CodeBrain.pth`` (Hugging Face repo
       ``YjMajy/CodeBrain``) loads with ``CodeBrain.from_pretrained(folder)`` for a folder
       holding it, or with :meth:`load_state_dict` (keys are remapped). Folders saved by
       braindecode's ``CodeBrain`` load here and ours load there.

    Parameters
    ----------
    n_outputs : int
        Number of outputs of the model (classes for classification).
    n_chans : int
        Number of EEG channels.
    chs_info : list of dict
        Information about each EEG channel, as in ``mne.Info["chs"]``; gives ``n_chans``.
    n_times : int
        Number of time samples of the input window.
    input_window_seconds : float
        Length of the input window in seconds (with ``sfreq`` gives ``n_times``).
    sfreq : float
        Sampling frequency of the EEG recordings in Hz.
    patch_size : int
        Number of time samples per patch (200 = 1 s at 200 Hz). Samples after the last full
        patch are dropped.
    res_channels : int
        Width of the residual stream inside each residual block (even: the attention runs on
        ``2 * res_channels`` features over 4 heads).
    skip_channels : int
        Width of the skip-connection stream summed across blocks.
    out_channels : int
        Output channels of ``final_conv`` (the feature width) before the classification head.
    num_res_layers : int
        Number of stacked residual blocks.
    drop_prob : float
        Dropout rate in the SGConv and attention layers and in the classification head.
    s4_bidirectional : bool
        Whether the SGConv kernels are non-causal (the sequence is processed both ways).
    s4_layernorm : bool
        Whether to apply layer normalisation inside SGConv. ``False`` matches the released
        pretrained checkpoint.
    s4_lmax : int
        Design length of the SGConv kernel in tokens (570 = 19 channels x 30 patches); sets
        the number of kernel scales.
    s4_d_state : int
        State dimension of the SSM; kept for signature compatibility with braindecode (SGConv
        has no state dimension, so it has no effect).
    conv_out_chans : int
        Number of output channels of the temporal patch-projection convolutions.
    conv_groups : int
        Number of groups of the ``GroupNorm`` in the patch projection (divides
        ``conv_out_chans``).
    proj_kernel_size : int
        Kernel size of the first (strided) temporal convolution of the patch projection.
    proj_padding : int
        Padding of that first temporal convolution.
    proj_refine_kernel : int
        Kernel size of the two refining temporal convolutions that follow it.
    pos_kernel : tuple of int
        ``(channel, patch)`` kernel of the depth-wise 2-D convolution that encodes positions.
    spectral_dropout : float
        Dropout applied after the spectral (FFT magnitude) projection of each patch.
    mlp_hidden_multiplier : int
        The classification MLP's hidden width is ``mlp_hidden_multiplier * out_channels``.
    swa_window_size : int
        Odd sliding-window attention width in tokens (1 = each token attends to itself, as in
        the released model).
    codebook_size_t : int
        Size of the temporal codebook: output size of the temporal token head ``lm_head_t``.
    codebook_size_f : int
        Size of the frequency codebook: output size of the frequency token head ``lm_head_f``.
    pretrain_mode : bool
        If True, ``forward`` returns the temporal and frequency token logits
        ``(logits_t, logits_f)`` (masked-token pretraining) instead of class logits.
    activation : type of nn.Module
        Non-linear activation class used in ``init_conv`` and ``final_conv`` (one of
        :data:`codebrain.layers.activations.ALLOWED_ACTIVATIONS`, or its import path).

    Raises
    ------
    ValueError
        If some input signal-related parameters are not specified and can not be inferred,
        values contradict each other, a hyper-parameter is invalid (e.g. an even
        ``swa_window_size``), or the model would exceed :data:`MAX_PARAMETERS` parameters.
    TypeError
        A parameter has the wrong type (e.g. ``n_chans="nineteen"``).

    Notes
    -----
    If some input signal-related parameters are not specified, there will be an attempt to
    infer them from the other parameters.

    Differences from braindecode's ``CodeBrain``: the state dict, the outputs for the same
    arguments and the saved folders are interchangeable, but this class is not a subclass of
    braindecode's ``EEGModuleMixin`` (so ``isinstance(model, EEGModuleMixin)`` is False and
    braindecode's model registry does not list it). :func:`torch.jit.script` is refused with
    a clear error (``forward`` returns a tensor, a dict or a tuple depending on its
    arguments); use :func:`torch.export.export` or :func:`torch.compile`.

    .. rubric:: Hugging Face Hub integration

    ``save_pretrained``, ``from_pretrained`` and ``push_to_hub`` come from
    :class:`huggingface_hub.PyTorchModelHubMixin`. A saved folder holds ``model.safetensors``,
    ``config.json`` (every constructor argument, written last and atomically) and a model
    card ``README.md`` (architecture, configuration, citation).

    **Pushing a model to the Hub:**

    .. code-block:: python

        from codebrain import CodeBrain

        model = CodeBrain(n_chans=19, n_outputs=4, n_times=6000)
        # ... training code ...
        model.push_to_hub(repo_id="username/my-codebrain-model", commit_message="Initial upload")

    **Loading a model from the Hub or a folder:**

    .. code-block:: python

        model = CodeBrain.from_pretrained("username/my-codebrain-model")
        # Another number of outputs: the backbone is kept, the head is rebuilt
        model = CodeBrain.from_pretrained("username/my-codebrain-model", n_outputs=4)

    **Extracting features and replacing the head:**

    .. code-block:: python

        import torch

        x = torch.randn(1, model.n_chans, model.n_times)
        features = model(x, return_features=True)["features"]  # (1, n_chans, n_patches, D)
        model.reset_head(n_outputs=10)

    **Saving and restoring the configuration:**

    .. code-block:: python

        config = model.get_config()  # all __init__ arguments, JSON-serialisable
        model2 = CodeBrain.from_config(config)  # same architecture, fresh weights

    References
    ----------
    .. [1] Ma, J., Wu, F., Lin, Q., Xing, Y., Liu, C., Jia, Z., Feng, M. (2026). CodeBrain:
       Bridging Decoupled Tokenizer and Multi-Scale Architecture for EEG Foundation Model.
       ICLR 2026. https://arxiv.org/abs/2506.09110
    """

    _card_title = "CodeBrain (EEGSSM backbone)"
    _card_description = """
CodeBrain is an EEG foundation model (Ma et al., ICLR 2026). This checkpoint is its Stage 2,
the EEGSSM backbone: EEG windows `(batch, n_chans, n_times)` are cut into patches of
`patch_size` samples, embedded by a temporal convolution stack plus a spectral (FFT) projection
and a depth-wise convolutional positional encoding, flattened channel-major into
`n_chans * n_patches` tokens, and processed by `num_res_layers` residual blocks that combine a
multi-scale structured global convolution (SGConv) with sliding-window attention. Two linear
heads predict the temporal and frequency token ids of the TFDual-Tokenizer (masked-token
pretraining); a 3-layer MLP on the flattened per-patch features classifies (fine-tuning).
The folder layout is braindecode's: it also loads with `braindecode.models.CodeBrain`."""

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
            check_number(name, p, minimum=0)
            check_value(name, p, p < 1, "in [0, 1)")
        check_type("swa_window_size", swa_window_size, int)
        check_value(
            "swa_window_size",
            swa_window_size,
            swa_window_size >= 1 and swa_window_size % 2 == 1,
            "a positive odd integer (1, 3, 5, ...)",
        )
        check_type("pos_kernel", pos_kernel, (tuple, list), "a (channel, patch) pair")
        check_value("pos_kernel", pos_kernel, len(pos_kernel) == 2, "a (channel, patch) pair")
        for k in pos_kernel:
            check_int("pos_kernel", k)
        for name, v in (
            ("proj_kernel_size", proj_kernel_size),
            ("proj_refine_kernel", proj_refine_kernel),
        ):
            check_int(name, v)
        check_int("proj_padding", proj_padding, minimum=0)
        if self.n_times < patch_size:
            raise ValueError(
                f"n_times={self.n_times} is shorter than one patch (patch_size={patch_size})."
            )
        check_value(
            "res_channels",
            res_channels,
            res_channels % 2 == 0,
            "even (the attention runs on 2 * res_channels features over 4 heads)",
        )
        n_params = _estimate_parameters(
            n_chans=self.n_chans,
            n_times=self.n_times,
            n_outputs=self.n_outputs,
            patch_size=patch_size,
            res_channels=res_channels,
            skip_channels=skip_channels,
            out_channels=out_channels,
            num_res_layers=num_res_layers,
            conv_out_chans=conv_out_chans,
            mlp_hidden_multiplier=mlp_hidden_multiplier,
            codebook_size_t=codebook_size_t,
            codebook_size_f=codebook_size_f,
            kernel_taps=pos_kernel[0] * pos_kernel[1] + 3 * proj_kernel_size + proj_refine_kernel,
        )
        if n_params > MAX_PARAMETERS:
            raise ValueError(
                f"This configuration would have about {n_params:.3g} parameters, more than "
                f"MAX_PARAMETERS={MAX_PARAMETERS:.0e} (n_chans={self.n_chans}, "
                f"n_times={self.n_times}, res_channels={res_channels}, "
                f"out_channels={out_channels}, num_res_layers={num_res_layers}); check these "
                "values (the released model has 15 M)."
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
        check_type(
            "inputs", inputs, torch.Tensor, "a torch.Tensor of shape (batch, n_chans, n_times)"
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
            check_type("mask", mask, torch.Tensor, "a torch.Tensor")
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
    ):
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

    def __prepare_scriptable__(self) -> CodeBrain:
        """Refuse :func:`torch.jit.script` with a message that says what to use instead."""
        raise RuntimeError(
            "CodeBrain cannot be compiled with torch.jit.script: its forward returns a tensor, "
            "a dict or a tuple depending on its arguments and validates inputs in Python, "
            "which TorchScript (deprecated in PyTorch) does not support. Use "
            "torch.export.export(model.eval(), (x,)) or torch.compile(model) instead "
            "(codebrain.export.export_onnx writes ONNX)."
        )


class _PlainConv1d(nn.Module):
    """A 1x1 ``Conv1d`` held as ``.conv`` (checkpoint key layout of ``final_conv.2``)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, L) -> (B, C_out, L)``."""
        return self.conv(x)


#: Largest model the constructor builds (4e9 bytes of float32 weights). The released model
#: has 15 M parameters; a config asking for more than this is taken for a mistake (e.g.
#: ``n_times=1e12`` or ``res_channels=1e9``) and refused before anything is allocated.
MAX_PARAMETERS = 1_000_000_000


def _check_hparams(**values: int) -> None:
    for name, v in values.items():
        check_int(name, v)


def _estimate_parameters(
    *,
    n_chans: int,
    n_times: int,
    n_outputs: int,
    patch_size: int,
    res_channels: int,
    skip_channels: int,
    out_channels: int,
    num_res_layers: int,
    conv_out_chans: int,
    mlp_hidden_multiplier: int,
    codebook_size_t: int,
    codebook_size_f: int,
    kernel_taps: int,
) -> int:
    """Leading terms of the parameter count (exact to within the small per-layer extras)."""
    r, s, d = res_channels, skip_channels, out_channels
    hidden = mlp_hidden_multiplier * d
    emb = conv_out_chans * (patch_size // conv_out_chans + 1) + patch_size
    per_block = 4 * (2 * r) ** 2 + 2 * r * r + r * s + 8 * r  # attention, gate/conv, skip
    return (
        emb * r
        + (conv_out_chans**2 + emb) * kernel_taps
        + num_res_layers * per_block
        + s * s
        + s * d
        + (codebook_size_t + codebook_size_f) * d
        + n_chans * (n_times // patch_size) * d * hidden
        + hidden * d
        + d * n_outputs
    )
