"""Downstream fine-tuning and probing of a (pre)trained CodeBrain (arXiv 2506.09110, §4).

Three modes, chosen by :attr:`FinetuneConfig.mode`:

``"full"``
    Every backbone weight and the model's own 3-layer ``final_layer`` MLP are trained
    (separate learning rates for backbone and head, optional layer-wise decay).
``"mlp"``
    Frozen backbone; only ``final_layer`` (Flatten → 3-layer MLP, the paper's classification
    head) is trained, on features computed once.
``"linear"``
    Frozen backbone; a single :class:`LinearProbe` is trained on pooled features computed
    once. ``model.final_layer`` is left untouched and unused: the result's model is a
    :class:`ProbedCodeBrain` (backbone + probe). The default pooling, ``"mean_patches"``,
    averages the features over patches and keeps channels, ``(B, C, P, D) -> (B, C·D)``:
    spatial information (which channel carries what) matters for most EEG tasks and the
    probe stays independent of the window length; ``"flatten"`` (``C·P·D`` inputs, like the
    MLP head) and ``"mean"`` (``D`` inputs) are available.

Optimisation: AdamW (no weight decay on norms, biases, weight-norm gains, SGConv kernels and
skip weights: :mod:`codebrain.training.optim`), linear warm-up then
cosine decay per step, gradient-norm clipping, class weights (``"balanced"`` or explicit), early
stopping on a validation set with restore of the best epoch, and seeds that make a run exactly
reproducible on a given machine.

Shape legend: B = batch, C = channels, T = samples, P = patches, D = feature width.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from codebrain.models.codebrain import CodeBrain

# Moved to their own modules (the config to finetune_config); re-exported here so that
# ``from codebrain.training.finetune import X`` keeps working.
from codebrain.models.probe import (
    PROBE_CONFIG,
    PROBE_WEIGHTS,
    LinearProbe,
    Pooling,  # noqa: F401 (re-exported)
    ProbedCodeBrain,
    load_finetuned,
    pool_features,
)
from codebrain.models.probe import pooled_dim as _pooled_dim
from codebrain.training._finetune_state import (
    _Best,
    _fingerprint,
    _metric_fields,
    _resume,
    _State,
    _write_checkpoint,
)
from codebrain.training.augment import AugmentedDataset, WindowAugment
from codebrain.training.batching import balanced_sampler, dataset_labels, make_loader, subset
from codebrain.training.batching import batch_xy as _xy
from codebrain.training.finetune_config import (
    FinetuneConfig,
    Mode,  # noqa: F401 (re-exported)
)
from codebrain.training.inference import encode_dataset, evaluate, predict
from codebrain.training.inference import encode_features as _encode
from codebrain.training.inference import progress_bar as _progress
from codebrain.training.metrics import compute_metrics
from codebrain.training.optim import layer_decay_lr, merge_param_groups, param_groups
from codebrain.training.run import RunFolder, model_config
from codebrain.utils.check import check_type
from codebrain.utils.device import resolve_device

__all__ = [
    "FinetuneConfig",
    "FinetuneResult",
    "LinearProbe",
    "ProbedCodeBrain",
    "finetune",
    "predict",
    "evaluate",
    "encode_dataset",
    "load_finetuned",
    "dataset_labels",
    "pool_features",
    "subset",
    "balanced_sampler",
    "PROBE_CONFIG",
    "PROBE_WEIGHTS",
]

logger = logging.getLogger(__name__)

_TOKEN_HEADS = ("lm_head_t.", "lm_head_f.")  # pretraining heads: never fine-tuned


# ------------------------------------------------------------------------- results
@dataclass
class FinetuneResult:
    """What :func:`finetune` returns.

    Attributes
    ----------
    model : CodeBrain or ProbedCodeBrain
        The trained model (best epoch restored when a validation set was given), in eval mode.
    history : list of dict
        One entry per epoch: ``epoch``, ``lr``, ``train_loss``, ``val_loss`` and ``val_<metric>``.
    best_epoch : int
        1-based epoch whose weights ``model`` holds.
    best_score : float or None
        Value of ``monitor`` at ``best_epoch`` (``None`` without validation set).
    monitor : str
    stopped_early : bool
    config : FinetuneConfig
    seconds : float
        Wall time of the training loop.
    """

    model: nn.Module
    history: list[dict[str, Any]]
    best_epoch: int
    best_score: float | None
    monitor: str
    stopped_early: bool
    config: FinetuneConfig
    seconds: float = 0.0
    val_metrics: dict[str, Any] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (everything but the model)."""
        return {
            "config": self.config.to_dict(),
            "history": self.history,
            "best_epoch": self.best_epoch,
            "best_score": self.best_score,
            "monitor": self.monitor,
            "stopped_early": self.stopped_early,
            "seconds": self.seconds,
            "val_metrics": self.val_metrics,
        }


