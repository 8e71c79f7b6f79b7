"""Eval-mode caches of tensors derived from a module's parameters (folded or normed weights).

One rule decides when such a cache may be used (:func:`eval_cache_enabled`), one key says
whether a cached value is still valid (:func:`param_key`), and one base class
(:class:`ParamCache`) holds the values and clears them whenever the module changes mode or
storage (``train()``/``eval()``, ``.to()``/``.double()``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import nn

__all__ = ["ParamCache", "eval_cache_enabled", "param_key"]

T = TypeVar("T")


def param_key(*tensors: torch.Tensor) -> tuple:
    """Cache key for values derived from ``tensors``: version counter, storage, dtype, device.

    In-place updates (optimizer steps, ``load_state_dict``, ``with torch.no_grad(): p.add_()``)
    bump the version; ``.to()`` / ``.double()`` change the storage. Writes through ``p.data``
    bypass the version counter: call ``model.train()`` or ``model.eval()`` after such edits
    (both clear every cache).
    """
    return tuple((t._version, t.data_ptr(), t.dtype, t.device) for t in tensors)


def eval_cache_enabled(module: nn.Module) -> bool:
    """Whether ``module`` may use tensors cached from its parameters.

    True in eval mode without autograd, run eagerly: a cached tensor would otherwise hold a
    stale graph (training, autograd) or be baked into a traced graph (``torch.compile``).
    """
    return not module.training and not torch.is_grad_enabled() and not torch.compiler.is_compiling()


class ParamCache(nn.Module):
    """Base for modules that cache tensors derived from their parameters in eval mode.

    :meth:`_cached` returns the stored value while :func:`eval_cache_enabled` holds and the
    key (:func:`param_key` of the source tensors plus any ``extra_key``) is unchanged. The
    cache is cleared by ``train()``/``eval()``, by ``.to()``/``.double()`` (``_apply``) and by
    :meth:`clear_param_cache`.
    """

    def __init__(self) -> None:
        super().__init__()
        self._param_cache: dict[str, tuple[tuple, Any]] = {}

    def _cached(
        self,
        name: str,
        sources: tuple[torch.Tensor, ...],
        build: Callable[[], T],
        extra_key: tuple = (),
    ) -> T:
        """``build()``, reused while the module may cache and ``sources`` are unchanged."""
        if not eval_cache_enabled(self):
            return build()
        key = (*extra_key, param_key(*sources))
        hit = self._param_cache.get(name)
        if hit is not None and hit[0] == key:
            return hit[1]
        value = build()
        self._param_cache[name] = (key, value)
        return value

    def clear_param_cache(self) -> None:
        """Drop every cached tensor (needed after writes through ``p.data``)."""
        self._param_cache = {}

    def train(self, mode: bool = True) -> ParamCache:
        """Set the mode (``nn.Module.train``) and clear the cache."""
        self.clear_param_cache()
        return super().train(mode)

    def _apply(self, fn: Callable, recurse: bool = True) -> ParamCache:
        self.clear_param_cache()
        return super()._apply(fn, recurse)
