"""Shared test configuration and fixtures.

Offline hub, deterministic seeds, and the shared tiny building blocks of :mod:`_fixtures`:
``tiny_codebrain`` / ``tiny_codebrain_config``, ``tiny_tokenizer`` / ``tiny_tokenizer_config``
(factories taking overrides), ``windows_dataset`` (a factory of map-style tensor datasets) and
``synthetic_edfs`` / ``synthetic_edf_folder`` (synthetic EDF+ subjects written once per session).
The training tests' variants (``TINY_CLASSIFIER``, ``TINY_BACKBONE`` and its tokenizer,
``TINY_LOOP_TOKENIZER``, the ``*_windows`` factories) are imported from :mod:`_fixtures`.
"""

from __future__ import annotations

import os

# Tests never touch the network: set before huggingface_hub is imported anywhere.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from _fixtures import (
    SYNTHETIC_EDF,
    TensorWindows,
    make_tiny_codebrain,
    make_tiny_tokenizer,
    tiny_codebrain_config,
    tiny_tokenizer_config,
    write_synthetic_edf_folder,
)

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(name="tiny_codebrain_config")
def _tiny_codebrain_config() -> Callable[..., dict]:
    """Factory: ``tiny_codebrain_config(**overrides)`` -> the tiny CodeBrain kwargs."""
    return tiny_codebrain_config


@pytest.fixture(name="tiny_codebrain")
def _tiny_codebrain() -> Callable[..., torch.nn.Module]:
    """Factory: ``tiny_codebrain(seed=None, **overrides)`` -> a tiny CodeBrain (train mode)."""
    return make_tiny_codebrain


@pytest.fixture(name="tiny_tokenizer_config")
def _tiny_tokenizer_config() -> Callable[..., object]:
    """Factory: ``tiny_tokenizer_config(**overrides)`` -> a tiny TokenizerConfig."""
    return tiny_tokenizer_config


@pytest.fixture(name="tiny_tokenizer")
def _tiny_tokenizer() -> Callable[..., torch.nn.Module]:
    """Factory: ``tiny_tokenizer(seed=None, **overrides)`` -> a tiny TFDualTokenizer."""
    return make_tiny_tokenizer


@pytest.fixture(name="windows_dataset")
def _windows_dataset() -> type[TensorWindows]:
    """Factory: ``windows_dataset(x, y=None)`` -> a map-style dataset of windows (and labels)."""
    return TensorWindows


@pytest.fixture(scope="session")
def synthetic_edf_folder(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[..., list[Path]]:
    """Factory: ``synthetic_edf_folder(n_subjects=3, n_trials=8, seed=1)`` -> EDF+ paths.

    Each distinct argument set is written once per session and shared: treat the files as
    read-only (copy them to change them).
    """
    cache: dict[tuple[int, int, int], list[Path]] = {}

    def make(n_subjects: int = 3, n_trials: int = 8, seed: int = 1) -> list[Path]:
        key = (n_subjects, n_trials, seed)
        if key not in cache:
            root = tmp_path_factory.mktemp(f"synthetic-{n_subjects}x{n_trials}-seed{seed}")
            cache[key] = write_synthetic_edf_folder(root, n_subjects, n_trials, seed)
        return list(cache[key])

    return make


@pytest.fixture(scope="session")
def synthetic_edfs(synthetic_edf_folder: Callable[..., list[Path]]) -> list[Path]:
    """Three short synthetic subjects (8 trials, about 60 s each) as EDF+ files (read-only)."""
    return synthetic_edf_folder(**SYNTHETIC_EDF)