# ------------------------------------------------------------------------- helpers
def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _resolve_device(device: str | torch.device | None) -> torch.device:
    return resolve_device(device)


def _loader(
    dataset: Dataset,
    cfg: FinetuneConfig,
    *,
    shuffle: bool,
    seed: int,
    sampler: torch.utils.data.Sampler | None = None,
) -> DataLoader:
    return make_loader(
        dataset,
        batch_size=cfg.batch_size,
        num_workers=cfg.num_workers,
        shuffle=shuffle,
        seed=seed,
        sampler=sampler,
    )


def _class_weights(cfg: FinetuneConfig, y: np.ndarray, n_outputs: int) -> torch.Tensor | None:
    if cfg.task != "classification" or cfg.class_weight is None:
        return None
    if cfg.class_weight == "balanced":
        counts = np.bincount(y.astype(np.int64), minlength=n_outputs).astype(np.float64)
        w = np.where(counts > 0, y.size / (n_outputs * np.maximum(counts, 1)), 0.0)
        return torch.tensor(w, dtype=torch.float32)
    w = np.asarray(cfg.class_weight, dtype=np.float64)
    if w.shape != (n_outputs,):
        raise ValueError(
            f"class_weight must have {n_outputs} entries (one per class), got {w.size}."
        )
    return torch.tensor(w, dtype=torch.float32)


def _check_labels(y: np.ndarray, cfg: FinetuneConfig, n_outputs: int, what: str) -> None:
    if y.size == 0:
        raise ValueError(f"The {what} set is empty.")
    if cfg.task == "classification":
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(
                f"Classification needs integer class labels; the {what} labels have dtype {y.dtype}."
            )
        if y.min() < 0 or y.max() >= n_outputs:
            raise ValueError(
                f"{what} labels span [{y.min()}, {y.max()}] but the model has n_outputs={n_outputs}; "
                f"labels must be class indices in [0, {n_outputs})."
            )
        if what == "training" and np.unique(y).size < 2:
            raise ValueError(
                f"The training labels hold a single class ({int(y[0])}); at least two are needed."
            )
    elif n_outputs != 1:
        raise ValueError(f"Regression needs a model with n_outputs=1, got {n_outputs}.")


def _param_groups(model: CodeBrain, head: nn.Module, cfg: FinetuneConfig) -> list[dict]:
    """AdamW groups: head at ``lr``; backbone at ``backbone_lr`` with layer-wise decay.

    The weight-decay rule is :func:`codebrain.training.optim.param_groups`'s; the head's groups
    come first (``param_groups[0]["lr"]`` is the head's learning rate).
    """
    groups = param_groups(head, cfg.weight_decay, lr=cfg.lr)
    if cfg.mode == "full":
        n = len(model.residual_layer.residual_blocks)
        head_ids = {id(p) for p in head.parameters()}
        groups += param_groups(
            model,
            cfg.weight_decay,
            lr=lambda name: layer_decay_lr(name, cfg.backbone_lr, cfg.layer_decay, n),
            exclude=lambda name, p: id(p) in head_ids or name.startswith(_TOKEN_HEADS),
        )
    return [{k: v for k, v in g.items() if k != "names"} for g in merge_param_groups(groups)]


