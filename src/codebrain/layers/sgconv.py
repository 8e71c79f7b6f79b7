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
bidirectional kernel wraps its anti-causal half to the end of the circular buffer), caches the
kernel spectrum in eval mode, and applies the output projection as one batched matmul in the
channel-major layout. ``sgconv_reference`` is the direct (non-FFT) convolution of the same
operator, kept for tests.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SGConv", "fast_fft_size", "sgconv_reference"]


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


class SGConv(nn.Module):
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
        if l_max < 1:
            raise ValueError(f"l_max must be >= 1, got {l_max}.")
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

        self._kernel_cache: tuple[tuple, torch.Tensor] | None = None
        self.reset_kernel_norm()
        self.register_load_state_dict_post_hook(_kernel_norm_after_load)

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
        self._kernel_cache = None

    def kernel(self, seq_len: int) -> torch.Tensor:
        """Normalised kernel cut or zero-padded to ``seq_len``: ``(n_kernels, H, seq_len)``."""
        k = self.raw_kernel()
        k = k[..., :seq_len] if k.shape[-1] >= seq_len else F.pad(k, (0, seq_len - k.shape[-1]))
        return k / self.kernel_norm

    def _kernel_spectrum(self, seq_len: int, n_fft: int) -> torch.Tensor:
        """Kernel spectrum ``(c, H, n_fft // 2 + 1)`` (complex) for circular size ``n_fft``.

        Cached in eval mode while the parameters are unchanged (keyed on their versions).
        """
        fft_dtype = torch.float64 if self.kernel_list[0].dtype == torch.float64 else torch.float32
        use_cache = not self.training and not torch.is_grad_enabled()
        use_cache = use_cache and not torch.compiler.is_compiling()
        if use_cache:
            key = (
                seq_len,
                n_fft,
                fft_dtype,
                self.kernel_list[0].device,
                tuple(p._version for p in self.kernel_list),
                self.kernel_norm._version,
                self.multiplier._version,
                tuple(p.data_ptr() for p in self.kernel_list),
            )
            if self._kernel_cache is not None and self._kernel_cache[0] == key:
                return self._kernel_cache[1]
        k = self.kernel(seq_len).to(fft_dtype)  # (n_kernels, H, L)
        if self.bidirectional:
            k_fwd, k_bwd = k[: self.channels], k[self.channels :]
            # lag d = s - t > 0 (future sample) uses k_bwd[d - 1], stored at circular index n - d
            tail = k_bwd[..., : seq_len - 1].flip(-1)  # (c, H, L - 1)
            k = torch.cat(
                [k_fwd, k_fwd.new_zeros(*k_fwd.shape[:-1], n_fft - 2 * seq_len + 1), tail], -1
            )
        spec = torch.fft.rfft(k, n=n_fft)
        if use_cache:
            self._kernel_cache = (key, spec)
        return spec

    def train(self, mode: bool = True) -> SGConv:  # noqa: D102
        self._kernel_cache = None
        return super().train(mode)

    def _apply(self, fn, recurse: bool = True):  # noqa: D102, ANN001
        self._kernel_cache = None
        return super()._apply(fn, recurse)

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
        """Convolution plus skip term, before activation: ``(B, H, L) -> (B, c, H, L)``."""
        seq_len = x.shape[-1]
        n_fft = fast_fft_size(2 * seq_len - 1)
        k_f = self._kernel_spectrum(seq_len, n_fft)  # (c, H, F)
        fft_dtype = k_f.real.dtype
        x_f = torch.fft.rfft(x.to(fft_dtype), n=n_fft)  # (B, H, F)
        y = torch.fft.irfft(x_f.unsqueeze(1) * k_f, n=n_fft)[..., :seq_len]  # (B, c, H, L)
        y = y.to(x.dtype)
        return y + x.unsqueeze(1) * self.skip_weight.unsqueeze(-1)

    def _output(self, y: torch.Tensor) -> torch.Tensor:
        """Activation, dropout, norm and projection: ``(B, c, H, L) -> (B, H, L)``."""
        b, c, h, seq_len = y.shape
        y = self.dropout(self.activation(y.reshape(b, c * h, seq_len)))  # (B, cH, L)
        if isinstance(self.norm, nn.LayerNorm):
            y = self.norm(y.transpose(1, 2)).transpose(1, 2)
        # output_linear in channel-major layout: (H, cH) @ (B, cH, L) -> (B, H, L)
        return torch.matmul(self.output_linear.weight, y) + self.output_linear.bias.unsqueeze(-1)


def _kernel_norm_after_load(module: nn.Module, incompatible_keys) -> None:  # noqa: ANN001
    """A loaded state dict whose norm was never set (fresh reference model) gets it computed."""
    assert isinstance(module, SGConv)
    module._kernel_cache = None
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
    y = y.reshape(b, c, h, seq_len) + x.unsqueeze(1) * layer.skip_weight.unsqueeze(-1)
    return layer._output(y)
