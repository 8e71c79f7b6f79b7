"""A sharded, memory-mapped on-disk corpus of preprocessed windows (DESIGN §5).

Layout of a corpus folder::

    out_dir/
      manifest.json          format version, config, channels, sfreq, one entry per recording
      shards/<rec>-<hash>.npy one array (n_windows, n_chans, n_times) per recording

:func:`build_corpus` preprocesses recordings in parallel (``ProcessPoolExecutor``), writes
each shard atomically (temporary file, fsync, ``os.replace``) with its SHA-256, and rewrites
the manifest atomically (at most every 2 s, and when the run ends or is interrupted), so a
killed run leaves only complete shards listed in the manifest; a rerun skips them (resume)
and rebuilds anything not listed. Unreadable or corrupt files are
reported and skipped. :class:`CorpusDataset` serves the windows as float32 tensors through
``np.load(mmap_mode="r")``: memory stays bounded whatever the corpus size, and global indices
are stable, so ``DistributedSampler`` splits it across ranks.

Shape legend: ``n_windows`` windows, ``n_chans`` channels, ``n_times`` samples per window.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import hashlib
import json
import logging
import multiprocessing
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from codebrain.data.io import list_recordings, read_raw, recording_id, subject_id
from codebrain.data.preprocess import PreprocessConfig, preprocess_raw
from codebrain.data.windows import windows_from_raw
from codebrain.utils.check import check_option, check_positive_int
from codebrain.utils.io import atomic_open, atomic_write_json

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "CorpusSummary",
    "CorpusDataset",
    "CorpusError",
    "build_corpus",
    "file_sha256",
]

logger = logging.getLogger(__name__)

#: Version of the corpus layout written into ``manifest.json``.
FORMAT_VERSION = 1
#: Name of the manifest file in a corpus folder.
MANIFEST_NAME = "manifest.json"
_SHARD_DIR = "shards"
# Least time between two manifest rewrites during a build (seconds).
_MANIFEST_INTERVAL_S = 2.0


class CorpusError(ValueError):
    """A corpus folder is inconsistent (manifest vs shards) or incompatible with a request."""


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
) -> dict[str, Any]:
    """Worker: read, preprocess, window and write one shard; return its manifest entry."""
    cpu_start = time.process_time()
    config = PreprocessConfig.from_dict(config_dict)
    raw = read_raw(path, verbose=verbose)
    raw = preprocess_raw(raw, config, copy=False, verbose=verbose)
    windows = windows_from_raw(raw, config, mode="fixed")
    if len(windows.onsets) == 0:
        raise ValueError(
            f"{_key(path)}: no window kept (recording {raw.times[-1]:.1f} s, window "
            f"{config.window_seconds} s, {windows.n_rejected} rejected by amplitude)."
        )
    data = windows.data.astype(dtype, copy=False)  # (n_windows, n_chans, n_times)
    shard = Path(_SHARD_DIR) / _shard_name(path)
    with atomic_open(Path(out_dir) / shard, "wb") as f:
        writer = _HashingWriter(f)
        np.lib.format.write_array(writer, data, allow_pickle=False)
    return {
        "path": _key(path),
        "recording_id": recording_id(path),
        "subject_id": subject_id(path, raw),
        "shard": shard.as_posix(),
        "n_windows": int(data.shape[0]),
        "n_rejected": int(windows.n_rejected),
        "duration_s": float(raw.times[-1] + 1.0 / raw.info["sfreq"]),
        "sha256": writer.sha256.hexdigest(),
        "_peak_rss_mib": _peak_rss_mib(),
        "_cpu_s": time.process_time() - cpu_start,
    }


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
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise CorpusError(
            f"{path} has format version {version!r}; this codebrain reads version {FORMAT_VERSION}."
        )
    return manifest


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
    """Remove temporary files a killed run left behind; return how many."""
    n = 0
    for folder in (out_dir, out_dir / _SHARD_DIR):
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):
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
    verify_existing: bool = False,
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
        Storage type of the windows (model units; float16 halves the disk footprint).
    verify_existing : bool
        Recompute the SHA-256 of shards already built before skipping them.
    verbose : bool | str | int | None
        Passed to MNE in the workers.

    Returns
    -------
    CorpusSummary
        Counts and reasons; also logged.

    Raises
    ------
    CorpusError
        ``out_dir`` holds a corpus built with another config, dtype or format version.
    """
    start = time.perf_counter()
    config = config or PreprocessConfig()
    check_positive_int("n_jobs", n_jobs)
    check_option("dtype", dtype, ("float16", "float32"))
    out_dir = Path(out_dir)
    (out_dir / _SHARD_DIR).mkdir(parents=True, exist_ok=True)
    _clean_temporaries(out_dir)

    if (out_dir / MANIFEST_NAME).exists():
        manifest = _read_manifest(out_dir)
        if manifest["config"] != config.to_dict() or manifest["dtype"] != dtype:
            raise CorpusError(
                f"{out_dir} holds a corpus built with config {manifest['config']} "
                f"(dtype {manifest['dtype']}); requested {config.to_dict()} (dtype {dtype}). "
                "Use another folder or the same settings."
            )
    else:
        manifest = _new_manifest(config, dtype)

    summary = CorpusSummary()
    entries: dict[str, dict[str, Any]] = {e["path"]: e for e in manifest["recordings"]}
    todo = []
    for path in list_recordings(paths):
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
    failed: dict[str, str] = {}
    last_write = -float("inf")

    def _write_manifest() -> None:
        nonlocal last_write
        manifest["recordings"] = sorted(entries.values(), key=lambda e: e["path"])
        still_failed = {
            f["path"]: f["reason"] for f in manifest["failed"] if f["path"] not in entries
        }
        still_failed.update(failed)
        manifest["failed"] = [{"path": p, "reason": r} for p, r in sorted(still_failed.items())]
        atomic_write_json(out_dir / MANIFEST_NAME, manifest)
        last_write = time.monotonic()

    def _record(path: Any, outcome: dict[str, Any] | BaseException) -> None:
        key = _key(path)
        if isinstance(outcome, BaseException):
            reason = f"{type(outcome).__name__}: {outcome}"
            failed[key] = reason
            summary.failed[key] = reason
            logger.warning("Skipping %s: %s", key, reason)
        else:
            rss = outcome.pop("_peak_rss_mib", 0.0)
            summary.cpu_seconds += outcome.pop("_cpu_s", 0.0)
            summary.peak_worker_rss_mib = max(summary.peak_worker_rss_mib, rss)
            entries[key] = outcome
            failed.pop(key, None)
            summary.processed.append(key)
            summary.n_rejected += outcome["n_rejected"]
        # Rewriting the manifest after every recording would cost O(n^2) for big corpora:
        # write at most every few seconds; a killed run loses at most that much finished work
        # (its shards are not listed, so they are rebuilt on resume).
        if time.monotonic() - last_write >= _MANIFEST_INTERVAL_S:
            _write_manifest()

    args = (str(out_dir), config.to_dict(), dtype, verbose)
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
            context = _worker_context()
            n_workers = min(n_jobs, len(todo))
            with cf.ProcessPoolExecutor(max_workers=n_workers, mp_context=context) as pool:
                futures = {pool.submit(_process_recording, path, *args): path for path in todo}
                for future in cf.as_completed(futures):
                    err = future.exception()
                    _record(futures[future], err if err is not None else future.result())
    finally:
        _write_manifest()

    summary.n_windows = sum(e["n_windows"] for e in entries.values())
    summary.seconds = time.perf_counter() - start
    logger.info("%s", summary)
    return summary


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
        Missing/corrupt manifest, missing shard, shape/dtype mismatch, failed checksum.

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
    ) -> None:
        self.root = Path(root)
        manifest = _read_manifest(self.root)
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
