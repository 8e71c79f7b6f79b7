"""The LaBraM-style Transformer of CodeBrain's TFDual-Tokenizer (arXiv 2506.09110, §3.2).

The authors' tokenizer encodes and decodes with LaBraM's ``NeuralTransformer`` (Jiang et al.,
ICLR 2024); :class:`PatchTransformer` is that network without its patch embedding:

- a learned class token is prepended to the ``C·P`` patch tokens (channel-major order);
- a learned **channel table** of ``n_chan_slots`` rows (129 in the release: slot 0 for the
  class token, then one per channel) is indexed by ``chan_index`` (default ``0..C``) and added
  to every token, the class token taking the first indexed row;
- a learned **time table** of ``n_time_slots`` rows (60 in the release) is added to the patch
  tokens by patch position;
- pre-norm blocks ``x + Attn(LN(x))``, ``x + MLP(LN(x))`` with LayerNorm eps 1e-6, GELU MLPs,
  no layer scale, and attention whose input projection has **q and v biases only**
  (``qkv.weight`` without bias, ``q_bias`` and ``v_bias``; k's bias is fixed at zero);
- a final LayerNorm (``norm``, LaBraM's ``fc_norm``) on the patch tokens; the class token is
  dropped from the output.

Attention is computed explicitly (``softmax(q·scale @ kᵀ) @ v``), in the authors' order of
operations, so outputs match theirs to float rounding.

Initialisation (LaBraM): truncated-normal (std 0.02) linear weights, zero biases, unit
LayerNorms, truncated-normal tables and class token, and the output projections of block
``i`` (1-based) divided by ``sqrt(2 i)``.

Shape legend: B = batch, C = EEG channels, P = patches per channel, N = tokens, D = width,
H = heads.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Attention", "Mlp", "PatchTransformer", "TransformerBlock"]

_LN_EPS = 1e-6


class Attention(nn.Module):
    """Multi-head self-attention with q/v biases only: ``(B, N, D) -> (B, N, D)``.

    Parameters
    ----------
    dim : int
        D (divisible by ``num_heads``).
    num_heads : int
        H.
    qkv_bias : bool
        Learn ``q_bias`` and ``v_bias`` (the key projection never has a bias).
    attn_drop, proj_drop : float
        Dropout on the attention weights and on the output.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads}).")
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.register_parameter("q_bias", None)
            self.register_parameter("v_bias", None)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Self-attention over the tokens of ``x``, shape ``(batch, n_tokens, dim)``."""
        b, n, _ = x.shape
        bias = None
        if self.q_bias is not None:
            bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias)  # (B, N, 3D)
        q, k, v = qkv.reshape(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)  # (B,H,N,D/H)
        attn = (q * self.scale) @ k.transpose(-2, -1)  # (B, H, N, N)
        attn = self.attn_drop(attn.softmax(dim=-1))
        out = (attn @ v).transpose(1, 2).reshape(b, n, -1)  # (B, N, D)
        return self.proj_drop(self.proj(out))


class Mlp(nn.Module):
    """``fc2(GELU(fc1(x)))`` then dropout: ``(..., D) -> (..., D)``."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The MLP applied to the last axis of ``x`` (``(..., dim)`` → ``(..., dim)``)."""
        return self.drop(self.fc2(self.act(self.fc1(x))))


