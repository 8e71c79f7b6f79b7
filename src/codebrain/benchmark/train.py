"""Training of the benchmark's models on one split.

A generic torch loop, CodeBrain through its own trainer, and the log band-power baseline.

Every trainer returns a :class:`FitResult`: the test metrics at the epoch (or ``C``) chosen on
validation by the recipe's selection metric, that epoch, and the training time.

Shape legend: ``n`` windows, ``C`` channels, ``T`` samples.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from codebrain.benchmark.models import TrainSettings
from codebrain.benchmark.recipe import TaskRecipe, TaskWindows
from codebrain.benchmark.scoring import (
    predicted_counts,
    probabilities,
    task_metrics,
    validation_threshold,
)
from codebrain.training.augment import AugmentedDataset, WindowAugment
from codebrain.training.batching import balanced_sampler

__all__ = [
    "FitResult",
    "ArrayDataset",
    "fit_torch",
    "fit_codebrain",
    "fit_logbandpower",
    "predict_outputs",
    "log_band_powers",
    "BANDS",
    "epoch_windows",
]

logger = logging.getLogger(__name__)

#: Frequency bands of the log band-power baseline (Hz).
BANDS: dict[str, tuple[float, float]] = {
    "delta": (0.5, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 13.0),
    "beta": (13.0, 30.0),
    "gamma": (30.0, 45.0),
}


@dataclass
class FitResult:
    """What one model, trained on one seed, scored.

    Attributes
    ----------
    test : dict
        Test metrics at the selected epoch.
    val : dict
        Validation metrics at the selected epoch.
    best_epoch : int
        The selected epoch (1-based; for the band-power model the index of the chosen C).
    seconds : float
        Training wall time (selection included, data loading excluded).
    history : list of dict
        Per-epoch ``train_loss`` and validation selection metric.
    test_counts : list of int
        Test windows predicted as each class (argmax) at the selected epoch; empty if unknown.
    """

    test: dict[str, Any]
    val: dict[str, Any]
    best_epoch: int
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)
    test_counts: list[int] = field(default_factory=list)


class ArrayDataset(Dataset):
    """``(x, y)`` items from :class:`TaskWindows` (``y`` array kept for label look-ups)."""

    def __init__(self, windows: TaskWindows) -> None:
        self.x = torch.from_numpy(np.ascontiguousarray(windows.x))
        self.y = windows.y.astype(np.int64)
        self._y = torch.from_numpy(self.y)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self._y[i]


def _training_set(train: TaskWindows, augment: WindowAugment | None) -> Dataset:
    """The training windows as a dataset, augmented when ``augment`` is given."""
    return (
        ArrayDataset(train) if augment is None else AugmentedDataset(ArrayDataset(train), augment)
    )


@torch.no_grad()
def predict_outputs(
    fn: Any, windows: TaskWindows, batch_size: int, device: torch.device
) -> np.ndarray:
    """Model outputs ``(n, K)`` for every window (``fn`` in eval mode)."""
    outs = []
    for i in range(0, len(windows), batch_size):
        xb = torch.from_numpy(windows.x[i : i + batch_size]).to(device)
        outs.append(fn(xb).float().cpu())
    return torch.cat(outs).numpy()


def _flat(out: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sequence outputs ``(n, S, K)`` and labels ``(n, S)`` as ``(n·S, K)``, ``(n·S,)``."""
    if out.ndim == 3:
        return out.reshape(-1, out.shape[-1]), y.reshape(-1)
    return out, y


def _metrics(out: np.ndarray, y: np.ndarray, n_classes: int) -> dict[str, Any]:
    out, y = _flat(out, y)
    return task_metrics(y, probabilities(out, n_classes))


def _test_metrics(
    recipe: TaskRecipe,
    y_test: np.ndarray,
    prob_test: np.ndarray,
    y_val: np.ndarray,
    prob_val: np.ndarray,
) -> dict[str, Any]:
    """Test metrics of ``prob_test`` ``(n, K)``; binary tasks add the validation-threshold BA.

    ``prob_val`` ``(n_val, K)`` are the validation probabilities at the selected epoch.
    """
    if not recipe.is_binary:
        return task_metrics(y_test, prob_test)
    return task_metrics(y_test, prob_test, threshold=validation_threshold(y_val, prob_val))


