"""Metrics (sklearn-backed, JSON-able) and figures of a fine-tuning run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from codebrain.training.metrics import (
    classification_metrics,
    compute_metrics,
    regression_metrics,
    softmax,
)
from codebrain.training.plots import plot_confusion_matrix, plot_learning_curves


def test_binary_metrics_match_hand_computed_values():
    y = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    p1 = np.array([0.1, 0.6, 0.2, 0.9, 0.8, 0.4, 0.7, 0.95])
    prob = np.stack([1 - p1, p1], axis=1)
    m = classification_metrics(y, prob)
    # predictions: 0 1 0 1 1 0 1 1 -> class 0 recall 2/3, class 1 recall 4/5
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["confusion_matrix"] == [[2, 1], [1, 4]]
    # AUROC: pairs (neg, pos) ranked correctly: 14 of 15
    assert m["auroc"] == pytest.approx(14 / 15)
    assert 0.0 < m["auprc"] <= 1.0
    json.dumps(m)  # JSON-able


def test_multiclass_metrics_and_perfect_prediction():
    y = np.array([0, 1, 2, 2, 1, 0])
    prob = np.eye(3)[y] * 0.9 + 0.1 / 3
    m = classification_metrics(y, prob)
    assert m["balanced_accuracy"] == 1.0
    assert m["cohen_kappa"] == pytest.approx(1.0)
    assert m["f1_weighted"] == pytest.approx(1.0)
    assert "auroc" not in m
    wrong = classification_metrics(y, np.eye(3)[(y + 1) % 3])
    assert wrong["balanced_accuracy"] == 0.0
    assert wrong["cohen_kappa"] < 0


def test_single_class_binary_gives_none_not_nan():
    m = classification_metrics([1, 1, 1], np.array([[0.2, 0.8]] * 3))
    assert m["auroc"] is None and m["auprc"] is None
    assert "NaN" not in json.dumps(m)


def test_regression_metrics():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    m = regression_metrics(y, y + 1.0)
    assert m["rmse"] == pytest.approx(1.0)
    assert m["pearson_r"] == pytest.approx(1.0)
    assert m["r2"] == pytest.approx(1 - 4 / 5)
    assert regression_metrics(y, np.zeros(4))["pearson_r"] is None


def test_compute_metrics_from_logits():
    logits = np.array([[2.0, 0.0], [0.0, 3.0]])
    assert np.allclose(softmax(logits).sum(1), 1.0)
    assert compute_metrics(np.array([0, 1]), logits)["accuracy"] == 1.0
    with pytest.raises(ValueError, match="task"):
        compute_metrics(np.array([0, 1]), logits, task="ranking")


@pytest.mark.parametrize(
    ("y", "prob", "match"),
    [
        ([0, 1], np.ones((3, 2)) / 2, "samples"),
        ([0, 2], np.ones((2, 2)) / 2, "class indices"),
        ([], np.ones((0, 2)), "zero samples"),
        ([0, 1], np.ones(2), "n_samples, n_classes"),
    ],
)
def test_classification_metrics_reject_bad_input(y, prob, match):
    with pytest.raises(ValueError, match=match):
        classification_metrics(y, prob)


def test_plots_write_png_atomically(tmp_path):
    history = [
        {"epoch": 1, "train_loss": 0.7, "val_loss": 0.69, "val_balanced_accuracy": 0.5},
        {"epoch": 2, "train_loss": 0.4, "val_loss": 0.5, "val_balanced_accuracy": 0.8},
    ]
    p = plot_learning_curves(history, tmp_path / "curves.png", best_epoch=2)
    c = plot_confusion_matrix([[3, 1], [0, 4]], tmp_path / "cm.png", class_names=["a", "b"])
    for f in (p, c):
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["cm.png", "curves.png"]
    with pytest.raises(ValueError, match="square"):
        plot_confusion_matrix([[1, 2, 3]], tmp_path / "bad.png")
    with pytest.raises(ValueError, match="empty"):
        plot_learning_curves([], tmp_path / "bad2.png")
    assert not (tmp_path / "bad.png").exists()
