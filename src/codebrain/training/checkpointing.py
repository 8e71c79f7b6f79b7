"""Atomic training checkpoints with everything needed to resume a run exactly.

A checkpoint is one ``torch.save`` file written through :func:`codebrain.utils.io.atomic_torch_save`
(temporary file, fsync, rename), so a process killed at any moment leaves either the previous
checkpoint or the new one, never a truncated file. It holds the model and optimizer state, the
LR scheduler and gradient scaler (if any), the random-number-generator states of torch (CPU and
CUDA), NumPy and Python's :mod:`random`, and a free-form ``extra`` dict the trainer uses for
its step counter, data position and configuration.

Files are named ``ckpt_<step:08d>.pt`` inside a folder; :func:`latest_checkpoint` finds the
newest one that loads, and :func:`prune_checkpoints` keeps the last few.

Used by :mod:`codebrain.training.pretrain`; generic enough for fine-tuning loops.
"""

from __future__ import annotations

import logging
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from codebrain.utils.check import check_int
from codebrain.utils.io import atomic_torch_save

__all__ = [
    "CHECKPOINT_FORMAT_VERSION",
    "capture_rng_state",
    "checkpoint_path",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "prune_checkpoints",
    "restore_rng_state",
    "save_checkpoint",
    "unwrap_model",
]

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT_VERSION = 1
_NAME_RE = re.compile(r"^ckpt_(\d{8,})\.pt$")


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module inside ``DistributedDataParallel``/``DataParallel``/``torch.compile``."""
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def capture_rng_state() -> dict[str, Any]:
    """Snapshot the RNG states of torch (CPU and every CUDA device), NumPy and ``random``.

    Returns
    -------
    dict
        Keys ``"torch"``, ``"cuda"`` (list, empty without CUDA), ``"numpy"``, ``"python"``.
    """
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore a snapshot from :func:`capture_rng_state`.

    CUDA states are restored only when the number of visible devices matches (a warning is
    logged otherwise).
    """
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda:
        if torch.cuda.is_available() and torch.cuda.device_count() == len(cuda):
            torch.cuda.set_rng_state_all(cuda)
        else:
            logger.warning(
                "Checkpoint holds %d CUDA RNG states but %d devices are visible; CUDA RNG not "
                "restored (dropout masks on GPU will differ from the original run).",
                len(cuda),
                torch.cuda.device_count() if torch.cuda.is_available() else 0,
            )
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def checkpoint_path(directory: str | Path, step: int) -> Path:
    """``directory / f"ckpt_{step:08d}.pt"``."""
    return Path(directory) / f"ckpt_{int(step):08d}.pt"


