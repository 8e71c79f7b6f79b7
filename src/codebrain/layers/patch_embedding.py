"""Dual temporal-spectral patch embedding with convolutional positional encoding.

CodeBrain (arXiv 2506.09110, §3.3): each 1 s patch is embedded by a temporal conv stack
(strided Conv2d, two refiners, GroupNorm + GELU each) plus a linear projection of its
magnitude spectrum; a depth-wise Conv2d over (channel, patch) adds dynamic positional
information.

Shape legend: B = batch, C = EEG channels, P = patches per channel, S = samples per patch,
D = embedding width (``conv_out_chans * n_conv_steps``).
Parameter names match braindecode's ``_PatchEmbedding`` (``proj_in.N``,
``spectral_proj.0``, ``positional_encoding.0``, ``mask_encoding``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PatchEmbedding"]


class PatchEmbedding(nn.Module):
    """Embed EEG patches ``(B, C, P, S) -> (B, C, P, D)``.

    Parameters
    ----------
    patch_size : int
        Samples per patch ``S``.
    conv_out_chans : int
        Channels of each Conv2d in the temporal stack; also the stride of the first conv.
    conv_groups : int
        GroupNorm groups.
    proj_kernel_size, proj_padding : int
        Kernel and padding of the first (strided) conv.
    proj_refine_kernel : int
        Kernel of the two refining convs.
    pos_kernel : tuple of int
        (channel, patch) kernel of the depth-wise positional conv.
    spectral_dropout : float
        Dropout after the spectral projection.

    Notes
    -----
    Masked patches (pretraining) are replaced in signal space by ``mask_encoding`` (a frozen
    parameter of length ``D``, zeros unless loaded). When ``D != S`` the stored vector is
    linearly resampled to ``S`` samples, so masking works for any ``patch_size`` (the reference
    implementation fails there).
    """

    def __init__(
        self,
        patch_size: int,
        conv_out_chans: int,
        conv_groups: int,
        proj_kernel_size: int = 49,
        proj_padding: int = 24,
        proj_refine_kernel: int = 3,
        pos_kernel: tuple[int, int] = (19, 7),
        spectral_dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if conv_out_chans % conv_groups != 0:
            raise ValueError(
                f"conv_out_chans ({conv_out_chans}) must be divisible by conv_groups ({conv_groups})."
            )
        n_steps = (patch_size + 2 * proj_padding - proj_kernel_size) // conv_out_chans + 1
        if n_steps < 1:
            raise ValueError(
                f"patch_size={patch_size} is too short for proj_kernel_size={proj_kernel_size} "
                f"with proj_padding={proj_padding}."
            )
        self.patch_size = patch_size
        self.emb_dim = conv_out_chans * n_steps
        self.mask_encoding = nn.Parameter(torch.zeros(self.emb_dim), requires_grad=False)
        refine_pad = proj_refine_kernel // 2
        self.proj_in = nn.Sequential(
            nn.Conv2d(
                1, conv_out_chans, (1, proj_kernel_size), (1, conv_out_chans), (0, proj_padding)
            ),
            nn.GroupNorm(conv_groups, conv_out_chans),
            nn.GELU(),
            nn.Conv2d(conv_out_chans, conv_out_chans, (1, proj_refine_kernel), 1, (0, refine_pad)),
            nn.GroupNorm(conv_groups, conv_out_chans),
            nn.GELU(),
            nn.Conv2d(conv_out_chans, conv_out_chans, (1, proj_refine_kernel), 1, (0, refine_pad)),
            nn.GroupNorm(conv_groups, conv_out_chans),
            nn.GELU(),
        )
        self.spectral_proj = nn.Sequential(
            nn.Linear(patch_size // 2 + 1, self.emb_dim), nn.Dropout(spectral_dropout)
        )
        pos_kernel = tuple(pos_kernel)
        self.positional_encoding = nn.Sequential(
            nn.Conv2d(
                self.emb_dim,
                self.emb_dim,
                pos_kernel,
                padding=(pos_kernel[0] // 2, pos_kernel[1] // 2),
                groups=self.emb_dim,
            )
        )

    def mask_patch(self) -> torch.Tensor:
        """The signal-space replacement for a masked patch, shape ``(S,)``."""
        m = self.mask_encoding
        if m.shape[0] == self.patch_size:
            return m
        return F.interpolate(
            m.view(1, 1, -1), size=self.patch_size, mode="linear", align_corners=True
        ).view(-1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Embed patches.

        Parameters
        ----------
        x : torch.Tensor, shape (B, C, P, S)
        mask : torch.Tensor of bool, shape (B, C, P), optional
            True where a patch is masked.

        Returns
        -------
        torch.Tensor, shape (B, C, P, D)
        """
        b, c, p, s = x.shape
        if mask is not None:
            x = torch.where(mask.unsqueeze(-1), self.mask_patch().to(x.dtype), x)
        t = self.proj_in(x.reshape(b, 1, c * p, s))  # (B, K, C*P, n_steps)
        k, n_steps = t.shape[1], t.shape[-1]
        # (B, K, C, P, n_steps) -> (B, C, P, K, n_steps) -> (B, C, P, D): conv-channel major
        t = t.view(b, k, c, p, n_steps).permute(0, 2, 3, 1, 4).reshape(b, c, p, k * n_steps)
        fft_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        spec = (
            torch.fft.rfft(x.to(fft_dtype), dim=-1, norm="forward").abs().to(x.dtype)
        )  # (B, C, P, S//2+1)
        emb = t + self.spectral_proj(spec)  # (B, C, P, D)
        pos = self.positional_encoding(emb.permute(0, 3, 1, 2))  # (B, D, C, P)
        return emb + pos.permute(0, 2, 3, 1)
