"""Torch datasets of windows: in memory, from ``.npy`` files, and over an on-disk corpus.

:class:`WindowDataset` holds labelled windows in memory as a map-style ``Dataset`` returning
``(x, y)``: ``x`` float32 ``(n_chans, n_times)`` in model units (µV / 100), ``y`` a
``torch.long`` class index (or float32 for regression targets, -1 for unlabelled windows).
Per-window metadata (``recording_ids``, ``subject_ids``, ``onsets``) are numpy arrays, so
subject- or recording-wise splits are one boolean mask away. :class:`NpyWindows` reads
unlabelled windows from plain ``.npy`` arrays and :class:`CorpusDataset` from the shards of a
corpus folder (:mod:`codebrain.data.corpus_format`), both memory-mapped, returning ``x`` only.

Shape legend: ``n_windows`` windows, ``n_chans`` channels, ``n_times`` samples per window.
"""

from __future__ import annotations

import collections
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from codebrain.data.corpus_format import CorpusError, _check_shard, _read_journal, _read_manifest
from codebrain.utils.check import check_positive_int, check_value

__all__ = ["WindowDataset", "NpyWindows", "CorpusDataset"]

logger = logging.getLogger(__name__)


class WindowDataset(Dataset):
    """In-memory windows with labels and per-window metadata.

    Parameters
    ----------
    data : np.ndarray, shape (n_windows, n_chans, n_times)
        Windows in model units (stored as float32).
    labels : np.ndarray, shape (n_windows,)
        int class indices (→ ``torch.long``), float targets (→ ``torch.float32``), or -1.
    recording_ids, subject_ids : sequence of str, length n_windows
    onsets : np.ndarray, shape (n_windows,)
        Window start in seconds within its recording.
    ch_names : sequence of str
        Channel names, length n_chans.
    sfreq : float
        Sampling rate in Hz.
    classes : sequence of str | None
        Class names, index = label (None for regression/unlabelled).

    Attributes
    ----------
    recording_ids, subject_ids : np.ndarray of str, shape (n_windows,)
    onsets : np.ndarray of float, shape (n_windows,)
    """

    def __init__(
        self,
        data: np.ndarray,
        labels: np.ndarray,
        recording_ids: Sequence[str],
        subject_ids: Sequence[str],
        onsets: np.ndarray,
        ch_names: Sequence[str],
        sfreq: float,
        classes: Sequence[str] | None = None,
    ) -> None:
        data = np.asarray(data, dtype=np.float32)
        if data.ndim != 3:
            raise ValueError(f"data must be (n_windows, n_chans, n_times), got shape {data.shape}.")
        n = data.shape[0]
        labels = np.asarray(labels)
        arrays = {
            "labels": labels,
            "recording_ids": np.asarray(recording_ids, dtype=str),
            "subject_ids": np.asarray(subject_ids, dtype=str),
            "onsets": np.asarray(onsets, dtype=np.float64),
        }
        for name, arr in arrays.items():
            if arr.shape != (n,):
                raise ValueError(f"{name} must have shape ({n},) to match data, got {arr.shape}.")
        if data.shape[1] != len(ch_names):
            raise ValueError(f"data has {data.shape[1]} channels but ch_names has {len(ch_names)}.")
        self.data = data
        self.labels = labels
        self.recording_ids = arrays["recording_ids"]
        self.subject_ids = arrays["subject_ids"]
        self.onsets = arrays["onsets"]
        self.ch_names = list(ch_names)
        self.sfreq = float(sfreq)
        self.classes = list(classes) if classes is not None else None

    @property
    def n_chans(self) -> int:
        """Number of channels."""
        return self.data.shape[1]

    @property
    def n_times(self) -> int:
        """Samples per window."""
        return self.data.shape[2]

    def __len__(self) -> int:
        return self.data.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Window ``index`` as ``(x (n_chans, n_times) float32, y long|float32)``."""
        x = torch.from_numpy(self.data[index])
        label = self.labels[index]
        if np.issubdtype(self.labels.dtype, np.floating):
            y = torch.tensor(float(label), dtype=torch.float32)
        else:
            y = torch.tensor(int(label), dtype=torch.long)
        return x, y

    def subset(self, indices: np.ndarray | Sequence[int]) -> WindowDataset:
        """A new dataset with the windows at ``indices`` (int indices or a boolean mask)."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        return WindowDataset(
            self.data[idx],
            self.labels[idx],
            self.recording_ids[idx],
            self.subject_ids[idx],
            self.onsets[idx],
            self.ch_names,
            self.sfreq,
            self.classes,
        )

    def __repr__(self) -> str:
        return (
            f"WindowDataset(n_windows={len(self)}, n_chans={self.n_chans}, n_times={self.n_times}, "
            f"sfreq={self.sfreq}, subjects={len(set(self.subject_ids.tolist()))}, "
            f"classes={self.classes})"
        )


class NpyWindows(Dataset):
    """Windows from ``.npy`` files, each ``(n_windows, n_chans, n_times)``, memory-mapped.

    Parameters
    ----------
    paths : list of path-like
        Files in order; their windows are concatenated. All must share ``(n_chans, n_times)``.

    Notes
    -----
    ``__getitem__(i)`` returns a float32 tensor ``(n_chans, n_times)``.
    """

    def __init__(self, paths: list[str | os.PathLike]) -> None:
        check_value("NpyWindows paths", paths, bool(paths), "at least one .npy file")
        self.paths = [Path(p) for p in paths]
        self._arrays: list[np.ndarray] | None = None
        shapes = []
        counts = []
        for p in self.paths:
            arr = np.load(p, mmap_mode="r", allow_pickle=False)
            if arr.ndim != 3:
                raise ValueError(
                    f"{p} holds an array of shape {arr.shape}; expected (n_windows, n_chans, "
                    "n_times)."
                )
            shapes.append(arr.shape[1:])
            counts.append(arr.shape[0])
        if len(set(shapes)) != 1:
            raise ValueError(
                f"the .npy files disagree on (n_chans, n_times): "
                f"{sorted({tuple(s) for s in shapes})}."
            )
        self.n_chans, self.n_times = (int(v) for v in shapes[0])
        self._offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __getitem__(self, i: int) -> torch.Tensor:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} windows.")
        i = i % len(self)
        if self._arrays is None:  # opened lazily so DataLoader workers map their own copies
            self._arrays = [np.load(p, mmap_mode="r", allow_pickle=False) for p in self.paths]
        f = int(np.searchsorted(self._offsets, i, side="right") - 1)
        x = np.asarray(self._arrays[f][i - self._offsets[f]], dtype=np.float32)
        return torch.from_numpy(x.copy())


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
