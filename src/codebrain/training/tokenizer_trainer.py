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

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset

from codebrain.models.tokenizer import TFDualTokenizer, TokenizerConfig
from codebrain.training import _distributed
from codebrain.training._loop import (
    MetricLog,
    ResumableDistributedSampler,
    as_window,
    resume_position,
)
from codebrain.training._steps import build_adamw, wrap_ddp
from codebrain.training._tokenizer_step import (
    Meter,
    Position,
    log_interval,
    loss_terms,
    resume_from_checkpoint,
    summary,
    train_step,
    write_checkpoint,
)
from codebrain.training.checkpointing import unwrap_model
from codebrain.training.optim import param_groups
from codebrain.training.run import RunFolder, progress_bar, resume_after_relaunch
from codebrain.training.tokenizer_train_config import TokenizerTrainConfig
from codebrain.utils.check import check_type, check_value

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


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """:func:`codebrain.training.optim.param_groups` by parameter name, without ``names``."""
    groups = param_groups(model, weight_decay, sort_by_name=True)
    return [{k: v for k, v in g.items() if k != "names"} for g in groups]


# ------------------------------------------------------------------------------ logging
# -------------------------------------------------------------------------------- train
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
    finished run; the learning-rate schedule then follows the new ``steps``. A group that
    torchrun relaunched after a failure (``--max-restarts``, ``TORCHELASTIC_RESTART_COUNT > 0``)
    continues the run it replaces: ``resume=False`` then means ``True`` (the newest checkpoint
    of the run folder), as in :func:`~codebrain.training.pretrain.pretrain`. Under ``torchrun``
    (``WORLD_SIZE > 1``) the process group is joined from the environment and destroyed at
    the end, as in pretraining; an existing default group is used as is. A ``device`` of
    ``None`` or a bare ``"cuda"`` takes GPU ``LOCAL_RANK % n_gpus`` (in a group the caller made
    without ``$LOCAL_RANK``, the group rank stands in for it: set ``$LOCAL_RANK`` or pass
    ``"cuda:N"`` when such a group spans machines).
    """
    cfg = _check_config(config, stop_after)
    ctx = _distributed.setup_distributed(cfg.device)
    try:
        return _train_tokenizer(dataset, cfg, Path(out_dir), ctx, model_config, model, stop_after)
    finally:
        if ctx.initialized_here and dist.is_initialized():
            dist.destroy_process_group()


def _train_tokenizer(
    dataset: Dataset,
    cfg: TokenizerTrainConfig,
    out_dir: Path,
    ctx: _distributed.DistContext,
    model_config: TokenizerConfig | None,
    model: TFDualTokenizer | None,
    stop_after: int | None,
) -> TokenizerTrainResult:
    """The loop of :func:`train_tokenizer`, inside the process group (if any).

    It trains on ``ctx.device``: the device that ``setup_distributed`` resolved for this
    rank's local rank, as pretraining does.
    """
    rank, world = ctx.rank, ctx.world
    run = RunFolder(out_dir, "tokenizer-train", main=rank == 0)
    cfg = resume_after_relaunch(cfg, run.checkpoints_dir)
    first = _check_dataset(dataset, cfg, world)
    device = ctx.device
    torch.manual_seed(cfg.seed)
    model = _build_model(model, model_config, first, device)
    optimizer, scheduler, scaler = _build_optimizer(model, cfg, device)
    meter = Meter(model.config.codebook_size_t, model.config.codebook_size_f, device)

    pos = Position()
    resume_from = run.resume_checkpoint(cfg.resume, refuse_existing=False)
    if resume_from is not None:
        pos = resume_from_checkpoint(
            resume_from, model, optimizer, scheduler, scaler, meter, cfg, len(dataset)
        )
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
                out, grad_norm = train_step(
                    net, model, x, optimizer, scheduler, scaler, cfg, pos.step
                )
                pos.advance(batches_per_epoch)
                meter.add(loss_terms(out, grad_norm), out.counts_t, out.counts_f)
                bar.update(1)
                if pos.step % cfg.log_every == 0 or pos.step == cfg.steps:
                    log_interval(log, bar, meter, scheduler, pos)
                if _checkpoint_due(pos.step, cfg.checkpoint_every, target):
                    pos.checkpoint = write_checkpoint(
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
    check_type("config", cfg, TokenizerTrainConfig)
    check_type("stop_after", stop_after, (int, type(None)), "an int >= 1 or None")
    check_value("stop_after", stop_after, stop_after is None or stop_after >= 1, ">= 1")
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
    return build_adamw(
        groups,
        lr=cfg.lr,
        betas=cfg.betas,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_steps,
        total_steps=cfg.steps,
        min_lr_fraction=cfg.min_lr_fraction,
        precision=cfg.precision,
    )


def _wrap_ddp(model: nn.Module, device: torch.device, world: int) -> nn.Module:
    if world == 1:
        return model
    return wrap_ddp(model, device)


def _epoch_batches(
    dataset: Dataset,
    sampler: ResumableDistributedSampler,
    cfg: TokenizerTrainConfig,
    pos: Position,
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


def _checkpoint_due(step: int, every: int, target: int) -> bool:
    return (every > 0 and step % every == 0) or step == target


def _finish(
    run: RunFolder,
    model: TFDualTokenizer,
    cfg: TokenizerTrainConfig,
    pos: Position,
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
        run.write_result(summary(model, pos, log))
    _distributed.barrier()
    return TokenizerTrainResult(
        model=unwrap_model(model),  # type: ignore[arg-type]
        step=pos.step,
        finished=finished,
        history=list(log.history),
        checkpoint=pos.checkpoint,
        out_dir=run.path,
    )
