"""Mixed precision and dtypes: bf16 autocast (FFTs kept in float32), bf16 and float64 models.

The documented bound (``codebrain.layers.sgconv`` module docstring): under CPU bf16 autocast,
or with a ``.to(torch.bfloat16)`` model, outputs differ from float32 by at most 2 % of the
output scale (max abs difference / max abs float32 output); measured 0.3-0.9 % on tiny configs
and 0.8-1.2 % on the default 19 x 6000 configuration.
"""

from __future__ import annotations

import copy

import pytest
import torch

from _fixtures import make_tiny_codebrain
from codebrain import CodeBrain
from codebrain.layers.sgconv import SGConv

# The tiny model at the sizes the bound was measured on: 600 samples, 32-code books.
SIZES = dict(n_times=600, skip_channels=16, codebook_size_t=32, codebook_size_f=32)
BF16_BOUND = 2e-2


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max() / b.double().abs().max())


def _model(seed: int, **kw) -> CodeBrain:
    return make_tiny_codebrain(seed=seed, **{**SIZES, **kw}).eval()


@pytest.mark.parametrize(("seed", "window"), [(0, 1), (1, 3)])
def test_bf16_autocast_within_documented_bound(seed, window):
    m = _model(seed, swa_window_size=window)
    x = torch.randn(2, 3, 600)
    with torch.no_grad():
        f32_feat, f32_logits = m.encode(x), m(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            feat, logits = m.encode(x), m(x)
    assert feat.dtype == torch.bfloat16
    assert _rel(feat, f32_feat) <= BF16_BOUND
    assert _rel(logits, f32_logits) <= BF16_BOUND


def test_bf16_autocast_training_step_has_finite_gradients():
    m = _model(0).train()
    x = torch.randn(2, 3, 600)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = torch.nn.functional.cross_entropy(m(x), torch.tensor([0, 1]))
    loss.backward()
    grads = [p.grad for p in m.parameters() if p.grad is not None]
    assert grads and all(bool(torch.isfinite(g).all()) for g in grads)
    assert all(p.grad.dtype == torch.float32 for p in m.parameters() if p.grad is not None)


def test_bf16_model_within_documented_bound():
    m = _model(2)
    mb = copy.deepcopy(m).to(torch.bfloat16)
    x = torch.randn(2, 3, 600)
    with torch.no_grad():
        out = mb(x.to(torch.bfloat16))
        ref = m(x)
    assert out.dtype == torch.bfloat16
    assert _rel(out, ref) <= BF16_BOUND


def test_float64_model_agrees_with_float32():
    m = _model(3, swa_window_size=3)
    md = copy.deepcopy(m).double()
    x = torch.randn(2, 3, 600)
    with torch.no_grad():
        out64 = md(x.double())
        out32 = m(x)
    assert out64.dtype == torch.float64
    assert _rel(out32, out64) <= 1e-5


def test_sgconv_ffts_run_in_float32_under_autocast():
    """Under autocast the long convolution equals the float32 one up to bf16 output rounding."""
    torch.manual_seed(0)
    layer = SGConv(16, l_max=40, channels=2, bidirectional=True).eval()
    x = torch.randn(2, 16, 40).to(torch.bfloat16)
    with torch.no_grad():
        exact = layer.long_conv(x.float())
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = layer.long_conv(x)
            spec = layer._kernel_spectrum(40, 81)
    assert y.dtype == torch.bfloat16
    assert spec.dtype == torch.complex64
    # only the final cast to bf16 rounds: relative error <= 2^-8 per element
    assert bool(((y.float() - exact).abs() <= exact.abs() * 2.0**-8 + 1e-6).all())
