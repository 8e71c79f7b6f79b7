"""One optimizer step of Stage 1 tokenizer training and what it measures (internal).

:func:`train_step` runs the forward, backward and optimizer step; :class:`Meter`,
:func:`loss_terms` and :func:`log_interval` turn the loss terms and code counts of a logging
interval into a metric row (codebook usage and perplexity included), :func:`summary` is the
``result.json`` of a finished run, :class:`Position` the loop's counters, and
:func:`write_checkpoint` / :func:`resume_from_checkpoint` save and restore them. The loop
itself is :func:`codebrain.training.tokenizer_trainer.train_tokenizer`.

Shape legend: B = batch, C = EEG channels, T = samples.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from codebrain.layers.quantize import fraction_used, perplexity
from codebrain.models.tokenizer import TFDualTokenizer
from codebrain.training import _distributed
from codebrain.training._loop import MetricLog, warn_if_dataset_changed
from codebrain.training._schedule import WarmupCosine
from codebrain.training._steps import autocast_for, clip_and_step
from codebrain.training.checkpointing import load_checkpoint
from codebrain.training.run import RunFolder
from codebrain.training.tokenizer_train_config import TokenizerTrainConfig

__all__ = [
    "LOSS_KEYS",
    "Meter",
    "Position",
    "log_interval",
    "loss_terms",
    "resume_from_checkpoint",
    "summary",
    "train_step",
    "write_checkpoint",
]

# the log lines keep the public module's logger name
logger = logging.getLogger("codebrain.training.tokenizer_trainer")

#: the averaged loss terms of a metric row (and the gradient norm)
LOSS_KEYS = (
    "loss",
    "time",
    "amp",
    "phase",
    "commit_t",
    "commit_f",
    "contrastive",
    "grad_norm",
)


class Meter:
    """Sums of loss terms and code counts over a logging interval."""

    def __init__(self, k_t: int, k_f: int, device: torch.device) -> None:
        self.losses = torch.zeros(len(LOSS_KEYS), dtype=torch.float64, device=device)
        self.counts_t = torch.zeros(k_t, dtype=torch.float64, device=device)
        self.counts_f = torch.zeros(k_f, dtype=torch.float64, device=device)
        self.n = 0

    def add(self, values: torch.Tensor, counts_t: torch.Tensor, counts_f: torch.Tensor) -> None:
        self.losses += values.double()
        self.counts_t += counts_t.double()
        self.counts_f += counts_f.double()
        self.n += 1

    def state(self) -> dict[str, Any]:
        return {
            "losses": self.losses.cpu(),
            "counts_t": self.counts_t.cpu(),
            "counts_f": self.counts_f.cpu(),
            "n": self.n,
        }

    def load(self, s: dict[str, Any]) -> None:
        self.losses.copy_(s["losses"])
        self.counts_t.copy_(s["counts_t"])
        self.counts_f.copy_(s["counts_f"])
        self.n = int(s["n"])

    def summary(self) -> dict[str, float]:
        losses = _distributed.all_reduce_mean(self.losses.clone())
        counts_t = _distributed.all_reduce_sum(self.counts_t.clone())
        counts_f = _distributed.all_reduce_sum(self.counts_f.clone())
        n = max(1, self.n)
        out = {k: float(v) / n for k, v in zip(LOSS_KEYS, losses.tolist(), strict=True)}
        out.update(
            used_t=fraction_used(counts_t),
            used_f=fraction_used(counts_f),
            perplexity_t=perplexity(counts_t),
            perplexity_f=perplexity(counts_f),
        )
        self.losses.zero_()
        self.counts_t.zero_()
        self.counts_f.zero_()
        self.n = 0
        return out


@dataclass
class Position:
    """Where the run is: optimizer steps done, data position, wall time of earlier runs."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    elapsed_before: float = 0.0
    t_start: float = field(default_factory=time.perf_counter)
    checkpoint: Path | None = None

    def elapsed(self) -> float:
        """Training wall time, earlier (resumed) invocations included."""
        return self.elapsed_before + time.perf_counter() - self.t_start

    def advance(self, batches_per_epoch: int) -> None:
        """One optimizer step done; move the data position to the next step's batch."""
        self.step += 1
        self.batch_in_epoch += 1
        if self.batch_in_epoch >= batches_per_epoch:
            self.epoch += 1
            self.batch_in_epoch = 0


