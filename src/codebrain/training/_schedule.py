"""Learning-rate schedules shared by the training loops: linear warm-up, then cosine decay.

The schedule is a picklable callable object (not a lambda), so ``LambdaLR.state_dict()``
round-trips through a checkpoint and a resumed run continues on the same curve.
"""

from __future__ import annotations

import math

import torch

from codebrain.utils.check import check_int, check_number

__all__ = ["WarmupCosine", "build_warmup_cosine_scheduler", "warmup_cosine_factor"]


def warmup_cosine_factor(
    step: int, *, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0
) -> float:
    """Multiplier of the base learning rate at optimizer step ``step`` (0-based).

    Parameters
    ----------
    step : int
        Number of optimizer steps already taken.
    warmup_steps : int
        Linear ramp ``(step + 1) / warmup_steps`` for ``step < warmup_steps``.
    total_steps : int
        Step at which the cosine reaches ``min_lr_ratio``; constant afterwards.
    min_lr_ratio : float
        Final multiplier, in [0, 1].

    Returns
    -------
    float
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, max(0.0, (step - warmup_steps) / span))
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class WarmupCosine:
    """Callable ``step -> factor`` for ``torch.optim.lr_scheduler.LambdaLR``.

    Parameters
    ----------
    warmup_steps, total_steps : int
        See :func:`warmup_cosine_factor`.
    min_lr_ratio : float
        Final multiplier, in [0, 1].
    """

    def __init__(self, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0) -> None:
        check_int("warmup_steps", warmup_steps, minimum=0, allow_numpy=True)
        check_int("total_steps", total_steps, allow_numpy=True)
        check_number("min_lr_ratio", min_lr_ratio, minimum=0, maximum=1)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)
        self.min_lr_ratio = float(min_lr_ratio)

    def __call__(self, step: int) -> float:
        return warmup_cosine_factor(
            step,
            warmup_steps=self.warmup_steps,
            total_steps=self.total_steps,
            min_lr_ratio=self.min_lr_ratio,
        )


def build_warmup_cosine_scheduler(
    optimizer: torch.optim.Optimizer,
    *,
    warmup_steps: int,
    total_steps: int,
    min_lr_ratio: float = 0.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` with :class:`WarmupCosine`.

    Call ``scheduler.step()`` after each ``optimizer.step()``.
    """
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, WarmupCosine(warmup_steps, total_steps, min_lr_ratio)
    )