# ------------------------------------------------------------------------ finetune
def finetune(
    model: CodeBrain,
    train_ds: Dataset,
    val_ds: Dataset | None = None,
    config: FinetuneConfig | None = None,
    *,
    out_dir: str | os.PathLike | None = None,
    final_files: Mapping[str, Any] | None = None,
) -> FinetuneResult:
    """Fine-tune or probe ``model`` on ``train_ds``; early-stop and select on ``val_ds``.

    With ``out_dir`` the run writes the run folder of every training loop
    (:mod:`codebrain.training.run`): ``config.json``, one ``metrics.csv/.jsonl`` row per
    epoch, a checkpoint per epoch (``config.keep_checkpoints`` kept; ``config.resume``
    continues from one, and ends as the uninterrupted run would), and at the end ``final/``
    (the selected model, ``save_pretrained``, with ``final_files``) and ``result.json``.

    Parameters
    ----------
    model : CodeBrain
        Modified in place (full / mlp modes); its ``n_outputs`` must equal the number of
        classes (``reset_head(n)`` first if needed), or 1 for regression.
    train_ds : Dataset
        Items ``(x, y)``: ``x`` float tensor ``(n_chans, n_times)`` in units of 100 µV, ``y``
        a class index (classification) or a float (regression).
    val_ds : Dataset, optional
        Same format; enables per-epoch validation metrics, early stopping and best-epoch
        restore. Split by subject/recording (:func:`codebrain.training._splits.group_train_val_split`),
        never by window.
    config : FinetuneConfig, optional
        Defaults to ``FinetuneConfig()``.
    out_dir : path-like, optional
        The run folder (created; an empty folder or one of an earlier ``finetune`` run).
    final_files : mapping of str to JSON-able, optional
        Extra files of ``final/`` (``{"preprocess.json": {...}}``); needs ``out_dir``.

    Returns
    -------
    FinetuneResult

    Raises
    ------
    ValueError
        Empty sets, labels out of range or a single training class, wrong ``n_outputs``;
        ``resume`` or ``final_files`` without ``out_dir``; a fresh start over checkpoints;
        a checkpoint of a different run (other settings, data or model).
    """
    cfg = config if config is not None else FinetuneConfig()
    check_type("config", cfg, FinetuneConfig)
    check_type("model", model, CodeBrain, "a codebrain.CodeBrain")
    if len(train_ds) == 0:
        raise ValueError("The training set is empty.")
    if out_dir is None and (cfg.resume is not False or final_files):
        what = "config.resume" if cfg.resume is not False else "final_files"
        raise ValueError(f"{what} needs out_dir (the run folder to resume from / write to).")
    run = RunFolder(out_dir, "finetune") if out_dir is not None else None
    # checked before any work (a frozen-backbone mode encodes the data first)
    ckpt = run.resume_checkpoint(cfg.resume, refuse_existing=True) if run is not None else None
    _seed_everything(cfg.seed)
    device = _resolve_device(cfg.device)
    model.to(device)
    n_out = model.n_outputs
    y_train = dataset_labels(train_ds)
    _check_labels(y_train, cfg, n_out, "training")
    if val_ds is not None:
        if len(val_ds) == 0:
            raise ValueError("The validation set is empty.")
        _check_labels(dataset_labels(val_ds), cfg, n_out, "validation")
    if cfg.augment:
        train_ds = AugmentedDataset(train_ds, _window_augment(model))
    weights = _class_weights(cfg, y_train, n_out)
    if cfg.task == "classification":
        criterion: nn.Module = nn.CrossEntropyLoss(
            weight=None if weights is None else weights.to(device),
            label_smoothing=cfg.label_smoothing,
        )
    else:
        criterion = nn.MSELoss()

    # Freeze/unfreeze for the mode; the caller's requires_grad flags come back on every exit.
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        result = _train(model, train_ds, y_train, val_ds, cfg, device, criterion, run, ckpt)
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
    if run is not None:
        run.save_final(result.model, final_files)
        run.write_result(result.to_dict())
    return result


def _window_augment(model: CodeBrain) -> WindowAugment:
    """``config.augment``'s transform, at the model's sampling rate."""
    try:
        sfreq = float(model.sfreq)
    except ValueError:
        raise ValueError(
            "augment needs the model's sampling rate (its frequency shift is in Hz): build "
            "the model with sfreq=..., or input_window_seconds and n_times."
        ) from None
    return WindowAugment(sfreq=sfreq)


