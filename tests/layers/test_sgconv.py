"""SGConv: FFT fast path vs the direct-convolution reference (float64), kernel-cache invalidation."""

from __future__ import annotations

import copy

import pytest
import torch

from codebrain.layers.sgconv import SGConv, channel_linear, fast_fft_size, sgconv_reference


def _layer(bidirectional: bool, l_max: int = 24, layer_norm: bool = False, seed: int = 0) -> SGConv:
    torch.manual_seed(seed)
    layer = SGConv(
        6, l_max=l_max, channels=3, bidirectional=bidirectional, layer_norm=layer_norm
    ).double()
    with torch.no_grad():  # non-trivial LayerNorm/bias so every term is exercised
        layer.output_linear.bias.normal_()
        if layer_norm:
            layer.norm.weight.normal_()
            layer.norm.bias.normal_()
    return layer


@pytest.mark.parametrize("n", [1, 2, 7, 8, 1139, 1140, 1151, 4097])
def test_fast_fft_size_is_smallest_5_smooth(n):
    m = fast_fft_size(n)
    assert m >= n

    def smooth(k: int) -> bool:
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        return k == 1

    assert smooth(m)
    assert not any(smooth(k) for k in range(n, m))


@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("seq_len", [1, 5, 17, 24, 41, 64])  # shorter/equal/longer than kernel
@pytest.mark.parametrize("layer_norm", [False, True])
def test_fft_matches_direct_convolution_float64(bidirectional, seq_len, layer_norm):
    layer = _layer(bidirectional, layer_norm=layer_norm).eval()
    x = torch.randn(2, 6, seq_len, dtype=torch.float64)
    with torch.no_grad():
        fast = layer(x)
        ref = sgconv_reference(layer, x)
    assert fast.shape == (2, 6, seq_len)
    torch.testing.assert_close(fast, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_gradients_match_reference_float64(bidirectional):
    layer = _layer(bidirectional).train()  # dropout is 0: training mode is deterministic
    x = torch.randn(2, 6, 19, dtype=torch.float64, requires_grad=True)
    out = layer(x)
    w = torch.randn_like(out)
    grads = torch.autograd.grad((out * w).sum(), [x, *layer.parameters()])
    out_ref = sgconv_reference(layer, x)
    grads_ref = torch.autograd.grad((out_ref * w).sum(), [x, *layer.parameters()])
    for g, g_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(g, g_ref, rtol=1e-9, atol=1e-10)


def test_causal_output_does_not_see_the_future():
    layer = _layer(False).eval()
    x = torch.randn(1, 6, 30, dtype=torch.float64)
    x2 = x.clone()
    x2[..., 20:] += 1.0
    with torch.no_grad():
        a, b = layer(x), layer(x2)
    torch.testing.assert_close(a[..., :20], b[..., :20], rtol=0, atol=1e-12)
    assert not torch.allclose(a[..., 20:], b[..., 20:])


def _eval_out(layer: SGConv, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return layer(x)


@pytest.mark.parametrize(
    "edit",
    ["kernel_inplace", "skip_inplace", "load_state_dict", "train_roundtrip", "to_float32"],
)
def test_kernel_cache_is_invalidated(edit):
    layer = _layer(True).eval()
    x = torch.randn(2, 6, 20, dtype=torch.float64)
    before = _eval_out(layer, x)
    assert "kernel_spectrum" in layer._param_cache
    torch.testing.assert_close(_eval_out(layer, x), before)  # cached: same result

    other = _layer(True, seed=5)
    if edit == "kernel_inplace":
        with torch.no_grad():
            layer.kernel_list[0].mul_(3.0)
    elif edit == "skip_inplace":
        with torch.no_grad():
            layer.skip_weight.add_(1.0)
    elif edit == "load_state_dict":
        layer.load_state_dict(other.state_dict())
    elif edit == "train_roundtrip":
        layer.train()
        with torch.no_grad():
            layer.kernel_list[1].data = layer.kernel_list[1].data * 2.0  # bypasses versions
        layer.eval()
    elif edit == "to_float32":
        layer.float()
        x = x.float()
    after = _eval_out(layer, x)
    expected = sgconv_reference(layer, x).detach()
    tol = 1e-5 if edit == "to_float32" else 1e-10
    torch.testing.assert_close(after, expected, rtol=tol, atol=tol)
    if edit != "to_float32":
        assert not torch.allclose(after, before)


def test_no_cache_while_training_or_with_autograd():
    layer = _layer(True).train()
    x = torch.randn(1, 6, 12, dtype=torch.float64)
    layer(x)
    assert not layer._param_cache
    layer.eval()
    layer(x)  # grad enabled: no cache (the spectrum would hold a graph)
    assert not layer._param_cache


def test_reference_state_dict_with_uninitialised_norm_is_normalised_on_load():
    layer = _layer(True)
    sd = copy.deepcopy(layer.state_dict())
    sd["kernel_norm"] = torch.ones_like(sd["kernel_norm"])
    sd["kernel_norm_initialized"] = torch.tensor(False)
    fresh = _layer(True, seed=9)
    fresh.load_state_dict(sd)
    torch.testing.assert_close(fresh.kernel_norm, layer.kernel_norm)


def test_channel_linear_matches_linear():
    x = torch.randn(3, 5, 7, dtype=torch.float64)
    w = torch.randn(4, 5, dtype=torch.float64)
    b = torch.randn(4, dtype=torch.float64)
    expected = torch.nn.functional.linear(x.transpose(1, 2), w, b).transpose(1, 2)
    torch.testing.assert_close(channel_linear(x, w, b), expected)
    torch.testing.assert_close(channel_linear(x, w, None), expected - b[:, None])


@pytest.mark.parametrize("layer_norm", [False, True])
def test_eval_feature_chunks_match_reference(layer_norm):
    """``features`` (used by the residual block in eval) in chunks equals the one-shot path."""
    layer = _layer(True, layer_norm=layer_norm).eval()
    x = torch.randn(2, 6, 29, dtype=torch.float64)
    with torch.no_grad():
        layer.eval_chunk_bytes = 1  # one feature per chunk: the chunked branch runs
        chunked = layer.features(x)
        layer.eval_chunk_bytes = 2**40  # one chunk: the plain branch
        whole = layer.features(x)
        projected = torch.nn.functional.linear(
            chunked.transpose(1, 2), layer.output_linear.weight, layer.output_linear.bias
        ).transpose(1, 2)
    assert chunked.shape == (2, 3 * 6, 29)
    torch.testing.assert_close(chunked, whole, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        projected, sgconv_reference(layer, x).detach(), rtol=1e-10, atol=1e-10
    )
