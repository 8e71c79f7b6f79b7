"""Shared test building blocks: tiny model configs, windows datasets, synthetic EDF folders.

Plain functions and constants, importable where a fixture cannot reach (``parametrize`` lists,
module-level helpers, subprocess workers); ``tests/conftest.py`` exposes the main ones as
fixtures.

Model sizes, each a plain dict of constructor arguments:

* :data:`TINY_CODEBRAIN` / :data:`TINY_TOKENIZER`: the model tests' tiny models;
* :data:`TINY_CLASSIFIER`: the tiny CodeBrain as a 2-class model to fine-tune;
* :data:`TINY_BACKBONE` / :data:`TINY_BACKBONE_TOKENIZER`: a Stage 2 backbone (3 patches,
  dropout off by default) and a real tokenizer with its patch size and codebook sizes;
* :data:`TINY_LOOP_TOKENIZER`: the smallest tokenizer the Stage 1 training-loop tests train.

Windows: :class:`TensorWindows` (a map-style dataset of given tensors), filled by
:func:`random_windows`, :func:`sine_windows` (structure a tokenizer can see) or
:func:`rhythm_windows` (a separable 2-class task).
"""

from __future__ import annotations

import math
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

#: :data:`TINY_CODEBRAIN` as a 2-class model to fine-tune; SGConv kernels no longer than the
#: 6-token sequence (3 channels x 2 patches).
TINY_CLASSIFIER: dict[str, Any] = {
    **TINY_CODEBRAIN,
    "n_outputs": 2,
    "codebook_size_f": 16,
    "s4_lmax": 6,
}

#: :data:`TINY_CODEBRAIN` as a Stage 2 (masked-token) backbone: 3 patches of 200 samples, one
#: residual layer.
TINY_BACKBONE: dict[str, Any] = {
    **TINY_CODEBRAIN,
    "n_outputs": 2,
    "n_times": 600,
    "num_res_layers": 1,
}

#: A tiny real TFDual-Tokenizer for :data:`TINY_BACKBONE`: 200-sample patches, the backbone's
#: codebook sizes, 3 channels x 3 patches.
TINY_BACKBONE_TOKENIZER: dict[str, Any] = dict(
    max_chans=3,
    max_patches=3,
    embed_dim=50,  # TFConv width for 200-sample patches and 2 conv channels
    conv_channels=2,
    depth=1,
    num_heads=2,
    decoder_depth=1,
    codebook_size_t=TINY_BACKBONE["codebook_size_t"],
    codebook_size_f=TINY_BACKBONE["codebook_size_f"],
    code_dim=8,
)

