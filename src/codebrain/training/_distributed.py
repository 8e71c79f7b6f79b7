"""Process-group setup for the training loops, plus the single-process-safe helpers.

The reductions, broadcasts and rank queries live in :mod:`codebrain.utils.distributed` (the
codebooks in :mod:`codebrain.layers` use them too) and are re-exported here.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from codebrain.utils.device import resolve_device
from codebrain.utils.distributed import (
    all_reduce_mean,
    all_reduce_sum,
    barrier,
    broadcast,
    is_dist,
    is_main_process,
    rank,
    world_size,
)

logger = logging.getLogger(__name__)

__all__ = [
    "DistContext",
    "setup_distributed",
    "all_reduce_mean",
    "all_reduce_sum",
    "barrier",
    "broadcast",
    "is_dist",
    "is_main_process",
    "rank",
    "world_size",
]


@dataclass
class DistContext:
    """Where this process runs: rank, world size, local rank and device."""

    rank: int
    world: int
    local_rank: int
    device: torch.device
    initialized_here: bool

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str | None) -> DistContext:
    """Join the ``torchrun`` process group (``env://``) if one is configured.

    NCCL when the rank's device is a GPU, gloo otherwise. An already-initialised default group
    (e.g. created by the caller) is reused and left alive.
    """
    world_env = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank=local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    initialized_here = False
    if dist.is_available() and not dist.is_initialized() and world_env > 1:
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, init_method="env://")
        initialized_here = True
        logger.info(
            "Joined process group: backend=%s rank=%d/%d", backend, dist.get_rank(), world_env
        )
    return DistContext(rank(), world_size(), local_rank, dev, initialized_here)
