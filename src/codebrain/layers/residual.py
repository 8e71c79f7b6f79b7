"""EEGSSM residual blocks: RMSNorm, gated SGConv + sliding-window attention, skip streams.

CodeBrain (arXiv 2506.09110, §3.3). Each block takes the running hidden state ``h`` and the
original backbone input ``x0`` and returns ``(h', skip)``::

    u      = GELU(Conv1d_k3(h + x0))                      # (B, 2R, L)
    s      = SGConv(u)                                    # (B, 2R, L)
    z      = s + SWA(s)                                   # (B, 2R, L)
    g      = tanh(z[:R]) * sigmoid(z[R:])                 # (B, R, L)
    h'     = (RMSNorm(h) + Conv1x1_res(g)) / sqrt(2)      # (B, R, L)
    skip   = Conv1x1_skip(g)                              # (B, S, L)

Fast paths (same outputs up to float rounding; ``ResidualBlock.forward_reference`` is the
plain composition, kept for tests):

* ``res_conv`` and ``skip_conv`` (both 1x1 on ``g``) run as one GEMM with the concatenated
  ``(R + S, R)`` weight.
* All 1x1 convs are batched GEMMs on the channel-major activations (no oneDNN reorders).
* Eval mode without autograd, window 1: the attention is affine (``W_f s + b_f``), so
  ``z = s + SWA(s)`` with ``s = W_o a + b_o`` is ``(I + W_f) W_o a + ((I + W_f) b_o + b_f)``:
  one ``(2R, cR)`` GEMM replaces three. The folded matrices and the weight-normed conv weights
  are computed once (float64 for the fold) and cached while the parameters are unchanged.

Shape legend: B = batch, R = residual width, S = skip width, L = tokens (channels x patches).
Parameter names match braindecode's ``CodeBrain`` (``rms_norm.scale``, ``conv_layer.conv``,
``sgconv``, ``attention``, ``res_conv``, ``skip_conv``; weight-normed convs store
``parametrizations.weight.original0/1``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from codebrain.layers._cache import ParamCache, eval_cache_enabled
from codebrain.layers.sgconv import SGConv, channel_linear, fast_fft_size
from codebrain.layers.window_attention import SlidingWindowAttention

__all__ = ["RMSNorm", "WNConv1d", "ResidualBlock", "ResidualGroup", "weight_normed_conv1d"]


WN_GAIN = "parametrizations.weight.original0"
"""Name, inside a weight-normed conv, of its gain ``g`` (no weight decay, see ``no_weight_decay``)."""


def _wn_sources(conv: nn.Conv1d) -> tuple[torch.Tensor, ...]:
    """Parameters a weight-normed conv's effective weight and bias depend on."""
    p = conv.parametrizations.weight
    return (p.original0, p.original1, conv.bias)