def train_step(
    net: nn.Module,
    model: nn.Module,
    x: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    cfg: TokenizerTrainConfig,
    step: int,
) -> tuple[Any, torch.Tensor]:
    """Forward, backward, clip, optimizer and scheduler step; the output and grad norm."""
    with autocast_for(x.device, cfg.precision):
        out = net(x)
    if not torch.isfinite(out.loss):
        raise FloatingPointError(
            f"non-finite tokenizer loss at step {step + 1}: {float(out.loss)}; "
            "lower the learning rate or check the data scale."
        )
    optimizer.zero_grad(set_to_none=True)
    (scaler.scale(out.loss) if scaler is not None else out.loss).backward()
    grad_norm = clip_and_step(optimizer, scheduler, scaler, model.parameters(), cfg.grad_clip)
    return out, grad_norm


def loss_terms(out: Any, grad_norm: torch.Tensor) -> torch.Tensor:
    """The :data:`LOSS_KEYS` values of one step."""
    terms = out.losses
    return torch.stack(
        [
            out.loss.detach().float(),
            terms.time.detach().float(),
            terms.amp.detach().float(),
            terms.phase.detach().float(),
            terms.commit_t.detach().float(),
            terms.commit_f.detach().float(),
            terms.contrastive.detach().float(),
            grad_norm.detach().float(),
        ]
    )


def log_interval(log: MetricLog, bar: Any, meter: Meter, scheduler: Any, pos: Position) -> None:
    """Write the interval's metric row (all ranks reduce) and show it on the bar."""
    row = {
        "step": pos.step,
        "epoch": pos.epoch,
        "lr": scheduler.get_last_lr()[0],
        **meter.summary(),
        "elapsed_s": round(pos.elapsed(), 3),
    }
    log.write(row)
    bar.set_postfix(
        loss=f"{row['loss']:.4f}", used_t=f"{row['used_t']:.2f}", used_f=f"{row['used_f']:.2f}"
    )
    logger.debug("step %d: %s", pos.step, row)


def summary(model: TFDualTokenizer, pos: Position, log: MetricLog) -> dict[str, Any]:
    """``result.json`` of a finished run: steps, time, last row and codebook usage."""
    return {
        "steps": pos.step,
        "elapsed_s": round(pos.elapsed(), 3),
        "final": log.history[-1] if log.history else {},
        "codebook_t": {
            "fraction_used_total": model.codebook_t.fraction_used(),
            "perplexity_total": model.codebook_t.perplexity(),
            "restarts": int(model.codebook_t.num_restarts),
        },
        "codebook_f": {
            "fraction_used_total": model.codebook_f.fraction_used(),
            "perplexity_total": model.codebook_f.perplexity(),
            "restarts": int(model.codebook_f.num_restarts),
        },
    }


def resume_from_checkpoint(
    path: Path,
    model: TFDualTokenizer,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    meter: Meter,
    cfg: TokenizerTrainConfig,
    n_windows: int,
) -> Position:
    """Load a checkpoint into the run's objects; the position it saved."""
    peek = load_checkpoint(path, restore_rng=False)
    saved_model_cfg = peek.get("model_config")
    if saved_model_cfg is not None and saved_model_cfg != model.config.to_dict():
        raise ValueError(
            f"checkpoint {path} was written for a different tokenizer "
            "configuration; use another out_dir or resume=False."
        )
    extra = load_checkpoint(
        path,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=scaler,
        rng_index=_distributed.rank(),
        map_location=next(model.parameters()).device,
    )
    # The schedule follows the *current* config (a run may be extended with more steps).
    for fn in scheduler.lr_lambdas:
        if isinstance(fn, WarmupCosine):
            fn.__dict__.update(
                WarmupCosine(cfg.warmup_steps, cfg.steps, cfg.min_lr_fraction).__dict__
            )
    warn_if_dataset_changed(extra.get("n_windows"), n_windows)
    if extra.get("meter") is not None:
        meter.load(extra["meter"])
    logger.info("Resuming tokenizer training from %s (step %d)", path, int(extra["step"]))
    return Position(
        step=int(extra["step"]),
        epoch=int(extra["epoch"]),
        batch_in_epoch=int(extra["batch_in_epoch"]),
        elapsed_before=float(extra.get("elapsed_s", 0.0)),
        checkpoint=path,
    )


def write_checkpoint(
    run: RunFolder,
    cfg: TokenizerTrainConfig,
    pos: Position,
    model: TFDualTokenizer,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    meter: Meter,
    n_windows: int,
) -> Path:
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
            "batch_in_epoch": pos.batch_in_epoch,
            "n_windows": n_windows,
            "elapsed_s": pos.elapsed(),
            "meter": meter.state(),
            "model_config": model.config.to_dict(),
            "train_config": cfg.to_dict(),
        },
    )