def _train(
    model: CodeBrain,
    train_ds: Dataset,
    y_train: np.ndarray,
    val_ds: Dataset | None,
    cfg: FinetuneConfig,
    device: torch.device,
    criterion: nn.Module,
    run: RunFolder | None,
    ckpt: Path | None,
) -> FinetuneResult:
    """The training loop of :func:`finetune` (arguments checked, labels read; ``ckpt``: resume)."""
    head, step_fn, train_in, val_in = _setup_mode(model, train_ds, val_ds, cfg, device)
    optimizer = torch.optim.AdamW(_param_groups(model, head, cfg), betas=(0.9, 0.999))
    sampler = balanced_sampler(y_train, cfg.seed) if cfg.balanced_sampling else None
    loader = _loader(train_in, cfg, shuffle=True, seed=cfg.seed, sampler=sampler)
    scheduler = _build_scheduler(
        optimizer,
        int(round(cfg.warmup_epochs * len(loader))),
        len(loader) * cfg.epochs,
        cfg.min_lr_fraction,
    )
    _log_plan(optimizer, cfg, train_ds, val_ds, len(loader))

    trained: nn.Module = model if cfg.mode == "full" else head
    ema = _ema(trained, cfg.ema_decay)
    selected = trained if ema is None else ema.module  # what is validated and kept
    eval_fn = step_fn if ema is None else _step_fn(ema.module, cfg)
    update_ema = None if ema is None else functools.partial(ema.update_parameters, trained)
    state = _State(best=_Best(cfg.monitor_key, cfg.epochs))
    fingerprint = _fingerprint(model, train_ds, val_ds, cfg)
    mlog = None
    if ckpt is not None:
        state = _resume(ckpt, trained, optimizer, scheduler, loader, fingerprint, ema)
    if run is not None:
        run.prepare(cfg, model=model_config(model))
        mlog = run.metric_log(_metric_fields(cfg), resume_step=state.epoch)
    t0 = time.perf_counter() - state.seconds
    first = cfg.epochs + 1 if state.stopped else state.epoch + 1  # an early stop stays one
    epochs = _progress(range(first, cfg.epochs + 1), enabled=cfg.progress, desc="epochs", unit="ep")
    best = state.best
    for epoch in epochs:
        model.train(cfg.mode == "full")
        head.train()
        row = _train_epoch(
            step_fn,
            loader,
            criterion,
            optimizer,
            scheduler,
            cfg,
            device,
            epoch,
            after_step=update_ema,
        )
        if val_in is not None:
            val_loss, metrics = _validate(eval_fn, val_in, criterion, cfg, device, selected)
            row.update(_val_row(val_loss, metrics))
            best.update(epoch, _monitored(best.key, val_loss, metrics), metrics, selected)
        state.history.append(row)
        _report_epoch(epochs, row, best.key)
        state.epoch = epoch
        state.stopped = (
            cfg.patience is not None and val_in is not None and best.bad_epochs >= cfg.patience
        )
        if run is not None:
            state.seconds = time.perf_counter() - t0
            mlog.write({"step": epoch, **row})  # type: ignore[union-attr]
            _write_checkpoint(
                run, state, trained, optimizer, scheduler, loader, cfg, fingerprint, ema
            )
        if state.stopped:
            logger.info("Early stopping at epoch %d (best epoch %d).", epoch, best.epoch)
            break
    if mlog is not None:
        mlog.close()
    if val_in is None:
        best.epoch = len(state.history)
        if ema is not None:
            trained.load_state_dict(ema.module.state_dict())
    elif best.state is not None:
        trained.load_state_dict(best.state)
        logger.info("Restored epoch %d (%s=%.4g).", best.epoch, best.key, best.score)
    final: nn.Module = model if cfg.mode != "linear" else ProbedCodeBrain(model, head)
    final.eval()
    return FinetuneResult(
        model=final,
        history=state.history,
        best_epoch=best.epoch,
        best_score=None if best.score is None else float(best.score),
        monitor=best.key,
        stopped_early=state.stopped,
        config=cfg,
        seconds=time.perf_counter() - t0,
        val_metrics=best.metrics,
    )


def _setup_mode(
    model: CodeBrain,
    train_ds: Dataset,
    val_ds: Dataset | None,
    cfg: FinetuneConfig,
    device: torch.device,
) -> tuple[nn.Module, Any, Dataset, Dataset | None]:
    """Freeze for the mode; ``(head, step function, train inputs, val inputs)``.

    ``"full"`` trains the whole model on windows; the frozen-backbone modes train the head on
    features computed once.
    """
    for name, p in model.named_parameters():
        p.requires_grad_(cfg.mode == "full" and not name.startswith(_TOKEN_HEADS))
    if cfg.mode == "full":
        return model.final_layer, model.classify, train_ds, val_ds
    pooling = cfg.pooling if cfg.mode == "linear" else None
    if cfg.mode == "linear":
        head: nn.Module = LinearProbe(_pooled_dim(model, cfg.pooling), model.n_outputs, cfg.pooling)
        head = head.to(device)
    else:
        head = model.final_layer
    for p in head.parameters():
        p.requires_grad_(True)
    logger.info("Frozen backbone: computing features once (%s).", pooling or "per patch")
    ft, yt = _encode(model, train_ds, pooling, cfg.batch_size, device, cfg.progress, "features")
    val_in = None
    if val_ds is not None:
        fv, yv = _encode(model, val_ds, pooling, cfg.batch_size, device, cfg.progress, "features")
        val_in = TensorDataset(fv, yv)
    _seed_everything(cfg.seed)  # same head/data RNG stream whatever the encode did
    return head, head, TensorDataset(ft, yt), val_in


