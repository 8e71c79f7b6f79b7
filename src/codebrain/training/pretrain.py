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

import dataclasses
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset

from codebrain.training._distributed import DistContext, barrier, setup_distributed
from codebrain.training._loop import (
    IndexedWindows,
    ResumableDistributedSampler,
    as_window,
    resume_position,
)
from codebrain.training._pretrain_step import (
    Meter,
    Position,
    Timing,
    log_train,
    next_step_batches,
    resume_from_checkpoint,
    step_info,
    train_step,
    validate,
    write_checkpoint,
)
from codebrain.training._steps import build_adamw, wrap_ddp
from codebrain.training.masked_tokens import (
    MaskedTokenModule,
    Tokenizer,
    compute_token_targets,
    evaluate_masked_tokens,
)
from codebrain.training.optim import param_groups
from codebrain.training.pretrain_config import PretrainConfig
from codebrain.training.run import RunFolder, model_config, progress_bar, resume_after_relaunch

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
    cfg = resume_after_relaunch(cfg, RunFolder(out_dir, "pretrain").checkpoints_dir)
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

    pos, resumed_from = Position(), None
    resume_path = run.resume_checkpoint(cfg.resume, refuse_existing=True)
    if resume_path is not None:
        pos = resume_from_checkpoint(
            resume_path, model, optimizer, scheduler, scaler, ctx, n_train, global_batch
        )
        resumed_from = str(resume_path)
    pos.epoch, pos.steps_in_epoch = resume_position(pos.epoch, pos.steps_in_epoch, steps_per_epoch)
    run.prepare(cfg, model=model_config(model), world_size=ctx.world)
    mlog = run.metric_log(
        _METRIC_FIELDS, resume_step=pos.step, tensorboard=cfg.tensorboard, tb_keys=_TB_KEYS
    )
    train_module, ddp_module = _wrap(model, cfg, ctx)
    loader = _loader(sampler, cfg, device)

    meter, timing, start_step = Meter(device), Timing(), pos.step
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
                micro = next_step_batches(batches, cfg, pos.epoch, n_chans, n_patches, timing)
                train_step(
                    micro, train_module, ddp_module, model, tokenizer, optimizer, scheduler,
                    scaler, cfg, ctx, meter, timing, n_patches, check_targets=first_step,
                )  # fmt: skip
                pos.step += 1
                pos.steps_in_epoch += 1
                bar.update(1)

                ckpt, row = None, None
                do_ckpt = cfg.checkpoint_every > 0 and pos.step % cfg.checkpoint_every == 0
                if pos.step % cfg.log_every == 0 or do_ckpt or pos.step == cfg.steps:
                    row = log_train(mlog, bar, meter, pos, scheduler, global_batch, timing)
                    last_train = row or last_train
                if val_ds is not None and cfg.val_every > 0 and pos.step % cfg.val_every == 0:
                    last_val = validate(
                        mlog, model, tokenizer, val_ds, cfg, pos, scheduler, global_batch, timing
                    )
                if do_ckpt:
                    ckpt = write_checkpoint(
                        run, cfg, pos, model, optimizer, scheduler, scaler, ctx, n_train
                    )
                if step_callback is not None:
                    step_callback(pos.step, step_info(pos, scheduler, ckpt, row, timing))
            if pos.steps_in_epoch >= steps_per_epoch:
                pos.epoch += 1
                pos.steps_in_epoch = 0
        elapsed = timing.elapsed()

        if val_ds is not None and (cfg.val_every == 0 or pos.step % cfg.val_every != 0):
            last_val = validate(
                mlog, model, tokenizer, val_ds, cfg, pos, scheduler, global_batch, timing
            )
        if not (cfg.checkpoint_every > 0 and pos.step % cfg.checkpoint_every == 0):
            write_checkpoint(run, cfg, pos, model, optimizer, scheduler, scaler, ctx, n_train)
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
    return build_adamw(
        [{k: v for k, v in g.items() if k != "names"} for g in groups],
        lr=cfg.lr,
        betas=cfg.betas,
        eps=cfg.eps,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_steps,
        total_steps=cfg.schedule_steps or cfg.steps,
        min_lr_fraction=cfg.min_lr_fraction,
        precision=cfg.precision,
    )


def _wrap(model: nn.Module, cfg: PretrainConfig, ctx: DistContext) -> tuple[nn.Module, nn.Module]:
    """``(module to call, module owning no_sync)``: the masked-token module, DDP, compiled."""
    train_module: nn.Module = MaskedTokenModule(model)
    if ctx.active:
        train_module = wrap_ddp(train_module, ctx.device, gradient_as_bucket_view=True)
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
