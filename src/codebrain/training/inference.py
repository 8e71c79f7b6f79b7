"""Inference with a (fine-tuned) CodeBrain: features, outputs and metrics over a dataset.

:func:`encode_dataset` (backbone features, optionally pooled), :func:`predict` (logits or
regression outputs) and :func:`evaluate` (metrics of :func:`~codebrain.training.metrics.compute_metrics`).
All run in eval mode without gradients and restore the model's train/eval mode afterwards.

Shape legend: N = windows, C = channels, P = patches, D = feature width.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from codebrain.models.codebrain import CodeBrain
from codebrain.models.probe import Pooling, ProbedCodeBrain, pool_features
from codebrain.training.batching import batch_xy
from codebrain.training.metrics import compute_metrics
from codebrain.utils.device import resolve_device

__all__ = ["encode_dataset", "encode_features", "evaluate", "predict", "progress_bar"]


def progress_bar(iterable: Any, *, enabled: bool, **kwargs: Any) -> Any:
    """``iterable`` wrapped in a tqdm bar (a no-op bar when ``enabled`` is false)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not enabled, dynamic_ncols=True, **kwargs)


@torch.no_grad()
def encode_dataset(
    model: CodeBrain | ProbedCodeBrain,
    dataset: Dataset,
    *,
    pooling: Pooling | None = None,
    batch_size: int = 64,
    device: str = "cpu",
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Backbone features of every window (eval mode, no gradients).

    Parameters
    ----------
    model : CodeBrain or ProbedCodeBrain
    dataset : Dataset of (x (C, T), y)
    pooling : {"mean_patches", "mean", "flatten"} or None
        ``None`` keeps ``(N, C, P, D)``.
    batch_size : int
    device : str
    progress : bool

    Returns
    -------
    features : ndarray of float32, shape (N, C, P, D) or pooled
    labels : ndarray, shape (N,)
    """
    feats, labels = encode_features(
        model, dataset, pooling, batch_size, resolve_device(device), progress
    )
    return feats.numpy(), labels.numpy()


def encode_features(
    model: nn.Module,
    dataset: Dataset,
    pooling: Pooling | None,
    batch_size: int,
    device: torch.device,
    progress: bool,
    desc: str = "encode",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tensor form of :func:`encode_dataset` on an already resolved ``device``.

    Parameters
    ----------
    model : nn.Module
        Anything with ``encode(x) -> (B, C, P, D)``.
    dataset : Dataset of (x (C, T), y)
    pooling : {"mean_patches", "mean", "flatten"} or None
    batch_size : int
    device : torch.device
    progress : bool
    desc : str
        Progress-bar label.

    Returns
    -------
    features : torch.Tensor, shape (N, C, P, D) or pooled, on the CPU
    labels : torch.Tensor, shape (N,)
    """
    was_training = model.training
    model.eval()
    feats, labels = [], []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    with torch.no_grad():
        for batch in progress_bar(loader, enabled=progress, desc=desc, leave=False):
            x, y = batch_xy(batch)
            f = model.encode(x.to(device=device, dtype=torch.float32))
            if pooling is not None:
                f = pool_features(f, pooling)
            feats.append(f.cpu())
            labels.append(torch.as_tensor(y))
    model.train(was_training)
    if not feats:
        raise ValueError("The dataset is empty: no windows to encode.")
    return torch.cat(feats), torch.cat(labels)


@torch.no_grad()
def predict(
    model: nn.Module,
    dataset: Dataset,
    *,
    batch_size: int = 64,
    device: str = "cpu",
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Model outputs for every window of ``dataset`` (eval mode).

    Parameters
    ----------
    model : CodeBrain or ProbedCodeBrain (anything with ``classify``) or any ``nn.Module``
    dataset : Dataset of (x (C, T), y)

    Returns
    -------
    outputs : ndarray of float32, shape (N, n_outputs)
        Logits (classification) or predictions (regression).
    labels : ndarray, shape (N,)
    """
    dev = resolve_device(device)
    model.to(dev)
    was_training = model.training
    model.eval()
    fn = getattr(model, "classify", model)
    outs, labels = [], []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    for batch in progress_bar(loader, enabled=progress, desc="predict", leave=False):
        x, y = batch_xy(batch)
        outs.append(fn(x.to(device=dev, dtype=torch.float32)).float().cpu())
        labels.append(torch.as_tensor(y))
    model.train(was_training)
    if not outs:
        raise ValueError("The dataset is empty: no windows to predict.")
    return torch.cat(outs).numpy(), torch.cat(labels).numpy()


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    *,
    task: Literal["classification", "regression"] = "classification",
    batch_size: int = 64,
    device: str = "cpu",
    progress: bool = False,
) -> dict[str, Any]:
    """Metrics of ``model`` on ``dataset`` (see :func:`codebrain.training.metrics.compute_metrics`)."""
    outputs, labels = predict(
        model, dataset, batch_size=batch_size, device=device, progress=progress
    )
    return compute_metrics(labels, outputs, task)