class RMSNorm(nn.Module):
    """RMS normalisation over the channel axis of ``(B, D, L)`` with a learnable scale.

    ``y = scale * x / (||x||_2 / sqrt(D) + eps)`` (eps added to the RMS, as in CodeBrain).
    """

    def __init__(self, dim: int, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.ones(1, dim, 1))

    def no_weight_decay(self) -> set[str]:
        """Names exempt from weight decay (rule in :mod:`codebrain.training.optim`): the scale."""
        return {"scale"}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, D, L) -> (B, D, L)``."""
        rms = torch.linalg.vector_norm(x, dim=1, keepdim=True) / math.sqrt(x.shape[1])
        return self.scale * (x / (rms + self.eps))


def weight_normed_conv1d(in_channels: int, out_channels: int, kernel_size: int = 1) -> nn.Conv1d:
    """A weight-normalised ``Conv1d`` ('same' padding), direction initialised Kaiming-normal."""
    conv = weight_norm(
        nn.Conv1d(in_channels, out_channels, kernel_size, padding=(kernel_size - 1) // 2)
    )
    nn.init.kaiming_normal_(conv.parametrizations.weight.original1)
    return conv


class WNConv1d(ParamCache):
    """Wrapper holding a weight-normalised conv as ``.conv`` (checkpoint key layout).

    The effective weight ``g * v / ||v||`` is cached in eval mode; 1x1 convs run as a GEMM.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1) -> None:
        super().__init__()
        self.conv = weight_normed_conv1d(in_channels, out_channels, kernel_size)

    def no_weight_decay(self) -> set[str]:
        """Names exempt from weight decay (rule in :mod:`codebrain.training.optim`): the gain."""
        return {f"conv.{WN_GAIN}"}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, L) -> (B, C_out, L)``."""
        conv = self.conv
        (weight,) = self._cached("weight", _wn_sources(conv), lambda: (conv.weight,))
        if weight.shape[-1] == 1:
            return channel_linear(x, weight.squeeze(-1), conv.bias)
        return F.conv1d(x, weight, conv.bias, padding=conv.padding)


class ResidualBlock(ParamCache):
    """One EEGSSM block (see the module docstring for the computation).

    Parameters
    ----------
    res_channels : int
        Residual width ``R``.
    skip_channels : int
        Skip width ``S``.
    s4_lmax : int
        Design length of the SGConv kernel.
    dropout : float
        Dropout in SGConv and on the attention weights.
    bidirectional : bool
        Non-causal SGConv.
    layer_norm : bool
        LayerNorm inside SGConv.
    swa_window_size : int
        Odd attention window.
    sgconv_channels : int
        Kernels per feature in SGConv.
    num_heads : int
        Attention heads.
    """

    def __init__(
        self,
        res_channels: int,
        skip_channels: int,
        s4_lmax: int,
        dropout: float,
        bidirectional: bool,
        layer_norm: bool,
        swa_window_size: int = 1,
        sgconv_channels: int = 4,
        num_heads: int = 4,
    ) -> None:
        super().__init__()
        self.res_channels = res_channels
        self.rms_norm = RMSNorm(res_channels)
        self.conv_layer = WNConv1d(res_channels, 2 * res_channels, kernel_size=3)
        self.gelu = nn.GELU()
        self.sgconv = SGConv(
            2 * res_channels,
            l_max=s4_lmax,
            channels=sgconv_channels,
            bidirectional=bidirectional,
            dropout=dropout,
            layer_norm=layer_norm,
        )
        self.attention = SlidingWindowAttention(
            2 * res_channels, num_heads, window_size=swa_window_size, dropout=dropout
        )
        self.res_conv = weight_normed_conv1d(res_channels, res_channels, 1)
        self.skip_conv = weight_normed_conv1d(res_channels, skip_channels, 1)

    def no_weight_decay(self) -> set[str]:
        """Names exempt from weight decay: the gains of ``res_conv`` and ``skip_conv``.

        ``conv_layer``, ``rms_norm`` and ``sgconv`` declare their own; the rule is in
        :mod:`codebrain.training.optim`.
        """
        return {f"res_conv.{WN_GAIN}", f"skip_conv.{WN_GAIN}"}

    def _res_skip_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``res_conv`` and ``skip_conv`` stacked: weight ``(R + S, R)``, bias ``(R + S,)``."""

        def build() -> tuple[torch.Tensor, torch.Tensor]:
            w = torch.cat([self.res_conv.weight, self.skip_conv.weight], 0).squeeze(-1)
            return w, torch.cat([self.res_conv.bias, self.skip_conv.bias])

        sources = _wn_sources(self.res_conv) + _wn_sources(self.skip_conv)
        return self._cached("res_skip", sources, build)

    def _folded_output_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Eval, window 1: ``z = W a + b`` from the SGConv features ``a`` (``(2R, c*2R)``)."""
        lin = self.sgconv.output_linear
        att = self.attention
        sources = (
            lin.weight,
            lin.bias,
            att.in_proj_weight,
            att.in_proj_bias,
            att.out_proj.weight,
            att.out_proj.bias,
        )

        def build() -> tuple[torch.Tensor, torch.Tensor]:
            w_f, b_f = att.folded_projection()
            m = w_f.double() + torch.eye(w_f.shape[0], dtype=torch.float64, device=w_f.device)
            w = m @ lin.weight.double()
            b = m @ lin.bias.double() + b_f.double()
            return w.to(lin.weight.dtype), b.to(lin.weight.dtype)

        return self._cached("sgconv_attention", sources, build)

    def forward(
        self, h: torch.Tensor, x0: torch.Tensor, need_hidden: bool = True
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Apply the block.

        Parameters
        ----------
        h : torch.Tensor, shape (B, R, L)
            Running hidden state.
        x0 : torch.Tensor, shape (B, R, L)
            Backbone input (added before the expansion conv).
        need_hidden : bool
            False for the last block of a group: ``res_conv`` and the RMSNorm are skipped
            (their output is unused; their parameters get no gradient, as in the reference).

        Returns
        -------
        h_next : torch.Tensor, shape (B, R, L), or None when ``need_hidden`` is False
        skip : torch.Tensor, shape (B, S, L)
        """
        u = self.gelu(self.conv_layer(h + x0))  # (B, 2R, L)
        if self.attention.window_size == 1 and eval_cache_enabled(self):
            z = channel_linear(self.sgconv.features(u), *self._folded_output_weights())
        else:
            s = self.sgconv(u)  # (B, 2R, L)
            z = s + self.attention(s)  # (B, 2R, L)
        r = self.res_channels
        g = torch.tanh(z[:, :r]) * torch.sigmoid(z[:, r:])  # (B, R, L)
        if not need_hidden:
            (w_skip,) = self._cached("skip", _wn_sources(self.skip_conv), self._skip_weight)
            return None, channel_linear(g, w_skip, self.skip_conv.bias)
        rs = channel_linear(g, *self._res_skip_weights())  # (B, R + S, L)
        return (self.rms_norm(h) + rs[:, :r]) * math.sqrt(0.5), rs[:, r:]

    def _skip_weight(self) -> tuple[torch.Tensor]:
        return (self.skip_conv.weight.squeeze(-1),)

    def forward_reference(
        self, h: torch.Tensor, x0: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Plain composition of the sub-modules (no folding or fusing), for tests."""
        u = self.gelu(self.conv_layer.conv(h + x0))
        s = self.sgconv(u)
        z = s + self.attention(s)
        r = self.res_channels
        g = torch.tanh(z[:, :r]) * torch.sigmoid(z[:, r:])
        return (self.rms_norm(h) + self.res_conv(g)) * math.sqrt(0.5), self.skip_conv(g)


class ResidualGroup(nn.Module):
    """A stack of :class:`ResidualBlock` whose skip outputs are summed and scaled by ``1/sqrt(n)``."""

    def __init__(self, num_res_layers: int, **block_kwargs) -> None:
        super().__init__()
        self.num_res_layers = num_res_layers
        self.residual_blocks = nn.ModuleList(
            [ResidualBlock(**block_kwargs) for _ in range(num_res_layers)]
        )

    #: Eval-mode working-set target (bytes) of one batch chunk's FFT buffers; see ``forward``.
    eval_chunk_bytes: int = 16 * 2**20

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, R, L) -> (B, S, L)``: the scaled sum of every block's skip output.

        In eval mode without autograd the batch runs through the blocks in chunks whose SGConv
        FFT buffers (``chunk * c * 2R * n_fft`` floats) fit ``eval_chunk_bytes``: every op is
        per-sample, so the result is the same, and the intermediates stay in cache (about
        1.5x faster at batch 16 on CPU than one pass over the whole batch).
        """
        b = x.shape[0]
        if b > 1 and eval_cache_enabled(self) and len(self.residual_blocks) > 0:
            sg = self.residual_blocks[0].sgconv
            n_fft = fast_fft_size(2 * x.shape[-1] - 1)
            per_sample = sg.channels * sg.d_model * n_fft * x.element_size()
            chunk = max(1, self.eval_chunk_bytes // per_sample)
            if chunk < b:
                return torch.cat([self._forward(part) for part in x.split(chunk)])
        return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        skip = None
        last = len(self.residual_blocks) - 1
        for i, block in enumerate(self.residual_blocks):
            h, s = block(h, x, need_hidden=i < last)
            skip = s if skip is None else skip + s
        assert skip is not None
        return skip * math.sqrt(1.0 / self.num_res_layers)
