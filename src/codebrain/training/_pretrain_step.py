"""One optimizer step of Stage 2 pretraining and what it measures (internal to ``pretrain``).

:func:`next_step_batches` draws a step's micro-batches with masks keyed by sample,
:func:`train_step` accumulates their gradients under the globally normalised masked-token loss
and steps the optimizer, :class:`Meter` / :func:`log_train` / :func:`validate` turn the sums into
metric rows, and :class:`Position` / :class:`Timing` are the loop's counters. The loop itself is
:func:`codebrain.training.pretrain.pretrain`.

Shape legend: B = batch, C = EEG channels, T = samples, P = patches per channel.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from codebrain.training._distributed import DistContext, all_reduce_sum
from codebrain.training._loop import MetricLog, warn_if_dataset_changed
from codebrain.training._steps import autocast_for, clip_and_step
from codebrain.training.checkpointing import load_checkpoint
from codebrain.training.masked_tokens import (
    Tokenizer,
    check_vocab,
    compute_token_targets,
    evaluate_masked_tokens,
    head_sums,
    metrics_from_sums,
)
from codebrain.training.masking import sample_keyed_masks
from codebrain.training.pretrain_config import PretrainConfig
from codebrain.training.run import RunFolder

__all__ = [
    "Meter",
    "Position",
    "Timing",
    "log_train",
    "next_step_batches",
    "resume_from_checkpoint",
    "step_info",
    "train_step",
    "validate",
    "write_checkpoint",
]

# the validation lines keep the public module's logger name
logger = logging.getLogger("codebrain.training.pretrain")

_STRIDE_WARNING = "Grad strides do not match bucket view strides"


@dataclass
class Position:
    """Optimizer steps done and the data position (epoch, optimizer steps into it)."""

    step: int = 0
    epoch: int = 0
    steps_in_epoch: int = 0


@dataclass
class Timing:
    """Cumulative wall time of this invocation's loop: data, tokenizer targets, compute."""

    data_s: float = 0.0
    tokenize_s: float = 0.0
    compute_s: float = 0.0
    t_start: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        return time.perf_counter() - self.t_start


class Meter:
    """Train sums over a logging interval: CE and hits per head, masked count, grad norms."""

    def __init__(self, device: torch.device) -> None:
        self.sums = torch.zeros(5, dtype=torch.float64, device=device)
        self.grad_norm_sum, self.grad_norm_n = 0.0, 0

    def add_grad_norm(self, gn: torch.Tensor) -> None:
        self.grad_norm_sum += float(gn)
        self.grad_norm_n += 1

    def reduce(self) -> dict[str, float] | None:
        """Interval metrics of all ranks (``None`` when nothing was masked); resets."""
        all_reduce_sum(self.sums)
        if self.sums[4].item() == 0:
            return None
        out = {
            **metrics_from_sums(self.sums),
            "grad_norm": self.grad_norm_sum / max(self.grad_norm_n, 1),
        }
        self.sums = torch.zeros_like(self.sums)
        self.grad_norm_sum, self.grad_norm_n = 0.0, 0
        return out


