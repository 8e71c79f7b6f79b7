"""The exclusive build lock of a corpus folder.

A build holds ``flock`` on ``<corpus>/.lock`` (``msvcrt.locking`` on Windows) for as long as
it runs and writes its pid, host and start time there, so a second build fails at once with a
:class:`~codebrain.data.corpus_format.CorpusLockedError` naming the holder. The kernel
releases the lock when its holder dies, even by ``kill -9``: no stale lock is ever left.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from codebrain.data.corpus_format import _LOCK_NAME, CorpusLockedError

__all__: list[str] = []


def _lock_holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "holder unknown"
    if not isinstance(info, dict) or "pid" not in info:
        return "holder unknown"
    return f"pid {info['pid']} on host {info.get('host', '?')}, started {info.get('started', '?')}"


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (BlockingIOError, PermissionError):
        return False
    return True


@contextlib.contextmanager
def _corpus_lock(out_dir: Path) -> Iterator[Path]:
    """Hold the exclusive build lock of a corpus folder (released when the holder dies).

    Raises
    ------
    CorpusLockedError
        Another build (in this or another process) holds it.
    """
    path = out_dir / _LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        if not _try_lock(fd):
            raise CorpusLockedError(
                f"Corpus {out_dir} is being built by another run ({_lock_holder(path)}); wait "
                "for it to finish, or build into another folder."
            )
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(holder).encode())
        yield path
    finally:
        os.close(fd)  # releases the lock; the file stays (unlinking it would race)