#: The smallest TFDual-Tokenizer the Stage 1 training-loop tests train: 3 channels x 2 patches
#: of 32 samples, 16-code books.
TINY_LOOP_TOKENIZER: dict[str, Any] = dict(
    patch_size=32,
    max_chans=3,
    max_patches=2,
    embed_dim=16,
    conv_channels=4,
    depth=1,
    num_heads=2,
    decoder_depth=1,
    codebook_size_t=16,
    codebook_size_f=16,
    code_dim=4,
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


def make_tiny_classifier(*, seed: int | None = 0, **overrides: Any) -> CodeBrain:
    """A :data:`TINY_CLASSIFIER` CodeBrain; ``seed`` seeds torch first (default 0: fixed weights;
    ``None``: the current RNG state)."""
    if seed is not None:
        torch.manual_seed(seed)
    return CodeBrain(**{**TINY_CLASSIFIER, **overrides})


def make_tiny_backbone(
    *, seed: int | None = 0, dropout: bool = False, **overrides: Any
) -> CodeBrain:
    """A :data:`TINY_BACKBONE` CodeBrain, dropout off unless ``dropout`` (fixed initial weights)."""
    cfg = dict(TINY_BACKBONE)
    if not dropout:
        cfg.update(drop_prob=0.0, spectral_dropout=0.0)
    cfg.update(overrides)
    if seed is not None:
        torch.manual_seed(seed)
    return CodeBrain(**cfg)


def make_tiny_backbone_tokenizer(
    *, seed: int | None = 0, n_chans: int = 3, n_patches: int = 3, **overrides: Any
) -> TFDualTokenizer:
    """A randomly initialised :data:`TINY_BACKBONE_TOKENIZER` for ``n_chans`` x ``n_patches``
    (train mode; ``seed`` as in :func:`make_tiny_classifier`)."""
    if seed is not None:
        torch.manual_seed(seed)
    cfg = {**TINY_BACKBONE_TOKENIZER, "max_chans": n_chans, "max_patches": n_patches}
    return TFDualTokenizer(TokenizerConfig(**{**cfg, **overrides}))


def tiny_loop_tokenizer_config(**overrides: Any) -> TokenizerConfig:
    """:data:`TINY_LOOP_TOKENIZER` with ``overrides`` applied, as a :class:`TokenizerConfig`."""
    return TokenizerConfig(**{**TINY_LOOP_TOKENIZER, **overrides})


class TensorWindows(Dataset):
    """Map-style windows ``x[i]`` of shape ``(C, T)``, or ``(x[i], label)`` when labelled.

    Parameters
    ----------
    x : torch.Tensor or numpy.ndarray
        Windows, shape ``(N, C, T)``; items are rows of it (tensors, or arrays for an array).
    y : Sequence of int or numpy.ndarray or torch.Tensor, optional
        One label per window, shape ``(N,)``; items are then ``(x, label)`` tuples like
        ``WindowDataset``'s. Labels come back as ``int``; those of a floating-point array or
        tensor (regression targets, or labels a test means to reject) come back as they are.
    """

    def __init__(
        self, x: torch.Tensor | np.ndarray, y: Sequence[int] | np.ndarray | None = None
    ) -> None:
        if y is not None and len(y) != len(x):
            raise ValueError(f"y has {len(y)} labels for {len(x)} windows; expected one each")
        self.x, self.y = x, y
        floating = isinstance(y, torch.Tensor) and y.is_floating_point()
        self._floating = floating or (isinstance(y, np.ndarray) and y.dtype.kind == "f")

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor | tuple[torch.Tensor, Any]:
        if self.y is None:
            return self.x[i]
        return self.x[i], (self.y[i] if self._floating else int(self.y[i]))


def random_windows(
    n: int,
    *,
    n_chans: int = TINY_LOOP_TOKENIZER["max_chans"],
    n_times: int = TINY_LOOP_TOKENIZER["max_patches"] * TINY_LOOP_TOKENIZER["patch_size"],
    seed: int = 0,
) -> TensorWindows:
    """``n`` standard-normal windows ``(n_chans, n_times)`` (by default :data:`TINY_LOOP_TOKENIZER`'s
    input), drawn from a generator seeded with ``seed``."""
    g = torch.Generator().manual_seed(seed)
    return TensorWindows(torch.randn(n, n_chans, n_times, generator=g))


def sine_windows(
    n: int = 24,
    *,
    n_chans: int = TINY_BACKBONE["n_chans"],
    n_times: int = TINY_BACKBONE["n_times"],
    seed: int = 0,
    labelled: bool = False,
) -> TensorWindows:
    """Windows with structure a tokenizer can see: one random sine (2-29 Hz at 200 Hz, random
    amplitude) per channel plus noise, by default :data:`TINY_BACKBONE`'s input.

    ``labelled`` adds labels (1 when channel 0's rhythm is above 15 Hz), so that items are
    ``(x, y)`` tuples like ``WindowDataset``'s.
    """
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n_times, dtype=torch.float32) / 200.0
    freqs = torch.randint(2, 30, (n, n_chans, 1), generator=g).float()
    amps = torch.rand(n, n_chans, 1, generator=g) * 2 + 0.2
    x = amps * torch.sin(2 * torch.pi * freqs * t) + 0.3 * torch.randn(
        n, n_chans, n_times, generator=g
    )
    return TensorWindows(x, (freqs[:, 0, 0] > 15).long() if labelled else None)


def rhythm_windows(n: int = 48, *, seed: int = 0) -> TensorWindows:
    """A separable 2-class task on :data:`TINY_CLASSIFIER`'s input ``(3, 400)``: labels
    alternate 0, 1, ...; class 1 carries a 20 Hz rhythm on channel 0 (units of 100 µV), class 0
    a 6 Hz one, over noise of standard deviation 0.3."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    t = torch.arange(400) / 200.0
    x = 0.3 * torch.randn(n, 3, 400, generator=g)
    freq = torch.where(y == 1, 20.0, 6.0)[:, None]
    x[:, 0] += torch.sin(2 * math.pi * freq * t[None, :])
    return TensorWindows(x, y)


def write_synthetic_edf_folder(
    root: Path, n_subjects: int = 3, n_trials: int = 8, seed: int = 1
) -> list[Path]:
    """Synthetic motor-imagery subjects as EDF+ files under ``root`` (one file per subject)."""
    from codebrain.data import write_synthetic_dataset

    return write_synthetic_dataset(root, n_subjects=n_subjects, n_trials=n_trials, seed=seed)
