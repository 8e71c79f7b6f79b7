"""A sharded, memory-mapped on-disk corpus of preprocessed windows (DESIGN §5).

Layout of a corpus folder::

    out_dir/
      manifest.json          format version, config, channels, sfreq, one entry per recording,
                             "complete": false until a build has gone through every input
      journal.jsonl          during a build: one line per shard as it lands
      .lock                  held (flock) by the build running in this folder; names its pid/host
      shards/<rec>-<hash>.npy one array (n_windows, n_chans, n_times) per recording

:func:`build_corpus` takes an exclusive lock on the folder (a second build fails with a
:class:`CorpusLockedError` naming the holder; the kernel releases the lock when its holder
dies, even by ``kill -9``), marks the manifest incomplete, preprocesses recordings in parallel
(``ProcessPoolExecutor``), writes each shard atomically (temporary file, fsync,
``os.replace``) with its SHA-256 and appends its entry to the journal as soon as it lands.
When the run ends the journal is merged into the manifest, which is marked complete only if
every input was processed (or failed with a recorded reason). A killed or interrupted run
leaves an incomplete corpus whose finished shards are all listed: a rerun skips them
(resume) and builds the rest. Ctrl-C stops the workers at once; workers also exit by
themselves when the parent process disappears. Unreadable or corrupt files are reported and
skipped. :class:`CorpusDataset` refuses an incomplete corpus unless asked
(``allow_incomplete=True``) and serves the windows as float32 tensors through
``np.load(mmap_mode="r")``: memory stays bounded whatever the corpus size, and global indices
are stable, so ``DistributedSampler`` splits it across ranks.

Shape legend: ``n_windows`` windows, ``n_chans`` channels, ``n_times`` samples per window.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import contextlib
import datetime
import hashlib
import json
import logging
import multiprocessing
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from codebrain.data.io import list_recordings, read_raw, recording_id, subject_id
from codebrain.data.preprocess import PreprocessConfig, preprocess_raw
from codebrain.data.windows import no_window_reason, windows_from_raw
from codebrain.utils.check import check_option, check_positive_int
from codebrain.utils.io import atomic_open, atomic_write_json

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "CorpusSummary",
    "CorpusDataset",
    "CorpusError",
    "CorpusLockedError",
    "build_corpus",
    "file_sha256",
]

logger = logging.getLogger(__name__)

#: Version of the corpus layout written into ``manifest.json`` (2 added ``complete`` and the
#: journal; version 1 corpora are still read, as complete).
FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)
#: Name of the manifest file in a corpus folder.
MANIFEST_NAME = "manifest.json"
_SHARD_DIR = "shards"
_JOURNAL_NAME = "journal.jsonl"
_LOCK_NAME = ".lock"
# Temporaries written by codebrain.utils.io's atomic writers: .<name>.<12 hex>.tmp
_TEMP_RE = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")
# How often a worker checks that the process that started the build is still there (s).
_WATCH_INTERVAL_S = 0.2
_ENTRY_KEYS = ("path", "recording_id", "subject_id", "shard", "n_windows", "sha256")


class CorpusError(ValueError):
    """A corpus folder is inconsistent (manifest vs shards) or incompatible with a request."""


class CorpusLockedError(CorpusError):
    """Another build holds the lock on a corpus folder."""


@dataclass
class CorpusSummary:
    """What one :func:`build_corpus` run did.

    Attributes
    ----------
    processed : list of str
        Recordings preprocessed and written in this run.
    skipped_existing : list of str
        Recordings already in the manifest with a valid shard.
    failed : dict of str to str
        Recording → reason (unreadable, corrupt, too short, ...).
    n_windows : int
        Windows in the whole corpus after this run.
    n_rejected : int
        Windows dropped by amplitude rejection in this run.
    seconds : float
        Wall time of the run.
    peak_worker_rss_mib : float
        Largest peak resident memory (``ru_maxrss``) of a process that preprocessed a
        recording in this run (this process when ``n_jobs=1``).
    cpu_seconds : float
        CPU time spent preprocessing and writing the recordings of this run, all processes.
    """

    processed: list[str] = field(default_factory=list)
    skipped_existing: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    n_windows: int = 0
    n_rejected: int = 0
    seconds: float = 0.0
    peak_worker_rss_mib: float = 0.0
    cpu_seconds: float = 0.0

    def __str__(self) -> str:
        lines = [
            f"corpus: {len(self.processed)} processed, {len(self.skipped_existing)} skipped "
            f"(already built), {len(self.failed)} failed; {self.n_windows} windows in total, "
            f"{self.n_rejected} rejected; {self.seconds:.1f} s; peak worker memory "
            f"{self.peak_worker_rss_mib:.0f} MiB"
        ]
        lines += [f"  failed {path}: {reason}" for path, reason in self.failed.items()]
        return "\n".join(lines)


class _HashingWriter:
    """File wrapper that feeds every written byte to a SHA-256 (np.save writes through it)."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        return self._f.write(data)


