"""Leak-free splits: windows of one group (subject or recording) never straddle two splits."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from codebrain.utils.check import check_int, check_number

__all__ = ["group_train_val_split", "group_kfold", "warn_if_subjects_are_recordings"]

logger = logging.getLogger(__name__)


def _check_groups(groups: Sequence, n: int, n_needed: int, what: str) -> np.ndarray:
    groups = np.asarray(groups)
    if groups.shape != (n,):
        raise ValueError(f"groups must have shape ({n},) (one per sample), got {groups.shape}.")
    n_groups = np.unique(groups).size
    if n_groups < n_needed:
        raise ValueError(
            f"{what} needs at least {n_needed} distinct groups (subjects/recordings), "
            f"got {n_groups}."
        )
    return groups


def group_train_val_split(
    y: Sequence | np.ndarray,
    groups: Sequence | np.ndarray,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    stratify: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Split sample indices into train and validation by group.

    Parameters
    ----------
    y : array-like, shape (n_samples,)
        Labels (used for stratification when ``stratify``).
    groups : array-like, shape (n_samples,)
        Subject or recording id of each sample.
    val_fraction : float
        Approximate fraction of groups held out, in (0, 1).
    seed : int
        Random state.
    stratify : bool
        Use ``StratifiedGroupKFold`` (with ``round(1 / val_fraction)`` folds, first fold) so
        both splits see every class when possible; else ``GroupShuffleSplit``.

    Returns
    -------
    train_idx, val_idx : ndarray of int
        Disjoint index arrays whose groups do not overlap.
    """
    from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold

    y = np.asarray(y)
    check_number("val_fraction", val_fraction, greater=0, less=1)
    groups = _check_groups(groups, y.shape[0], 2, "A train/validation split")
    idx = np.arange(y.shape[0])
    n_groups = np.unique(groups).size
    if stratify and np.issubdtype(y.dtype, np.integer):
        n_splits = int(min(n_groups, max(2, round(1.0 / val_fraction))))
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        train_idx, val_idx = next(splitter.split(idx, y, groups))
    else:
        splitter = GroupShuffleSplit(n_splits=1, test_size=val_fraction, random_state=seed)
        train_idx, val_idx = next(splitter.split(idx, y, groups))
    return np.sort(train_idx), np.sort(val_idx)


def group_kfold(
    y: Sequence | np.ndarray,
    groups: Sequence | np.ndarray,
    *,
    n_splits: int = 5,
    seed: int = 0,
    stratify: bool = True,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """K folds by group (``StratifiedGroupKFold`` or ``GroupKFold``).

    Parameters
    ----------
    y : array-like, shape (n_samples,)
    groups : array-like, shape (n_samples,)
    n_splits : int
        Number of folds (at most the number of groups).
    seed : int
    stratify : bool

    Returns
    -------
    list of (train_idx, test_idx)
    """
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    y = np.asarray(y)
    check_int("n_splits", n_splits, minimum=2, allow_numpy=True)
    groups = _check_groups(groups, y.shape[0], n_splits, f"{n_splits}-fold cross-validation")
    idx = np.arange(y.shape[0])
    if stratify and np.issubdtype(y.dtype, np.integer):
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    else:
        splitter = GroupKFold(n_splits=n_splits)
    return [(np.sort(a), np.sort(b)) for a, b in splitter.split(idx, y, groups)]


def warn_if_subjects_are_recordings(subjects: Sequence, recordings: Sequence) -> bool:
    """Warn when every subject has exactly one recording.

    A subject-wise split is then a recording-wise one: the subject ids probably come from file
    names.

    Returns
    -------
    bool
        Whether it warned.
    """
    per_subject: dict[str, set] = {}
    for s, r in zip(np.asarray(subjects).tolist(), np.asarray(recordings).tolist(), strict=True):
        per_subject.setdefault(str(s), set()).add(str(r))
    if len(per_subject) < 2 or any(len(r) != 1 for r in per_subject.values()):
        return False
    logger.warning(
        "Every one of the %d subjects has exactly one recording: the subject ids are probably "
        "one per file, so a subject-wise split may put one person's recordings on both sides. "
        "Pass --subject-pattern (e.g. eegbci, eegmat, tuh, bids, or a regex) if recordings "
        "share subjects.",
        len(per_subject),
    )
    return True
