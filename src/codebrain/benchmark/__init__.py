"""Downstream benchmark: the paper's tasks under the authors' protocol, peers side by side.

:class:`TaskRecipe` declares one dataset's protocol (:mod:`codebrain.benchmark.recipe`);
:mod:`codebrain.benchmark.signal` has the building blocks of the per-dataset hooks; the
recipes themselves live in :mod:`codebrain.benchmark.tasks` and are looked up by name with
:func:`get_recipe` / :func:`list_recipes`.
"""

from __future__ import annotations

from codebrain.benchmark.recipe import (
    BINARY_METRICS,
    MULTICLASS_METRICS,
    PATCH_SIZE,
    BandPass,
    CommonAverage,
    DatasetNotFoundError,
    FinetuneRecipe,
    Notch,
    PreprocessStep,
    Recording,
    Resample,
    Split,
    TaskRecipe,
    TaskWindows,
    fallback_split,
    get_recipe,
    list_recipes,
    register_recipe,
    resolve_split,
)
from codebrain.benchmark.signal import (
    apply_preprocessing,
    event_windows,
    fixed_windows,
    glob_recordings,
    pick_channels,
    read_channels,
)

__all__ = [
    "BINARY_METRICS",
    "MULTICLASS_METRICS",
    "PATCH_SIZE",
    "BandPass",
    "CommonAverage",
    "DatasetNotFoundError",
    "FinetuneRecipe",
    "Notch",
    "PreprocessStep",
    "Recording",
    "Resample",
    "Split",
    "TaskRecipe",
    "TaskWindows",
    "apply_preprocessing",
    "event_windows",
    "fallback_split",
    "fixed_windows",
    "get_recipe",
    "glob_recordings",
    "list_recipes",
    "pick_channels",
    "read_channels",
    "register_recipe",
    "resolve_split",
]