def file_sha256(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks.

    Parameters
    ----------
    path : path-like
    chunk_size : int
        Bytes per read.

    Returns
    -------
    str
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _key(path: Any) -> str:
    """Manifest key of a recording: its absolute path."""
    fpath = getattr(path, "fpath", path)
    return str(Path(fpath).resolve())


def _shard_name(path: Any) -> str:
    key = _key(path)
    return f"{recording_id(path)}-{hashlib.sha1(key.encode()).hexdigest()[:10]}.npy"


def _process_recording(
    path: Any,
    out_dir: str,
    config_dict: dict[str, Any],
    dtype: str,
    verbose: bool | str | int | None,
    on_overflow: str = "raise",
    subject_pattern: str | None = None,
) -> dict[str, Any]:
    """Worker: read, preprocess, window and write one shard; journal and return its entry."""
    cpu_start = time.process_time()
    config = PreprocessConfig.from_dict(config_dict)
    raw = read_raw(path, verbose=verbose)
    raw = preprocess_raw(raw, config, copy=False, verbose=verbose)
    windows = windows_from_raw(raw, config, mode="fixed")
    if len(windows.onsets) == 0:
        raise ValueError(f"{_key(path)}: no window kept: {no_window_reason(raw, config, windows)}.")
    data, n_clipped = _to_storage_dtype(windows.data, dtype, config, on_overflow, _key(path))
    shard = Path(_SHARD_DIR) / _shard_name(path)
    with atomic_open(Path(out_dir) / shard, "wb") as f:
        writer = _HashingWriter(f)
        np.lib.format.write_array(writer, data, allow_pickle=False)
    entry = {
        "path": _key(path),
        "recording_id": recording_id(path),
        "subject_id": subject_id(path, raw, pattern=subject_pattern),
        "shard": shard.as_posix(),
        "n_windows": int(data.shape[0]),
        "n_rejected": int(windows.n_rejected),
        "n_nonfinite": int(windows.n_nonfinite),
        "n_clipped": n_clipped,
        "duration_s": float(raw.times[-1] + 1.0 / raw.info["sfreq"]),
        "sha256": writer.sha256.hexdigest(),
    }
    _append_journal(Path(out_dir), entry)  # listed as soon as it lands
    return {**entry, "_peak_rss_mib": _peak_rss_mib(), "_cpu_s": time.process_time() - cpu_start}


def _to_storage_dtype(
    data: np.ndarray, dtype: str, config: PreprocessConfig, on_overflow: str, name: str
) -> tuple[np.ndarray, int]:
    """Cast windows to the storage type, checking its range first; ``(array, n_clipped)``."""
    limit = float(np.finfo(dtype).max)
    peak = float(np.abs(data).max()) if data.size else 0.0
    n_clipped = 0
    if not np.isfinite(peak):
        raise ValueError(f"{name}: windows hold NaN/Inf samples; refusing to store them.")
    if peak > limit:
        n_clipped = int((np.abs(data) > limit).sum())
        uv = 1e6 / config.scale
        if on_overflow == "raise":
            raise ValueError(
                f"{name}: {n_clipped} sample(s) reach {peak:.4g} model units ({peak * uv:.4g} "
                f"µV), beyond the {dtype} range ±{limit:.6g} ({limit * uv:.4g} µV); store "
                "float32 (dtype='float32', --dtype float32), reject such windows "
                "(reject_abs_uv, --reject-abs-uv) or clip them (on_overflow='clip', "
                "--on-overflow clip)."
            )
        data = np.clip(data, -limit, limit)
    return data.astype(dtype, copy=False), n_clipped


def _append_journal(out_dir: Path, entry: dict[str, Any]) -> None:
    """Append one finished shard's entry to the build journal (one write, then fsync)."""
    line = (json.dumps(entry, sort_keys=True) + "\n").encode()
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(out_dir / _JOURNAL_NAME, flags, 0o666)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_journal(out_dir: Path) -> list[dict[str, Any]]:
    """Entries of the build journal; a torn last line (killed mid-write) is ignored."""
    try:
        text = (out_dir / _JOURNAL_NAME).read_text()
    except FileNotFoundError:
        return []
    entries = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and all(k in entry for k in _ENTRY_KEYS):
            entries.append(entry)
    return entries


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


def _worker_context() -> multiprocessing.context.BaseContext:
    """Process start method for workers: forkserver (preloaded with this module) or spawn.

    ``fork`` is avoided because the parent may hold torch/OpenMP threads. The forkserver
    imports codebrain once; every worker then starts as a cheap fork of that server.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        return context
    return multiprocessing.get_context("spawn")


def _new_manifest(config: PreprocessConfig, dtype: str) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "config": config.to_dict(),
        "channels": list(config.channels),
        "sfreq": float(config.sfreq),
        "n_times": config.n_times,
        "dtype": dtype,
        "complete": False,
        "recordings": [],
        "failed": [],
    }


def _read_manifest(out_dir: Path) -> dict[str, Any]:
    path = out_dir / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise CorpusError(f"No corpus in {out_dir}: {MANIFEST_NAME} not found.") from err
    except json.JSONDecodeError as err:
        raise CorpusError(f"Corrupt manifest {path}: {err}") from err
    if not isinstance(manifest, dict):
        raise CorpusError(f"Corrupt manifest {path}: expected a JSON object.")
    version = manifest.get("format_version")
    if version not in _READABLE_VERSIONS:
        raise CorpusError(
            f"{path} has format version {version!r}; this codebrain reads versions "
            f"{list(_READABLE_VERSIONS)}."
        )
    manifest.setdefault("complete", True)  # version 1 did not record it
    return manifest


def _same_config(stored: dict[str, Any], config: PreprocessConfig) -> bool:
    """Whether a manifest's config equals ``config`` (fields added since default)."""
    try:
        return PreprocessConfig.from_dict(stored).to_dict() == config.to_dict()
    except (TypeError, ValueError):
        return False


def _check_shard(
    out_dir: Path, entry: dict[str, Any], manifest: dict[str, Any], checksum: bool
) -> str | None:
    """Reason why a manifest entry's shard is not valid, or None when it is."""
    shard = out_dir / entry["shard"]
    if not shard.is_file():
        return f"shard {shard} is missing"
    try:
        arr = np.load(shard, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as err:
        return f"shard {shard} is unreadable ({err})"
    expected = (entry["n_windows"], len(manifest["channels"]), manifest["n_times"])
    if arr.shape != expected or arr.dtype != np.dtype(manifest["dtype"]):
        return (
            f"shard {shard} holds {arr.dtype}{arr.shape}, manifest says "
            f"{manifest['dtype']}{expected}"
        )
    if checksum and file_sha256(shard) != entry["sha256"]:
        return f"shard {shard} fails its SHA-256 checksum"
    return None


def _clean_temporaries(out_dir: Path) -> int:
    """Remove the temporary files of a killed build; return how many.

    Only called with the folder's lock held, so no running build owns them.
    """
    n = 0
    for folder in (out_dir, out_dir / _SHARD_DIR):
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):
                if _TEMP_RE.match(tmp.name) and tmp.is_file():
                    tmp.unlink(missing_ok=True)
                    n += 1
    if n:
        logger.info("Removed %d leftover temporary file(s) in %s.", n, out_dir)
    return n


def build_corpus(
    paths: str | os.PathLike | Iterable[Any],
    out_dir: str | os.PathLike,
    config: PreprocessConfig | None = None,
    *,
    n_jobs: int = 1,
    dtype: Literal["float16", "float32"] = "float16",
    on_overflow: Literal["raise", "clip"] = "raise",
    verify_existing: bool = False,
    subject_pattern: str | None = None,
    verbose: bool | str | int | None = "error",
) -> CorpusSummary:
    """Preprocess recordings into a sharded, resumable on-disk corpus.

    Parameters
    ----------
    paths : path-like | iterable
        Recordings and/or folders (see :func:`codebrain.data.list_recordings`).
    out_dir : path-like
        Corpus folder (created; an existing corpus is resumed).
    config : PreprocessConfig | None
        Preprocessing and fixed-length window settings; must equal the config of an existing
        corpus in ``out_dir``.
    n_jobs : int
        Worker processes (1 runs inline, in this process).
    dtype : {"float16", "float32"}
        Storage type of the windows (model units; float16 halves the disk footprint, and
        holds at most ±65504 units = ±6.55 V).
    on_overflow : {"raise", "clip"}
        A recording with values beyond the range of ``dtype`` fails (default), or its values
        are clipped to that range with a logged warning (counted per recording in the
        manifest as ``n_clipped``).
    verify_existing : bool
        Recompute the SHA-256 of shards already built before skipping them.
    subject_pattern : str | None
        Subject-id rule (regex with a group, or a preset name; see
        :func:`codebrain.data.subject_id`), checked against every recording first.
    verbose : bool | str | int | None
        Passed to MNE in the workers.

    Returns
    -------
    CorpusSummary
        Counts and reasons; also logged.

    Raises
    ------
    CorpusError
        No recordings found (nothing is written); no recording could be added (a folder
        this call created is removed again); ``out_dir`` holds a corpus built with another
        config, dtype or format version.
    CorpusLockedError
        Another build is running in ``out_dir``.
    KeyboardInterrupt
        Ctrl-C: the workers are stopped at once and the corpus stays marked incomplete, with
        every finished shard listed.
    """
    start = time.perf_counter()
    config = config or PreprocessConfig()
    check_positive_int("n_jobs", n_jobs)
    check_option("dtype", dtype, ("float16", "float32"))
    check_option("on_overflow", on_overflow, ("raise", "clip"))
    out_dir = Path(out_dir)
    recordings = list_recordings(paths)
    if not recordings:
        raise CorpusError(f"No EEG recordings found in {paths!r}; nothing written to {out_dir}.")
    if subject_pattern is not None:  # validate before working: a bad rule fails at once
        for path in recordings:
            subject_id(path, pattern=subject_pattern)
    if out_dir.exists() and not out_dir.is_dir():
        raise CorpusError(f"{out_dir} is a file; expected a corpus folder.")
    if (out_dir / MANIFEST_NAME).exists():  # checked again under the lock
        _check_compatible(_read_manifest(out_dir), out_dir, config, dtype)
    created = [p for p in (out_dir, out_dir / _SHARD_DIR) if not p.exists()]
    (out_dir / _SHARD_DIR).mkdir(parents=True, exist_ok=True)
    try:
        with _corpus_lock(out_dir):
            summary = _build_locked(
                recordings,
                out_dir,
                config,
                n_jobs,
                dtype,
                on_overflow,
                verify_existing,
                verbose,
                subject_pattern,
            )
    except CorpusLockedError:
        raise  # the folder is another run's: touch nothing
    except BaseException:
        if created and not (out_dir / MANIFEST_NAME).exists():
            _remove_created(out_dir, created)
        raise
    summary.seconds = time.perf_counter() - start
    if summary.n_windows == 0:
        if created:
            _remove_created(out_dir, created)
        reasons = "; ".join(f"{p}: {r}" for p, r in list(summary.failed.items())[:5])
        more = f" (and {len(summary.failed) - 5} more)" if len(summary.failed) > 5 else ""
        raise CorpusError(
            f"No recording could be added to corpus {out_dir}: {reasons}{more}."
            + (" Nothing was written." if created else "")
        )
    logger.info("%s", summary)
    return summary


def _check_compatible(
    manifest: dict[str, Any], out_dir: Path, config: PreprocessConfig, dtype: str
) -> None:
    if not _same_config(manifest["config"], config) or manifest["dtype"] != dtype:
        raise CorpusError(
            f"{out_dir} holds a corpus built with config {manifest['config']} "
            f"(dtype {manifest['dtype']}); requested {config.to_dict()} (dtype {dtype}). "
            "Use another folder or the same settings."
        )


def _remove_created(out_dir: Path, created: list[Path]) -> None:
    """Remove what a failed first build wrote into folders it created (never anything else)."""
    for name in (MANIFEST_NAME, _JOURNAL_NAME, _LOCK_NAME):
        with contextlib.suppress(OSError):
            (out_dir / name).unlink()
    for folder in sorted(created, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):  # not empty: someone else's files, leave them
            folder.rmdir()


def _build_locked(
    recordings: list[Any],
    out_dir: Path,
    config: PreprocessConfig,
    n_jobs: int,
    dtype: str,
    on_overflow: str,
    verify_existing: bool,
    verbose: bool | str | int | None,
    subject_pattern: str | None = None,
) -> CorpusSummary:
    """The body of :func:`build_corpus`, run with the folder's lock held."""
    _clean_temporaries(out_dir)
    if (out_dir / MANIFEST_NAME).exists():
        manifest = _read_manifest(out_dir)
        _check_compatible(manifest, out_dir, config, dtype)
    else:
        manifest = _new_manifest(config, dtype)
    manifest["format_version"] = FORMAT_VERSION
    manifest["config"] = config.to_dict()

    summary = CorpusSummary()
    entries: dict[str, dict[str, Any]] = {e["path"]: e for e in manifest["recordings"]}
    for entry in _read_journal(out_dir):  # shards a killed build finished
        entries[entry["path"]] = entry
    failed: dict[str, str] = {}

    def _write_manifest(complete: bool) -> None:
        for entry in _read_journal(out_dir):  # also those whose result never came back
            entries.setdefault(entry["path"], entry)
        manifest["recordings"] = sorted(entries.values(), key=lambda e: e["path"])
        still_failed = {
            f["path"]: f["reason"] for f in manifest["failed"] if f["path"] not in entries
        }
        still_failed.update(failed)
        manifest["failed"] = [{"path": p, "reason": r} for p, r in sorted(still_failed.items())]
        manifest["complete"] = complete
        atomic_write_json(out_dir / MANIFEST_NAME, manifest)
        (out_dir / _JOURNAL_NAME).unlink(missing_ok=True)  # merged

    todo = []
    for path in recordings:
        key = _key(path)
        entry = entries.get(key)
        if entry is not None:
            reason = _check_shard(out_dir, entry, manifest, checksum=verify_existing)
            if reason is None:
                summary.skipped_existing.append(key)
                continue
            logger.warning("Rebuilding %s: %s.", key, reason)
            del entries[key]
        todo.append(path)
    _write_manifest(complete=False)  # incomplete until this run has gone through every input

    def _record(path: Any, outcome: dict[str, Any] | BaseException) -> None:
        key = _key(path)
        if isinstance(outcome, BaseException):
            reason = f"{type(outcome).__name__}: {outcome}"
            failed[key] = reason
            summary.failed[key] = reason
            logger.warning("Skipping %s: %s", key, reason)
            return
        rss = outcome.pop("_peak_rss_mib", 0.0)
        summary.cpu_seconds += outcome.pop("_cpu_s", 0.0)
        summary.peak_worker_rss_mib = max(summary.peak_worker_rss_mib, rss)
        entries[key] = outcome
        failed.pop(key, None)
        summary.processed.append(key)
        summary.n_rejected += outcome["n_rejected"]
        if outcome.get("n_clipped"):
            logger.warning(
                "%s: clipped %d sample(s) to the %s range.", key, outcome["n_clipped"], dtype
            )

    args = (str(out_dir), config.to_dict(), dtype, verbose, on_overflow, subject_pattern)
    finished = False
    try:
        if n_jobs == 1 or len(todo) <= 1:
            for path in todo:
                try:
                    result = _process_recording(path, *args)
                except Exception as err:  # report and go on: one bad file must not stop a corpus
                    _record(path, err)
                else:
                    _record(path, result)
        else:
            _run_pool(todo, args, min(n_jobs, len(todo)), _record)
        finished = True
    finally:
        _write_manifest(complete=finished)

    summary.n_windows = sum(e["n_windows"] for e in entries.values())
    return summary


def _run_pool(todo: list[Any], args: tuple, n_workers: int, record: Any) -> None:
    """Process ``todo`` in worker processes; on any interruption kill them at once."""
    pool = cf.ProcessPoolExecutor(
        max_workers=n_workers,
        mp_context=_worker_context(),
        initializer=_worker_init,
        initargs=(os.getpid(),),
    )
    futures: dict[cf.Future, Any] = {}
    done = False
    try:
        futures = {pool.submit(_process_recording, path, *args): path for path in todo}
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


class CorpusDataset(Dataset):
    """Map-style dataset over a corpus folder, streaming windows from memory-mapped shards.

    Parameters
    ----------
    root : path-like
        Folder written by :func:`build_corpus`.
    verify_checksums : bool
        Recompute every shard's SHA-256 on open (reads the whole corpus once).
    max_open_shards : int
        Memory maps kept open at once (least recently used are closed), which bounds the
        file-backed pages this process keeps mapped to about that many shards.
    allow_incomplete : bool
        Open a corpus whose build was interrupted or is still running (its finished shards,
        journal included). By default such a corpus raises :class:`CorpusError`.

    Attributes
    ----------
    recordings : list of str
        Recording ids, in manifest order.
    subjects : list of str
        Subject id of each recording.
    recording_index : np.ndarray of int, shape (n_windows,)
        Index into ``recordings`` of each window (global index order).
    channels : list of str
    sfreq : float
    n_times : int

    Raises
    ------
    CorpusError
        Missing/corrupt manifest, incomplete corpus (unless ``allow_incomplete``), no
        windows, missing shard, shape/dtype mismatch, failed checksum.

    Notes
    -----
    ``__getitem__(i)`` returns a float32 tensor ``(n_chans, n_times)``. Global indices are
    stable (manifest order), so ``torch.utils.data.DistributedSampler`` gives each rank a
    disjoint share; DataLoader workers reopen their own memory maps.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        verify_checksums: bool = False,
        max_open_shards: int = 16,
        allow_incomplete: bool = False,
    ) -> None:
        self.root = Path(root)
        manifest = _read_manifest(self.root)
        if not manifest["complete"]:
            journal = _read_journal(self.root)
            if not allow_incomplete:
                raise CorpusError(
                    f"Corpus {self.root} is incomplete: its build was interrupted or is still "
                    f"running ({len(manifest['recordings']) + len(journal)} recording(s) "
                    "finished so far). Rerun the same build to finish it (codebrain prepare "
                    "--corpus resumes), or pass allow_incomplete=True to read the finished part."
                )
            listed = {e["path"]: e for e in manifest["recordings"]}
            listed.update((e["path"], e) for e in journal)
            manifest["recordings"] = sorted(listed.values(), key=lambda e: e["path"])
            logger.warning(
                "Reading incomplete corpus %s (%d recording(s) finished).",
                self.root,
                len(listed),
            )
        if not manifest["recordings"]:
            raise CorpusError(f"Corpus {self.root} holds no recordings.")
        problems = [
            f"{e['recording_id']}: {reason}"
            for e in manifest["recordings"]
            if (reason := _check_shard(self.root, e, manifest, checksum=verify_checksums))
        ]
        if problems:
            raise CorpusError(
                f"Corpus {self.root} does not match its manifest: " + "; ".join(problems)
            )
        self.manifest = manifest
        self.channels: list[str] = list(manifest["channels"])
        self.sfreq = float(manifest["sfreq"])
        self.n_times = int(manifest["n_times"])
        self.recordings = [e["recording_id"] for e in manifest["recordings"]]
        self.subjects = [e["subject_id"] for e in manifest["recordings"]]
        self._shards = [self.root / e["shard"] for e in manifest["recordings"]]
        counts = np.array([e["n_windows"] for e in manifest["recordings"]], dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(counts)])
        self.recording_index = np.repeat(np.arange(len(counts)), counts)
        self.max_open_shards = check_positive_int("max_open_shards", max_open_shards)
        self._open: collections.OrderedDict[int, np.ndarray] = collections.OrderedDict()

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def _shard(self, rec: int) -> np.ndarray:
        arr = self._open.get(rec)
        if arr is None:
            arr = np.load(self._shards[rec], mmap_mode="r", allow_pickle=False)
            self._open[rec] = arr
            if len(self._open) > self.max_open_shards:
                self._open.popitem(last=False)
        else:
            self._open.move_to_end(rec)
        return arr

    def __getitem__(self, index: int) -> torch.Tensor:
        """Window ``index`` as a float32 tensor ``(n_chans, n_times)``."""
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for a corpus of {n} windows.")
        index = int(index) % n
        rec = int(self.recording_index[index])
        local = index - int(self._offsets[rec])
        window = np.array(self._shard(rec)[local], dtype=np.float32)  # (n_chans, n_times)
        return torch.from_numpy(window)

    def window_recording_ids(self) -> np.ndarray:
        """Recording id of every window, shape ``(n_windows,)`` (str)."""
        return np.asarray(self.recordings, dtype=str)[self.recording_index]

    def indices_for(self, recordings: Sequence[str]) -> np.ndarray:
        """Global window indices of the given recording ids (for held-out splits).

        Parameters
        ----------
        recordings : sequence of str

        Returns
        -------
        np.ndarray of int, shape (n_selected,)
        """
        unknown = sorted(set(recordings) - set(self.recordings))
        if unknown:
            raise ValueError(f"Unknown recording ids {unknown}; corpus has {self.recordings}.")
        wanted = np.isin(np.asarray(self.recordings, dtype=str), np.asarray(recordings, dtype=str))
        return np.flatnonzero(wanted[self.recording_index])

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_open"] = collections.OrderedDict()  # memory maps are reopened per process
        return state

    def __repr__(self) -> str:
        return (
            f"CorpusDataset({str(self.root)!r}, n_windows={len(self)}, "
            f"recordings={len(self.recordings)}, n_chans={len(self.channels)}, "
            f"n_times={self.n_times}, dtype={self.manifest['dtype']})"
        )
