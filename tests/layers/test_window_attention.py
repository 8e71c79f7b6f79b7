"""Sliding-window attention and the EEGSSM block: fast paths vs plain references (float64)."""

from __future__ import annotations

import math

import pytest
import torch

from codebrain.layers.residual import ResidualBlock, ResidualGroup
from codebrain.layers.window_attention import SlidingWindowAttention, window_attention_reference


def _attention(window: int, seed: int = 0, dropout: float = 0.0) -> SlidingWindowAttention:
    torch.manual_seed(seed)
    layer = SlidingWindowAttention(8, 2, window_size=window, dropout=dropout).double()
    with torch.no_grad():
        layer.in_proj_bias.normal_()
        layer.out_proj.bias.normal_()
    return layer


def _loop_reference(layer: SlidingWindowAttention, x: torch.Tensor) -> torch.Tensor:
    """Explicit per-position loop over the window (the textbook definition)."""
    b, e, seq_len = x.shape
    h, d, half = layer.num_heads, layer.head_dim, layer.window_size // 2
    qkv = torch.einsum("oe,bel->bol", layer.in_proj_weight, x) + layer.in_proj_bias[:, None]
    q, k, v = qkv.view(b, 3, h, d, seq_len).unbind(1)
    out = torch.zeros(b, h, d, seq_len, dtype=x.dtype)
    for t in range(seq_len):
        lo, hi = max(0, t - half), min(seq_len, t + half + 1)
        s = torch.einsum("bhd,bhdw->bhw", q[..., t], k[..., lo:hi]) / math.sqrt(d)
        out[..., t] = torch.einsum("bhw,bhdw->bhd", s.softmax(-1), v[..., lo:hi])
    out = out.reshape(b, e, seq_len)
    return torch.einsum("oe,bel->bol", layer.out_proj.weight, out) + layer.out_proj.bias[:, None]


