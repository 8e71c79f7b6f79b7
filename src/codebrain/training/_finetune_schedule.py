"""Linear warm-up followed by cosine decay, as a multiplier of each group's base learning rate."""

from __future__ import annotations

import math

import torch

__all__ = ["warmup_cosine_lambda", "build_warmup_cosine"]


def warmup_cosine_lambda(
    step: int, *, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0
) -> float:
    """LR multiplier at ``step``: linear from ~0 to 1 over ``warmup_steps``, then cosine to
    ``min_lr_ratio`` at ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_warmup_cosine(
    optimizer: torch.optim.Optimizer,
    *,
    warmup_steps: int,
    total_steps: int,
    min_lr_ratio: float = 0.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` stepping once per optimizer step with :func:`warmup_cosine_lambda`."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: warmup_cosine_lambda(
            s, warmup_steps=warmup_steps, total_steps=total_steps, min_lr_ratio=min_lr_ratio
        ),
    )
