"""Training loop of the Stage 1 TFDual-Tokenizer (CodeBrain arXiv 2506.09110, §3.2).

:func:`train_tokenizer` trains a :class:`~codebrain.models.tokenizer.TFDualTokenizer` on any
map-style dataset of EEG windows: AdamW with linear warm-up and cosine decay, optional bf16 or
fp16 autocast (FFTs, task heads and codebooks stay in float32; fp16 with a gradient scaler),
gradient clipping (``TokenizerTrainConfig.paper`` gives the authors' recipe), a tqdm progress bar, a CSV and
a JSON-lines log (losses, learning rate, fraction of codes used and perplexity of each
codebook over the logging interval), and atomic checkpoints every ``checkpoint_every`` steps.

Resuming is exact: a checkpoint holds the model (with every codebook buffer), the optimizer,
the scheduler, the RNG states of every rank, the step, and the data position (epoch and batch
within the epoch). The epoch's sample order is a pure function of ``(seed, epoch)``, so a run
interrupted at step k and resumed reproduces the uninterrupted run bit for bit (same device,
same thread count).

Under ``torch.distributed`` (e.g. ``torchrun``) the model is wrapped in
``DistributedDataParallel`` and a ``DistributedSampler`` shards the data; the codebooks
all-reduce their EMA statistics and broadcast k-means/restarts, so they stay identical on
every rank. Only rank 0 writes files.

Outputs in ``out_dir`` (the run-folder layout of :mod:`codebrain.training.run`):
``config.json``, ``metrics.csv``, ``metrics.jsonl``, ``checkpoints/ckpt_<step>.pt``, and at the
end ``final/`` (``save_pretrained`` folder) and ``result.json``. The names earlier versions
wrote (``train_config.json``, ``log.csv``, ``log.jsonl``, ``tokenizer/``, ``summary.json``)
are kept as deprecated aliases.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from codebrain.layers.quantize import fraction_used, perplexity
from codebrain.models.tokenizer import TFDualTokenizer, TokenizerConfig
from codebrain.training import _distributed
from codebrain.training._loop import (
    MetricLog,
    ResumableDistributedSampler,
    as_window,
    resume_position,
    warn_if_dataset_changed,
)
from codebrain.training._schedule import WarmupCosine, build_warmup_cosine_scheduler
from codebrain.training.checkpointing import load_checkpoint, unwrap_model
from codebrain.training.loop_config import StepLoopConfig
from codebrain.training.optim import param_groups
from codebrain.training.run import RunFolder, progress_bar
from codebrain.utils.check import check_int
from codebrain.utils.device import resolve_device

__all__ = ["TokenizerTrainConfig", "TokenizerTrainResult", "train_tokenizer"]

logger = logging.getLogger(__name__)

LOG_FIELDS = (
    "step",
    "epoch",
    "lr",
    "loss",
    "time",
    "amp",
    "phase",
    "commit_t",
    "commit_f",
    "contrastive",
    "used_t",
    "used_f",
    "perplexity_t",
    "perplexity_f",
    "grad_norm",
    "elapsed_s",
)
_LOSS_KEYS = (
    "loss",
    "time",
    "amp",
    "phase",
    "commit_t",
    "commit_f",
    "contrastive",
    "grad_norm",
)


# ------------------------------------------------------------------------------ config
@dataclass
class TokenizerTrainConfig(StepLoopConfig):
    """Settings of :func:`train_tokenizer` (JSON-serialisable).

    The shared fields (``steps``, ``batch_size``, ``lr``, ``min_lr``, ``warmup_steps``,
    ``weight_decay``, ``grad_clip``, ``precision``, ``seed``, ``device``, ``resume``,
    ``num_workers``, ``progress``, ``log_every``, ``checkpoint_every``,
    ``keep_checkpoints``) mean what :class:`~codebrain.training.loop_config.StepLoopConfig`
    says; the defaults here are the tokenizer's. ``steps`` is also the length of the cosine
    schedule; ``min_lr`` defaults to ``lr / 100``; ``resume`` defaults to ``True`` (continue
    the run folder's newest checkpoint); ``precision="fp16"`` is the authors' (CUDA, with a
    gradient scaler); FFTs, task heads, codebooks and losses stay in float32.

    Parameters
    ----------
    decay_all_params : bool
        Apply ``weight_decay`` to every parameter (the authors'); otherwise biases, norms and
        1-D parameters get none.
    betas : tuple of float
        AdamW betas.

    Notes
    -----
    Deprecated spellings (a ``DeprecationWarning``; also read from saved configs):
    ``max_steps`` (now ``steps``) and ``min_lr_ratio`` (now ``min_lr = lr * min_lr_ratio``).
    """

    _deprecated_fields: ClassVar[dict[str, str]] = {"max_steps": "steps", "min_lr_ratio": "min_lr"}

    steps: int = 100_000
    batch_size: int = 64
    lr: float = 5e-4
    min_lr: float | None = None
    warmup_steps: int = 1000
    weight_decay: float = 1e-4
    grad_clip: float = 3.0
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    resume: bool | str = True
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    decay_all_params: bool = False
    betas: tuple[float, float] = (0.9, 0.99)

    def __post_init__(self) -> None:
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        super().__post_init__()
        check_int(self._label("seed"), self.seed, minimum=0)

    @property
    def max_steps(self) -> int:
        """Deprecated: :attr:`steps`."""
        warnings.warn(
            "TokenizerTrainConfig.max_steps is deprecated; use steps.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.steps

    @classmethod
    def paper(cls, n_windows: int, world_size: int = 1, **overrides: Any) -> TokenizerTrainConfig:
        """The authors' Stage 1 settings (``Pretrain/pretrain_TFDual.py``, ``TFDual_Trainer``).

        20 epochs of batch 256 per process (``steps = 20 * (n_windows // (256 *
        world_size))``; another ``batch_size`` override enters this and the lr rule); AdamW
        with default betas (0.9, 0.999) and weight decay 1e-4 on every parameter; the learning
        rate 1e-4 scaled by ``total_batch / 128`` (6e-4 on their 3 GPUs); a per-step cosine to
        1e-5 after one warm-up step; no gradient clipping; fp16 autocast with a gradient
        scaler; seed 42.

        Parameters
        ----------
        n_windows : int
            Training windows (one epoch).
        world_size : int
            Processes (GPUs) sharing the data.
        **overrides
            Any field, applied last (e.g. ``precision="fp32"`` on a CPU).

        Returns
        -------
        TokenizerTrainConfig

        Notes
        -----
        The authors' first step runs at lr 0 (their warm-up is ``linspace(0, lr, 1)``); here the
        one warm-up step runs at the full rate. Their DataParallel run divides the steps per
        epoch by the GPU count for the schedule only; the schedule here spans the steps run.
        """
        check_int("n_windows", n_windows, minimum=1)
        check_int("world_size", world_size, minimum=1)
        batch = int(overrides.get("batch_size", 256))
        total_batch = batch * world_size
        per_epoch = n_windows // total_batch
        if per_epoch < 1 and not {"steps", "max_steps"} & set(overrides):
            raise ValueError(
                f"the paper recipe's batch is {batch} windows per process x {world_size} "
                f"process(es) = {total_batch}; the corpus has {n_windows}."
            )
        lr = 1e-4 * total_batch / 128
        base: dict[str, Any] = dict(
            steps=20 * max(1, per_epoch),
            batch_size=batch,
            lr=lr,
            weight_decay=1e-4,
            decay_all_params=True,
            betas=(0.9, 0.999),
            warmup_steps=1,
            min_lr=min(lr, 1e-5),
            grad_clip=0.0,
            precision="fp16",
            seed=42,
        )
        for old, new in cls._deprecated_fields.items():
            if old in overrides:  # an old spelling replaces the recipe's value of the new one
                base.pop(new)
        base.update(overrides)
        return cls(**base)


@dataclass
class TokenizerTrainResult:
    """What :func:`train_tokenizer` returns.

    Attributes
    ----------
    model : TFDualTokenizer
        The trained tokenizer (unwrapped, eval mode, on the training device).
    step : int
        Optimizer steps done.
    finished : bool
        ``True`` when ``steps`` was reached (``False`` after ``stop_after``).
    history : list of dict
        Log rows (``LOG_FIELDS``), including those of earlier runs that this one resumed.
    checkpoint : Path or None
        The last checkpoint written.
    out_dir : Path
    """

    model: TFDualTokenizer
    step: int
    finished: bool
    history: list[dict[str, Any]] = field(default_factory=list)
    checkpoint: Path | None = None
    out_dir: Path | None = None


# -------------------------------------------------------------------------------- data
def _collate(items: list[Any]) -> torch.Tensor:
    """Stack windows ``(n_chans, n_times)`` (or ``(x, y)`` tuples) into ``(B, C, T)``."""
    xs = [as_window(it, i) for i, it in enumerate(items)]
    shapes = {tuple(x.shape) for x in xs}
    if len(shapes) != 1:
        raise ValueError(f"windows in a batch have different shapes: {sorted(shapes)}.")
    return torch.stack(xs)


def _resolve_device(name: str | None) -> torch.device:
    return resolve_device(name, local_rank=_distributed.rank())


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """:func:`codebrain.training.optim.param_groups` by parameter name, without ``names``."""
    groups = param_groups(model, weight_decay, sort_by_name=True)
    return [{k: v for k, v in g.items() if k != "names"} for g in groups]


# ------------------------------------------------------------------------------ logging
class _Meter:
    """Sums of loss terms and code counts over a logging interval."""

    def __init__(self, k_t: int, k_f: int, device: torch.device) -> None:
        self.losses = torch.zeros(len(_LOSS_KEYS), dtype=torch.float64, device=device)
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
        out = {k: float(v) / n for k, v in zip(_LOSS_KEYS, losses.tolist(), strict=True)}
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


# -------------------------------------------------------------------------------- train
@dataclass
class _Position:
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


def train_tokenizer(
    dataset: Dataset,
    config: TokenizerTrainConfig | None,
    out_dir: str | Path,
    *,
    model_config: TokenizerConfig | None = None,
    model: TFDualTokenizer | None = None,
    stop_after: int | None = None,
) -> TokenizerTrainResult:
    """Train a TFDual-Tokenizer; resume from ``out_dir`` when a checkpoint is there.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
        Map-style; item ``i`` is a float tensor ``(n_chans, n_times)`` (or a NumPy array), or a
        tuple whose first element is one. ``n_times`` must be a multiple of the tokenizer's
        ``patch_size``; all windows must share one shape.
    config : TokenizerTrainConfig or None
        Loop settings (default ``TokenizerTrainConfig()``).
    out_dir : path-like
        Run folder (checkpoints, logs, final tokenizer; see :mod:`codebrain.training.run`).
    model_config : TokenizerConfig, optional
        Architecture of a new tokenizer. Default: the released sizes, with ``max_chans`` and
        ``max_patches`` widened to fit the data. Ignored when ``model`` is given.
    model : TFDualTokenizer, optional
        Start from this model (e.g. a pretrained one) instead of a fresh one.
    stop_after : int, optional
        Stop (with a checkpoint) once this many steps are done, without changing the
        schedule; a later call with the same arguments resumes. Used to split runs.

    Returns
    -------
    TokenizerTrainResult

    Raises
    ------
    ValueError
        Empty dataset, fewer windows than one batch per process, windows that do not fit the
        model, a checkpoint from a different configuration, or a run folder of another
        command.
    FloatingPointError
        The loss became NaN or infinite.

    Notes
    -----
    The global torch RNG is seeded with ``config.seed`` before the model is built (and
    restored from the checkpoint on resume). Calling again with a larger ``steps`` extends a
    finished run; the learning-rate schedule then follows the new ``steps``.
    """
    cfg = _check_config(config, stop_after)
    rank, world = _distributed.rank(), _distributed.world_size()
    run = RunFolder(out_dir, "tokenizer-train", main=rank == 0)
    first = _check_dataset(dataset, cfg, world)
    device = _resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = _build_model(model, model_config, first, device)
    optimizer, scheduler, scaler = _build_optimizer(model, cfg, device)
    meter = _Meter(model.config.codebook_size_t, model.config.codebook_size_f, device)

    pos = _Position()
    resume_from = run.resume_checkpoint(cfg.resume, refuse_existing=False)
    if resume_from is not None:
        pos = _resume(resume_from, model, optimizer, scheduler, scaler, meter, cfg, len(dataset))
    run.prepare(cfg, model=model.config.to_dict(), world_size=world)
    log = run.metric_log(LOG_FIELDS, resume_step=pos.step)
    net = _wrap_ddp(model, device, world)
    sampler = ResumableDistributedSampler(
        dataset, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed, drop_last=True
    )
    batches_per_epoch = sampler.num_samples // cfg.batch_size
    pos.epoch, pos.batch_in_epoch = resume_position(
        pos.epoch, pos.batch_in_epoch, batches_per_epoch
    )
    target = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    pos.t_start = time.perf_counter()

    bar = progress_bar(
        total=cfg.steps, initial=pos.step, desc="tokenizer", enabled=cfg.progress and run.main
    )
    try:
        while pos.step < target:
            for x in _epoch_batches(dataset, sampler, cfg, pos, device):
                out, grad_norm = _train_step(
                    net, model, x, optimizer, scheduler, scaler, cfg, pos.step
                )
                pos.advance(batches_per_epoch)
                meter.add(_loss_terms(out, grad_norm), out.counts_t, out.counts_f)
                bar.update(1)
                if pos.step % cfg.log_every == 0 or pos.step == cfg.steps:
                    _log_interval(log, bar, meter, scheduler, pos)
                if _checkpoint_due(pos.step, cfg.checkpoint_every, target):
                    pos.checkpoint = _write_checkpoint(
                        run, cfg, pos, model, optimizer, scheduler, scaler, meter, len(dataset)
                    )
                if pos.step >= target:
                    break
    finally:
        bar.close()
    return _finish(run, model, cfg, pos, log, world)


# ------------------------------------------------------------------------- loop pieces
def _check_config(
    config: TokenizerTrainConfig | None, stop_after: int | None
) -> TokenizerTrainConfig:
    cfg = config if config is not None else TokenizerTrainConfig()
    if not isinstance(cfg, TokenizerTrainConfig):
        raise TypeError(f"config must be a TokenizerTrainConfig, got {type(cfg).__name__}.")
    if stop_after is not None and stop_after < 1:
        raise ValueError(f"stop_after must be >= 1, got {stop_after}.")
    return cfg


def _check_dataset(dataset: Dataset, cfg: TokenizerTrainConfig, world: int) -> torch.Tensor:
    """The first window ``(C, T)``; raises for an empty or too small dataset."""
    n = len(dataset)  # type: ignore[arg-type]
    if n == 0:
        raise ValueError("the dataset is empty.")
    first = as_window(dataset[0], 0)
    if n < cfg.batch_size * world:
        raise ValueError(
            f"the dataset has {n} windows; one step needs batch_size ({cfg.batch_size}) x "
            f"processes ({world}) = {cfg.batch_size * world}."
        )
    return first


def _build_model(
    model: TFDualTokenizer | None,
    model_config: TokenizerConfig | None,
    first: torch.Tensor,
    device: torch.device,
) -> TFDualTokenizer:
    """The given model, or a new one (released sizes widened to the data), in train mode."""
    n_chans, n_times = first.shape
    if model is None:
        if model_config is None:
            base = TokenizerConfig()
            model_config = TokenizerConfig(
                **{
                    **base.to_dict(),
                    "max_chans": max(base.max_chans, n_chans),
                    "max_patches": max(base.max_patches, n_times // base.patch_size),
                }
            )
        model = TFDualTokenizer(model_config)
    model.to_patches(first[None])  # validates the windows against the model (ValueError)
    model.to(device)
    model.train()
    return model


def _build_optimizer(
    model: nn.Module, cfg: TokenizerTrainConfig, device: torch.device
) -> tuple[torch.optim.Optimizer, Any, Any]:
    """AdamW, the warm-up + cosine schedule and (fp16) the gradient scaler."""
    if cfg.precision == "fp16" and device.type != "cuda":
        raise ValueError(
            f"precision 'fp16' needs a CUDA device (got {device}); use 'bf16' or 'fp32'."
        )
    groups = (
        [{"params": [p for p in model.parameters() if p.requires_grad]}]
        if cfg.decay_all_params
        else _param_groups(model, cfg.weight_decay)
    )
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler("cuda") if cfg.precision == "fp16" else None
    scheduler = build_warmup_cosine_scheduler(
        optimizer,
        warmup_steps=cfg.warmup_steps,
        total_steps=cfg.steps,
        min_lr_ratio=cfg.min_lr_fraction,
    )
    return optimizer, scheduler, scaler


def _resume(
    path: Path,
    model: TFDualTokenizer,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    meter: _Meter,
    cfg: TokenizerTrainConfig,
    n_windows: int,
) -> _Position:
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
    return _Position(
        step=int(extra["step"]),
        epoch=int(extra["epoch"]),
        batch_in_epoch=int(extra["batch_in_epoch"]),
        elapsed_before=float(extra.get("elapsed_s", 0.0)),
        checkpoint=path,
    )


def _wrap_ddp(model: nn.Module, device: torch.device, world: int) -> nn.Module:
    if world == 1:
        return model
    return nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None
    )


def _epoch_batches(
    dataset: Dataset,
    sampler: ResumableDistributedSampler,
    cfg: TokenizerTrainConfig,
    pos: _Position,
    device: torch.device,
) -> Iterator[torch.Tensor]:
    """The rest of the current epoch's batches ``(B, C, T)``, on ``device``.

    The order is a pure function of ``(seed, epoch)``; the loader starts at the position.
    """
    sampler.set_epoch(pos.epoch)
    sampler.set_start(pos.batch_in_epoch * cfg.batch_size)
    loader = DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        drop_last=True,
        num_workers=cfg.num_workers,
        collate_fn=_collate,
        generator=torch.Generator().manual_seed(cfg.seed * 1_000_003 + pos.epoch),
        pin_memory=device.type == "cuda",
    )
    for x in loader:
        yield x.to(device, non_blocking=True)


def _autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    if precision not in ("bf16", "fp16"):
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _train_step(
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
    with _autocast(cfg.precision, x.device):
        out = net(x)
    if not torch.isfinite(out.loss):
        raise FloatingPointError(
            f"non-finite tokenizer loss at step {step + 1}: {float(out.loss)}; "
            "lower the learning rate or check the data scale."
        )
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(out.loss).backward()
        scaler.unscale_(optimizer)
    else:
        out.loss.backward()
    if cfg.grad_clip > 0:
        grad_norm = nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    else:
        grad_norm = _grad_norm(model)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    scheduler.step()
    return out, grad_norm


def _loss_terms(out: Any, grad_norm: torch.Tensor) -> torch.Tensor:
    """The :data:`_LOSS_KEYS` values of one step."""
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


def _log_interval(log: MetricLog, bar: Any, meter: _Meter, scheduler: Any, pos: _Position) -> None:
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


def _checkpoint_due(step: int, every: int, target: int) -> bool:
    return (every > 0 and step % every == 0) or step == target


def _write_checkpoint(
    run: RunFolder,
    cfg: TokenizerTrainConfig,
    pos: _Position,
    model: TFDualTokenizer,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    meter: _Meter,
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


def _finish(
    run: RunFolder,
    model: TFDualTokenizer,
    cfg: TokenizerTrainConfig,
    pos: _Position,
    log: MetricLog,
    world: int,
) -> TokenizerTrainResult:
    """Synchronise the ranks' buffers; a finished run writes ``final/`` and ``result.json``."""
    if world > 1:
        # Batch-norm statistics (TFConv) are per rank; DDP copies rank 0's at each forward.
        # Give every rank rank 0's final ones, as in the checkpoint and the saved tokenizer.
        for buf in model.buffers():
            _distributed.broadcast(buf)
    finished = pos.step >= cfg.steps
    model.eval()
    if finished:
        run.save_final(model)
        run.write_result(_summary(model, pos, log))
    _distributed.barrier()
    return TokenizerTrainResult(
        model=unwrap_model(model),  # type: ignore[arg-type]
        step=pos.step,
        finished=finished,
        history=list(log.history),
        checkpoint=pos.checkpoint,
        out_dir=run.path,
    )


def _summary(model: TFDualTokenizer, pos: _Position, log: MetricLog) -> dict[str, Any]:
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


def _grad_norm(model: nn.Module) -> torch.Tensor:
    norms = [p.grad.detach().float().norm() for p in model.parameters() if p.grad is not None]
    if not norms:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(norms))
