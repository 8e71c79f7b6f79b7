"""Small ``torch.distributed`` helpers that are safe to call in a single process.

Every function works whether or not a process group exists: without one, the world is one
process of rank 0, reductions and broadcasts are no-ops. Used by the tokenizer codebooks (EMA
statistics and k-means initialisation kept identical on every rank) and the training loops.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from codebrain.utils.device import resolve_device

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


def is_dist() -> bool:
    """``True`` when a ``torch.distributed`` process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if is_dist() else 0


def world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if is_dist() else 1


def is_main_process() -> bool:
    """``True`` on rank 0 (and in a single process)."""
    return rank() == 0


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all ranks, in place; returns it.

    Parameters
    ----------
    tensor : torch.Tensor
        Any shape; must have the same shape and dtype on every rank.

    Returns
    -------
    torch.Tensor
        The same object, now holding the sum (unchanged in a single process).
    """
    if is_dist() and world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Average ``tensor`` over all ranks, in place; returns it.

    Integer tensors are summed and floor-divided; use a floating dtype for exact means.
    """
    n = world_size()
    if n > 1:
        all_reduce_sum(tensor)
        if tensor.is_floating_point() or tensor.is_complex():
            tensor.div_(n)
        else:
            tensor.floor_divide_(n)
    return tensor


def broadcast(tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Copy ``tensor`` from rank ``src`` to every rank, in place; returns it."""
    if is_dist() and world_size() > 1:
        dist.broadcast(tensor, src=src)
    return tensor


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if is_dist() and world_size() > 1:
        dist.barrier()


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