class TransformerBlock(nn.Module):
    """Pre-norm block ``x + Attn(LN(x))``, ``x + MLP(LN(x))``: ``(B, N, D) -> (B, N, D)``.

    Parameters
    ----------
    dim, num_heads : int
        D and H.
    mlp_ratio : float
        MLP hidden width as a multiple of ``dim``.
    dropout : float
        Dropout on the attention weights, the attention output and the MLP output.
    qkv_bias : bool
        See :class:`Attention`.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        *,
        qkv_bias: bool = True,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=_LN_EPS)
        self.attn = Attention(
            dim, num_heads, qkv_bias=qkv_bias, attn_drop=dropout, proj_drop=dropout
        )
        self.norm2 = nn.LayerNorm(dim, eps=_LN_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One pre-norm block: attention then MLP, each residual; shape ``(batch, n, dim)``."""
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchTransformer(nn.Module):
    """Class token + channel/time tables + Transformer blocks + final LayerNorm.

    Parameters
    ----------
    dim : int
        D.
    depth : int
        Number of blocks.
    num_heads : int
        H.
    mlp_ratio : float
        MLP hidden width as a multiple of ``dim``.
    dropout : float
        Dropout inside the blocks.
    n_chan_slots : int
        Rows of the channel table (class token + channels).
    n_time_slots : int
        Rows of the time table (patches per channel at most).
    qkv_bias : bool
        See :class:`Attention`.
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        *,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        n_chan_slots: int = 129,
        n_time_slots: int = 60,
        qkv_bias: bool = True,
    ) -> None:
        super().__init__()
        self.n_chan_slots = n_chan_slots
        self.n_time_slots = n_time_slots
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.chan_embed = nn.Parameter(torch.zeros(1, n_chan_slots, dim))
        self.time_embed = nn.Parameter(torch.zeros(1, n_time_slots, dim))
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, num_heads, mlp_ratio, dropout, qkv_bias=qkv_bias)
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim, eps=_LN_EPS)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """LaBraM's initialisation (see the module notes)."""
        for t in (self.chan_embed, self.time_embed, self.cls_token):
            nn.init.trunc_normal_(t, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for i, blk in enumerate(self.blocks, start=1):
            blk.attn.proj.weight.div_(math.sqrt(2.0 * i))
            blk.mlp.fc2.weight.div_(math.sqrt(2.0 * i))

    def forward(
        self, x: torch.Tensor, n_chans: int, chan_index: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Encode patch tokens.

        Parameters
        ----------
        x : torch.Tensor, shape (B, C·P, D)
            Patch tokens, channel-major.
        n_chans : int
            C.
        chan_index : torch.Tensor of int64, shape (C + 1,), optional
            Rows of the channel table for the class token and each channel
            (default ``0, 1, ..., C``).

        Returns
        -------
        torch.Tensor, shape (B, C·P, D)
            Normalised patch tokens (class token removed).
        """
        b, n, d = x.shape
        if n_chans < 1 or n % n_chans:
            raise ValueError(f"{n} tokens do not split into {n_chans} channels.")
        p = n // n_chans
        if chan_index is None:
            if n_chans + 1 > self.n_chan_slots:
                raise ValueError(
                    f"{n_chans} channels need {n_chans + 1} channel slots; the table has "
                    f"{self.n_chan_slots}."
                )
            chan = self.chan_embed[:, : n_chans + 1]  # (1, C+1, D)
        else:
            if chan_index.shape != (n_chans + 1,):
                raise ValueError(
                    f"chan_index must have shape ({n_chans + 1},), got {tuple(chan_index.shape)}."
                )
            chan = self.chan_embed[:, chan_index]
        if p > self.n_time_slots:
            raise ValueError(f"{p} patches per channel exceed the {self.n_time_slots} time slots.")
        pos = chan[:, 1:, None, :].expand(b, -1, p, -1).flatten(1, 2)  # (B, C·P, D)
        pos = torch.cat((chan[:, :1, :].expand(b, -1, -1), pos), dim=1)  # (B, 1+C·P, D)
        h = torch.cat((self.cls_token.expand(b, -1, -1), x), dim=1) + pos  # (B, 1+C·P, D)
        time = self.time_embed[:, None, :p, :].expand(b, n_chans, -1, -1).flatten(1, 2)
        h = torch.cat((h[:, :1], h[:, 1:] + time), dim=1)
        for blk in self.blocks:
            h = blk(h)
        return self.norm(h[:, 1:])  # (B, C·P, D)