@pytest.mark.parametrize("window", [1, 3, 7])
@pytest.mark.parametrize("seq_len", [1, 2, 5, 16])  # includes L < w
def test_fast_matches_dense_and_loop_references(window, seq_len):
    layer = _attention(window).eval()
    x = torch.randn(2, 8, seq_len, dtype=torch.float64)
    with torch.no_grad():
        fast = layer(x)
        dense = window_attention_reference(layer, x)
    loop = _loop_reference(layer, x)
    torch.testing.assert_close(fast, dense, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(fast, loop, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("window", [1, 3, 7])
def test_gradients_match_reference(window):
    layer = _attention(window).train()  # dropout 0
    x = torch.randn(2, 8, 9, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 8, 9, dtype=torch.float64)
    params = [x, *layer.parameters()]
    g = torch.autograd.grad((layer(x) * w).sum(), params)
    g_ref = torch.autograd.grad((_loop_reference(layer, x) * w).sum(), params)
    for a, b in zip(g, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_window1_dropout_is_per_token_per_head():
    layer = _attention(1, dropout=0.5).train()
    x = torch.randn(3, 8, 40, dtype=torch.float64)
    torch.manual_seed(0)
    out = layer(x)
    # recover the per-(head, token) scale applied to v: out = W_o (v * keep) + b_o
    e = layer.embed_dim
    v = torch.einsum("oe,bel->bol", layer.in_proj_weight[2 * e :], x)
    v = v + layer.in_proj_bias[2 * e :, None]
    vd = torch.linalg.solve(layer.out_proj.weight, (out - layer.out_proj.bias[:, None]))
    ratio = (vd / v).view(3, 2, 4, 40)  # (B, heads, head_dim, L)
    # the same factor for every feature of a head at a token, and it is 0 or 1 / (1 - p)
    torch.testing.assert_close(ratio, ratio[:, :, :1].expand_as(ratio), rtol=1e-6, atol=1e-6)
    vals = ratio[:, :, 0].flatten()
    assert torch.all((vals.abs() < 1e-6) | ((vals - 2.0).abs() < 1e-6))
    assert 0.2 < (vals.abs() < 1e-6).double().mean() < 0.8


def test_folded_projection_cache_invalidation():
    layer = _attention(1).eval()
    x = torch.randn(1, 8, 6, dtype=torch.float64)
    with torch.no_grad():
        a = layer(x)
        assert "folded_projection" in layer._param_cache
        layer.out_proj.weight.mul_(2.0)
        b = layer(x)
    torch.testing.assert_close(b, window_attention_reference(layer, x).detach())
    assert not torch.allclose(a, b)
    layer.load_state_dict(_attention(1, seed=4).state_dict())
    with torch.no_grad():
        torch.testing.assert_close(layer(x), window_attention_reference(layer, x))
    with pytest.raises(ValueError, match="window_size == 1"):
        _attention(3).folded_projection()


def test_invalid_windows():
    with pytest.raises(ValueError, match="odd"):
        SlidingWindowAttention(8, 2, window_size=4)
    with pytest.raises(TypeError):
        SlidingWindowAttention(8, 2, window_size=3.0)
    with pytest.raises(ValueError, match="divisible"):
        SlidingWindowAttention(9, 2)


# ---------------------------------------------------------------- EEGSSM block fast paths
def _block(window: int, bidirectional: bool = True, layer_norm: bool = False) -> ResidualBlock:
    torch.manual_seed(0)
    blk = ResidualBlock(
        8,
        6,
        s4_lmax=16,
        dropout=0.0,
        bidirectional=bidirectional,
        layer_norm=layer_norm,
        swa_window_size=window,
        sgconv_channels=2,
        num_heads=2,
    ).double()
    with torch.no_grad():
        for p in blk.parameters():
            if p.ndim == 1:
                p.normal_()
    return blk


@pytest.mark.parametrize("window", [1, 3])
@pytest.mark.parametrize("layer_norm", [False, True])
def test_block_fused_eval_matches_plain_composition(window, layer_norm):
    blk = _block(window, layer_norm=layer_norm).eval()
    h, x0 = torch.randn(2, 8, 13, dtype=torch.float64), torch.randn(2, 8, 13, dtype=torch.float64)
    with torch.no_grad():
        out, skip = blk(h, x0)
        out_ref, skip_ref = blk.forward_reference(h, x0)
        none, skip_last = blk(h, x0, need_hidden=False)
    torch.testing.assert_close(out, out_ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(skip, skip_ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(skip_last, skip_ref, rtol=1e-10, atol=1e-10)
    assert none is None


@pytest.mark.parametrize("window", [1, 3])
def test_block_training_gradients_match_plain_composition(window):
    blk = _block(window).train()
    h = torch.randn(2, 8, 11, dtype=torch.float64, requires_grad=True)
    x0 = torch.randn(2, 8, 11, dtype=torch.float64)
    wo, ws = torch.randn(2, 8, 11, dtype=torch.float64), torch.randn(2, 6, 11, dtype=torch.float64)
    params = [h, *blk.parameters()]

    def loss(out_skip):
        return (out_skip[0] * wo).sum() + (out_skip[1] * ws).sum()

    g = torch.autograd.grad(loss(blk(h, x0)), params)
    g_ref = torch.autograd.grad(loss(blk.forward_reference(h, x0)), params)
    for a, b in zip(g, g_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_block_weight_caches_follow_edits_and_modes():
    blk = _block(1).eval()
    h, x0 = torch.randn(1, 8, 9, dtype=torch.float64), torch.randn(1, 8, 9, dtype=torch.float64)
    with torch.no_grad():
        a = blk(h, x0)[0]
        blk.res_conv.parametrizations.weight.original0.mul_(1.5)  # weight-norm gain
        b = blk(h, x0)[0]
        torch.testing.assert_close(b, blk.forward_reference(h, x0)[0])
        assert not torch.allclose(a, b)
        blk.sgconv.output_linear.weight.add_(0.1)
        torch.testing.assert_close(blk(h, x0)[0], blk.forward_reference(h, x0)[0])
        blk.conv_layer.conv.parametrizations.weight.original1.mul_(-1.0)
        torch.testing.assert_close(blk(h, x0)[0], blk.forward_reference(h, x0)[0])
    blk.float()
    with torch.no_grad():
        out = blk(h.float(), x0.float())[0]
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, blk.forward_reference(h.float(), x0.float())[0])


def _tiny_group() -> ResidualGroup:
    """Two residual blocks, width 8 -> 6 skip channels, no dropout, window 1."""
    return ResidualGroup(
        2,
        res_channels=8,
        skip_channels=6,
        s4_lmax=16,
        dropout=0.0,
        bidirectional=True,
        layer_norm=False,
        swa_window_size=1,
    )


def test_group_last_block_gives_no_gradient_to_unused_res_conv():
    torch.manual_seed(0)
    group = _tiny_group()
    group(torch.randn(1, 8, 7)).sum().backward()
    last = group.residual_blocks[1]
    assert last.res_conv.bias.grad is None and last.rms_norm.scale.grad is None
    assert group.residual_blocks[0].res_conv.bias.grad is not None


def test_group_eval_batch_chunks_give_the_same_result():
    torch.manual_seed(0)
    group = _tiny_group().eval()
    x = torch.randn(5, 8, 13)
    with torch.no_grad():
        whole = group(x)
        group.eval_chunk_bytes = 1  # one sample per chunk
        chunked = group(x)
    torch.testing.assert_close(chunked, whole, rtol=1e-6, atol=1e-6)
