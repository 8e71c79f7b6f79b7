"""Downstream metrics as reported in the CodeBrain paper (arXiv 2506.09110, §4).

Multi-class: balanced accuracy, Cohen's kappa, weighted F1. Binary: balanced accuracy, AUROC,
AUPRC. Regression: RMSE, R², Pearson's r. Every function returns a plain ``dict`` of Python
floats / ints / lists (JSON-able); a metric that is undefined for the given labels (e.g. AUROC
with a single class present) is ``None``, never NaN.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from codebrain.utils.check import check_option

__all__ = [
    "classification_metrics",
    "regression_metrics",
    "compute_metrics",
    "softmax",
    "PRIMARY_METRIC",
]

logger = logging.getLogger(__name__)

#: Metric used to select the best epoch (higher is better unless it is a loss or RMSE).
PRIMARY_METRIC = {"classification": "balanced_accuracy", "regression": "r2"}


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis.

    Parameters
    ----------
    logits : ndarray, shape (n_samples, n_classes)

    Returns
    -------
    ndarray, shape (n_samples, n_classes)
        Rows sum to one.
    """
    logits = np.asarray(logits, dtype=np.float64)
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _finite_or_none(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def classification_metrics(
    y_true: Sequence[int] | np.ndarray,
    y_prob: np.ndarray,
    *,
    n_classes: int | None = None,
) -> dict[str, Any]:
    """Classification metrics from true labels and class probabilities.

    Parameters
    ----------
    y_true : array-like of int, shape (n_samples,)
        True class indices in ``[0, n_classes)``.
    y_prob : ndarray, shape (n_samples, n_classes)
        Class probabilities (rows summing to one; use :func:`softmax` on logits).
    n_classes : int, optional
        Number of classes; defaults to ``y_prob.shape[1]``.

    Returns
    -------
    dict
        Always: ``n_samples``, ``accuracy``, ``balanced_accuracy``, ``cohen_kappa``,
        ``f1_weighted``, ``confusion_matrix`` (list of lists, rows = true class). For two
        classes also ``auroc`` and ``auprc`` (positive class = 1; ``None`` when ``y_true``
        holds a single class).

    Raises
    ------
    ValueError
        Shapes disagree, labels are out of range, or there are no samples.
    """
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        balanced_accuracy_score,
        cohen_kappa_score,
        confusion_matrix,
        f1_score,
        roc_auc_score,
    )

    y_true = np.asarray(y_true).astype(np.int64).reshape(-1)
    y_prob = np.asarray(y_prob, dtype=np.float64)
    if y_prob.ndim != 2:
        raise ValueError(
            f"y_prob must have shape (n_samples, n_classes), got {y_prob.ndim} dims {y_prob.shape}."
        )
    if y_prob.shape[0] != y_true.shape[0]:
        raise ValueError(
            f"y_true has {y_true.shape[0]} samples but y_prob has {y_prob.shape[0]} rows."
        )
    if y_true.size == 0:
        raise ValueError("Cannot compute metrics on zero samples.")
    k = int(n_classes if n_classes is not None else y_prob.shape[1])
    if y_prob.shape[1] != k:
        raise ValueError(f"y_prob has {y_prob.shape[1]} columns, expected n_classes={k}.")
    if y_true.min() < 0 or y_true.max() >= k:
        raise ValueError(
            f"y_true must hold class indices in [0, {k}), got range [{y_true.min()}, {y_true.max()}]."
        )
    y_pred = y_prob.argmax(axis=1)
    labels = list(range(k))
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            # sklearn warns (UndefinedMetricWarning / RuntimeWarning) on degenerate label sets;
            # those cases are reported as None / 0 below instead.
            warnings.simplefilter("ignore")
            out: dict[str, Any] = {
                "n_samples": int(y_true.size),
                "accuracy": float(accuracy_score(y_true, y_pred)),
                "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
                "cohen_kappa": _finite_or_none(cohen_kappa_score(y_true, y_pred, labels=labels)),
                "f1_weighted": float(
                    f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)
                ),
                "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
            }
            if k == 2:
                present = np.unique(y_true)
                if present.size == 2:
                    out["auroc"] = float(roc_auc_score(y_true, y_prob[:, 1]))
                    out["auprc"] = float(average_precision_score(y_true, y_prob[:, 1]))
                else:
                    out["auroc"] = None
                    out["auprc"] = None
    return out


def regression_metrics(
    y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray
) -> dict[str, Any]:
    """Regression metrics.

    Parameters
    ----------
    y_true, y_pred : array-like of float, shape (n_samples,) or (n_samples, 1)

    Returns
    -------
    dict
        ``n_samples``, ``rmse``, ``r2`` and ``pearson_r`` (``None`` when a variance is zero).
    """
    y_true = np.asarray(y_true, dtype=np.float64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred must have the same length, got {y_true.size} and {y_pred.size}."
        )
    if y_true.size == 0:
        raise ValueError("Cannot compute metrics on zero samples.")
    err = y_pred - y_true
    ss_res = float(np.sum(err**2))
    ss_tot = float(np.sum((y_true - y_true.mean()) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else None
    sd_t, sd_p = float(y_true.std()), float(y_pred.std())
    pearson = (
        float(np.mean((y_true - y_true.mean()) * (y_pred - y_pred.mean())) / (sd_t * sd_p))
        if sd_t > 0 and sd_p > 0
        else None
    )
    return {
        "n_samples": int(y_true.size),
        "rmse": float(math.sqrt(ss_res / y_true.size)),
        "r2": r2,
        "pearson_r": pearson,
    }


def compute_metrics(
    y_true: np.ndarray,
    outputs: np.ndarray,
    task: Literal["classification", "regression"] = "classification",
) -> dict[str, Any]:
    """Metrics from raw model outputs.

    Parameters
    ----------
    y_true : ndarray, shape (n_samples,)
    outputs : ndarray, shape (n_samples, n_outputs)
        Logits for classification (a softmax is applied), predictions for regression.
    task : {"classification", "regression"}

    Returns
    -------
    dict
        See :func:`classification_metrics` and :func:`regression_metrics`.
    """
    check_option("task", task, ("classification", "regression"))
    if task == "regression":
        return regression_metrics(y_true, outputs)
    outputs = np.asarray(outputs)
    return classification_metrics(y_true, softmax(outputs), n_classes=outputs.shape[1])