def _seed(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _score(value: float | None) -> float:
    return -math.inf if value is None else float(value)


def fit_torch(
    model: nn.Module,
    recipe: TaskRecipe,
    train: TaskWindows,
    val: TaskWindows,
    test: TaskWindows,
    settings: TrainSettings,
    augment: WindowAugment | None = None,
) -> FitResult:
    """Train ``model`` ``(B, C, T) → (B, recipe.n_outputs)`` with AdamW and a per-step cosine.

    Batches are class-balanced (drawn with replacement) when ``settings.balanced_sampling``
    and labels are one per window, as CodeBrain's fine-tuning draws them. Binary tasks: one logit, ``BCEWithLogitsLoss``; multi-class: cross-entropy with the
    recipe's label smoothing. After every epoch the validation ``recipe.selection_metric`` is
    computed; the best epoch's weights are restored and scored on ``test``. ``augment``
    transforms the training windows (never validation or test).
    """
    device = torch.device(settings.device)
    _seed(settings.seed)
    model.to(device)
    balanced = settings.balanced_sampling and train.y.ndim == 1
    loader = DataLoader(
        _training_set(train, augment),
        batch_size=settings.batch_size,
        shuffle=not balanced,
        sampler=balanced_sampler(train.y, settings.seed) if balanced else None,
        generator=None if balanced else torch.Generator().manual_seed(settings.seed),
    )
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    total = max(1, len(loader) * settings.epochs)
    warmup = len(loader) * settings.warmup_epochs
    floor = settings.min_lr / settings.lr

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total - warmup)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    if recipe.is_binary:
        criterion: nn.Module = nn.BCEWithLogitsLoss()
    else:
        criterion = nn.CrossEntropyLoss(label_smoothing=settings.label_smoothing)
    key = recipe.selection_metric
    best: tuple[float, int, dict[str, Any], dict[str, torch.Tensor]] | None = None
    history: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    from tqdm.auto import tqdm

    for epoch in tqdm(range(1, settings.epochs + 1), disable=not settings.progress, desc="epochs"):
        model.train()
        loss_sum, n_seen = 0.0, 0
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            out = model(xb)
            if recipe.is_binary:
                loss = criterion(out.reshape(-1), yb.float().reshape(-1))
            else:
                loss = criterion(out.reshape(-1, out.shape[-1]), yb.reshape(-1))
            if not math.isfinite(loss.item()):
                raise FloatingPointError(f"Training loss became {loss.item()} at epoch {epoch}.")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, settings.clip_grad_norm)
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * len(xb)
            n_seen += len(xb)
        model.eval()
        out = predict_outputs(model, val, settings.batch_size, device)
        metrics = _metrics(out, val.y, recipe.n_classes)
        history.append(
            {"epoch": epoch, "train_loss": loss_sum / n_seen, f"val_{key}": metrics[key]}
        )
        if best is None or _score(metrics[key]) > best[0]:
            best = (_score(metrics[key]), epoch, metrics, copy.deepcopy(model.state_dict()))
    assert best is not None
    model.load_state_dict(best[3])
    model.eval()
    seconds = time.perf_counter() - t0
    out, y = _flat(predict_outputs(model, test, settings.batch_size, device), test.y)
    prob = probabilities(out, recipe.n_classes)
    out_val, y_val = _flat(predict_outputs(model, val, settings.batch_size, device), val.y)
    prob_val = probabilities(out_val, recipe.n_classes)
    test_metrics = _test_metrics(recipe, y, prob, y_val, prob_val)
    return FitResult(test_metrics, best[2], best[1], seconds, history, predicted_counts(prob))


def fit_codebrain(
    model: nn.Module,
    recipe: TaskRecipe,
    train: TaskWindows,
    val: TaskWindows,
    test: TaskWindows,
    config: Any,
    augment: WindowAugment | None = None,
) -> FitResult:
    """Fine-tune a CodeBrain with :func:`codebrain.training.finetune` and ``config``.

    The model carries the authors' head (:func:`~codebrain.benchmark.models.build_codebrain`);
    binary heads return ``[0, z]`` so the trainer's cross-entropy is BCE on the one logit.
    ``augment`` transforms the training windows (never validation or test).
    """
    from codebrain.training.finetune import finetune

    result = finetune(model, _training_set(train, augment), ArrayDataset(val), config)
    trained = result.model
    device = next(trained.parameters()).device
    out = predict_outputs(trained.classify, test, config.batch_size, device)
    prob = probabilities(out, recipe.n_classes)
    counts = predicted_counts(prob)
    out_val = predict_outputs(trained.classify, val, config.batch_size, device)
    prob_val = probabilities(out_val, recipe.n_classes)
    val_metrics = task_metrics(val.y, prob_val)
    test_metrics = _test_metrics(recipe, test.y, prob, val.y, prob_val)
    key = f"val_{config.monitor_key}"
    history = [
        {"epoch": r["epoch"], "train_loss": r["train_loss"], key: r.get(key)}
        for r in result.history
    ]
    return FitResult(test_metrics, val_metrics, result.best_epoch, result.seconds, history, counts)


