"""Atomic file writes: a file either appears complete or not at all.

Every writer in codebrain goes through these helpers, so a killed process never leaves a
partial file under the final name (write to a temporary file in the same folder, flush,
fsync, then ``os.replace``). The result gets the permissions an ordinary ``open(path, "w")``
would give (temporaries are created ``0o666`` / ``0o777`` for folders and the kernel applies
the process umask; the umask is never read or changed), or keeps those of the file it
replaces.

Temporaries are named ``.<name>.<host>-<pid>.<hex>.tmp``: a process killed before it could
clean up (``kill -9``) leaves one behind, and the next writer of the same path removes it
once that process is gone (:func:`remove_stale_temporaries`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from codebrain.utils.check import check_option

logger = logging.getLogger(__name__)

__all__ = [
    "atomic_open",
    "atomic_path",
    "atomic_write_json",
    "atomic_torch_save",
    "atomic_replace_dir",
    "remove_stale_temporaries",
]


def _owner_tag() -> str:
    """``<host>-<pid>``: who creates a temporary (host sanitised to ``[A-Za-z0-9_]``)."""
    host = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:40] or "host"
    return f"{host}-{os.getpid()}"


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{_owner_tag()}.{secrets.token_hex(6)}.tmp")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove temporaries of ``path`` left by killed codebrain processes on this machine.

    Only names this module creates, ``.<name>.<host>-<pid>.<hex>.tmp``, whose host is this
    machine and whose process no longer exists, are removed: temporaries of a live process, of
    another machine (shared filesystems) or of any other program are never touched.

    Returns
    -------
    list of Path
        What was removed.
    """
    import shutil

    path = Path(path)
    host = _owner_tag().rsplit("-", 1)[0]
    pattern = re.compile(
        rf"^\.{re.escape(path.name)}\.{re.escape(host)}-(\d+)\.[0-9a-f]{{12}}\.tmp$"
    )
    removed: list[Path] = []
    try:
        siblings = list(path.parent.iterdir())
    except OSError:
        return removed
    for entry in siblings:
        m = pattern.match(entry.name)
        if m is None or int(m.group(1)) == os.getpid() or _pid_alive(int(m.group(1))):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except FileNotFoundError:  # another process cleaned it first
            continue
        except OSError:
            continue
        removed.append(entry)
    return removed


def _new_temp_file(path: Path) -> tuple[int, Path]:
    """Exclusively create a temporary file next to ``path``; returns ``(fd, temp path)``.

    Created with mode ``0o666``, so the kernel applies the process umask exactly as for an
    ordinary ``open(path, "w")`` (``tempfile.mkstemp`` would give owner-only ``0o600``).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    remove_stale_temporaries(path)
    for _ in range(100):
        tmp = _temp_name(path)
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file next to {path}.")


def _keep_mode(existing: Path, tmp: Path) -> None:
    """Give ``tmp`` the permission bits of ``existing`` (the file it replaces), if any."""
    try:
        mode = existing.stat().st_mode & 0o7777
    except OSError:
        return
    os.chmod(tmp, mode)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; rename it onto ``path`` on success.

    Parameters
    ----------
    path : path-like
        Final destination.
    mode : str
        ``"wb"`` or ``"w"``.

    Yields
    ------
    file object
        Write to it; on an exception the temporary file is removed and ``path`` is untouched.
    """
    check_option("atomic_open mode", mode, ("w", "wb"))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _new_temp_file(path)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        _keep_mode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` for a library that writes by file name.

    On success the temporary file is renamed onto ``path``; on an exception it is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _new_temp_file(path)
    mode = os.fstat(fd).st_mode & 0o7777  # 0o666 less the umask, as the kernel applied it
    os.close(fd)
    try:
        yield tmp
        # A library may replace the file by its own (safetensors writes it 0600): restore.
        os.chmod(tmp, mode)
        _keep_mode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int = 2) -> None:
    """Write ``obj`` as JSON to ``path`` atomically."""
    with atomic_open(path, "w") as f:
        json.dump(obj, f, indent=indent)
        f.write("\n")


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` atomically."""
    import torch

    with atomic_open(path, "wb") as f:
        torch.save(obj, f)


@contextlib.contextmanager
def atomic_replace_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Build a directory under a temporary name, then move it onto ``path``.

    An existing ``path`` is replaced only once the new content is complete.

    Yields
    ------
    Path
        The temporary directory to fill.
    """
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in remove_stale_temporaries(path):
        logger.info("Removed %s, left by a killed codebrain process.", stale)
    for _ in range(100):
        tmp = _temp_name(path)
        try:
            os.mkdir(tmp, 0o777)  # the umask applies, as for an ordinary mkdir
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"could not create a temporary folder next to {path}.")
    try:
        yield tmp
        _keep_mode(path, tmp)
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