def _log_plan(
    optimizer: torch.optim.Optimizer,
    cfg: FinetuneConfig,
    train_ds: Dataset,
    val_ds: Dataset | None,
    steps_per_epoch: int,
) -> None:
    trainable = [p for g in optimizer.param_groups for p in g["params"]]
    logger.info(
        "Fine-tuning (%s, %s): %d train windows%s, %d epochs x %d steps, %d trainable parameters.",
        cfg.mode,
        cfg.task,
        len(train_ds),
        f", {len(val_ds)} validation windows" if val_ds is not None else "",
        cfg.epochs,
        steps_per_epoch,
        sum(p.numel() for p in trainable),
    )


def _ema(trained: nn.Module, decay: float) -> AveragedModel | None:
    """The moving average of ``trained``'s weights (and buffers), or None for ``decay`` 0."""
    if decay == 0:
        return None
    return AveragedModel(trained, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def _step_fn(trained: nn.Module, cfg: FinetuneConfig) -> Any:
    """Windows or features -> outputs for the module that ``cfg.mode`` trains."""
    return trained.classify if cfg.mode == "full" else trained


def _train_epoch(
    step_fn: Any,
    loader: DataLoader,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    cfg: FinetuneConfig,
    device: torch.device,
    epoch: int,
    after_step: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """One pass over ``loader``; the epoch's row (``epoch``, ``lr``, ``train_loss``).

    ``after_step`` (the moving-average update, if any) runs after every optimizer step.
    """
    trainable = [p for g in optimizer.param_groups for p in g["params"]]
    total_loss, n_seen = 0.0, 0
    for batch in _progress(loader, enabled=cfg.progress, desc=f"epoch {epoch}", leave=False):
        x, y = _xy(batch)
        x = x.to(device=device, dtype=torch.float32)
        loss = _loss(criterion, step_fn(x), y.to(device), cfg.task)
        if not math.isfinite(loss.item()):  # before the step: the weights stay finite
            raise ValueError(
                f"Training loss became {loss.item()} at epoch {epoch}; check the inputs "
                "for extreme values or lower the learning rate."
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(trainable, cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        if after_step is not None:
            after_step()
        total_loss += loss.item() * x.shape[0]
        n_seen += x.shape[0]
    return {
        "epoch": epoch,
        "lr": float(optimizer.param_groups[0]["lr"]),
        "train_loss": total_loss / max(1, n_seen),
    }


def _val_row(val_loss: float, metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "val_loss": val_loss,
        **{f"val_{k}": v for k, v in metrics.items() if k != "confusion_matrix"},
    }


def _monitored(key: str, val_loss: float, metrics: dict[str, Any]) -> float | None:
    """The validation quantity ``key`` (``ValueError`` naming the choices if unknown)."""
    if key == "loss":
        return val_loss
    if key not in metrics:
        raise ValueError(
            f"monitor {key!r} is not a validation metric; choose one of "
            f"{['loss', *sorted(k for k in metrics if k != 'confusion_matrix')]}."
        )
    return metrics[key]


def _report_epoch(epochs: Any, row: dict[str, Any], key: str) -> None:
    logger.info(
        "epoch %d: %s",
        row["epoch"],
        ", ".join(f"{k}={v:.4g}" for k, v in row.items() if isinstance(v, float)),
    )
    if hasattr(epochs, "set_postfix"):
        epochs.set_postfix({k: v for k, v in row.items() if k in ("train_loss", f"val_{key}")})


def _build_scheduler(
    optimizer: torch.optim.Optimizer, warmup: int, total: int, min_lr_ratio: float
) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-step linear warm-up then cosine decay (the schedule shared with pretraining)."""
    from codebrain.training._schedule import build_warmup_cosine_scheduler

    return build_warmup_cosine_scheduler(
        optimizer, warmup_steps=warmup, total_steps=max(1, total), min_lr_ratio=min_lr_ratio
    )


def _loss(criterion: nn.Module, out: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    if task == "classification":
        return criterion(out, y.long())
    return criterion(out[:, 0], y.float().reshape(-1))


@torch.no_grad()
def _validate(
    step_fn: Any,
    val_in: Dataset,
    criterion: nn.Module,
    cfg: FinetuneConfig,
    device: torch.device,
    trained: nn.Module,
) -> tuple[float, dict[str, Any]]:
    was = trained.training
    trained.eval()
    outs, ys = [], []
    for batch in DataLoader(val_in, batch_size=cfg.batch_size, shuffle=False):
        x, y = _xy(batch)
        outs.append(step_fn(x.to(device=device, dtype=torch.float32)).float().cpu())
        ys.append(torch.as_tensor(y))
    trained.train(was)
    out, y = torch.cat(outs), torch.cat(ys)
    loss = float(_loss(criterion.cpu(), out, y, cfg.task))
    criterion.to(device)
    return loss, compute_metrics(y.numpy(), out.numpy(), cfg.task)
