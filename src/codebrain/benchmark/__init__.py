"""Downstream benchmark: the paper's tasks under the authors' protocol, peers side by side.

:class:`TaskRecipe` declares one dataset's protocol (:mod:`codebrain.benchmark.recipe`, with
its preprocessing steps, hook types and splits in :mod:`~codebrain.benchmark.preprocessing`,
:mod:`~codebrain.benchmark.hooks` and :mod:`~codebrain.benchmark.split`);
:mod:`codebrain.benchmark.signal` has the building blocks of the per-dataset hooks; the
recipes themselves live in :mod:`codebrain.benchmark.tasks` and are looked up by name with
:func:`get_recipe` / :func:`list_recipes` (:mod:`codebrain.benchmark.registry`). :func:`run_benchmark` runs models on a task and
:func:`write_results` writes its report; :func:`codebrain_training_settings` is the one place
that decides how CodeBrain is fine-tuned in the benchmark. The training side is imported
lazily (PEP 562), so declaring recipes does not import torch.
"""

from __future__ import annotations

from codebrain.benchmark.hooks import Recording, TaskWindows
from codebrain.benchmark.preprocessing import (
    BandPass,
    CommonAverage,
    Notch,
    PreprocessStep,
    Resample,
)
from codebrain.benchmark.recipe import (
    BINARY_METRICS,
    MULTICLASS_METRICS,
    PATCH_SIZE,
    DatasetNotFoundError,
    FinetuneRecipe,
    TaskRecipe,
)
from codebrain.benchmark.registry import get_recipe, list_recipes, register_recipe
from codebrain.benchmark.signal import (
    apply_preprocessing,
    event_windows,
    fixed_windows,
    glob_recordings,
    pick_channels,
    read_channels,
)
from codebrain.benchmark.split import Split, fallback_split, resolve_split
from codebrain.utils._lazy import lazy_reexports

_LAZY = {
    "AuthorsHead": ".models",
    "MODEL_NAMES": ".models",
    "PEERS": ".models",
    "codebrain_training_settings": ".models",
    "DEFAULT_MODELS": ".runner",
    "PretrainOnTrain": ".pretrain_on_train",
    "run_benchmark": ".runner",
    "write_results": ".report",
    "results_table": ".report",
    "task_metrics": ".scoring",
    "validation_threshold": ".scoring",
}

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
    *_LAZY,
]

__getattr__, __dir__ = lazy_reexports(__name__, _LAZY)
