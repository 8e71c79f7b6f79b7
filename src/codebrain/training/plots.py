"""Figures of a fine-tuning run: learning curves and a confusion matrix (matplotlib, Agg).

Figures are drawn on a standalone :class:`matplotlib.figure.Figure` (no pyplot state, no GUI
backend) and written atomically as PNG.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from codebrain.utils.io import atomic_open

__all__ = ["plot_learning_curves", "plot_confusion_matrix"]

logger = logging.getLogger(__name__)


def _save(fig: Any, path: str | os.PathLike) -> Path:
    path = Path(path)
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    logger.debug("Wrote %s", path)
    return path


def plot_learning_curves(
    history: Sequence[dict[str, Any]],
    path: str | os.PathLike,
    *,
    metric: str | None = "balanced_accuracy",
    best_epoch: int | None = None,
    title: str = "CodeBrain fine-tuning",
) -> Path:
    """Plot train/validation loss (left) and a validation metric (right) per epoch.

    Parameters
    ----------
    history : sequence of dict
        :attr:`codebrain.training.finetune.FinetuneResult.history` (keys ``epoch``,
        ``train_loss``, optionally ``val_loss`` and ``val_<metric>``).
    path : path-like
        PNG file to write.
    metric : str or None
        Validation metric for the right panel (omitted when absent from ``history``).
    best_epoch : int, optional
        Marked with a vertical line.
    title : str

    Returns
    -------
    Path
    """
    from matplotlib.figure import Figure

    if not history:
        raise ValueError("history is empty: nothing to plot.")
    epochs = [h["epoch"] for h in history]
    key = f"val_{metric}" if metric else None
    has_metric = key is not None and any(h.get(key) is not None for h in history)
    fig = Figure(figsize=(9 if has_metric else 5, 3.6))
    axes = fig.subplots(1, 2 if has_metric else 1, squeeze=False)[0]
    ax = axes[0]
    ax.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    if any("val_loss" in h for h in history):
        ax.plot(epochs, [h.get("val_loss", np.nan) for h in history], "s-", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    if has_metric:
        ax2 = axes[1]
        vals = [np.nan if h.get(key) is None else h[key] for h in history]
        ax2.plot(epochs, vals, "s-", color="tab:orange")
        ax2.set_xlabel("epoch")
        ax2.set_ylabel(f"validation {metric}")
        ax2.grid(alpha=0.3)
    from matplotlib.ticker import MaxNLocator

    for a in axes:
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
        if best_epoch is not None:
            a.axvline(best_epoch, color="gray", ls="--", lw=1)
    fig.suptitle(title)
    return _save(fig, path)


def plot_confusion_matrix(
    matrix: Sequence[Sequence[int]] | np.ndarray,
    path: str | os.PathLike,
    *,
    class_names: Sequence[str] | None = None,
    title: str = "Confusion matrix",
    normalize: bool = True,
) -> Path:
    """Plot a confusion matrix (rows = true class, columns = predicted class).

    Parameters
    ----------
    matrix : array-like of int, shape (n_classes, n_classes)
    path : path-like
        PNG file to write.
    class_names : sequence of str, optional
    title : str
    normalize : bool
        Colour by row-normalised rates; cells show ``count (rate)``.

    Returns
    -------
    Path
    """
    from matplotlib.figure import Figure

    cm = np.asarray(matrix, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise ValueError(f"matrix must be square (n_classes, n_classes), got shape {cm.shape}.")
    k = cm.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    if len(names) != k:
        raise ValueError(f"class_names has {len(names)} entries for a {k}x{k} matrix.")
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    shown = rates if normalize else cm
    size = 1.2 + 0.7 * k
    fig = Figure(figsize=(size + 1, size))
    ax = fig.subplots()
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(k), labels=names, rotation=45, ha="right")
    ax.set_yticks(range(k), labels=names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                f"{int(cm[i, j])}\n({rates[i, j]:.2f})",
                ha="center",
                va="center",
                color="white" if shown[i, j] > 0.6 * (shown.max() or 1) else "black",
                fontsize=8,
            )
    ax.set_title(title)
    return _save(fig, path)
