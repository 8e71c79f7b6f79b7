"""Lazy re-exports (PEP 562): names of other modules imported on first access.

A module whose names moved elsewhere, or a package that should not import its heavy
submodules up front, keeps them importable from itself with::

    __getattr__, __dir__ = lazy_reexports(__name__, {"WindowDataset": "codebrain.data.datasets"})

The first ``module.WindowDataset`` imports ``codebrain.data.datasets`` and caches the value in
the module, so later accesses are plain attribute lookups. Lazy imports also break cycles: a
module imported by the module a name moved to can still re-export it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_reexports"]


def lazy_reexports(
    module_name: str, mapping: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` re-exporting ``mapping``'s names.

    Parameters
    ----------
    module_name : str
        ``__name__`` of the re-exporting module (it is looked up in :data:`sys.modules` when a
        name is first accessed).
    mapping : mapping of str to str
        ``{name: module}``: where each name is defined. A module starting with ``"."`` is
        relative to the re-exporting module's package (``".models"`` in
        ``codebrain.benchmark`` is ``codebrain.benchmark.models``).

    Returns
    -------
    __getattr__ : callable
        ``__getattr__(name)``: imports and caches a mapped name; any other name raises
        :class:`AttributeError` as a module without ``__getattr__`` would.
    __dir__ : callable
        ``__dir__()``: the module's names and the mapped ones, sorted, each once.
    """
    names = dict(mapping)

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        module = sys.modules[module_name]
        value = getattr(importlib.import_module(names[name], module.__package__), name)
        setattr(module, name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[module_name])) | set(names))

    return __getattr__, __dir__
