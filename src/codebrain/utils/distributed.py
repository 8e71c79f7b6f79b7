"""Small ``torch.distributed`` helpers that are safe to call in a single process.

Every function works whether or not a process group exists: without one, the world is one
process of rank 0, reductions and broadcasts are no-ops. Used by the tokenizer codebooks
(:mod:`codebrain.layers.quantize`: EMA statistics and k-means initialisation kept identical on
every rank) and the training loops (:mod:`codebrain.training`, which adds process-group setup).
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = [
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
    """The rank of this process (0 without a process group)."""
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
