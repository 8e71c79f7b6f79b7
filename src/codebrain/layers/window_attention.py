"""Sliding-window multi-head self-attention in O(L·w) time and memory.

CodeBrain's EEGSSM blocks (arXiv 2506.09110, §3.3) add local attention over a window of
``w`` tokens (``|i - j| <= w // 2``) to the SGConv output. The parameters and their names
(``in_proj_weight``, ``in_proj_bias``, ``out_proj``) are those of ``nn.MultiheadAttention``,
so checkpoints move between the two.

Shape legend: B = batch, L = tokens, E = embedding width, h = heads, d = E / h, w = window.

Fast paths (identical results up to float rounding):

* ``w == 1``: every token attends only to itself, the softmax weight is exactly 1 and the
  layer is ``out_proj(v_proj(x))``. Training-time attention dropout on that single weight is a
  per-token, per-head dropout of ``v``.
  In eval mode without autograd the two projections are folded into one ``E x E`` matrix
  (``W_out W_v``, bias ``W_out b_v + b_out``), cached while the parameters are unchanged;
  :meth:`SlidingWindowAttention.folded_projection` exposes it so a caller can fold it further
  (the EEGSSM block folds it with the residual add and the SGConv output projection).
* ``w > 1``: keys and values are gathered into ``(B, h, L, w, d)`` windows, never an ``L x L``
  matrix.

``window_attention_reference`` computes the same thing with a dense ``L x L`` mask, for tests.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from codebrain.layers._cache import ParamCache, eval_cache_enabled
from codebrain.layers.sgconv import channel_linear
from codebrain.utils.check import check_type, check_value

__all__ = ["SlidingWindowAttention", "window_attention_reference"]


class SlidingWindowAttention(ParamCache):
    """Multi-head self-attention restricted to a centred window of ``window_size`` tokens.

    Parameters
    ----------
    embed_dim : int
        Width ``E``.
    num_heads : int
        Number of heads; must divide ``embed_dim``.
    window_size : int
        Odd window length ``w >= 1``.
    dropout : float
        Dropout on the attention weights during training.
    """

    def __init__(self, embed_dim: int, num_heads: int, window_size: int = 1, dropout: float = 0.0):
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ValueError(
                f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})."
            )
        check_type("window_size", window_size, int)
        check_value(
            "window_size",
            window_size,
            window_size >= 1 and window_size % 2 == 1,
            "a positive odd integer (1, 3, 5, ...)",
        )
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.window_size = window_size
        self.dropout = dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim))
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise like ``nn.MultiheadAttention``."""
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.in_proj_bias)
        nn.init.zeros_(self.out_proj.bias)

    def folded_projection(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Window-1 attention as one affine map: ``(W, b)`` with ``W = W_out W_v``, ``E x E``.

        Exact for ``window_size == 1`` without dropout: ``attention(x) == W @ x + b``. Computed
        in float64 and cast to the parameter dtype; cached in eval mode without autograd.

        Returns
        -------
        weight : torch.Tensor, shape (E, E)
        bias : torch.Tensor, shape (E,)
        """
        if self.window_size != 1:
            raise ValueError(
                f"folded_projection needs window_size == 1, got {self.window_size}: "
                "wider windows are not linear in the input."
            )
        params = (self.in_proj_weight, self.in_proj_bias, self.out_proj.weight, self.out_proj.bias)
        return self._cached("folded_projection", params, self._fold_projection)

    def _fold_projection(self) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.embed_dim
        dtype = self.in_proj_weight.dtype
        w_v = self.in_proj_weight[2 * e :].double()
        b_v = self.in_proj_bias[2 * e :].double()
        w_o, b_o = self.out_proj.weight.double(), self.out_proj.bias.double()
        return (w_o @ w_v).to(dtype), (w_o @ b_v + b_o).to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend within the window, channel-major in and out.

        Parameters
        ----------
        x : torch.Tensor, shape (B, E, L)

        Returns
        -------
        torch.Tensor, shape (B, E, L)
        """
        e = self.embed_dim
        drop = self.dropout if self.training else 0.0
        if self.window_size == 1:
            if eval_cache_enabled(self):
                return channel_linear(x, *self.folded_projection())
            w_v, b_v = self.in_proj_weight[2 * e :], self.in_proj_bias[2 * e :]
            v = channel_linear(x, w_v, b_v)  # (B, E, L)
            if drop > 0.0:
                # softmax over one key is 1; dropping it zeroes that head's value at that token
                b, _, seq_len = v.shape
                keep = torch.empty(b, self.num_heads, 1, seq_len, device=v.device, dtype=v.dtype)
                keep.bernoulli_(1.0 - drop).div_(1.0 - drop)
                v = (v.view(b, self.num_heads, self.head_dim, seq_len) * keep).view(b, e, seq_len)
            return channel_linear(v, self.out_proj.weight, self.out_proj.bias)
        return self._banded(x, drop)

    def _banded(self, x: torch.Tensor, drop: float) -> torch.Tensor:
        b, e, seq_len = x.shape
        h, d, w = self.num_heads, self.head_dim, self.window_size
        half = w // 2
        qkv = channel_linear(x, self.in_proj_weight, self.in_proj_bias)  # (B, 3E, L)
        q, k, v = qkv.view(b, 3, h, d, seq_len).unbind(1)  # (B, h, d, L) each
        q = q * (1.0 / math.sqrt(d))
        k_win = F.pad(k, (half, half)).unfold(-1, w, 1)  # (B, h, d, L, w)
        v_win = F.pad(v, (half, half)).unfold(-1, w, 1)  # (B, h, d, L, w)
        scores = (q.unsqueeze(-1) * k_win).sum(2)  # (B, h, L, w)
        pos = torch.arange(seq_len, device=x.device).unsqueeze(1) + torch.arange(
            -half, half + 1, device=x.device
        )
        valid = (pos >= 0) & (pos < seq_len)  # (L, w): window inside the sequence
        scores = scores.masked_fill(~valid, float("-inf"))
        attn = torch.softmax(scores, dim=-1)
        if drop > 0.0:
            attn = F.dropout(attn, p=drop, training=True)
        out = (attn.unsqueeze(2) * v_win).sum(-1)  # (B, h, d, L)
        out = out.reshape(b, e, seq_len)
        return channel_linear(out, self.out_proj.weight, self.out_proj.bias)


def window_attention_reference(layer: SlidingWindowAttention, x: torch.Tensor) -> torch.Tensor:
    """Dense reference: full ``L x L`` attention with a ``-inf`` mask outside the window (eval).

    Parameters
    ----------
    layer : SlidingWindowAttention
    x : torch.Tensor, shape (B, E, L)

    Returns
    -------
    torch.Tensor, shape (B, E, L)
    """
    seq_len = x.shape[-1]
    idx = torch.arange(seq_len, device=x.device)
    far = (idx.unsqueeze(0) - idx.unsqueeze(1)).abs() > layer.window_size // 2
    mask = torch.zeros(seq_len, seq_len, dtype=x.dtype, device=x.device).masked_fill(
        far, float("-inf")
    )
    xt = x.transpose(1, 2)  # (B, L, E)
    out, _ = F.multi_head_attention_forward(
        xt.transpose(0, 1),
        xt.transpose(0, 1),
        xt.transpose(0, 1),
        layer.embed_dim,
        layer.num_heads,
        layer.in_proj_weight,
        layer.in_proj_bias,
        None,
        None,
        False,
        0.0,
        layer.out_proj.weight,
        layer.out_proj.bias,
        training=False,
        need_weights=False,
        attn_mask=mask,
    )
    return out.permute(1, 2, 0)
