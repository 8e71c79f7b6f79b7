"""Labelled datasets for the downstream loops: labels, subsets, class-balanced sampling, loaders.

Datasets hold ``(x, y)`` items: ``x`` a float tensor ``(n_chans, n_times)``, ``y`` a class
index or a float target.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

__all__ = [
    "balanced_sampler",
    "batch_xy",
    "dataset_labels",
    "label_array",
    "make_loader",
    "subset",
]


def batch_xy(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a dataset item or collated batch into ``(x, y)``.

    Raises
    ------
    TypeError
        ``batch`` is not a pair (or longer tuple/list).
    """
    if not isinstance(batch, list | tuple) or len(batch) < 2:
        raise TypeError("Dataset items must be (x, y) pairs: x (n_chans, n_times), y a label.")
    return batch[0], batch[1]


def label_array(dataset: Dataset) -> np.ndarray | None:
    """The dataset's ``y`` / ``labels`` array attribute, one row per item; ``None``: none.

    Wrappers (:func:`subset`, :class:`~codebrain.training.augment.AugmentedDataset`) keep it
    as ``y`` so that :func:`dataset_labels` needs no pass over the items.
    """
    for attr in ("y", "labels"):
        val = getattr(dataset, attr, None)
        if val is not None and not callable(val):
            arr = np.asarray(val)
            if arr.ndim >= 1 and arr.shape[0] == len(dataset):
                return arr.reshape(len(dataset), *arr.shape[1:])
    return None


def dataset_labels(dataset: Dataset) -> np.ndarray:
    """All labels of a dataset of ``(x, y)`` items, shape (n_samples,).

    Uses :func:`label_array` when the dataset has one, else reads every item.
    """
    labels = label_array(dataset)
    if labels is not None:
        return labels
    return np.asarray([np.asarray(batch_xy(dataset[i])[1]) for i in range(len(dataset))])


def subset(dataset: Dataset, indices: Sequence[int]) -> Dataset:
    """``torch.utils.data.Subset`` that keeps the label array for :func:`dataset_labels`."""
    from torch.utils.data import Subset

    sub = Subset(dataset, list(map(int, indices)))
    labels = label_array(dataset)
    if labels is not None:
        sub.y = labels[np.asarray(indices, dtype=np.int64)]  # type: ignore[attr-defined]
    return sub


def balanced_sampler(y: np.ndarray, seed: int) -> torch.utils.data.WeightedRandomSampler:
    """Draw ``len(y)`` indices with replacement, every present class equally likely.

    Parameters
    ----------
    y : np.ndarray, shape (n_windows,)
        Class indices.
    seed : int
        Seeds the draw (the same seed gives the same batches).
    """
    y = np.asarray(y).astype(np.int64).reshape(-1)
    counts = np.bincount(y)
    weights = 1.0 / counts[y]
    return torch.utils.data.WeightedRandomSampler(
        torch.as_tensor(weights, dtype=torch.double),
        num_samples=int(y.size),
        replacement=True,
        generator=torch.Generator().manual_seed(seed),
    )


def make_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    num_workers: int = 0,
    shuffle: bool,
    seed: int,
    sampler: torch.utils.data.Sampler | None = None,
) -> DataLoader:
    """A training ``DataLoader`` whose shuffling is seeded (``sampler`` replaces shuffling).

    Parameters
    ----------
    dataset : Dataset of (x, y)
    batch_size : int
    num_workers : int
    shuffle : bool
        Ignored when ``sampler`` is given.
    seed : int
        Seeds the loader's generator.
    sampler : Sampler, optional
        E.g. :func:`balanced_sampler`.
    """
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle if sampler is None else False,
        sampler=sampler,
        num_workers=num_workers,
        generator=gen,
        drop_last=False,
    )
