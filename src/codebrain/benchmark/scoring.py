"""Test and validation metrics of the benchmark, as the authors compute them.

Binary tasks: ``balanced_accuracy`` (threshold 0.5 on the positive-class probability),
``auroc``, ``auprc`` = ``sklearn.metrics.auc(recall, precision)`` (the trapezoid integral of
the precision-recall curve, what CodeBrain's and CBraMod's evaluators report) and
``average_precision`` = ``average_precision_score`` (the step-wise sum, sklearn's recommended
AUPRC) beside it. Multi-class: ``balanced_accuracy``, ``cohen_kappa``, ``f1_weighted``.
A metric undefined for the labels present (AUROC with one class) is None.

Beside the authors' metrics, binary tasks report ``balanced_accuracy_val_threshold``: balanced
accuracy with the probability threshold that maximises balanced accuracy on the *validation*
windows at the selected epoch (:func:`validation_threshold`), not 0.5. A model whose logits
for unseen subjects all fall on one side of 0 gets 0.5 from the authors' metric whatever its
ranking; this one says how much of that a threshold learnt on other unseen subjects recovers.
It is codebrain's addition, never used for model selection.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

__all__ = ["task_metrics", "probabilities", "validation_threshold", "VAL_THRESHOLD_METRIC"]

#: Name of the binary balanced accuracy at the threshold chosen on validation.
VAL_THRESHOLD_METRIC = "balanced_accuracy_val_threshold"


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


def validation_threshold(y_val: np.ndarray, prob_val: np.ndarray) -> float:
    """The positive-class probability threshold that maximises balanced accuracy on validation.

    A window is called positive when its probability is ``>= threshold``. Among thresholds of
    equal balanced accuracy the one closest to 0.5 wins; with one class in ``y_val`` the
    threshold is 0.5.

    Parameters
    ----------
    y_val : np.ndarray
        ``(n,)`` labels in {0, 1}.
    prob_val : np.ndarray
        ``(n, 2)`` class probabilities.
    """
    from sklearn.metrics import roc_curve

    y = np.asarray(y_val, dtype=np.int64).reshape(-1)
    prob = np.asarray(prob_val, dtype=np.float64)
    if prob.ndim != 2 or prob.shape != (y.size, 2):
        raise ValueError(f"prob_val must be (n_samples={y.size}, 2), got {prob.shape}.")
    if np.unique(y).size < 2:
        return 0.5
    fpr, tpr, thresholds = roc_curve(y, prob[:, 1], drop_intermediate=False)
    finite = np.isfinite(thresholds) & (thresholds <= 1.0)
    j = np.where(finite, tpr - fpr, -np.inf)
    best = np.flatnonzero(np.isclose(j, j.max(), rtol=0.0, atol=1e-12))
    return float(thresholds[best[np.argmin(np.abs(thresholds[best] - 0.5))]])


def task_metrics(
    y_true: np.ndarray, prob: np.ndarray, threshold: float | None = None
) -> dict[str, Any]:
    """Metrics of class probabilities ``prob`` ``(n, n_classes)`` against labels ``y_true``.

    Parameters
    ----------
    y_true : np.ndarray
        ``(n,)`` labels.
    prob : np.ndarray
        ``(n, n_classes)`` class probabilities.
    threshold : float, optional
        Binary only: also report :data:`VAL_THRESHOLD_METRIC`, the balanced accuracy of
        ``prob[:, 1] >= threshold`` (a threshold from :func:`validation_threshold`).

    Returns
    -------
    dict
        Binary: ``balanced_accuracy, auroc, auprc, average_precision`` (and
        :data:`VAL_THRESHOLD_METRIC` with ``threshold``); multi-class:
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
            if threshold is not None:
                pred_t = (score >= threshold).astype(np.int64)
                out[VAL_THRESHOLD_METRIC] = _num(balanced_accuracy_score(y, pred_t))
        else:
            labels = list(range(k))
            out["cohen_kappa"] = _num(cohen_kappa_score(y, pred, labels=labels))
            out["f1_weighted"] = _num(
                f1_score(y, pred, labels=labels, average="weighted", zero_division=0)
            )
    return out