def log_band_powers(x: np.ndarray, sfreq: float) -> np.ndarray:
    """Log band power per channel and band (:data:`BANDS`), Welch PSD of 2 s segments.

    Parameters
    ----------
    x : np.ndarray
        ``(n, C, T)``.

    Returns
    -------
    np.ndarray
        ``(n, C * n_bands)`` float64.
    """
    from scipy.signal import welch

    nper = min(x.shape[-1], int(2 * sfreq))
    freqs, psd = welch(x, fs=sfreq, nperseg=nper, axis=-1)
    feats = []
    for lo, hi in BANDS.values():
        band = (freqs >= lo) & (freqs < hi)
        feats.append(np.log(psd[..., band].mean(axis=-1) + 1e-12))
    return np.stack(feats, axis=-1).reshape(len(x), -1)


#: Inverse regularisation strengths tried for the band-power logistic regression.
C_GRID: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0)


def fit_logbandpower(
    recipe: TaskRecipe, train: TaskWindows, val: TaskWindows, test: TaskWindows, seed: int = 0
) -> FitResult:
    """Standardised log band powers → logistic regression, ``C`` chosen on validation.

    Balanced class weights, so that the 0.5 threshold of balanced accuracy is meaningful on
    imbalanced tasks such as EEGMAT's (3:1 rest:task); ``C`` is chosen on validation from
    :data:`C_GRID`.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    t0 = time.perf_counter()
    train, val, test = (epoch_windows(w, recipe) for w in (train, val, test))
    f_train = log_band_powers(train.x, recipe.sfreq)
    f_val = log_band_powers(val.x, recipe.sfreq)
    f_test = log_band_powers(test.x, recipe.sfreq)
    key = recipe.selection_metric
    best = None
    history = []
    for i, c in enumerate(C_GRID, start=1):
        clf = make_pipeline(
            StandardScaler(),
            LogisticRegression(C=c, class_weight="balanced", max_iter=2000, random_state=seed),
        )
        clf.fit(f_train, train.y)
        prob = _full_proba(clf, f_val, recipe.n_classes)
        metrics = task_metrics(val.y, prob)
        history.append({"epoch": i, "C": c, f"val_{key}": metrics[key]})
        if best is None or _score(metrics[key]) > best[0]:
            best = (_score(metrics[key]), i, metrics, clf)
    assert best is not None
    seconds = time.perf_counter() - t0
    prob = _full_proba(best[3], f_test, recipe.n_classes)
    prob_val = _full_proba(best[3], f_val, recipe.n_classes)
    test_metrics = _test_metrics(recipe, test.y, prob, val.y, prob_val)
    return FitResult(test_metrics, best[2], best[1], seconds, history, predicted_counts(prob))


def epoch_windows(windows: TaskWindows, recipe: TaskRecipe) -> TaskWindows:
    """Sequence windows ``(n, C, S·T)`` / labels ``(n, S)`` as ``n·S`` single epochs."""
    s = recipe.sequence_length
    if s == 1:
        return windows
    n, c, t = windows.x.shape
    x = windows.x.reshape(n, c, s, t // s).transpose(0, 2, 1, 3).reshape(n * s, c, t // s)
    rep = lambda a: None if a is None else np.repeat(a, s)  # noqa: E731
    return TaskWindows(
        x,
        windows.y.reshape(-1),
        rep(windows.subjects),
        rep(windows.recordings),
        rep(windows.groups),
    )


def _full_proba(clf: Any, feats: np.ndarray, n_classes: int) -> np.ndarray:
    """``predict_proba`` widened to every class (classes absent from training get 0)."""
    p = clf.predict_proba(feats)
    full = np.zeros((len(feats), n_classes))
    full[:, clf.classes_.astype(int)] = p
    return full
