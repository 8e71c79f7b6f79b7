"""Building a sharded, memory-mapped on-disk corpus of preprocessed windows (DESIGN §5).

:func:`build_corpus` takes an exclusive lock on the folder (:mod:`codebrain.data.corpus_lock`:
a second build fails with a :class:`CorpusLockedError` naming the holder; the kernel releases
the lock when its holder dies, even by ``kill -9``), marks the manifest incomplete,
preprocesses recordings in parallel (:mod:`codebrain.data.workers`), writes each shard
atomically (temporary file, fsync, ``os.replace``) with its SHA-256 and appends its entry to
the journal as soon as it lands. When the run ends the journal is merged into the manifest,
which is marked complete only if every input was processed (or failed with a recorded
reason). A killed or interrupted run leaves an incomplete corpus whose finished shards are all
listed: a rerun skips them (resume) and builds the rest. Ctrl-C stops the workers at once;
workers also exit by themselves when the parent process disappears. Unreadable or corrupt
files are reported and skipped.

The folder layout, manifest and journal are in :mod:`codebrain.data.corpus_format`; the
corpus is read by :class:`~codebrain.data.datasets.CorpusDataset` (re-exported here, with the
format's names, where they used to live), which refuses an incomplete corpus unless asked
(``allow_incomplete=True``) and serves the windows through ``np.load(mmap_mode="r")``.

Shape legend: ``n_windows`` windows, ``n_chans`` channels, ``n_times`` samples per window.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from codebrain.data.corpus_format import (
    _JOURNAL_NAME,
    _LOCK_NAME,
    _SHARD_DIR,
    FORMAT_VERSION,
    MANIFEST_NAME,
    CorpusError,
    CorpusLockedError,
    _append_journal,
    _check_shard,
    _clean_temporaries,
    _HashingWriter,
    _key,
    _new_manifest,
    _read_journal,
    _read_manifest,
    _same_config,
    _shard_name,
    file_sha256,
)
from codebrain.data.corpus_lock import _corpus_lock
from codebrain.data.datasets import CorpusDataset
from codebrain.data.io import read_raw
from codebrain.data.preprocess import PreprocessConfig, preprocess_raw
from codebrain.data.recordings import list_recordings, recording_id
from codebrain.data.subjects import subject_id
from codebrain.data.windows import no_window_reason, windows_from_raw
from codebrain.data.workers import _peak_rss_mib, _run_pool
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
            _run_pool(
                _process_recording,
                todo,
                args,
                min(n_jobs, len(todo)),
                _record,
                preload=(__name__,),
            )
        finished = True
    finally:
        _write_manifest(complete=finished)

    summary.n_windows = sum(e["n_windows"] for e in entries.values())
    return summary


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
