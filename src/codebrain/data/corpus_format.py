"""The on-disk corpus format: folder layout, manifest, build journal and shard checks.

Layout of a corpus folder::

    out_dir/
      manifest.json          format version, config, channels, sfreq, one entry per recording,
                             "complete": false until a build has gone through every input
      journal.jsonl          during a build: one line per shard as it lands
      .lock                  held (flock) by the build running in this folder; names its pid/host
      shards/<rec>-<hash>.npy one array (n_windows, n_chans, n_times) per recording

Written by :func:`codebrain.data.store.build_corpus` and read by
:class:`codebrain.data.datasets.CorpusDataset`; both go through the helpers here, so the
layout is known in one place. A shard entry records its SHA-256 (:func:`file_sha256`).

Shape legend: ``n_windows`` windows, ``n_chans`` channels, ``n_times`` samples per window.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from codebrain.data.preprocess import PreprocessConfig
from codebrain.data.recordings import recording_id

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "CorpusError",
    "CorpusLockedError",
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


_ENTRY_KEYS = ("path", "recording_id", "subject_id", "shard", "n_windows", "sha256")


class CorpusError(ValueError):
    """A corpus folder is inconsistent (manifest vs shards) or incompatible with a request."""


class CorpusLockedError(CorpusError):
    """Another build holds the lock on a corpus folder."""


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
