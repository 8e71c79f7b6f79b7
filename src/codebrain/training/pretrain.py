"""Stage 2: masked-token pretraining of the EEGSSM backbone (CodeBrain, arXiv 2506.09110 §3.3).

For every window a subset of the ``(channel, patch)`` positions is masked
(:mod:`codebrain.training.masking`); the frozen TFDual-Tokenizer gives the temporal and
frequency token ids of the *unmasked* window; the backbone sees the masked window and predicts
both ids at the masked positions (cross-entropy on ``lm_head_t`` and ``lm_head_f``, summed;
the objective and its evaluation live in :mod:`codebrain.training.masked_tokens`).

Scaling: one loop runs on one CPU and under ``torchrun`` on many GPU machines
(DistributedDataParallel; NCCL on GPUs, gloo on CPU; ``env://`` rendezvous). Three choices make
a run *the same computation* whatever the process count, batch split and interruptions:

* data order comes from a :class:`torch.utils.data.DistributedSampler` permutation (seeded by
  ``seed + epoch``), and optimizer step ``s`` consumes global positions ``[s*G, (s+1)*G)`` of it
  (``G`` = global batch = ``batch_size * accum_steps * world_size``);
* masks are keyed by ``(seed, epoch, global sample index)``
  (:func:`~codebrain.training.masking.sample_keyed_masks`), never by rank or micro-batch;
* the loss is normalised by the *global* number of masked positions in the optimizer step
  (one scalar all-reduce), so DDP's gradient averaging gives exactly the single-process mean.

Checkpoints (:mod:`codebrain.training.checkpointing`) are atomic and hold model, optimizer,
scheduler, grad scaler, every rank's RNG states and the data position, so a killed run resumes
to the same weights as an uninterrupted one.

Shape legend: B = batch, C = EEG channels, T = samples, P = patches per channel,
K_t / K_f = temporal / frequency codebook sizes, N = masked positions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset

from codebrain.training._distributed import (
    DistContext,
    all_reduce_sum,
    barrier,
    elastic_restart_count,
    setup_distributed,
)
from codebrain.training._loop import (
    IndexedWindows,
    MetricLog,
    ResumableDistributedSampler,
    as_window,
    resume_position,
    warn_if_dataset_changed,
)
from codebrain.training._schedule import WarmupCosine
from codebrain.training.checkpointing import (
    load_checkpoint,
)
from codebrain.training.loop_config import StepLoopConfig
from codebrain.training.masked_tokens import (
    MaskedTokenModule,
    Tokenizer,
    autocast_for,
    check_vocab,
    compute_token_targets,
    evaluate_masked_tokens,
    head_sums,
    metrics_from_sums,
)
from codebrain.training.masking import (
    DEFAULT_MASK_RATIO,
    MASK_STRATEGIES,
    sample_keyed_masks,
)
from codebrain.training.optim import param_groups
from codebrain.training.run import RunFolder, progress_bar
from codebrain.utils.check import check_int

__all__ = [
    "PretrainConfig",
    "PretrainResult",
    "ResumableDistributedSampler",
    "Tokenizer",
    "build_param_groups",
    "compute_token_targets",
    "evaluate_masked_tokens",
    "pretrain",
]

logger = logging.getLogger(__name__)

_STRIDE_WARNING = "Grad strides do not match bucket view strides"
_METRIC_FIELDS = (
    "step",
    "epoch",
    "split",
    "lr",
    "loss",
    "loss_t",
    "loss_f",
    "acc_t",
    "acc_f",
    "grad_norm",
    "n_masked",
    "windows",
    "elapsed_s",
)
_TB_KEYS = ("loss", "loss_t", "loss_f", "acc_t", "acc_f", "lr", "grad_norm")


# ------------------------------------------------------------------------------ config
def _resume_value(resume: Any) -> bool | str:
    """``resume`` in the current vocabulary (``None`` and ``"auto"`` are deprecated)."""
    if resume is None or resume == "auto":
        new = resume == "auto"
        warnings.warn(
            f"PretrainConfig.resume={resume!r} is deprecated; use resume={new}.",
            DeprecationWarning,
            stacklevel=4,
        )
        return new
    return resume


@dataclass
class PretrainConfig(StepLoopConfig):
    """Hyper-parameters of a pretraining run (JSON-able; CLI flags map onto the fields).

    Defaults are codebrain's recipe, which follows LaBraM's masked-token pretraining (AdamW,
    betas (0.9, 0.98), weight decay 0.05 on weight matrices, warm-up then cosine decay, mask
    ratio 0.5 with a fixed count per sample, gradient clipping 3.0). :meth:`paper` gives the
    authors' settings (``Pretrain/pretrain_EEGSSM.py``); the README tabulates both.

    The shared fields (``steps``, ``batch_size``, ``lr``, ``min_lr``, ``warmup_steps``,
    ``weight_decay``, ``grad_clip``, ``precision``, ``seed``, ``device``, ``resume``,
    ``num_workers``, ``progress``, ``log_every``, ``checkpoint_every``,
    ``keep_checkpoints``) mean what :class:`~codebrain.training.loop_config.StepLoopConfig`
    says, with these specifics: ``batch_size`` is per process and micro-batch (global batch
    ``G = batch_size * accum_steps * world_size``); ``precision`` applies to the backbone
    forward (the tokenizer and the loss always run in float32); ``seed`` seeds data order,
    masks and the model's dropout; ``log_every`` rows average the interval over all ranks;
    ``resume=False`` refuses to overwrite existing checkpoints.

    Parameters
    ----------
    accum_steps : int
        Micro-batches accumulated per optimizer step.
    schedule_steps : int
        Length of the cosine in optimizer steps (``0``: ``steps``, the cosine ends with the
        run). The authors' schedule is 40 epochs long for a 10-epoch run.
    decay_all_params : bool
        Apply ``weight_decay`` to every parameter (the authors'); otherwise SGConv kernels and
        skip weights, norms, biases, weight-norm magnitudes and every 0/1-d parameter get none.
    betas : tuple of float
        AdamW betas.
    eps : float
        AdamW epsilon.
    mask_ratio : float
        Fraction of patches masked (see :mod:`codebrain.training.masking`).
    mask_strategy : {"random", "channel_block", "time_block"}
    mask_block_size : int
        Run length (patches) for ``"time_block"``.
    val_every : int
        Steps between validations (``0``: only at the end, when ``val_ds`` is given).
    val_batches : int or None
        Cap on validation micro-batches per rank (``None``: the whole set).
    tensorboard : bool
        Also log to TensorBoard (needs the ``tensorboard`` package; skipped with a log message
        otherwise).
    compile : bool
        ``torch.compile`` the training module.

    Notes
    -----
    Deprecated values (a ``DeprecationWarning``): ``resume=None`` (now ``False``) and
    ``resume="auto"`` (now ``True``).
    """

    steps: int = 10_000
    batch_size: int = 32
    lr: float = 5e-4
    min_lr: float | None = 1e-5
    warmup_steps: int = 500
    weight_decay: float = 0.05
    grad_clip: float = 3.0
    keep_checkpoints: int = 2
    accum_steps: int = 1
    schedule_steps: int = 0
    decay_all_params: bool = False
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-8
    mask_ratio: float = DEFAULT_MASK_RATIO
    mask_strategy: str = "random"
    mask_block_size: int = 1
    val_every: int = 0
    val_batches: int | None = None
    tensorboard: bool = False
    compile: bool = False

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)  # JSON gives a list
        self.resume = _resume_value(self.resume)
        super().__post_init__()
        check_int("PretrainConfig.accum_steps", self.accum_steps, minimum=1)
        for name in ("schedule_steps", "val_every", "mask_block_size"):
            check_int(f"PretrainConfig.{name}", getattr(self, name), minimum=0)
        if self.val_batches is not None and self.val_batches < 1:
            raise ValueError(f"PretrainConfig.val_batches must be >= 1, got {self.val_batches}.")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be two values in [0, 1), got {self.betas}.")
        if not 0.0 < self.mask_ratio <= 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1], got {self.mask_ratio}.")
        if self.mask_strategy not in MASK_STRATEGIES:
            raise ValueError(
                f"mask_strategy must be one of {MASK_STRATEGIES}, got {self.mask_strategy!r}."
            )

    @classmethod
    def paper(cls, n_windows: int, world_size: int = 1, **overrides: Any) -> PretrainConfig:
        """The authors' Stage 2 settings (``Pretrain/pretrain_EEGSSM.py``, ``EEGSSM_Trainer``).

        10 epochs at a global batch of 256 (``steps = 10 * (n_windows // 256)``), AdamW
        (lr 1e-4, default betas (0.9, 0.999), weight decay 5e-3 on every parameter), no warm-up,
        a per-step cosine to 1e-5 over **40** epochs' worth of steps (so it ends near 0.87e-4),
        gradient clipping 5, fp32, masks drawn as an independent Bernoulli(0.5) per channel ×
        patch, seed 42.

        Parameters
        ----------
        n_windows : int
            Training windows (one epoch).
        world_size : int
            Processes; the per-process batch is ``256 // world_size``.
        **overrides
            Any field, applied last.

        Returns
        -------
        PretrainConfig
        """
        check_int("n_windows", n_windows, minimum=1)
        check_int("world_size", world_size, minimum=1)
        if 256 % world_size:
            raise ValueError(f"world_size ({world_size}) must divide the global batch of 256.")
        batch = int(overrides.get("batch_size", 256 // world_size))
        per_epoch = n_windows // (batch * world_size)
        if per_epoch < 1 and "steps" not in overrides:
            raise ValueError(
                f"the paper recipe's global batch is {batch * world_size} windows; the corpus "
                f"has {n_windows}."
            )
        per_epoch = max(1, per_epoch)
        base = dict(
            steps=10 * per_epoch,
            batch_size=batch,
            accum_steps=1,
            lr=1e-4,
            min_lr=1e-5,
            warmup_steps=0,
            schedule_steps=40 * per_epoch,
            weight_decay=5e-3,
            decay_all_params=True,
            betas=(0.9, 0.999),
            eps=1e-8,
            grad_clip=5.0,
            precision="fp32",
            mask_ratio=0.5,
            mask_strategy="bernoulli",
            seed=42,
        )
        base.update(overrides)
        return cls(**base)


@dataclass
class PretrainResult:
    """What :func:`pretrain` returns (on every rank).

    Attributes
    ----------
    out_dir : Path
        Run folder (``config.json``, ``metrics.csv``, ``metrics.jsonl``, ``result.json``,
        ``checkpoints/``, ``final/``).
    final_dir : Path
        ``out_dir / "final"``: load with ``CodeBrain.from_pretrained(final_dir, n_outputs=K)``.
    step : int
        Optimizer steps completed.
    epoch : int
        Epoch the run ended in.
    resumed_from : str or None
        Checkpoint the run resumed from.
    train_metrics, val_metrics : dict
        Last logged train / validation metrics (empty if none).
    windows_per_second : float
        Global training throughput of this invocation (all ranks).
    elapsed_s, data_s, tokenize_s, compute_s : float
        Wall time of the training loop on rank 0 and its split: waiting for the DataLoader
        (and host-to-device copies), tokenizer targets, and model forward/backward/step.
    history : list of dict
        Every metric row written by this invocation.
    """

    out_dir: Path
    final_dir: Path
    step: int
    epoch: int
    resumed_from: str | None
    train_metrics: dict[str, Any] = field(default_factory=dict)
    val_metrics: dict[str, Any] = field(default_factory=dict)
    windows_per_second: float = 0.0
    elapsed_s: float = 0.0
    data_s: float = 0.0
    tokenize_s: float = 0.0
    compute_s: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict."""
        d = dataclasses.asdict(self)
        d["out_dir"], d["final_dir"] = str(self.out_dir), str(self.final_dir)
        return d


# ---------------------------------------------------------------------------- pieces
def build_param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups: :func:`codebrain.training.optim.param_groups` of ``model``.

    No weight decay for norms, biases, weight-norm gains, SGConv kernels and skip weights
    (the one rule of :mod:`codebrain.training.optim`). Frozen parameters are left out.

    Returns
    -------
    list of dict
        ``[{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]``
        with a ``"names"`` list in each group (drop it before building the optimizer).
    """
    return param_groups(model, weight_decay)


# ------------------------------------------------------------------------------ main
def pretrain(
    model: nn.Module,
    tokenizer: Tokenizer,
    train_ds: Dataset,
    val_ds: Dataset | None = None,
    config: PretrainConfig | None = None,
    out_dir: str | os.PathLike = "pretrain_out",
    *,
    step_callback: Callable[[int, dict[str, Any]], None] | None = None,
) -> PretrainResult:
    """Masked-token pretraining of a CodeBrain backbone (single process or ``torchrun``).

    Parameters
    ----------
    model : CodeBrain
        The backbone to train in place (its classification head is left untouched and is not
        optimised). Dropout is active; build it with ``drop_prob=0, spectral_dropout=0`` for a
        dropout-free run.
    tokenizer : Tokenizer
        Frozen Stage 1 tokenizer (``tokenize(x) -> (ids_t, ids_f)``); an ``nn.Module`` is moved
        to the training device, set to eval and its parameters frozen. Its codebook sizes must
        not exceed the model's ``codebook_size_t`` / ``codebook_size_f``.
    train_ds : Dataset
        Map-style; items are tensors ``(C, T)`` or tuples whose first element is one.
    val_ds : Dataset, optional
        Held-out windows for periodic validation.
    config : PretrainConfig, optional
        Hyper-parameters (defaults: :class:`PretrainConfig()`).
    out_dir : path-like
        Run folder; under ``torchrun`` it must be on a filesystem every rank can read (resume
        loads the checkpoint on every rank).
    step_callback : callable, optional
        ``step_callback(step, info)`` on every rank after each optimizer step (and after that
        step's checkpoint, if any); ``info`` has ``epoch``, ``lr``, ``checkpoint`` (path or
        ``None``), ``metrics`` (the row logged at this step or ``None``) and ``timing``
        (cumulative ``data_s``, ``tokenize_s``, ``compute_s`` of this invocation).

    Returns
    -------
    PretrainResult

    Notes
    -----
    Under ``torchrun`` (``WORLD_SIZE > 1``) the process group is initialised from the
    environment (``env://``; NCCL for GPUs, gloo for CPUs) and destroyed at the end; an
    existing default group is used as is. A group that torchrun relaunched after a failure
    (``--max-restarts``, ``TORCHELASTIC_RESTART_COUNT > 0``) continues the run it replaces:
    ``resume=False`` then means ``True`` (the newest checkpoint of the run folder).
    """
    cfg = config if config is not None else PretrainConfig()
    out_dir = Path(out_dir)
    if cfg.resume is False and elastic_restart_count() > 0:
        logger.warning(
            "torchrun relaunched the group (restart %d): resuming from the newest checkpoint "
            "in %s.",
            elastic_restart_count(),
            out_dir / "checkpoints",
        )
        cfg = dataclasses.replace(cfg, resume=True)
    ctx = setup_distributed(cfg.device)
    # Training freezes the parameters outside the objective; give the caller back the model
    # with its own requires_grad flags whatever happens.
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        return _pretrain(model, tokenizer, train_ds, val_ds, cfg, out_dir, ctx, step_callback)
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        if ctx.initialized_here and dist.is_initialized():
            dist.destroy_process_group()


@dataclass
class _Position:
    """Optimizer steps done and the data position (epoch, optimizer steps into it)."""

    step: int = 0
    epoch: int = 0
    steps_in_epoch: int = 0


@dataclass
class _Timing:
    """Cumulative wall time of this invocation's loop: data, tokenizer targets, compute."""

    data_s: float = 0.0
    tokenize_s: float = 0.0
    compute_s: float = 0.0
    t_start: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        return time.perf_counter() - self.t_start


class _Meter:
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


def _pretrain(
    model: nn.Module,
    tokenizer: Tokenizer,
    train_ds: Dataset,
    val_ds: Dataset | None,
    cfg: PretrainConfig,
    out_dir: Path,
    ctx: DistContext,
    step_callback: Callable[[int, dict[str, Any]], None] | None,
) -> PretrainResult:
    x0 = _check_inputs(model, tokenizer, train_ds, cfg, ctx)
    n_train, (n_chans, n_times) = len(train_ds), x0.shape  # type: ignore[arg-type]
    n_patches = n_times // model.patch_size
    run = RunFolder(out_dir, "pretrain", main=ctx.main)
    global_batch = cfg.batch_size * cfg.accum_steps * ctx.world
    sampler = ResumableDistributedSampler(
        IndexedWindows(train_ds),
        num_replicas=ctx.world,
        rank=ctx.rank,
        shuffle=True,
        seed=cfg.seed,
        drop_last=True,
    )
    steps_per_epoch = _steps_per_epoch(sampler, cfg, n_train, ctx.world)

    torch.manual_seed(cfg.seed + ctx.rank)  # dropout differs per rank, reproducibly
    device = ctx.device
    _prepare_models(model, tokenizer, x0, n_patches, device)
    optimizer, scheduler, scaler = _build_optimizer(model, cfg)

    pos, resumed_from = _Position(), None
    resume_path = run.resume_checkpoint(cfg.resume, refuse_existing=True)
    if resume_path is not None:
        pos = _resume(resume_path, model, optimizer, scheduler, scaler, ctx, n_train, global_batch)
        resumed_from = str(resume_path)
    pos.epoch, pos.steps_in_epoch = resume_position(pos.epoch, pos.steps_in_epoch, steps_per_epoch)
    run.prepare(cfg, model=_model_config(model), world_size=ctx.world)
    mlog = run.metric_log(
        _METRIC_FIELDS, resume_step=pos.step, tensorboard=cfg.tensorboard, tb_keys=_TB_KEYS
    )
    train_module, ddp_module = _wrap(model, cfg, ctx)
    loader = _loader(sampler, cfg, device)

    meter, timing, start_step = _Meter(device), _Timing(), pos.step
    last_train: dict[str, Any] = {}
    last_val: dict[str, Any] = {}
    bar = progress_bar(
        total=cfg.steps, initial=pos.step, desc="pretrain", enabled=ctx.main and cfg.progress
    )
    try:
        while pos.step < cfg.steps:
            sampler.set_epoch(pos.epoch)
            sampler.set_start(pos.steps_in_epoch * cfg.batch_size * cfg.accum_steps)
            batches = iter(loader)
            while pos.step < cfg.steps and pos.steps_in_epoch < steps_per_epoch:
                first_step = pos.step == start_step
                micro = _next_step_batches(batches, cfg, pos.epoch, n_chans, n_patches, timing)
                _train_step(
                    micro, train_module, ddp_module, model, tokenizer, optimizer, scheduler,
                    scaler, cfg, ctx, meter, timing, n_patches, check_targets=first_step,
                )  # fmt: skip
                pos.step += 1
                pos.steps_in_epoch += 1
                bar.update(1)

                ckpt, row = None, None
                do_ckpt = cfg.checkpoint_every > 0 and pos.step % cfg.checkpoint_every == 0
                if pos.step % cfg.log_every == 0 or do_ckpt or pos.step == cfg.steps:
                    row = _log_train(mlog, bar, meter, pos, scheduler, global_batch, timing)
                    last_train = row or last_train
                if val_ds is not None and cfg.val_every > 0 and pos.step % cfg.val_every == 0:
                    last_val = _validate(
                        mlog, model, tokenizer, val_ds, cfg, pos, scheduler, global_batch, timing
                    )
                if do_ckpt:
                    ckpt = _write_checkpoint(
                        run, cfg, pos, model, optimizer, scheduler, scaler, ctx, n_train
                    )
                if step_callback is not None:
                    step_callback(pos.step, _step_info(pos, scheduler, ckpt, row, timing))
            if pos.steps_in_epoch >= steps_per_epoch:
                pos.epoch += 1
                pos.steps_in_epoch = 0
        elapsed = timing.elapsed()

        if val_ds is not None and (cfg.val_every == 0 or pos.step % cfg.val_every != 0):
            last_val = _validate(
                mlog, model, tokenizer, val_ds, cfg, pos, scheduler, global_batch, timing
            )
        if not (cfg.checkpoint_every > 0 and pos.step % cfg.checkpoint_every == 0):
            _write_checkpoint(run, cfg, pos, model, optimizer, scheduler, scaler, ctx, n_train)
        run.save_final(model)
        barrier()
    finally:
        bar.close()
        mlog.close()

    done = pos.step - start_step
    result = PretrainResult(
        out_dir=out_dir,
        final_dir=run.final_dir,
        step=pos.step,
        epoch=pos.epoch,
        resumed_from=resumed_from,
        train_metrics=last_train,
        val_metrics=last_val,
        windows_per_second=done * global_batch / elapsed if elapsed > 0 else 0.0,
        elapsed_s=elapsed,
        data_s=timing.data_s,
        tokenize_s=timing.tokenize_s,
        compute_s=timing.compute_s,
        history=list(mlog.rows),
    )
    run.write_result(result.to_dict())
    return result


# ------------------------------------------------------------------------- loop pieces
def _check_inputs(
    model: nn.Module, tokenizer: Tokenizer, train_ds: Dataset, cfg: PretrainConfig, ctx: DistContext
) -> torch.Tensor:
    """Validate the model, tokenizer and data; the first window ``(C, T)``."""
    for attr in ("encode", "lm_head_t", "lm_head_f", "save_pretrained", "patch_size"):
        if not hasattr(model, attr):
            raise TypeError(f"model must be a codebrain.CodeBrain (it has no {attr!r}).")
    if not hasattr(tokenizer, "tokenize"):
        raise TypeError("tokenizer must have a tokenize(x) -> (ids_t, ids_f) method.")
    if cfg.precision == "fp16" and ctx.device.type != "cuda":
        raise ValueError("precision='fp16' needs a CUDA device; use 'bf16' on CPU.")
    if len(train_ds) == 0:  # type: ignore[arg-type]
        raise ValueError("train_ds is empty.")
    x0 = as_window(train_ds[0], 0)
    n_chans, n_times = x0.shape
    if n_chans != model.n_chans:
        raise ValueError(
            f"train_ds windows have {n_chans} channels but the model expects {model.n_chans}."
        )
    if n_times // model.patch_size < 1:
        raise ValueError(
            f"train_ds windows have {n_times} samples, fewer than one patch ({model.patch_size})."
        )
    return x0


def _steps_per_epoch(
    sampler: ResumableDistributedSampler, cfg: PretrainConfig, n_train: int, world: int
) -> int:
    steps = sampler.num_samples // (cfg.batch_size * cfg.accum_steps)
    if steps < 1:
        raise ValueError(
            f"train_ds has {n_train} windows, fewer than one global batch of "
            f"{cfg.batch_size * cfg.accum_steps * world} (batch_size={cfg.batch_size} x "
            f"accum_steps={cfg.accum_steps} x world_size={world})."
        )
    return steps


def _prepare_models(
    model: nn.Module, tokenizer: Tokenizer, x0: torch.Tensor, n_patches: int, device: torch.device
) -> None:
    """Backbone to ``device`` in train mode, its unreached parameters frozen; tokenizer frozen."""
    model.to(device)
    model.train()
    # Parameters outside the objective (the classification head, the last block's residual
    # branch) are frozen for the run: DDP requires every trainable parameter to get a gradient.
    _freeze_unused(model, x0.unsqueeze(0), n_patches, device)
    if isinstance(tokenizer, nn.Module):
        tokenizer.to(device).eval()
        for p in tokenizer.parameters():
            p.requires_grad_(False)


def _build_optimizer(
    model: nn.Module, cfg: PretrainConfig
) -> tuple[torch.optim.Optimizer, Any, Any]:
    """AdamW over the parameter groups, the warm-up + cosine schedule, the fp16 scaler."""
    groups = build_param_groups(model, cfg.weight_decay)
    if cfg.decay_all_params:
        groups = [
            {
                "params": [p for g in groups for p in g["params"]],
                "weight_decay": cfg.weight_decay,
                "names": [n for g in groups for n in g["names"]],
            }
        ]
    optimizer = torch.optim.AdamW(
        [{k: v for k, v in g.items() if k != "names"} for g in groups],
        lr=cfg.lr,
        betas=cfg.betas,
        eps=cfg.eps,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        WarmupCosine(cfg.warmup_steps, cfg.schedule_steps or cfg.steps, cfg.min_lr / cfg.lr),
    )
    scaler = torch.amp.GradScaler("cuda") if cfg.precision == "fp16" else None
    return optimizer, scheduler, scaler


def _resume(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    ctx: DistContext,
    n_train: int,
    global_batch: int,
) -> _Position:
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
    return _Position(step, epoch, samples_in_epoch // global_batch)


def _wrap(model: nn.Module, cfg: PretrainConfig, ctx: DistContext) -> tuple[nn.Module, nn.Module]:
    """``(module to call, module owning no_sync)``: the masked-token module, DDP, compiled."""
    train_module: nn.Module = MaskedTokenModule(model)
    if ctx.active:
        train_module = nn.parallel.DistributedDataParallel(
            train_module,
            device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
            gradient_as_bucket_view=True,
        )
    ddp_module = train_module
    if cfg.compile:
        train_module = torch.compile(train_module)  # type: ignore[assignment]
    return train_module, ddp_module


def _loader(
    sampler: ResumableDistributedSampler, cfg: PretrainConfig, device: torch.device
) -> DataLoader:
    loader_gen = torch.Generator()  # DataLoader draws its worker base seed here, not globally
    loader_gen.manual_seed(cfg.seed)
    return DataLoader(
        sampler.dataset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        num_workers=cfg.num_workers,
        drop_last=True,
        pin_memory=device.type == "cuda",
        generator=loader_gen,
        persistent_workers=False,
    )


def _next_step_batches(
    batches: Any, cfg: PretrainConfig, epoch: int, n_chans: int, n_patches: int, timing: _Timing
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


def _train_step(
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
    meter: _Meter,
    timing: _Timing,
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
    meter.add_grad_norm(_optimizer_step(optimizer, scheduler, scaler, cfg.grad_clip))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    timing.compute_s += time.perf_counter() - t2


def _optimizer_step(
    optimizer: torch.optim.Optimizer, scheduler: Any, scaler: Any, grad_clip: float
) -> torch.Tensor:
    """Unscale, clip (``0``: only measure), step and zero; the global gradient norm."""
    if scaler is not None:
        scaler.unscale_(optimizer)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    if grad_clip > 0:
        gn = torch.nn.utils.clip_grad_norm_(params, grad_clip)
    else:
        gn = torch.linalg.vector_norm(
            torch.stack([torch.linalg.vector_norm(p.grad) for p in params if p.grad is not None])
        )
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return gn


def _row(
    split: str, pos: _Position, scheduler: Any, metrics: dict[str, Any], global_batch: int,
    timing: _Timing,
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


def _log_train(
    mlog: MetricLog,
    bar: Any,
    meter: _Meter,
    pos: _Position,
    scheduler: Any,
    global_batch: int,
    timing: _Timing,
) -> dict[str, Any] | None:
    """Write the interval's train row (all ranks reduce); ``None`` when nothing was masked."""
    metrics = meter.reduce()
    if metrics is None:
        return None
    row = _row("train", pos, scheduler, metrics, global_batch, timing)
    mlog.write(row)
    bar.set_postfix(loss=f"{row['loss']:.3f}", acc_t=f"{row['acc_t']:.3f}")
    return row


def _validate(
    mlog: MetricLog,
    model: nn.Module,
    tokenizer: Tokenizer,
    val_ds: Dataset,
    cfg: PretrainConfig,
    pos: _Position,
    scheduler: Any,
    global_batch: int,
    timing: _Timing,
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


def _write_checkpoint(
    run: RunFolder,
    cfg: PretrainConfig,
    pos: _Position,
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


def _step_info(
    pos: _Position, scheduler: Any, ckpt: Path | None, row: dict | None, timing: _Timing
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


def _freeze_unused(
    model: nn.Module, x: torch.Tensor, n_patches: int, device: torch.device
) -> list[nn.Parameter]:
    """Freeze the parameters the masked-token loss does not reach; returns them.

    Found with one probe forward/backward on a single window in eval mode (no dropout, so no
    RNG is consumed); gradients are cleared afterwards.
    """
    was_training = model.training
    model.eval()
    mask = torch.zeros(1, x.shape[1], n_patches, dtype=torch.bool, device=device)
    mask[..., 0] = True
    try:
        lt, lf = MaskedTokenModule(model)(x.to(device), mask)
        (lt.float().sum() + lf.float().sum()).backward()
    finally:
        model.train(was_training)
    frozen = []
    for p in model.parameters():
        if p.requires_grad and p.grad is None:
            frozen.append(p)
            p.requires_grad_(False)
        p.grad = None
    logger.debug("Frozen %d parameter tensors outside the pretraining objective.", len(frozen))
    return frozen


def _model_config(model: nn.Module) -> dict[str, Any]:
    get = getattr(model, "get_config", None)
    if get is None:
        return {}
    try:
        return json.loads(json.dumps(get()))
    except (TypeError, ValueError):
        return {}
