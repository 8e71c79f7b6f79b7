"""TFConv: the patch embedding of CodeBrain's TFDual-Tokenizer (arXiv 2506.09110, §3.2).

Two convolution stacks of identical layout but unshared weights run over every patch: a
temporal one on the raw samples and a spectral one on the **real part of the full S-point
DFT** of the patch (``torch.fft.fft(patch).real``: no amplitude, no normalisation, all S bins),
as in the authors' release. Each stack is

    Conv2d(1→c, kernel (1, 15), stride (1, 8), padding (0, 7)) – BatchNorm2d – ReLU – Dropout
    Conv2d(c→c/2, kernel (1, 3), padding (0, 1))               – BatchNorm2d – ReLU – Dropout
    Conv2d(c/2→c/2, kernel (1, 3), padding (0, 1))             – BatchNorm2d – ReLU – Dropout

on a ``(B, 1, C·P, S)`` image (one row per patch, so a patch never sees its neighbours). The
``c/2`` output maps of length ``L = (S - 1) // 8 + 1`` are flattened position-major
(feature ``l·c/2 + k`` is map ``k`` at position ``l``) and the two stacks are concatenated:
``D = 2 · (c/2) · L`` features per patch, with no fusion layer. The released sizes
(``S = 200``, ``c = 8``) give ``D = 2 · 4 · 25 = 200``.

Module names follow the Sequential indices: ``temporal.{0,4,8}`` and ``spectral.{0,4,8}`` are
the convolutions, ``temporal.{1,5,9}`` and ``spectral.{1,5,9}`` the batch norms.

Shape legend: B = batch, C = EEG channels, P = patches per channel, S = samples per patch,
D = output width.
"""

from __future__ import annotations

import torch
from torch import nn

from codebrain.utils.check import check_int, check_number, check_value

__all__ = ["TFConv", "tfconv_out_dim"]

_KERNEL, _STRIDE, _PAD = 15, 8, 7


def tfconv_out_dim(patch_size: int, conv_channels: int) -> int:
    """Width ``D = 2 · (conv_channels // 2) · ((patch_size - 1) // 8 + 1)`` of :class:`TFConv`.

    Parameters
    ----------
    patch_size : int
        S.
    conv_channels : int
        Channels of the first convolution (even).

    Returns
    -------
    int
    """
    length = (patch_size + 2 * _PAD - _KERNEL) // _STRIDE + 1
    return 2 * (conv_channels // 2) * length


def _stack(channels: int, dropout: float) -> nn.Sequential:
    half = channels // 2
    layers: list[nn.Module] = []
    for c_in, c_out, conv_kw in (
        (1, channels, dict(kernel_size=(1, _KERNEL), stride=(1, _STRIDE), padding=(0, _PAD))),
        (channels, half, dict(kernel_size=(1, 3), padding=(0, 1))),
        (half, half, dict(kernel_size=(1, 3), padding=(0, 1))),
    ):
        layers += [
            nn.Conv2d(c_in, c_out, **conv_kw),
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
            nn.Dropout(dropout),
        ]
    return nn.Sequential(*layers)


class TFConv(nn.Module):
    """Temporal + spectral convolution stacks over each patch, concatenated.

    Parameters
    ----------
    patch_size : int
        S, samples per patch (>= 8).
    conv_channels : int
        Channels of the first convolution of each stack (even, >= 2); the next two have half.
    dropout : float
        Dropout after every convolution block (0.3 in the release).

    Notes
    -----
    The DFT is computed in float32 with autocast disabled; the convolutions follow autocast.
    In training mode the batch norms use (and update) batch statistics, as usual.
    """

    def __init__(self, patch_size: int = 200, conv_channels: int = 8, dropout: float = 0.3) -> None:
        super().__init__()
        check_int("patch_size", patch_size, minimum=8)
        check_int("conv_channels", conv_channels, minimum=2)
        check_value("conv_channels", conv_channels, conv_channels % 2 == 0, "an even int >= 2")
        check_number("dropout", dropout, minimum=0)
        check_value("dropout", dropout, dropout < 1, "in [0, 1)")
        self.patch_size = patch_size
        self.conv_channels = conv_channels
        self.out_dim = tfconv_out_dim(patch_size, conv_channels)
        self.temporal = _stack(conv_channels, dropout)
        self.spectral = _stack(conv_channels, dropout)

    @staticmethod
    def spectrum(patches: torch.Tensor) -> torch.Tensor:
        """Real part of the full DFT of every patch, float32 (autocast disabled).

        Parameters
        ----------
        patches : torch.Tensor, shape (..., S)

        Returns
        -------
        torch.Tensor, float32, shape (..., S)
        """
        with torch.autocast(device_type=patches.device.type, enabled=False):
            return torch.fft.fft(patches.float(), dim=-1).real

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """Embed every patch.

        Parameters
        ----------
        patches : torch.Tensor, shape (B, C, P, S)

        Returns
        -------
        torch.Tensor, shape (B, C·P, D)
            Tokens in channel-major order (all patches of channel 0, then channel 1, ...).
        """
        if patches.ndim != 4 or patches.shape[-1] != self.patch_size:
            raise ValueError(
                f"expected patches (B, C, P, {self.patch_size}), got {tuple(patches.shape)}."
            )
        b, c, p, s = patches.shape
        spec = self.spectrum(patches).to(patches.dtype)  # (B, C, P, S)
        t = self.temporal(patches.reshape(b, 1, c * p, s))  # (B, c/2, C·P, L)
        f = self.spectral(spec.reshape(b, 1, c * p, s))  # (B, c/2, C·P, L)
        t = t.permute(0, 2, 3, 1).reshape(b, c * p, -1)  # (B, C·P, L·c/2), position-major
        f = f.permute(0, 2, 3, 1).reshape(b, c * p, -1)
        return torch.cat([t, f], dim=-1)  # (B, C·P, D)
