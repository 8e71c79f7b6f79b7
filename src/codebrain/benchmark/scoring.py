"""Test and validation metrics of the benchmark, as the authors compute them.

Binary tasks: ``balanced_accuracy`` (threshold 0.5 on the positive-class probability),
``auroc``, ``auprc`` = ``sklearn.metrics.auc(recall, precision)`` (the trapezoid integral of
the precision-recall curve, what CodeBrain's and CBraMod's evaluators report) and
``average_precision`` = ``average_precision_score`` (the step-wise sum, sklearn's recommended
AUPRC) beside it. Multi-class: ``balanced_accuracy``, ``cohen_kappa``, ``f1_weighted``.
A metric undefined for the labels present (AUROC with one class) is None.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

__all__ = ["task_metrics", "probabilities"]


def probabilities(outputs: np.ndarray, n_classes: int) -> np.ndarray:
    """Class probabilities ``(n, n_classes)`` from model outputs.

    Parameters
    ----------
    outputs : np.ndarray
        ``(n,)`` or ``(n, 1)`` logits of the positive class (binary, one logit), or
        ``(n, n_classes)`` logits.
    n_classes : int
    """
    out = np.asarray(outputs, dtype=np.float64)
    if out.ndim == 1 or (out.ndim == 2 and out.shape[1] == 1 and n_classes == 2):
        z = out.reshape(-1)
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))
        return np.stack([1 - p, p], axis=1)
    if out.ndim != 2 or out.shape[1] != n_classes:
        raise ValueError(f"Expected outputs (n, {n_classes}) or (n,), got shape {out.shape}.")
    z = out - out.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def predicted_counts(prob: np.ndarray) -> list[int]:
    """How many windows each class wins in ``prob`` ``(n, n_classes)`` (argmax), per class."""
    prob = np.asarray(prob)
    if prob.ndim != 2:
        raise ValueError(f"prob must be (n_samples, n_classes), got shape {prob.shape}.")
    return np.bincount(prob.argmax(axis=1), minlength=prob.shape[1]).tolist()


def _num(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def task_metrics(y_true: np.ndarray, prob: np.ndarray) -> dict[str, Any]:
    """Metrics of class probabilities ``prob`` ``(n, n_classes)`` against labels ``y_true``.

    Returns
    -------
    dict
        Binary: ``balanced_accuracy, auroc, auprc, average_precision``; multi-class:
        ``balanced_accuracy, cohen_kappa, f1_weighted``; Python floats or None.
    """
    from sklearn.metrics import (
        auc,
        average_precision_score,
        balanced_accuracy_score,
        cohen_kappa_score,
        f1_score,
        precision_recall_curve,
        roc_auc_score,
    )

    y = np.asarray(y_true, dtype=np.int64).reshape(-1)
    prob = np.asarray(prob, dtype=np.float64)
    if prob.ndim != 2 or prob.shape[0] != y.size:
        raise ValueError(f"prob must be (n_samples={y.size}, n_classes), got {prob.shape}.")
    if y.size == 0:
        raise ValueError("Cannot score zero windows.")
    k = prob.shape[1]
    pred = prob.argmax(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate label sets -> None below
        out: dict[str, Any] = {"balanced_accuracy": _num(balanced_accuracy_score(y, pred))}
        if k == 2:
            both = np.unique(y).size == 2
            score = prob[:, 1]
            if both:
                precision, recall, _ = precision_recall_curve(y, score)
                out["auroc"] = _num(roc_auc_score(y, score))
                out["auprc"] = _num(auc(recall, precision))
                out["average_precision"] = _num(average_precision_score(y, score))
            else:
                out.update(auroc=None, auprc=None, average_precision=None)
        else:
            labels = list(range(k))
            out["cohen_kappa"] = _num(cohen_kappa_score(y, pred, labels=labels))
            out["f1_weighted"] = _num(
                f1_score(y, pred, labels=labels, average="weighted", zero_division=0)
            )
    return out
