"""Structured global convolution (SGConv) with an FFT long convolution.

CodeBrain (arXiv 2506.09110, §3.3) uses SGConv (Li et al., "What Makes Convolutional Models
Great on Long Sequence Modeling?", ICLR 2023) for sparse long-range dependencies. The kernel is
a concatenation of ``n_scales`` sub-kernels of ``kernel_dim`` taps; sub-kernel ``i`` is
upsampled by ``2**max(i-1, 0)`` (linear interpolation) and scaled by a decay
``multiplier**(n_scales - i - 1)``; the concatenated kernel is divided by a fixed
normalisation (its L2 norm at initialisation, ``kernel_norm``) so the convolution keeps the
input scale.

Shape legend: B = batch, H = width (``d_model``), L = sequence length, c = ``channels``.

Fast path vs reference
----------------------
``SGConv.forward`` convolves with one real FFT of a smooth size ``n >= 2L - 1`` (the
bidirectional kernel wraps its anti-causal half to the end of the circular buffer). The skip
term ``D * x`` is a lag-0 tap, so it is added to the kernel spectrum (a constant over
frequency) instead of as two extra passes over the ``(B, c, H, L)`` output. The kernel spectrum
is cached in eval mode (keyed on parameter versions and storage), and the output projection is
one batched GEMM in the channel-major layout (``bmm`` with the weight broadcast over the batch:
no transposed copies of the ``(B, cH, L)`` activations). FFTs always run in float32 (float64
for float64 modules), with autocast disabled, whatever the module or autocast dtype.
``sgconv_reference`` is the direct (non-FFT) convolution of the same operator, kept for tests.

Mixed precision
---------------
Under ``torch.autocast`` (CPU or CUDA, bf16 or fp16) the FFT convolution runs in an
autocast-disabled float32 region and only its output is cast back to the activation dtype, so
the layer adds one rounding of its output (relative error <= 2^-8 per element for bf16). For the
whole CodeBrain model, bf16 autocast or a ``.to(torch.bfloat16)`` model stays within **2 %** of
the float32 output scale (``max |out_bf16 - out_f32| / max |out_f32|``; measured 0.3-0.9 % on
tiny configurations and 0.8-1.2 % on the default 19 x 6000 configuration, tested in
``tests/models/test_precision.py``). Float64 modules compute their FFTs in float64.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from codebrain.layers._cache import ParamCache, eval_cache_enabled, param_key
from codebrain.utils.check import check_int

__all__ = ["SGConv", "fast_fft_size", "sgconv_reference", "channel_linear", "param_key"]


def channel_linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """``weight @ x + bias`` over the channel axis of channel-major activations.

    Parameters
    ----------
    x : torch.Tensor, shape (B, C_in, L)
    weight : torch.Tensor, shape (C_out, C_in)
    bias : torch.Tensor, shape (C_out,), optional

    Returns
    -------
    torch.Tensor, shape (B, C_out, L)

    Notes
    -----
    ``torch.matmul(weight, x)`` folds the batch into the GEMM by transposing ``x`` and the result
    (two full copies); a ``bmm`` against the weight expanded over the batch (stride 0) reads
    ``x`` in place, and ``baddbmm`` adds the bias inside the GEMM.
    """
    b = x.shape[0]
    w = weight.unsqueeze(0).expand(b, *weight.shape)
    if bias is None:
        return torch.bmm(w, x)
    return torch.baddbmm(bias.unsqueeze(-1).unsqueeze(0), w, x)


def fast_fft_size(n: int) -> int:
    """Smallest 5-smooth integer (2^a 3^b 5^c) that is ``>= n``; pocketFFT and cuFFT are fast there."""
    if n <= 1:
        return 1
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def _exporting() -> bool:
    """True while ``torch.compile``, ``torch.export`` or the ONNX exporter traces the model.

    Traced graphs multiply spectra as real pairs: ONNX has no complex broadcasting and
    inductor generates no code for complex element-wise ops.
    """
    return torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export()


class SGConv(ParamCache):
    """Multi-scale global convolution layer (SGConv) as used by CodeBrain's EEGSSM blocks.

    Parameters
    ----------
    d_model : int
        Width ``H`` of the input and output.
    l_max : int
        Sequence length the kernel is designed for; sets the number of scales
        ``1 + ceil(log2(l_max / kernel_dim))``. Longer inputs are zero-padded kernels,
        shorter ones truncate it.
    channels : int
        Number of kernels per feature; outputs are concatenated (``c * H``) and projected
        back to ``H`` by ``output_linear``.
    bidirectional : bool
        If True, half of the kernels run backwards in time (non-causal convolution).
    dropout : float
        Channel dropout (``nn.Dropout1d``) after the activation.
    layer_norm : bool
        LayerNorm over the ``c * H`` features before ``output_linear``.
    kernel_dim : int
        Taps per sub-kernel.
    decay_min, decay_max : float
        Range of the per-feature decay multiplier (``linspace`` over features).

    Notes
    -----
    State-dict keys (``skip_weight``, ``multiplier``, ``kernel_norm``,
    ``kernel_norm_initialized``, ``kernel_list.N``, ``output_linear.*``) match braindecode's
    ``_GConv``. ``kernel_norm`` is computed from the parameters when the layer is built (and
    when a state dict whose ``kernel_norm_initialized`` is False is loaded), never inside
    ``forward``.
    """

    def __init__(
        self,
        d_model: int,
        l_max: int,
        channels: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        layer_norm: bool = False,
        kernel_dim: int = 2,
        decay_min: float = 2.0,
        decay_max: float = 2.0,
    ) -> None:
        super().__init__()
        check_int("l_max", l_max)
        self.d_model = d_model
        self.channels = channels
        self.bidirectional = bidirectional
        self.kernel_dim = kernel_dim
        self.l_max = l_max
        n_kernels = 2 * channels if bidirectional else channels
        self.n_scales = max(1, 1 + math.ceil(math.log2(l_max / kernel_dim)))

        self.register_buffer(
            "multiplier", torch.linspace(decay_min, decay_max, d_model).view(1, -1, 1)
        )
        self.register_buffer("kernel_norm", torch.ones(n_kernels, d_model, 1))
        self.register_buffer("kernel_norm_initialized", torch.tensor(False))
        self.skip_weight = nn.Parameter(torch.randn(channels, d_model))
        self.kernel_list = nn.ParameterList(
            [
                nn.Parameter(torch.randn(n_kernels, d_model, kernel_dim))
                for _ in range(self.n_scales)
            ]
        )
        self.activation = nn.GELU()
        self.dropout = nn.Dropout1d(dropout) if dropout > 0.0 else nn.Identity()
        self.norm = nn.LayerNorm(d_model * channels) if layer_norm else nn.Identity()
        self.output_linear = nn.Linear(d_model * channels, d_model)

        self.reset_kernel_norm()
        self.register_load_state_dict_post_hook(_kernel_norm_after_load)

    def no_weight_decay(self) -> set[str]:
        """Names exempt from weight decay: the kernels ``kernel_list.N`` and ``skip_weight``.

        The rule is in :mod:`codebrain.training.optim`.
        """
        return {"skip_weight", *(f"kernel_list.{i}" for i in range(len(self.kernel_list)))}

    # ------------------------------------------------------------------ kernel
    def raw_kernel(self) -> torch.Tensor:
        """Unnormalised multi-scale kernel, shape ``(n_kernels, H, kernel_len)``."""
        parts = []
        for i, k in enumerate(self.kernel_list):
            scale = 2 ** max(0, i - 1)
            if scale != 1:
                k = F.interpolate(k, scale_factor=scale, mode="linear")
            parts.append(k * self.multiplier ** (self.n_scales - i - 1))
        return torch.cat(parts, dim=-1)

    @torch.no_grad()
    def reset_kernel_norm(self) -> None:
        """Set ``kernel_norm`` to the L2 norm of the current kernel (call after editing kernels)."""
        self.kernel_norm.copy_(self.raw_kernel().norm(dim=-1, keepdim=True))
        self.kernel_norm_initialized.fill_(True)
        self.clear_param_cache()

    def kernel(self, seq_len: int) -> torch.Tensor:
        """Normalised kernel cut or zero-padded to ``seq_len``: ``(n_kernels, H, seq_len)``."""
        k = self.raw_kernel()
        k = k[..., :seq_len] if k.shape[-1] >= seq_len else F.pad(k, (0, seq_len - k.shape[-1]))
        return k / self.kernel_norm

    def _kernel_spectrum(self, seq_len: int, n_fft: int) -> torch.Tensor:
        """Spectrum ``(c, H, n_fft // 2 + 1)`` (complex) of the kernel plus the skip tap.

        The circular kernel of size ``n_fft`` holds the causal kernel at lags ``0 .. L-1``, the
        anti-causal one (bidirectional) at ``n_fft - 1 .. n_fft - L + 1``, and the skip weight
        ``D`` is added at lag 0 (a constant ``D`` over frequency). Cached in eval mode without
        autograd while the parameters are unchanged (see :func:`param_key`).
        """
        fft_dtype = torch.float64 if self.kernel_list[0].dtype == torch.float64 else torch.float32
        sources = (*self.kernel_list, self.kernel_norm, self.multiplier, self.skip_weight)
        return self._cached(
            "kernel_spectrum",
            sources,
            lambda: self._build_kernel_spectrum(seq_len, n_fft, fft_dtype),
            extra_key=(seq_len, n_fft, fft_dtype),
        )

    def _build_kernel_spectrum(
        self, seq_len: int, n_fft: int, fft_dtype: torch.dtype
    ) -> torch.Tensor:
        with torch.autocast(self.kernel_list[0].device.type, enabled=False):
            k = self.kernel(seq_len).to(fft_dtype)  # (n_kernels, H, L)
            if self.bidirectional:
                k_fwd, k_bwd = k[: self.channels], k[self.channels :]
                # lag d = s - t > 0 (future sample) uses k_bwd[d - 1], stored at index n - d
                tail = k_bwd[..., : seq_len - 1].flip(-1)  # (c, H, L - 1)
                k = torch.cat(
                    [k_fwd, k_fwd.new_zeros(*k_fwd.shape[:-1], n_fft - 2 * seq_len + 1), tail], -1
                )
            skip = self.skip_weight.to(fft_dtype).unsqueeze(-1)  # (c, H, 1)
            if _exporting():
                # traced: (c, H, F, 2) real pairs, D added to the real part
                spec = torch.view_as_real(torch.fft.rfft(k, n=n_fft))
                return spec + torch.stack([skip, torch.zeros_like(skip)], -1)
            return torch.fft.rfft(k, n=n_fft) + skip

    # ----------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layer.

        Parameters
        ----------
        x : torch.Tensor, shape (B, H, L)

        Returns
        -------
        torch.Tensor, shape (B, H, L)
        """
        return self._output(self.long_conv(x))

    def long_conv(self, x: torch.Tensor) -> torch.Tensor:
        """Convolution plus skip term, before activation: ``(B, H, L) -> (B, c, H, L)``.

        The result is a strided view (last axis cut from the circular buffer of the FFT).
        """
        seq_len = x.shape[-1]
        n_fft = fast_fft_size(2 * seq_len - 1)
        k_f = self._kernel_spectrum(seq_len, n_fft)  # (c, H, F)
        fft_dtype = k_f.real.dtype if k_f.is_complex() else k_f.dtype
        with torch.autocast(x.device.type, enabled=False):
            x_f = torch.fft.rfft(x.to(fft_dtype), n=n_fft)  # (B, H, F)
            if k_f.is_complex():
                prod = x_f.unsqueeze(1) * k_f  # (B, c, H, F)
            else:  # traced: complex product in real arithmetic on (..., 2) pairs
                xr = torch.view_as_real(x_f).unsqueeze(1)  # (B, 1, H, F, 2)
                a, b = xr[..., 0], xr[..., 1]
                c, d = k_f[..., 0], k_f[..., 1]
                prod = torch.view_as_complex(torch.stack([a * c - b * d, a * d + b * c], -1))
            y = torch.fft.irfft(prod, n=n_fft)[..., :seq_len]  # (B, c, H, L)
        return y if y.dtype == x.dtype else y.to(x.dtype)

    #: Eval-mode working-set target (bytes) of one feature chunk's FFT buffers; see ``features``.
    eval_chunk_bytes: int = 4 * 2**20

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Everything before ``output_linear``: ``(B, H, L) -> (B, c*H, L)``.

        Long convolution with skip, GELU, channel dropout and (optionally) LayerNorm. In eval
        mode without autograd the features ``H`` are processed in chunks whose FFT buffers fit
        ``eval_chunk_bytes`` (features are independent up to the LayerNorm), which keeps long
        recordings' spectra in cache; results are the same.
        """
        b, h, seq_len = x.shape
        if not eval_cache_enabled(self) or torch.is_autocast_enabled():
            return self._activate(self.long_conv(x))
        n_fft = fast_fft_size(2 * seq_len - 1)
        per_feature = b * self.channels * n_fft * 4
        chunk = max(1, self.eval_chunk_bytes // per_feature)
        if chunk >= h:
            return self._activate(self.long_conv(x))
        k_f = self._kernel_spectrum(seq_len, n_fft)  # (c, H, F)
        fft_dtype = k_f.real.dtype
        out = torch.empty(b, self.channels, h, seq_len, dtype=x.dtype, device=x.device)
        for i in range(0, h, chunk):
            x_f = torch.fft.rfft(x[:, i : i + chunk].to(fft_dtype), n=n_fft)  # (B, h', F)
            y = torch.fft.irfft(x_f.unsqueeze(1) * k_f[:, i : i + chunk], n=n_fft)
            out[:, :, i : i + chunk] = self.activation(y[..., :seq_len])
        y = out.view(b, self.channels * h, seq_len)
        if isinstance(self.norm, nn.LayerNorm):
            y = self.norm(y.transpose(1, 2)).transpose(1, 2)
        return y

    def _activate(self, y: torch.Tensor) -> torch.Tensor:
        """Activation, dropout and norm: ``(B, c, H, L) -> (B, c*H, L)``."""
        b, c, h, seq_len = y.shape
        y = self.activation(y).reshape(b, c * h, seq_len)  # GELU output is contiguous
        y = self.dropout(y)
        if isinstance(self.norm, nn.LayerNorm):
            y = self.norm(y.transpose(1, 2)).transpose(1, 2)
        return y

    def _output(self, y: torch.Tensor) -> torch.Tensor:
        """Activation, dropout, norm and projection: ``(B, c, H, L) -> (B, H, L)``."""
        return channel_linear(self._activate(y), self.output_linear.weight, self.output_linear.bias)


def _kernel_norm_after_load(module: nn.Module, incompatible_keys) -> None:
    """A loaded state dict whose norm was never set (fresh reference model) gets it computed."""
    assert isinstance(module, SGConv)
    module.clear_param_cache()
    if not bool(module.kernel_norm_initialized):
        module.reset_kernel_norm()


def sgconv_reference(layer: SGConv, x: torch.Tensor) -> torch.Tensor:
    """Direct-summation reference of :class:`SGConv` (no FFT), for tests.

    Parameters
    ----------
    layer : SGConv
    x : torch.Tensor, shape (B, H, L)

    Returns
    -------
    torch.Tensor, shape (B, H, L)
    """
    b, h, seq_len = x.shape
    k = layer.kernel(seq_len)  # (n_kernels, H, L)
    c = layer.channels
    # causal: y[t] = sum_{s<=t} x[s] k[t-s]  == conv1d with the flipped kernel, left padding
    xk = x.unsqueeze(1).expand(b, c, h, seq_len).reshape(b, c * h, seq_len)
    w = k[:c].reshape(c * h, 1, seq_len).flip(-1)
    y = F.conv1d(F.pad(xk, (seq_len - 1, 0)), w, groups=c * h)
    if layer.bidirectional:
        # anti-causal: y[t] += sum_{s>t} x[s] k_bwd[s-t-1]
        wb = k[c:].reshape(c * h, 1, seq_len)[..., : seq_len - 1]
        if seq_len > 1:
            y = y + F.conv1d(F.pad(xk[..., 1:], (0, seq_len - 1)), wb, groups=c * h)
    y = y.reshape(b, c * h, seq_len) + (x.unsqueeze(1) * layer.skip_weight.unsqueeze(-1)).reshape(
        b, c * h, seq_len
    )
    y = layer.dropout(layer.activation(y))
    y = layer.norm(y.transpose(1, 2))  # (B, L, cH); Identity without layer_norm
    return layer.output_linear(y).transpose(1, 2)
