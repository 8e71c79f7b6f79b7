"""Shared test building blocks: tiny model configs, a windows dataset, synthetic EDF folders.

Plain functions and constants, importable where a fixture cannot reach (``parametrize`` lists,
module-level helpers); ``tests/conftest.py`` exposes each of them as a fixture.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from codebrain import CodeBrain
from codebrain.models.tokenizer import TFDualTokenizer, TokenizerConfig

#: A tiny CodeBrain: 3 channels x 400 samples (2 patches of 200), width 16, 2 residual layers.
TINY_CODEBRAIN: dict[str, Any] = dict(
    n_outputs=3,
    n_chans=3,
    n_times=400,
    res_channels=16,
    skip_channels=12,
    out_channels=8,
    num_res_layers=2,
    codebook_size_t=16,
    codebook_size_f=24,
)

#: A tiny TFDual-Tokenizer: 4 channels x 4 patches of 64 samples, 64-code books.
TINY_TOKENIZER: dict[str, Any] = dict(
    patch_size=64,
    max_chans=4,
    max_patches=4,
    embed_dim=32,  # = TFConv width 2 * (4 // 2) * ((64 - 1) // 8 + 1)
    conv_channels=4,
    depth=2,
    num_heads=2,
    decoder_depth=1,
    codebook_size_t=64,
    codebook_size_f=64,
    code_dim=8,
    ema_decay=0.9,
    kmeans_init=True,
    dead_code_threshold=0.5,
    commitment_weight=0.25,
)

#: The default synthetic EDF folder: 3 subjects, 8 trials (about 60 s) each.
SYNTHETIC_EDF: dict[str, int] = dict(n_subjects=3, n_trials=8, seed=1)


def tiny_codebrain_config(**overrides: Any) -> dict[str, Any]:
    """:data:`TINY_CODEBRAIN` with ``overrides`` applied (a new dict each call)."""
    return {**TINY_CODEBRAIN, **overrides}


def make_tiny_codebrain(*, seed: int | None = None, **overrides: Any) -> CodeBrain:
    """A tiny :class:`CodeBrain`; ``seed`` seeds torch first (``None``: the current RNG state)."""
    if seed is not None:
        torch.manual_seed(seed)
    return CodeBrain(**tiny_codebrain_config(**overrides))


def tiny_tokenizer_config(**overrides: Any) -> TokenizerConfig:
    """:data:`TINY_TOKENIZER` with ``overrides`` applied, as a :class:`TokenizerConfig`."""
    return TokenizerConfig(**{**TINY_TOKENIZER, **overrides})


def make_tiny_tokenizer(*, seed: int | None = None, **overrides: Any) -> TFDualTokenizer:
    """A tiny :class:`TFDualTokenizer`; ``seed`` as in :func:`make_tiny_codebrain`."""
    if seed is not None:
        torch.manual_seed(seed)
    return TFDualTokenizer(tiny_tokenizer_config(**overrides))


class TensorWindows(Dataset):
    """Map-style windows ``x[i]`` of shape ``(C, T)``, or ``(x[i], int(y[i]))`` when labelled.

    Parameters
    ----------
    x : torch.Tensor
        Windows, shape ``(N, C, T)``.
    y : Sequence of int or numpy.ndarray or torch.Tensor, optional
        One label per window, shape ``(N,)``; items are then ``(x, label)`` tuples like
        ``WindowDataset``'s.
    """

    def __init__(self, x: torch.Tensor, y: Sequence[int] | np.ndarray | None = None) -> None:
        if y is not None and len(y) != len(x):
            raise ValueError(f"y has {len(y)} labels for {len(x)} windows; expected one each")
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor | tuple[torch.Tensor, int]:
        return self.x[i] if self.y is None else (self.x[i], int(self.y[i]))


def write_synthetic_edf_folder(
    root: Path, n_subjects: int = 3, n_trials: int = 8, seed: int = 1
) -> list[Path]:
    """Synthetic motor-imagery subjects as EDF+ files under ``root`` (one file per subject)."""
    from codebrain.data import write_synthetic_dataset

    return write_synthetic_dataset(root, n_subjects=n_subjects, n_trials=n_trials, seed=seed)
