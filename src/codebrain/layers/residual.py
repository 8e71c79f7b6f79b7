"""EEGSSM residual blocks: RMSNorm, gated SGConv + sliding-window attention, skip streams.

CodeBrain (arXiv 2506.09110, §3.3). Each block takes the running hidden state ``h`` and the
original backbone input ``x0`` and returns ``(h', skip)``::

    u      = GELU(Conv1d_k3(h + x0))                      # (B, 2R, L)
    s      = SGConv(u)                                    # (B, 2R, L)
    z      = s + SWA(s)                                   # (B, 2R, L)
    g      = tanh(z[:R]) * sigmoid(z[R:])                 # (B, R, L)
    h'     = (RMSNorm(h) + Conv1x1_res(g)) / sqrt(2)      # (B, R, L)
    skip   = Conv1x1_skip(g)                              # (B, S, L)

Shape legend: B = batch, R = residual width, S = skip width, L = tokens (channels x patches).
Parameter names match braindecode's ``CodeBrain`` (``rms_norm.scale``, ``conv_layer.conv``,
``sgconv``, ``attention``, ``res_conv``, ``skip_conv``; weight-normed convs store
``parametrizations.weight.original0/1``).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from codebrain.layers.sgconv import SGConv
from codebrain.layers.window_attention import SlidingWindowAttention

__all__ = ["RMSNorm", "WNConv1d", "ResidualBlock", "ResidualGroup", "weight_normed_conv1d"]


class RMSNorm(nn.Module):
    """RMS normalisation over the channel axis of ``(B, D, L)`` with a learnable scale.

    ``y = scale * x / (||x||_2 / sqrt(D) + eps)`` (eps added to the RMS, as in CodeBrain).
    """

    def __init__(self, dim: int, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.ones(1, dim, 1))

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


class WNConv1d(nn.Module):
    """Wrapper holding a weight-normalised conv as ``.conv`` (checkpoint key layout)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1) -> None:
        super().__init__()
        self.conv = weight_normed_conv1d(in_channels, out_channels, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, L) -> (B, C_out, L)``."""
        return self.conv(x)


class ResidualBlock(nn.Module):
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

    def forward(self, h: torch.Tensor, x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Apply the block.

        Parameters
        ----------
        h : torch.Tensor, shape (B, R, L)
            Running hidden state.
        x0 : torch.Tensor, shape (B, R, L)
            Backbone input (added before the expansion conv).

        Returns
        -------
        h_next : torch.Tensor, shape (B, R, L)
        skip : torch.Tensor, shape (B, S, L)
        """
        u = self.gelu(self.conv_layer(h + x0))  # (B, 2R, L)
        s = self.sgconv(u)  # (B, 2R, L)
        z = s + self.attention(s)  # (B, 2R, L)
        r = self.res_channels
        g = torch.tanh(z[:, :r]) * torch.sigmoid(z[:, r:])  # (B, R, L)
        res = self.res_conv(g)
        skip = self.skip_conv(g)
        return (self.rms_norm(h) + res) * math.sqrt(0.5), skip


class ResidualGroup(nn.Module):
    """A stack of :class:`ResidualBlock` whose skip outputs are summed and scaled by ``1/sqrt(n)``."""

    def __init__(self, num_res_layers: int, **block_kwargs) -> None:  # noqa: ANN003
        super().__init__()
        self.num_res_layers = num_res_layers
        self.residual_blocks = nn.ModuleList(
            [ResidualBlock(**block_kwargs) for _ in range(num_res_layers)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, R, L) -> (B, S, L)``: the scaled sum of every block's skip output."""
        h = x
        skip = None
        for block in self.residual_blocks:
            h, s = block(h, x)
            skip = s if skip is None else skip + s
        assert skip is not None
        return skip * math.sqrt(1.0 / self.num_res_layers)