def next_step_batches(
    batches: Any, cfg: PretrainConfig, epoch: int, n_chans: int, n_patches: int, timing: Timing
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """One optimizer step's micro-batches ``(x, mask)`` on the host, masks keyed by sample.

    The whole step's windows stay on the host; each micro-batch goes to the device only when
    it is used (memory does not grow with ``accum_steps``).
    """
    t0 = time.perf_counter()
    micro = [next(batches) for _ in range(cfg.accum_steps)]
    masks = [
        sample_keyed_masks(
            idx,
            n_chans,
            n_patches,
            cfg.mask_ratio,
            seed=cfg.seed,
            epoch=epoch,
            strategy=cfg.mask_strategy,  # type: ignore[arg-type]
            block_size=cfg.mask_block_size,
        )
        for idx, _ in micro
    ]
    timing.data_s += time.perf_counter() - t0
    return [(x, mask) for (_, x), mask in zip(micro, masks, strict=True)]


def train_step(
    micro: list[tuple[torch.Tensor, torch.Tensor]],
    train_module: nn.Module,
    ddp_module: nn.Module,
    model: nn.Module,
    tokenizer: Tokenizer,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    cfg: PretrainConfig,
    ctx: DistContext,
    meter: Meter,
    timing: Timing,
    n_patches: int,
    *,
    check_targets: bool,
) -> None:
    """Accumulate the micro-batches' gradients, clip, step the optimizer and scheduler.

    The loss is normalised by the masked positions of the whole step on all ranks, so DDP's
    gradient average is the single-process mean.
    """
    device = ctx.device
    t0 = time.perf_counter()
    n_global = torch.tensor(
        float(sum(int(m.sum()) for _, m in micro)), dtype=torch.float64, device=device
    )
    all_reduce_sum(n_global)  # loss normaliser: masked positions of all ranks
    # (a Bernoulli mask may leave a whole step without masked positions: loss 0)
    scale = ctx.world / max(1.0, n_global.item())
    timing.data_s += time.perf_counter() - t0
    for j, (x, mask) in enumerate(micro):
        t0 = time.perf_counter()
        x = x.to(device, non_blocking=True)
        mask = mask.to(device, non_blocking=True)
        t1 = time.perf_counter()
        ids_t, ids_f = compute_token_targets(tokenizer, x, n_patches)
        if check_targets and j == 0:
            check_vocab([(ids_t, ids_f)], model)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t2 = time.perf_counter()
        sync = (
            ddp_module.no_sync()
            if ctx.active and j < cfg.accum_steps - 1
            else contextlib.nullcontext()
        )
        with sync:
            with autocast_for(device, cfg.precision):
                lt, lf = train_module(x, mask)
            ce_t, ce_f, ht, hf = head_sums(lt, lf, ids_t[mask], ids_f[mask])
            loss = (ce_t + ce_f) * scale
            with warnings.catch_warnings():
                # Conv2d weight grads with a size-1 dim come back with different
                # (equally valid) strides than DDP's bucket view: harmless copy.
                warnings.filterwarnings("ignore", message=_STRIDE_WARNING)
                (scaler.scale(loss) if scaler is not None else loss).backward()
        meter.sums += torch.stack([ce_t.detach(), ce_f.detach(), ht, hf, mask.sum()]).to(meter.sums)
        timing.data_s += t1 - t0
        timing.tokenize_s += t2 - t1
        timing.compute_s += time.perf_counter() - t2
    t2 = time.perf_counter()
    params = [p for g in optimizer.param_groups for p in g["params"]]
    meter.add_grad_norm(clip_and_step(optimizer, scheduler, scaler, params, cfg.grad_clip))
    optimizer.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    timing.compute_s += time.perf_counter() - t2


def _row(
    split: str, pos: Position, scheduler: Any, metrics: dict[str, Any], global_batch: int,
    timing: Timing,
) -> dict[str, Any]:  # fmt: skip
    return {
        "step": pos.step,
        "epoch": pos.epoch,
        "split": split,
        "lr": scheduler.get_last_lr()[0],
        **metrics,
        "windows": pos.step * global_batch,
        "elapsed_s": round(timing.elapsed(), 3),
    }


def log_train(
    mlog: MetricLog,
    bar: Any,
    meter: Meter,
    pos: Position,
    scheduler: Any,
    global_batch: int,
    timing: Timing,
) -> dict[str, Any] | None:
    """Write the interval's train row (all ranks reduce); ``None`` when nothing was masked."""
    metrics = meter.reduce()
    if metrics is None:
        return None
    row = _row("train", pos, scheduler, metrics, global_batch, timing)
    mlog.write(row)
    bar.set_postfix(loss=f"{row['loss']:.3f}", acc_t=f"{row['acc_t']:.3f}")
    return row


def validate(
    mlog: MetricLog,
    model: nn.Module,
    tokenizer: Tokenizer,
    val_ds: Dataset,
    cfg: PretrainConfig,
    pos: Position,
    scheduler: Any,
    global_batch: int,
    timing: Timing,
) -> dict[str, Any]:
    """Evaluate the masked-token objective on ``val_ds`` (all ranks); write the val row."""
    m = evaluate_masked_tokens(
        model,
        tokenizer,
        val_ds,
        batch_size=cfg.batch_size,
        mask_ratio=cfg.mask_ratio,
        mask_strategy=cfg.mask_strategy,
        mask_block_size=cfg.mask_block_size,
        seed=cfg.seed,
        max_batches=cfg.val_batches,
        precision=cfg.precision,
        device=next(model.parameters()).device,
    )
    row = _row("val", pos, scheduler, m, global_batch, timing)
    mlog.write(row)
    if mlog.enabled:
        logger.info(
            "step %d val: loss %.4f (t %.4f, f %.4f) acc_t %.3f acc_f %.3f",
            pos.step,
            m["loss"],
            m["loss_t"],
            m["loss_f"],
            m["acc_t"],
            m["acc_f"],
        )
    return row


def step_info(
    pos: Position, scheduler: Any, ckpt: Path | None, row: dict | None, timing: Timing
) -> dict[str, Any]:
    """What ``step_callback`` gets after a step."""
    return {
        "epoch": pos.epoch,
        "lr": scheduler.get_last_lr()[0],
        "checkpoint": ckpt,
        "metrics": row,
        "timing": {
            "data_s": timing.data_s,
            "tokenize_s": timing.tokenize_s,
            "compute_s": timing.compute_s,
        },
    }


def resume_from_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    ctx: DistContext,
    n_train: int,
    global_batch: int,
) -> Position:
    """Load a checkpoint (this rank's RNG states included); the position it saved."""
    extra = load_checkpoint(
        path,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=scaler,
        restore_rng=True,
        rng_index=ctx.rank,
        map_location=ctx.device,
    )
    step, epoch = int(extra["step"]), int(extra["epoch"])
    samples_in_epoch = int(extra["samples_in_epoch"])
    warn_if_dataset_changed(extra.get("n_train"), n_train)
    if extra.get("world_size") != ctx.world:
        logger.warning(
            "Resuming a run saved with world_size=%s on world_size=%d: weights and data "
            "order continue exactly only if the global batch is unchanged; dropout RNG "
            "streams differ.",
            extra.get("world_size"),
            ctx.world,
        )
    if samples_in_epoch % global_batch:
        logger.warning(
            "The checkpoint's data position (%d windows into epoch %d) is not a multiple "
            "of the global batch %d; resuming at the previous batch boundary.",
            samples_in_epoch,
            epoch,
            global_batch,
        )
    logger.info("Resumed from %s at step %d (epoch %d).", path, step, epoch)
    return Position(step, epoch, samples_in_epoch // global_batch)


def write_checkpoint(
    run: RunFolder,
    cfg: PretrainConfig,
    pos: Position,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    ctx: DistContext,
    n_train: int,
) -> Path:
    global_batch = cfg.batch_size * cfg.accum_steps * ctx.world
    return run.write_checkpoint(
        pos.step,
        keep=cfg.keep_checkpoints,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=scaler,
        extra={
            "step": pos.step,
            "epoch": pos.epoch,
            "samples_in_epoch": pos.steps_in_epoch * global_batch,
            "world_size": ctx.world,
            "global_batch": global_batch,
            "n_train": n_train,
            "config": cfg.to_dict(),
        },
    )
