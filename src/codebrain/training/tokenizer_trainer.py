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

Outputs in ``out_dir``: ``checkpoints/ckpt_<step>.pt``, ``log.csv``, ``log.jsonl``,
``train_config.json``, and at the end ``tokenizer/`` (``save_pretrained`` folder) and
``summary.json``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

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
from codebrain.training.checkpointing import (
    capture_rng_state,
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
    unwrap_model,
)
from codebrain.training.optim import param_groups
from codebrain.utils.check import check_int
from codebrain.utils.config import JSONConfig
from codebrain.utils.device import resolve_device
from codebrain.utils.io import atomic_write_json

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
class TokenizerTrainConfig(JSONConfig):
    """Settings of :func:`train_tokenizer` (JSON-serialisable).

    Parameters
    ----------
    max_steps : int
        Optimizer steps of the whole run (also the length of the cosine schedule).
    batch_size : int
        Windows per step and per process.
    lr : float
        Peak learning rate.
    weight_decay : float
        AdamW weight decay of matrices (biases, norms and 1-D parameters get none unless
        ``decay_all_params``).
    decay_all_params : bool
        Apply ``weight_decay`` to every parameter (the authors').
    betas : tuple of float
        AdamW betas.
    warmup_steps : int
        Linear warm-up steps.
    min_lr_ratio : float
        Final learning rate as a fraction of ``lr``.
    grad_clip : float
        Max global gradient norm (0 disables clipping).
    precision : {"fp32", "bf16", "fp16"}
        ``"bf16"`` runs the network under bf16 autocast (CPU or CUDA); ``"fp16"`` under fp16
        autocast with a gradient scaler (CUDA only; the authors'). FFTs, task heads, codebooks
        and losses stay in float32.
    checkpoint_every : int
        Steps between checkpoints (a final one is always written).
    keep_checkpoints : int
        Newest checkpoints kept.
    log_every : int
        Steps between log rows.
    num_workers : int
        DataLoader worker processes.
    seed : int
        Seed of the model initialisation, the data order and the RNG streams.
    device : str, optional
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; default: CUDA (the local rank's device) when
        available, else CPU.
    resume : bool
        Continue from the newest checkpoint in ``out_dir/checkpoints`` when there is one.
    progress : bool
        Show a tqdm progress bar (rank 0).
    """

    max_steps: int = 100_000
    batch_size: int = 64
    lr: float = 5e-4
    weight_decay: float = 1e-4
    decay_all_params: bool = False
    betas: tuple[float, float] = (0.9, 0.99)
    warmup_steps: int = 1000
    min_lr_ratio: float = 0.01
    grad_clip: float = 3.0
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    log_every: int = 50
    num_workers: int = 0
    seed: int = 0
    device: str | None = None
    resume: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        for name in (
            "max_steps",
            "batch_size",
            "checkpoint_every",
            "keep_checkpoints",
            "log_every",
        ):
            check_int(f"TokenizerTrainConfig.{name}", getattr(self, name), minimum=1)
        for name in ("warmup_steps", "num_workers", "seed"):
            check_int(f"TokenizerTrainConfig.{name}", getattr(self, name), minimum=0)
        if not self.lr > 0:
            raise ValueError(f"TokenizerTrainConfig.lr must be > 0, got {self.lr}.")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError("TokenizerTrainConfig.weight_decay and grad_clip must be >= 0.")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(
                f"TokenizerTrainConfig.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}."
            )
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(
                "TokenizerTrainConfig.precision must be 'fp32', 'bf16' or 'fp16', got "
                f"{self.precision!r}."
            )

    @classmethod
    def paper(cls, n_windows: int, world_size: int = 1, **overrides: Any) -> TokenizerTrainConfig:
        """The authors' Stage 1 settings (``Pretrain/pretrain_TFDual.py``, ``TFDual_Trainer``).

        20 epochs of batch 256 per process (``max_steps = 20 * (n_windows // (256 *
        world_size))``; another ``batch_size`` override enters this and the lr rule); AdamW with default betas (0.9, 0.999) and weight decay 1e-4 on every
        parameter; the learning rate 1e-4 scaled by ``total_batch / 128`` (6e-4 on their 3
        GPUs); a per-step cosine to 1e-5 after one warm-up step; no gradient clipping; fp16
        autocast with a gradient scaler; seed 42.

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
        if per_epoch < 1 and "max_steps" not in overrides:
            raise ValueError(
                f"the paper recipe's batch is {batch} windows per process x {world_size} "
                f"process(es) = {total_batch}; the corpus has {n_windows}."
            )
        lr = 1e-4 * total_batch / 128
        base = dict(
            max_steps=20 * max(1, per_epoch),
            batch_size=batch,
            lr=lr,
            weight_decay=1e-4,
            decay_all_params=True,
            betas=(0.9, 0.999),
            warmup_steps=1,
            min_lr_ratio=min(1.0, 1e-5 / lr),
            grad_clip=0.0,
            precision="fp16",
            seed=42,
        )
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
        ``True`` when ``max_steps`` was reached (``False`` after ``stop_after``).
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
        Run folder (checkpoints, logs, final tokenizer).
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
        model, or a checkpoint from a different configuration.
    FloatingPointError
        The loss became NaN or infinite.

    Notes
    -----
    The global torch RNG is seeded with ``config.seed`` before the model is built (and
    restored from the checkpoint on resume). Calling again with a larger ``max_steps``
    extends a finished run; the learning-rate schedule then follows the new ``max_steps``.
    """
    cfg = config if config is not None else TokenizerTrainConfig()
    if not isinstance(cfg, TokenizerTrainConfig):
        raise TypeError(f"config must be a TokenizerTrainConfig, got {type(cfg).__name__}.")
    if stop_after is not None and stop_after < 1:
        raise ValueError(f"stop_after must be >= 1, got {stop_after}.")
    out_dir = Path(out_dir)
    rank, world = _distributed.rank(), _distributed.world_size()
    main = rank == 0
    n = len(dataset)  # type: ignore[arg-type]
    if n == 0:
        raise ValueError("the dataset is empty.")
    first = as_window(dataset[0], 0)
    n_chans, n_times = first.shape
    if n < cfg.batch_size * world:
        raise ValueError(
            f"the dataset has {n} windows; one step needs batch_size ({cfg.batch_size}) x "
            f"processes ({world}) = {cfg.batch_size * world}."
        )

    device = _resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
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
    mcfg = model.config

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
        total_steps=cfg.max_steps,
        min_lr_ratio=cfg.min_lr_ratio,
    )
    meter = _Meter(mcfg.codebook_size_t, mcfg.codebook_size_f, device)

    ckpt_dir = out_dir / "checkpoints"
    step, epoch, batch_in_epoch, history_elapsed = 0, 0, 0, 0.0
    last_ckpt: Path | None = None
    resume_from = latest_checkpoint(ckpt_dir) if cfg.resume else None
    if resume_from is not None:
        peek = load_checkpoint(resume_from, restore_rng=False)
        saved_model_cfg = peek.get("model_config")
        if saved_model_cfg is not None and saved_model_cfg != mcfg.to_dict():
            raise ValueError(
                f"checkpoint {resume_from} was written for a different tokenizer "
                "configuration; use another out_dir or resume=False."
            )
        extra = load_checkpoint(
            resume_from,
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            scaler=scaler,
            rng_index=rank,
            map_location=device,
        )
        # The schedule follows the *current* config (a run may be extended with more steps).
        for fn in scheduler.lr_lambdas:
            if isinstance(fn, WarmupCosine):
                fn.__dict__.update(
                    WarmupCosine(cfg.warmup_steps, cfg.max_steps, cfg.min_lr_ratio).__dict__
                )
        step = int(extra["step"])
        epoch = int(extra["epoch"])
        batch_in_epoch = int(extra["batch_in_epoch"])
        warn_if_dataset_changed(extra.get("n_windows"), n)
        history_elapsed = float(extra.get("elapsed_s", 0.0))
        if extra.get("meter") is not None:
            meter.load(extra["meter"])
        last_ckpt = resume_from
        logger.info("Resuming tokenizer training from %s (step %d)", resume_from, step)

    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            out_dir / "train_config.json",
            {"train": cfg.to_dict(), "model": mcfg.to_dict(), "world_size": world},
        )
    log = MetricLog(out_dir, LOG_FIELDS, enabled=main, resume_step=step, stem="log")

    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    sampler = ResumableDistributedSampler(
        dataset, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed, drop_last=True
    )
    batches_per_epoch = sampler.num_samples // cfg.batch_size
    epoch, batch_in_epoch = resume_position(epoch, batch_in_epoch, batches_per_epoch)
    target = cfg.max_steps if stop_after is None else min(cfg.max_steps, stop_after)

    def write_checkpoint() -> Path:
        rng: Any = capture_rng_state()
        if world > 1:
            gathered: list[Any] = [None] * world
            dist.all_gather_object(gathered, rng)
            rng = gathered
        path = checkpoint_path(ckpt_dir, step)
        if main:
            save_checkpoint(
                path,
                model=model,
                optimizer=optimizer,
                scheduler=scheduler,
                scaler=scaler,
                rng_state=rng,
                extra={
                    "step": step,
                    "epoch": epoch,
                    "batch_in_epoch": batch_in_epoch,
                    "n_windows": n,
                    "elapsed_s": elapsed(),
                    "meter": meter.state(),
                    "model_config": mcfg.to_dict(),
                    "train_config": cfg.to_dict(),
                },
            )
            prune_checkpoints(ckpt_dir, cfg.keep_checkpoints)
        _distributed.barrier()
        return path

    t_start = time.perf_counter()

    def elapsed() -> float:
        return history_elapsed + time.perf_counter() - t_start

    autocast = (
        torch.autocast(
            device_type=device.type,
            dtype=torch.bfloat16 if cfg.precision == "bf16" else torch.float16,
        )
        if cfg.precision in ("bf16", "fp16")
        else contextlib.nullcontext()
    )
    bar = tqdm(
        total=cfg.max_steps,
        initial=step,
        desc="tokenizer",
        unit="step",
        disable=not (cfg.progress and main),
        dynamic_ncols=True,
    )
    try:
        while step < target:
            sampler.set_epoch(epoch)
            sampler.set_start(batch_in_epoch * cfg.batch_size)
            loader = DataLoader(
                dataset,
                batch_size=cfg.batch_size,
                sampler=sampler,
                drop_last=True,
                num_workers=cfg.num_workers,
                collate_fn=_collate,
                generator=torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch),
                pin_memory=device.type == "cuda",
            )
            for x in loader:
                x = x.to(device, non_blocking=True)
                with autocast:
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
                step += 1
                batch_in_epoch += 1
                if batch_in_epoch >= batches_per_epoch:  # data position of the next step
                    epoch += 1
                    batch_in_epoch = 0
                terms = out.losses
                meter.add(
                    torch.stack(
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
                    ),
                    out.counts_t,
                    out.counts_f,
                )
                bar.update(1)
                if step % cfg.log_every == 0 or step == cfg.max_steps:
                    row = {
                        "step": step,
                        "epoch": epoch,
                        "lr": scheduler.get_last_lr()[0],
                        **meter.summary(),
                        "elapsed_s": round(elapsed(), 3),
                    }
                    log.write(row)
                    bar.set_postfix(
                        loss=f"{row['loss']:.4f}",
                        used_t=f"{row['used_t']:.2f}",
                        used_f=f"{row['used_f']:.2f}",
                    )
                    logger.debug("step %d: %s", step, row)
                if step % cfg.checkpoint_every == 0 or step == target:
                    last_ckpt = write_checkpoint()
                if step >= target:
                    break
    finally:
        bar.close()

    if world > 1:
        # Batch-norm statistics (TFConv) are per rank; DDP copies rank 0's at each forward.
        # Give every rank rank 0's final ones, as in the checkpoint and the saved tokenizer.
        for buf in model.buffers():
            _distributed.broadcast(buf)
    finished = step >= cfg.max_steps
    model.eval()
    if finished and main:
        model.save_pretrained(out_dir / "tokenizer")
        final = log.history[-1] if log.history else {}
        atomic_write_json(
            out_dir / "summary.json",
            {
                "steps": step,
                "elapsed_s": round(elapsed(), 3),
                "final": final,
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
            },
        )
    _distributed.barrier()
    return TokenizerTrainResult(
        model=unwrap_model(model),  # type: ignore[arg-type]
        step=step,
        finished=finished,
        history=list(log.history),
        checkpoint=last_ckpt,
        out_dir=out_dir,
    )


def _grad_norm(model: nn.Module) -> torch.Tensor:
    norms = [p.grad.detach().float().norm() for p in model.parameters() if p.grad is not None]
    if not norms:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(norms))
