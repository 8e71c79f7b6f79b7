"""Step plumbing shared by the resumable loops (tokenizer training and pretraining).

- :func:`build_adamw`: AdamW over given parameter groups, the warm-up + cosine
  :class:`~torch.optim.lr_scheduler.LambdaLR` and (``fp16``) the gradient scaler.
- :func:`autocast_for`: the autocast context of a ``precision`` (``fp32``: none).
- :func:`clip_and_step`: unscale, clip (or only measure) the gradients, step the optimizer and
  the scheduler; the global gradient norm.
- :func:`wrap_ddp`: ``DistributedDataParallel`` on this rank's device.

Each loop keeps its own parameter groups, batch order and loss; these pieces are the part the
two loops do identically.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from codebrain.training._schedule import build_warmup_cosine_scheduler

__all__ = ["autocast_for", "build_adamw", "clip_and_step", "grad_norm", "wrap_ddp"]


def build_adamw(
    groups: list[dict[str, Any]],
    *,
    lr: float,
    betas: tuple[float, float],
    weight_decay: float,
    warmup_steps: int,
    total_steps: int,
    min_lr_fraction: float,
    precision: str,
    eps: float = 1e-8,
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR, Any]:
    """AdamW, its linear warm-up + cosine schedule, and the ``fp16`` gradient scaler.

    Parameters
    ----------
    groups : list of dict
        Optimizer parameter groups (without ``"names"``); a group without ``"weight_decay"``
        gets ``weight_decay``.
    lr : float
        Peak learning rate.
    betas : tuple of float
        AdamW betas.
    weight_decay : float
        Default weight decay of the groups.
    warmup_steps, total_steps : int
        Schedule length (see :class:`~codebrain.training._schedule.WarmupCosine`).
    min_lr_fraction : float
        Final multiplier of the cosine, in [0, 1].
    precision : {"fp32", "bf16", "fp16"}
        ``"fp16"`` gets a ``torch.amp.GradScaler``.
    eps : float
        AdamW epsilon.

    Returns
    -------
    optimizer : torch.optim.AdamW
    scheduler : torch.optim.lr_scheduler.LambdaLR
        Call ``scheduler.step()`` after each optimizer step.
    scaler : torch.amp.GradScaler or None
    """
    optimizer = torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    scheduler = build_warmup_cosine_scheduler(
        optimizer,
        warmup_steps=warmup_steps,
        total_steps=total_steps,
        min_lr_ratio=min_lr_fraction,
    )
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    return optimizer, scheduler, scaler


def autocast_for(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to bf16 / fp16 on ``device``; a null context for ``"fp32"``."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_norm(params: Iterable[nn.Parameter]) -> torch.Tensor:
    """Global L2 norm of the gradients of ``params`` (0 when none has a gradient)."""
    norms = [p.grad.detach().float().norm() for p in params if p.grad is not None]
    if not norms:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(norms))


def clip_and_step(
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    params: Iterable[nn.Parameter],
    grad_clip: float,
) -> torch.Tensor:
    """Unscale, clip to ``grad_clip`` (``0``: only measure), step the optimizer and scheduler.

    The gradients are left in place (the caller zeroes them).

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
    scheduler : LRScheduler
    scaler : torch.amp.GradScaler or None
    params : iterable of nn.Parameter
        The parameters whose gradient norm is clipped / measured.
    grad_clip : float
        Max global gradient norm; ``0`` disables clipping.

    Returns
    -------
    torch.Tensor
        The global gradient norm before clipping (scalar).
    """
    if scaler is not None:
        scaler.unscale_(optimizer)
    norm = nn.utils.clip_grad_norm_(params, grad_clip) if grad_clip > 0 else grad_norm(params)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    scheduler.step()
    return norm


def wrap_ddp(module: nn.Module, device: torch.device, **kwargs: Any) -> nn.Module:
    """``DistributedDataParallel(module)`` on ``device`` (``device_ids`` for a GPU)."""
    return nn.parallel.DistributedDataParallel(
        module, device_ids=[device.index] if device.type == "cuda" else None, **kwargs
    )
