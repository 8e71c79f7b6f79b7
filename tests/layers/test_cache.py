"""The one eval-cache rule (codebrain.layers._cache) and the layers that use it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from codebrain.layers import ResidualBlock, SGConv, SlidingWindowAttention
from codebrain.layers._cache import ParamCache, eval_cache_enabled
from codebrain.layers.residual import WNConv1d


class _Scaled(ParamCache):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(3))
        self.builds = 0

    def doubled(self) -> torch.Tensor:
        def build() -> torch.Tensor:
            self.builds += 1
            return self.w * 2

        return self._cached("doubled", (self.w,), build)


def test_cache_only_in_eval_without_autograd():
    m = _Scaled()
    assert not eval_cache_enabled(m)  # training mode
    m.eval()
    assert not eval_cache_enabled(m)  # autograd on
    with torch.no_grad():
        assert eval_cache_enabled(m)
        m.doubled(), m.doubled()
    assert m.builds == 1
    m.doubled(), m.doubled()  # with autograd: built every time, never stored over
    assert m.builds == 3


@pytest.mark.parametrize("change", ["inplace", "train", "to", "clear"])
def test_cache_is_dropped_when_the_module_changes(change: str):
    m = _Scaled().eval()
    with torch.no_grad():
        m.doubled()
    if change == "inplace":
        with torch.no_grad():
            m.w.add_(1.0)
    elif change == "train":
        m.train().eval()
        assert not m._param_cache
    elif change == "to":
        m.double()
        assert not m._param_cache
    else:
        m.clear_param_cache()
        assert not m._param_cache
    with torch.no_grad():
        out = m.doubled()
    assert m.builds == 2
    torch.testing.assert_close(out, m.w.detach() * 2)


@pytest.mark.parametrize("cls", [SGConv, SlidingWindowAttention, WNConv1d, ResidualBlock])
def test_caching_layers_share_the_one_rule(cls: type):
    assert issubclass(cls, ParamCache)
    assert cls.train is ParamCache.train and cls._apply is ParamCache._apply
