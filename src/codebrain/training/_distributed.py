"""Process-group setup for the training loops, plus the single-process-safe helpers.

The reductions, broadcasts and rank queries live in :mod:`codebrain.utils.distributed` (the
codebooks in :mod:`codebrain.layers` use them too) and are re-exported here.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from datetime import timedelta

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

#: Environment variable: seconds a collective (or the group's start-up) may wait for the other
#: ranks before it fails (torch's default, 30 minutes, when unset).
DIST_TIMEOUT_ENV = "CODEBRAIN_DIST_TIMEOUT"

__all__ = [
    "DIST_TIMEOUT_ENV",
    "DistContext",
    "elastic_restart_count",
    "process_group_timeout",
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


def elastic_restart_count() -> int:
    """How many times ``torchrun`` has relaunched this worker group (0 outside ``torchrun``).

    A relaunched group (``--max-restarts``) continues the run it replaces, so the training
    loops resume from the newest checkpoint in their run folder when this is above 0.
    """
    value = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    try:
        return int(value)
    except ValueError:
        raise ValueError(
            f"TORCHELASTIC_RESTART_COUNT={value!r}: expected a whole number (set by torchrun)."
        ) from None


def process_group_timeout() -> timedelta | None:
    """The process-group timeout from ``$CODEBRAIN_DIST_TIMEOUT`` (seconds), or ``None``.

    ``None`` keeps torch's default (30 minutes). A shorter timeout makes a rank whose peers
    vanished without closing their connections (a lost node) fail instead of waiting.
    """
    value = os.environ.get(DIST_TIMEOUT_ENV)
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"{DIST_TIMEOUT_ENV}={value!r}: expected a positive number of seconds.")
    return timedelta(seconds=seconds)


def _elastic_store(world: int, timeout: timedelta) -> dist.Store | None:
    """``torchrun``'s shared store, under a prefix of its own for this launch of the group.

    torchrun's c10d rendezvous keeps one store server for all the launches of a group, and
    ``env://`` puts the default group's keys under the same names each time: after a restart
    the new ranks could read the dead ranks' addresses (gloo: "connectFullMesh failed ...
    Connection refused", or a wait until the timeout). ``None`` outside ``torchrun``'s store.
    """
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    store = dist.TCPStore(
        os.environ["MASTER_ADDR"],
        int(os.environ["MASTER_PORT"]),
        world,
        is_master=False,
        timeout=timeout,
    )
    return dist.PrefixStore(f"codebrain/launch_{elastic_restart_count()}", store)


def _local_rank() -> int:
    """The index of this process on its machine: ``$LOCAL_RANK``, else a fallback.

    Without ``$LOCAL_RANK``: in a default group the caller made itself (e.g. with
    ``torch.multiprocessing.spawn`` on one machine), the group rank, so that its ranks spread
    over the machine's GPUs (``rank % n_gpus``) instead of all taking ``cuda:0``; without a
    group, 0. A caller-made group that spans machines should set ``$LOCAL_RANK`` (or pass an
    explicit ``device="cuda:N"``).
    """
    value = os.environ.get("LOCAL_RANK")
    if value is not None and value.strip():
        try:
            return int(value)
        except ValueError:
            raise ValueError(
                f"LOCAL_RANK={value!r}: expected a whole number (set by torchrun)."
            ) from None
    return rank() if is_dist() else 0


def setup_distributed(device: str | None) -> DistContext:
    """Join the ``torchrun`` process group (``env://``) if one is configured.

    NCCL when the rank's device is a GPU, gloo otherwise. An already-initialised default group
    (e.g. created by the caller) is reused and left alive. The group's timeout comes from
    ``$CODEBRAIN_DIST_TIMEOUT`` (seconds; torch's default when unset), see
    :func:`process_group_timeout`.

    The device (``device``; ``None``, ``"auto"`` or a bare ``"cuda"`` picks a GPU by local
    rank) is resolved here, once: the loops train on ``DistContext.device``. The local rank is
    ``$LOCAL_RANK`` (torchrun sets it; never the global rank, which on a second machine would
    name a GPU that machine may not have), see :func:`_local_rank`.
    """
    world_env = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = _local_rank()
    timeout = process_group_timeout()
    dev = resolve_device(device, local_rank=local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    initialized_here = False
    if dist.is_available() and not dist.is_initialized() and world_env > 1:
        backend = "nccl" if dev.type == "cuda" else "gloo"
        store = _elastic_store(world_env, timeout or timedelta(minutes=30))
        if store is None:
            dist.init_process_group(backend=backend, init_method="env://", timeout=timeout)
        else:
            dist.init_process_group(
                backend=backend,
                store=store,
                rank=int(os.environ["RANK"]),
                world_size=world_env,
                timeout=timeout,
            )
        initialized_here = True
        logger.info(
            "Joined process group: backend=%s rank=%d/%d", backend, dist.get_rank(), world_env
        )
    return DistContext(rank(), world_size(), local_rank, dev, initialized_here)