def save_checkpoint(
    path: str | Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    scaler: Any | None = None,
    rng_state: dict[str, Any] | list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically.

    Parameters
    ----------
    path : path-like
        Destination file (parent folders are created).
    model : nn.Module
        Saved unwrapped (no ``module.`` prefix from DDP).
    optimizer, scheduler, scaler : optional
        Anything with ``state_dict()``.
    rng_state : dict or list of dict, optional
        Default: :func:`capture_rng_state` of this process. Distributed trainers pass the list
        gathered from every rank.
    extra : dict, optional
        Trainer state (step, epoch, data position, config ...); must be picklable with
        ``torch.save`` and loadable with ``weights_only=True`` (plain Python containers,
        numbers, strings, tensors).

    Returns
    -------
    Path
    """
    state = {
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "model": unwrap_model(model).state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": rng_state if rng_state is not None else capture_rng_state(),
        "extra": dict(extra or {}),
    }
    path = Path(path)
    atomic_torch_save(state, path)
    logger.debug("Wrote checkpoint %s", path)
    return path


def load_checkpoint(
    path: str | Path,
    *,
    model: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    scaler: Any | None = None,
    restore_rng: bool = True,
    rng_index: int = 0,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Load a checkpoint into the given objects.

    Parameters
    ----------
    path : path-like
        A file written by :func:`save_checkpoint`.
    model, optimizer, scheduler, scaler : optional
        Objects to restore (``load_state_dict``); ``None`` skips one.
    restore_rng : bool
        Restore the RNG states.
    rng_index : int
        When the checkpoint holds a list of per-rank RNG states, the entry to restore
        (normally this process's rank); falls back to entry 0 with a warning if out of range.
    map_location : str or torch.device
        Where tensors are loaded.

    Returns
    -------
    dict
        The checkpoint's ``extra`` dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist.")
    state = _read(path, map_location)
    if model is not None:
        unwrap_model(model).load_state_dict(state["model"])
    if optimizer is not None:
        if state.get("optimizer") is None:
            raise ValueError(f"checkpoint {str(path)!r} has no optimizer state.")
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler") is not None:
        scaler.load_state_dict(state["scaler"])
    if restore_rng and state.get("rng") is not None:
        rng = state["rng"]
        if isinstance(rng, list):
            if not 0 <= rng_index < len(rng):
                logger.warning(
                    "Checkpoint holds RNG states for %d ranks; rank %d restores rank 0's.",
                    len(rng),
                    rng_index,
                )
                rng_index = 0
            rng = rng[rng_index]
        restore_rng_state(rng)
    return dict(state.get("extra") or {})


def _read(path: Path, map_location: str | torch.device, *, mmap: bool = False) -> dict[str, Any]:
    # NumPy's RNG state is a tuple holding an ndarray: allow exactly those globals. ``mmap``
    # maps the tensor data instead of reading it (enough to check that the file is whole).
    safe = [np.dtype, np.ndarray, type(np.dtype("uint32"))]
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    safe.append(_reconstruct)
    try:
        with torch.serialization.safe_globals(safe):
            state = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as err:  # torch's message runs over many lines (and suggests an unsafe
        # weights_only=False): one line naming the file instead, torch's kept as the cause
        raise ValueError(
            f"checkpoint {str(path)!r} cannot be read ({type(err).__name__}): it is truncated, "
            "corrupt or not a codebrain checkpoint."
        ) from err
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{str(path)!r} is not a codebrain training checkpoint.")
    version = state.get("format_version")
    if version != CHECKPOINT_FORMAT_VERSION:
        raise ValueError(
            f"checkpoint {str(path)!r} has format version {version}, expected "
            f"{CHECKPOINT_FORMAT_VERSION}."
        )
    return state


def list_checkpoints(directory: str | Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of every ``ckpt_*.pt`` in ``directory``, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for p in directory.iterdir():
        m = _NAME_RE.match(p.name)
        if m and p.is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(directory: str | Path) -> Path | None:
    """The newest checkpoint in ``directory`` that can be read, or ``None``.

    Unreadable files (which atomic writes should never produce, but a full disk or a copy
    might) are skipped with a warning. The check memory-maps the tensor data instead of
    reading it, so finding the checkpoint does not read a large file a second time; a file
    that cannot be mapped (torch's legacy format, a file system without ``mmap``) is read.
    """
    for _, p in reversed(list_checkpoints(directory)):
        if _readable(p):
            return p
    return None


def _readable(path: Path) -> bool:
    """Whether ``path`` loads as a checkpoint (mapped first, read when mapping fails)."""
    try:
        _read(path, "cpu", mmap=True)
        return True
    except Exception:  # noqa: BLE001 - retried without mmap, which names the problem
        pass
    try:
        _read(path, "cpu")
        return True
    except Exception as err:  # any unreadable file is skipped
        logger.warning("Skipping unreadable checkpoint %s: %s", path, err)
        return False


def prune_checkpoints(directory: str | Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` checkpoints; returns the removed paths."""
    check_int("keep", keep)
    found = list_checkpoints(directory)
    removed = []
    for _, p in found[:-keep]:
        p.unlink(missing_ok=True)
        removed.append(p)
    return removed
