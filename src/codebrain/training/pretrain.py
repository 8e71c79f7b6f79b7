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
    capture_rng_state,
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
)
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
from codebrain.utils.check import check_int
from codebrain.utils.config import JSONConfig
from codebrain.utils.io import atomic_write_json

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

_PRECISIONS = ("fp32", "bf16", "fp16")
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


# ------------------------------------------------------------------------------ config
@dataclass
class PretrainConfig(JSONConfig):
    """Hyper-parameters of a pretraining run (JSON-able; CLI flags map onto the fields).

    Defaults are codebrain's recipe, which follows LaBraM's masked-token pretraining (AdamW,
    betas (0.9, 0.98), weight decay 0.05 on weight matrices, warm-up then cosine decay, mask
    ratio 0.5 with a fixed count per sample, gradient clipping 3.0). :meth:`paper` gives the
    authors' settings (``Pretrain/pretrain_EEGSSM.py``); the README tabulates both.

    Parameters
    ----------
    steps : int
        Optimizer steps in total (a resumed run continues up to this number).
    batch_size : int
        Windows per process per micro-batch. Global batch
        ``G = batch_size * accum_steps * world_size``.
    accum_steps : int
        Micro-batches accumulated per optimizer step.
    lr, min_lr : float
        Peak and final learning rate (linear warm-up to ``lr``, cosine decay to ``min_lr``).
    warmup_steps : int
        Linear warm-up length in optimizer steps.
    schedule_steps : int
        Length of the cosine in optimizer steps (``0``: ``steps``, the cosine ends with the
        run). The authors' schedule is 40 epochs long for a 10-epoch run.
    weight_decay : float
        AdamW decay for weight matrices; SGConv kernels and skip weights, norms, biases,
        weight-norm magnitudes and every 0/1-d parameter get none (unless
        ``decay_all_params``).
    decay_all_params : bool
        Apply ``weight_decay`` to every parameter (the authors').
    betas : tuple of float
        AdamW betas.
    eps : float
        AdamW epsilon.
    grad_clip : float
        Max global gradient norm; ``0`` disables clipping.
    precision : {"fp32", "bf16", "fp16"}
        Autocast dtype for the backbone forward (``fp16`` needs CUDA and uses a grad scaler).
        The tokenizer and the loss always run in float32.
    mask_ratio : float
        Fraction of patches masked (see :mod:`codebrain.training.masking`).
    mask_strategy : {"random", "channel_block", "time_block"}
    mask_block_size : int
        Run length (patches) for ``"time_block"``.
    seed : int
        Seeds data order, masks and the model's dropout.
    num_workers : int
        DataLoader worker processes per rank.
    log_every : int
        Steps between metric rows (train metrics are averaged over the interval, all ranks).
    val_every : int
        Steps between validations (``0``: only at the end, when ``val_ds`` is given).
    val_batches : int or None
        Cap on validation micro-batches per rank (``None``: the whole set).
    checkpoint_every : int
        Steps between checkpoints (``0``: no periodic checkpoints; one is still written at
        the end).
    keep_checkpoints : int
        Newest checkpoints kept in ``out_dir/checkpoints``.
    resume : str or None
        ``"auto"`` (newest checkpoint in ``out_dir/checkpoints``, fresh start if none), a
        checkpoint path, or ``None`` (fresh start; refuses to overwrite existing checkpoints).
    device : str or None
        ``"cpu"``, ``"cuda"`` ... (default: this rank's GPU if any, else CPU).
    progress : bool
        tqdm progress bar on rank 0.
    tensorboard : bool
        Also log to TensorBoard (needs the ``tensorboard`` package; skipped with a log message
        otherwise).
    compile : bool
        ``torch.compile`` the training module.
    """

    steps: int = 10_000
    batch_size: int = 32
    accum_steps: int = 1
    lr: float = 5e-4
    min_lr: float = 1e-5
    warmup_steps: int = 500
    schedule_steps: int = 0
    weight_decay: float = 0.05
    decay_all_params: bool = False
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-8
    grad_clip: float = 3.0
    precision: str = "fp32"
    mask_ratio: float = DEFAULT_MASK_RATIO
    mask_strategy: str = "random"
    mask_block_size: int = 1
    seed: int = 0
    num_workers: int = 0
    log_every: int = 50
    val_every: int = 0
    val_batches: int | None = None
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    resume: str | None = None
    device: str | None = None
    progress: bool = True
    tensorboard: bool = False
    compile: bool = False

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)  # JSON gives a list
        for name in ("steps", "batch_size", "accum_steps", "log_every", "keep_checkpoints"):
            check_int(f"PretrainConfig.{name}", getattr(self, name), minimum=1)
        for name in (
            "warmup_steps",
            "schedule_steps",
            "val_every",
            "checkpoint_every",
            "num_workers",
            "mask_block_size",
        ):
            check_int(f"PretrainConfig.{name}", getattr(self, name), minimum=0)
        if self.val_batches is not None and self.val_batches < 1:
            raise ValueError(f"PretrainConfig.val_batches must be >= 1, got {self.val_batches}.")
        if not self.lr > 0 or self.min_lr < 0 or self.min_lr > self.lr:
            raise ValueError(
                f"Need lr > 0 and 0 <= min_lr <= lr, got lr={self.lr}, min_lr={self.min_lr}."
            )
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError("weight_decay and grad_clip must be >= 0.")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be two values in [0, 1), got {self.betas}.")
        if self.precision not in _PRECISIONS:
            raise ValueError(f"precision must be one of {_PRECISIONS}, got {self.precision!r}.")
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
    ``resume=None`` then means ``"auto"``.
    """
    cfg = config if config is not None else PretrainConfig()
    out_dir = Path(out_dir)
    if cfg.resume is None and elastic_restart_count() > 0:
        logger.warning(
            "torchrun relaunched the group (restart %d): resuming from the newest checkpoint "
            "in %s.",
            elastic_restart_count(),
            out_dir / "checkpoints",
        )
        cfg = dataclasses.replace(cfg, resume="auto")
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
    from tqdm.auto import tqdm

    for attr in ("encode", "lm_head_t", "lm_head_f", "save_pretrained", "patch_size"):
        if not hasattr(model, attr):
            raise TypeError(f"model must be a codebrain.CodeBrain (it has no {attr!r}).")
    if not hasattr(tokenizer, "tokenize"):
        raise TypeError("tokenizer must have a tokenize(x) -> (ids_t, ids_f) method.")
    if cfg.precision == "fp16" and ctx.device.type != "cuda":
        raise ValueError("precision='fp16' needs a CUDA device; use 'bf16' on CPU.")
    n_train = len(train_ds)  # type: ignore[arg-type]
    if n_train == 0:
        raise ValueError("train_ds is empty.")
    x0 = as_window(train_ds[0], 0)
    n_chans, n_times = x0.shape
    if n_chans != model.n_chans:
        raise ValueError(
            f"train_ds windows have {n_chans} channels but the model expects {model.n_chans}."
        )
    n_patches = n_times // model.patch_size
    if n_patches < 1:
        raise ValueError(
            f"train_ds windows have {n_times} samples, fewer than one patch ({model.patch_size})."
        )

    global_batch = cfg.batch_size * cfg.accum_steps * ctx.world
    sampler = ResumableDistributedSampler(
        IndexedWindows(train_ds),
        num_replicas=ctx.world,
        rank=ctx.rank,
        shuffle=True,
        seed=cfg.seed,
        drop_last=True,
    )
    steps_per_epoch = sampler.num_samples // (cfg.batch_size * cfg.accum_steps)
    if steps_per_epoch < 1:
        raise ValueError(
            f"train_ds has {n_train} windows, fewer than one global batch of {global_batch} "
            f"(batch_size={cfg.batch_size} x accum_steps={cfg.accum_steps} x "
            f"world_size={ctx.world})."
        )

    # --- model, tokenizer, optimizer -------------------------------------------------------
    torch.manual_seed(cfg.seed + ctx.rank)  # dropout differs per rank, reproducibly
    device = ctx.device
    model.to(device)
    model.train()
    # Parameters outside the objective (the classification head, the last block's residual
    # branch) are frozen for the run: DDP requires every trainable parameter to get a gradient.
    _freeze_unused(model, x0.unsqueeze(0), n_patches, device)
    if isinstance(tokenizer, nn.Module):
        tokenizer.to(device).eval()
        for p in tokenizer.parameters():
            p.requires_grad_(False)
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

    # --- resume ---------------------------------------------------------------------------
    ckpt_dir = out_dir / "checkpoints"
    step, epoch, samples_in_epoch, resumed_from = 0, 0, 0, None
    resume_path: Path | None = None
    if cfg.resume == "auto":
        resume_path = latest_checkpoint(ckpt_dir)
        if resume_path is None:
            logger.info("No checkpoint in %s: starting from scratch.", ckpt_dir)
    elif cfg.resume:
        resume_path = Path(cfg.resume)
        if not resume_path.is_file():
            raise FileNotFoundError(f"resume checkpoint {str(resume_path)!r} does not exist.")
    elif latest_checkpoint(ckpt_dir) is not None:
        raise ValueError(
            f"{ckpt_dir} already holds checkpoints; pass resume='auto' to continue that run "
            f"or choose another out_dir."
        )
    if resume_path is not None:
        extra = load_checkpoint(
            resume_path,
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            scaler=scaler,
            restore_rng=True,
            rng_index=ctx.rank,
            map_location=device,
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
        resumed_from = str(resume_path)
        logger.info("Resumed from %s at step %d (epoch %d).", resume_path, step, epoch)
    epoch, steps_in_epoch = resume_position(
        epoch, samples_in_epoch // global_batch, steps_per_epoch
    )

    if ctx.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            out_dir / "config.json",
            {"pretrain": cfg.to_dict(), "model": _model_config(model), "world_size": ctx.world},
        )
    barrier()
    mlog = MetricLog(
        out_dir,
        _METRIC_FIELDS,
        enabled=ctx.main,
        resume_step=step,
        tensorboard=cfg.tensorboard,
        tb_keys=("loss", "loss_t", "loss_f", "acc_t", "acc_f", "lr", "grad_norm"),
    )

    train_module: nn.Module = MaskedTokenModule(model)
    if ctx.active:
        train_module = nn.parallel.DistributedDataParallel(
            train_module,
            device_ids=[device.index] if device.type == "cuda" else None,
            gradient_as_bucket_view=True,
        )
    ddp_module = train_module
    if cfg.compile:
        train_module = torch.compile(train_module)  # type: ignore[assignment]

    loader_gen = torch.Generator()  # DataLoader draws its worker base seed here, not globally
    loader_gen.manual_seed(cfg.seed)
    loader = DataLoader(
        sampler.dataset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        num_workers=cfg.num_workers,
        drop_last=True,
        pin_memory=device.type == "cuda",
        generator=loader_gen,
        persistent_workers=False,
    )

    # --- loop ----------------------------------------------------------------------------
    sums = torch.zeros(5, dtype=torch.float64, device=device)
    grad_norm_sum, grad_norm_n = 0.0, 0
    t_data = t_tok = t_comp = 0.0
    start_step = step
    t_start = time.perf_counter()
    last_train: dict[str, Any] = {}
    last_val: dict[str, Any] = {}
    bar = tqdm(
        total=cfg.steps,
        initial=step,
        disable=not (ctx.main and cfg.progress),
        desc="pretrain",
        dynamic_ncols=True,
    )

    def log_train() -> dict[str, Any] | None:
        nonlocal sums, grad_norm_sum, grad_norm_n, last_train
        all_reduce_sum(sums)
        if sums[4].item() == 0:
            return None
        row = {
            "step": step,
            "epoch": epoch,
            "split": "train",
            "lr": scheduler.get_last_lr()[0],
            **metrics_from_sums(sums),
            "grad_norm": grad_norm_sum / max(grad_norm_n, 1),
            "windows": step * global_batch,
            "elapsed_s": round(time.perf_counter() - t_start, 3),
        }
        mlog.write(row)
        last_train = row
        bar.set_postfix(loss=f"{row['loss']:.3f}", acc_t=f"{row['acc_t']:.3f}")
        sums = torch.zeros_like(sums)
        grad_norm_sum, grad_norm_n = 0.0, 0
        return row

    def run_validation() -> dict[str, Any]:
        nonlocal last_val
        assert val_ds is not None
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
            device=device,
        )
        row = {
            "step": step,
            "epoch": epoch,
            "split": "val",
            "lr": scheduler.get_last_lr()[0],
            **m,
            "windows": step * global_batch,
            "elapsed_s": round(time.perf_counter() - t_start, 3),
        }
        mlog.write(row)
        last_val = row
        if ctx.main:
            logger.info(
                "step %d val: loss %.4f (t %.4f, f %.4f) acc_t %.3f acc_f %.3f",
                step,
                m["loss"],
                m["loss_t"],
                m["loss_f"],
                m["acc_t"],
                m["acc_f"],
            )
        return row

    def write_checkpoint() -> Path:
        rng = capture_rng_state()
        rngs: list[Any] = [None] * ctx.world
        if ctx.active:
            dist.all_gather_object(rngs, rng)
        else:
            rngs = [rng]
        path = checkpoint_path(ckpt_dir, step)
        if ctx.main:
            save_checkpoint(
                path,
                model=model,
                optimizer=optimizer,
                scheduler=scheduler,
                scaler=scaler,
                rng_state=rngs,
                extra={
                    "step": step,
                    "epoch": epoch,
                    "samples_in_epoch": steps_in_epoch * global_batch,
                    "world_size": ctx.world,
                    "global_batch": global_batch,
                    "n_train": n_train,
                    "config": cfg.to_dict(),
                },
            )
            prune_checkpoints(ckpt_dir, cfg.keep_checkpoints)
        barrier()
        return path

    try:
        while step < cfg.steps:
            sampler.set_epoch(epoch)
            sampler.set_start(steps_in_epoch * cfg.batch_size * cfg.accum_steps)
            it = iter(loader)
            while step < cfg.steps and steps_in_epoch < steps_per_epoch:
                t0 = time.perf_counter()
                # The whole step's windows stay on the host; each micro-batch goes to the
                # device only when it is used (memory does not grow with accum_steps).
                micro = [next(it) for _ in range(cfg.accum_steps)]
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
                n_global = torch.tensor(
                    float(sum(int(m.sum()) for m in masks)), dtype=torch.float64, device=device
                )
                all_reduce_sum(n_global)  # loss normaliser: masked positions of all ranks
                # (a Bernoulli mask may leave a whole step without masked positions: loss 0)
                scale = ctx.world / max(1.0, n_global.item())
                t_data += time.perf_counter() - t0
                for j, ((_, x), mask) in enumerate(zip(micro, masks, strict=True)):
                    t0 = time.perf_counter()
                    x = x.to(device, non_blocking=True)
                    mask = mask.to(device, non_blocking=True)
                    t1 = time.perf_counter()
                    ids_t, ids_f = compute_token_targets(tokenizer, x, n_patches)
                    if step == start_step and j == 0:
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
                    sums += torch.stack([ce_t.detach(), ce_f.detach(), ht, hf, mask.sum()]).to(sums)
                    t_data += t1 - t0
                    t_tok += t2 - t1
                    t_comp += time.perf_counter() - t2
                t2 = time.perf_counter()
                if scaler is not None:
                    scaler.unscale_(optimizer)
                params = [p for g in optimizer.param_groups for p in g["params"]]
                if cfg.grad_clip > 0:
                    gn = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                else:
                    gn = torch.linalg.vector_norm(
                        torch.stack(
                            [torch.linalg.vector_norm(p.grad) for p in params if p.grad is not None]
                        )
                    )
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                grad_norm_sum += float(gn)
                grad_norm_n += 1
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                t_comp += time.perf_counter() - t2
                step += 1
                steps_in_epoch += 1
                bar.update(1)

                ckpt = None
                row = None
                do_ckpt = cfg.checkpoint_every > 0 and step % cfg.checkpoint_every == 0
                if step % cfg.log_every == 0 or do_ckpt or step == cfg.steps:
                    row = log_train()
                if val_ds is not None and cfg.val_every > 0 and step % cfg.val_every == 0:
                    run_validation()
                if do_ckpt:
                    ckpt = write_checkpoint()
                if step_callback is not None:
                    step_callback(
                        step,
                        {
                            "epoch": epoch,
                            "lr": scheduler.get_last_lr()[0],
                            "checkpoint": ckpt,
                            "metrics": row,
                            "timing": {"data_s": t_data, "tokenize_s": t_tok, "compute_s": t_comp},
                        },
                    )
            if steps_in_epoch >= steps_per_epoch:
                epoch += 1
                steps_in_epoch = 0
        elapsed = time.perf_counter() - t_start

        if val_ds is not None and (cfg.val_every == 0 or step % cfg.val_every != 0):
            run_validation()
        if not (cfg.checkpoint_every > 0 and step % cfg.checkpoint_every == 0):
            write_checkpoint()
        final_dir = out_dir / "final"
        if ctx.main:
            model.save_pretrained(final_dir)
            logger.info("Saved the pretrained backbone to %s", final_dir)
        barrier()
    finally:
        bar.close()
        mlog.close()

    done = step - start_step
    result = PretrainResult(
        out_dir=out_dir,
        final_dir=out_dir / "final",
        step=step,
        epoch=epoch,
        resumed_from=resumed_from,
        train_metrics=last_train,
        val_metrics=last_val,
        windows_per_second=done * global_batch / elapsed if elapsed > 0 else 0.0,
        elapsed_s=elapsed,
        data_s=t_data,
        tokenize_s=t_tok,
        compute_s=t_comp,
        history=list(mlog.rows),
    )
    if ctx.main:
        atomic_write_json(out_dir / "result.json", result.to_dict())
    return result


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
