"""Worker processes of a corpus build: started cheaply, stopped at once, never orphaned.

:func:`_run_pool` runs one function per item in a ``ProcessPoolExecutor`` whose workers
ignore Ctrl-C (the parent stops them itself, at once, on any interruption) and exit by
themselves when the parent process disappears (``PR_SET_PDEATHSIG`` on Linux, and everywhere a
thread that polls the parent). Workers start from a forkserver preloaded with the caller's
module (``fork`` is avoided: the parent may hold torch/OpenMP threads), else by spawn.
:func:`_peak_rss_mib` measures a process's peak memory for the build summary.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__: list[str] = []

# How often a worker checks that the process that started the build is still there (s).
_WATCH_INTERVAL_S = 0.2


def _worker_init(parent_pid: int) -> None:
    """Worker start-up: leave Ctrl-C to the parent; die with the parent.

    The parent stops the pool itself on Ctrl-C (so ``SIGINT`` is ignored here). If the
    parent disappears (``kill -9``), the worker exits at once instead of finishing its
    recording: ``PR_SET_PDEATHSIG`` on Linux, and everywhere a thread that polls the parent.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ppid = os.getppid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    if os.getppid() != ppid or not _pid_alive(parent_pid):
        os._exit(1)
    threading.Thread(
        target=_watch_parent, args=(ppid, parent_pid), name="codebrain-parent-watch", daemon=True
    ).start()


def _watch_parent(ppid: int, parent_pid: int) -> None:
    while True:
        time.sleep(_WATCH_INTERVAL_S)
        if os.getppid() != ppid or not _pid_alive(parent_pid):
            os._exit(1)  # shards are written atomically: at most a temporary is left behind


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists
        return True
    return True


def _stop_workers(pool: cf.ProcessPoolExecutor) -> None:
    """Kill the pool's worker processes now (an interrupted build must not finish its queue)."""
    kill = getattr(pool, "kill_workers", None)  # Python >= 3.14
    if kill is not None:
        kill()
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for proc in processes:
        with contextlib.suppress(Exception):
            proc.kill()
    for proc in processes:
        with contextlib.suppress(Exception):
            proc.join(timeout=5)


def _peak_rss_mib() -> float:
    """Peak resident memory of this process in MiB (0 where it cannot be measured).

    Reads ``VmHWM`` from ``/proc/self/status`` on Linux (``ru_maxrss`` survives ``exec`` and
    would report a parent's peak), else ``ru_maxrss``.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return 0.0
    unit = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit / 2**20


def _worker_context(preload: Sequence[str] = ()) -> multiprocessing.context.BaseContext:
    """Process start method for workers: forkserver (preloaded with ``preload``) or spawn.

    ``fork`` is avoided because the parent may hold torch/OpenMP threads. The forkserver
    imports the ``preload`` modules (those of the worker function) once; every worker then
    starts as a cheap fork of that server.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(list(preload))
        return context
    return multiprocessing.get_context("spawn")


def _run_pool(
    fn: Callable[..., Any],
    todo: Sequence[Any],
    args: tuple,
    n_workers: int,
    record: Callable[[Any, Any], None],
    *,
    preload: Sequence[str] = (),
) -> None:
    """Run ``fn(item, *args)`` for every item of ``todo`` in ``n_workers`` worker processes.

    ``record(item, outcome)`` is called in this process as each item finishes, with the
    result or the exception it raised. On any interruption (Ctrl-C, an exception from
    ``record``) the workers are killed at once and the queue is dropped.

    Parameters
    ----------
    fn : callable
        A module-level function (it is pickled by name); its module goes in ``preload``.
    todo : sequence
        The items, each passed to ``fn`` as its first argument.
    args : tuple
        The further arguments of every call.
    n_workers : int
        Worker processes.
    record : callable
        ``record(item, result_or_exception)``.
    preload : sequence of str
        Modules the forkserver imports once before forking workers.
    """
    pool = cf.ProcessPoolExecutor(
        max_workers=n_workers,
        mp_context=_worker_context(preload),
        initializer=_worker_init,
        initargs=(os.getpid(),),
    )
    futures: dict[cf.Future, Any] = {}
    done = False
    try:
        futures = {pool.submit(fn, item, *args): item for item in todo}
        for future in cf.as_completed(futures):
            err = future.exception()
            record(futures[future], err if err is not None else future.result())
        done = True
    finally:
        if not done:
            for future in futures:
                future.cancel()
            _stop_workers(pool)
        pool.shutdown(wait=True, cancel_futures=True)
