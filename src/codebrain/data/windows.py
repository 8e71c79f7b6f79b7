"""Cut preprocessed recordings into windows: fixed-length or event-locked, with labels.

:class:`WindowDataset` holds the windows in memory as a torch map-style ``Dataset`` returning
``(x, y)``: ``x`` float32 ``(n_chans, n_times)`` in model units (µV / 100), ``y`` a
``torch.long`` class index (or float32 for regression targets, -1 for unlabelled windows).
Per-window metadata (``recording_ids``, ``subject_ids``, ``onsets``) are numpy arrays, so
subject- or recording-wise splits are one boolean mask away. :func:`save_windows_npz` /
:func:`load_windows_npz` store them in one ``.npz`` (the ``codebrain prepare -o`` format);
:class:`NpyWindows` reads unlabelled windows from plain ``.npy`` arrays, memory-mapped.

Shape legend: ``n_windows`` windows, ``n_chans`` channels, ``n_times`` samples per window.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import mne
import numpy as np
import torch
from torch.utils.data import Dataset

from codebrain.data.io import RecordingError, read_raw, recording_ids, subject_id
from codebrain.data.preprocess import NONFINITE_ANNOTATION, PreprocessConfig, preprocess_raw
from codebrain.utils.check import check_option
from codebrain.utils.io import atomic_open

__all__ = [
    "Windows",
    "WindowDataset",
    "fixed_length_windows",
    "event_windows",
    "reject_by_amplitude",
    "make_event_id",
    "windows_from_raw",
    "no_window_reason",
    "load_windows",
    "save_windows_npz",
    "load_windows_npz",
    "NpyWindows",
]

logger = logging.getLogger(__name__)

#: Annotation descriptions never used as labels (MNE's bad-segment and edge markers).
_IGNORED_PREFIXES = ("BAD", "EDGE")


@dataclass
class Windows:
    """Windows cut from one recording.

    Attributes
    ----------
    data : np.ndarray, shape (n_windows, n_chans, n_times)
        float32, model units.
    labels : np.ndarray, shape (n_windows,)
        int64 class indices, float32 targets, or -1 (unlabelled).
    onsets : np.ndarray, shape (n_windows,)
        Window start in seconds from the start of the recording.
    n_rejected : int
        Windows dropped by the amplitude criteria.
    n_nonfinite : int
        Windows dropped because they overlap a non-finite stretch
        (:data:`~codebrain.data.preprocess.NONFINITE_ANNOTATION`).
    """

    data: np.ndarray
    labels: np.ndarray
    onsets: np.ndarray
    n_rejected: int = 0
    n_nonfinite: int = 0


def fixed_length_windows(
    data: np.ndarray, sfreq: float, window_seconds: float, stride_seconds: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``(n_chans, n_times)`` data into fixed-length windows (a trailing partial is dropped).

    Parameters
    ----------
    data : np.ndarray, shape (n_chans, n_times)
    sfreq : float
        Sampling rate in Hz.
    window_seconds : float
        Window length in seconds.
    stride_seconds : float | None
        Step between window starts (None: no overlap).

    Returns
    -------
    windows : np.ndarray, shape (n_windows, n_chans, n_win)
        A copy (not a view) of the windows.
    onsets : np.ndarray, shape (n_windows,)
        Window starts in seconds.
    """
    if data.ndim != 2:
        raise ValueError(f"data must be (n_chans, n_times), got shape {data.shape}.")
    n_win = int(round(window_seconds * sfreq))
    step = int(round((stride_seconds or window_seconds) * sfreq))
    if n_win < 1 or step < 1:
        raise ValueError(
            f"window ({window_seconds} s) and stride ({stride_seconds} s) must be at least one "
            f"sample at {sfreq} Hz."
        )
    starts = np.arange(0, data.shape[1] - n_win + 1, step, dtype=np.int64)
    if starts.size == 0:
        return np.zeros((0, data.shape[0], n_win), dtype=data.dtype), np.zeros(0)
    idx = starts[:, None] + np.arange(n_win)[None, :]  # (n_windows, n_win)
    windows = data[:, idx].transpose(1, 0, 2)  # (n_windows, n_chans, n_win)
    return np.ascontiguousarray(windows), starts / sfreq


def make_event_id(descriptions: Iterable[str]) -> dict[str, int]:
    """Map annotation descriptions to class indices 0..k-1 (sorted; BAD/EDGE markers skipped).

    Parameters
    ----------
    descriptions : iterable of str

    Returns
    -------
    dict of str to int
    """
    names = sorted({d for d in descriptions if not d.upper().startswith(_IGNORED_PREFIXES)})
    return {name: i for i, name in enumerate(names)}


def event_windows(
    data: np.ndarray,
    sfreq: float,
    annotations: mne.Annotations,
    event_id: Mapping[str, int | float],
    *,
    tmin: float = 0.0,
    window_seconds: float,
    first_time: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut one window per annotation whose description is in ``event_id``.

    Parameters
    ----------
    data : np.ndarray, shape (n_chans, n_times)
    sfreq : float
    annotations : mne.Annotations
        Onsets in seconds relative to the start of ``data`` plus ``first_time``.
    event_id : mapping of str to int | float
        Description → label (int: class, float: regression target).
    tmin : float
        Window start relative to the annotation onset, in seconds.
    window_seconds : float
        Window length in seconds.
    first_time : float
        Time of the first sample of ``data`` (``raw.first_time`` when annotations are
        orig_time-aligned); subtracted from the onsets.

    Returns
    -------
    windows : np.ndarray, shape (n_windows, n_chans, n_win)
    labels : np.ndarray, shape (n_windows,)
    onsets : np.ndarray, shape (n_windows,)
        Window starts in seconds from the start of ``data``.
    """
    n_win = int(round(window_seconds * sfreq))
    windows, labels, onsets = [], [], []
    n_outside = 0
    for onset, desc in zip(annotations.onset, annotations.description, strict=True):
        if desc not in event_id:
            continue
        start_s = float(onset) - first_time + tmin
        start = int(round(start_s * sfreq))
        if start < 0 or start + n_win > data.shape[1]:
            n_outside += 1
            continue
        windows.append(data[:, start : start + n_win])
        labels.append(event_id[desc])
        onsets.append(start / sfreq)
    if n_outside:
        logger.info("%d event window(s) fall outside the recording and were skipped.", n_outside)
    label_dtype = np.float32 if any(isinstance(v, float) for v in event_id.values()) else np.int64
    if not windows:
        return (
            np.zeros((0, data.shape[0], n_win), dtype=data.dtype),
            np.zeros(0, dtype=label_dtype),
            np.zeros(0),
        )
    return np.stack(windows), np.asarray(labels, dtype=label_dtype), np.asarray(onsets)


def reject_by_amplitude(windows: np.ndarray, threshold: float | None) -> np.ndarray:
    """Boolean mask of the windows to keep: peak-to-peak on every channel ≤ ``threshold``.

    Parameters
    ----------
    windows : np.ndarray, shape (n_windows, n_chans, n_times)
    threshold : float | None
        Same units as ``windows``; None keeps everything.

    Returns
    -------
    np.ndarray of bool, shape (n_windows,)
    """
    if threshold is None or windows.shape[0] == 0:
        return np.ones(windows.shape[0], dtype=bool)
    ptp = np.ptp(windows, axis=-1)  # (n_windows, n_chans)
    return ptp.max(axis=-1) <= threshold


def windows_from_raw(
    raw: mne.io.BaseRaw,
    config: PreprocessConfig,
    *,
    mode: Literal["fixed", "events"] = "fixed",
    event_id: Mapping[str, int | float] | None = None,
    tmin: float = 0.0,
    target: int | float | None = None,
) -> Windows:
    """Windows from a recording already run through :func:`preprocess_raw`.

    Parameters
    ----------
    raw : mne.io.BaseRaw
        Preprocessed recording (volts, ``config.channels`` at ``config.sfreq``).
    config : PreprocessConfig
        Window length, stride, trimming (fixed mode), scale and amplitude rejection.
    mode : {"fixed", "events"}
        ``"fixed"``: consecutive windows (after cutting ``trim_seconds`` at each end); with
        ``event_id`` each is labelled by the annotation covering its centre (windows without
        one are dropped). ``"events"``: one window per annotation in ``event_id``, starting
        ``tmin`` s after its onset.
    event_id : mapping of str to int | float | None
        Annotation description → label.
    tmin : float
        Event-locked window start relative to the onset (seconds).
    target : int | float | None
        A recording-level label given to every window (fixed mode, e.g. abnormal/normal).

    Returns
    -------
    Windows
        Windows overlapping a :data:`~codebrain.data.preprocess.NONFINITE_ANNOTATION`
        stretch are dropped (counted in ``n_nonfinite``).

    Raises
    ------
    RecordingError
        A kept window holds NaN/Inf (the recording did not go through
        :func:`~codebrain.data.preprocess_raw`).
    """
    check_option("mode", mode, ("fixed", "events"))
    sfreq = float(raw.info["sfreq"])
    data = raw.get_data().astype(np.float32)  # (n_chans, n_times), volts
    data *= np.float32(config.scale)  # model units
    annotations = raw.annotations
    first_time = raw.first_time if annotations.orig_time is not None else 0.0
    if mode == "events":
        if not event_id:
            raise ValueError("mode='events' needs a non-empty event_id (description → label).")
        windows, labels, onsets = event_windows(
            data,
            sfreq,
            annotations,
            event_id,
            tmin=tmin,
            window_seconds=config.window_seconds,
            first_time=first_time,
        )
    else:
        trim = int(round(config.trim_seconds * sfreq))
        windows, onsets = fixed_length_windows(
            data[:, trim : max(trim, data.shape[1] - trim)],
            sfreq,
            config.window_seconds,
            config.stride_seconds,
        )
        onsets = onsets + trim / sfreq
        if event_id:
            labels, keep = _label_by_cover(
                onsets, config.window_seconds, annotations, event_id, first_time
            )
            windows, onsets, labels = windows[keep], onsets[keep], labels[keep]
        elif target is not None:
            dtype = np.float32 if isinstance(target, float) else np.int64
            labels = np.full(len(onsets), target, dtype=dtype)
        else:
            labels = np.full(len(onsets), -1, dtype=np.int64)
    clean = ~_overlaps_nonfinite(onsets, config.window_seconds, annotations, first_time, sfreq)
    n_nonfinite = int((~clean).sum())
    windows, labels, onsets = windows[clean], labels[clean], onsets[clean]
    if not np.isfinite(windows).all():
        n_bad = int((~np.isfinite(windows).all(axis=(1, 2))).sum())
        raise RecordingError(
            f"{n_bad} of {len(windows)} window(s) of {_raw_name(raw)} hold NaN/Inf samples; "
            "run the recording through preprocess_raw first (on_nonfinite='raise' or 'drop')."
        )
    uv_per_unit = 1e6 / config.scale
    threshold = (
        config.reject_peak_to_peak_uv / uv_per_unit
        if config.reject_peak_to_peak_uv is not None
        else None
    )
    keep = reject_by_amplitude(windows, threshold)
    if config.reject_abs_uv is not None and len(windows):
        keep &= np.abs(windows).max(axis=(1, 2)) < config.reject_abs_uv / uv_per_unit
    n_rejected = int((~keep).sum())
    if n_rejected:
        logger.info("Rejected %d/%d window(s) by amplitude.", n_rejected, len(keep))
    return Windows(windows[keep], labels[keep], onsets[keep], n_rejected, n_nonfinite)


def _raw_name(raw: mne.io.BaseRaw) -> str:
    names = [str(n) for n in (getattr(raw, "filenames", None) or ()) if n is not None]
    return names[0] if names else "the recording"


def _overlaps_nonfinite(
    onsets: np.ndarray,
    window_seconds: float,
    annotations: mne.Annotations,
    first_time: float,
    sfreq: float,
) -> np.ndarray:
    """Mask of the windows that overlap a non-finite stretch annotation."""
    marked = annotations.description == NONFINITE_ANNOTATION
    if not marked.any() or len(onsets) == 0:
        return np.zeros(len(onsets), dtype=bool)
    starts = annotations.onset[marked] - first_time
    ends = starts + annotations.duration[marked]
    eps = 0.5 / sfreq  # windows that only touch a stretch do not overlap it
    win_start = onsets[:, None]
    win_end = win_start + window_seconds
    return ((win_start < ends[None, :] - eps) & (win_end > starts[None, :] + eps)).any(axis=1)


def no_window_reason(
    raw: mne.io.BaseRaw, config: PreprocessConfig, windows: Windows, mode: str = "fixed"
) -> str:
    """Why :func:`windows_from_raw` cut no window from ``raw`` (for error messages).

    Parameters
    ----------
    raw : mne.io.BaseRaw
        The preprocessed recording.
    config : PreprocessConfig
    windows : Windows
        The (empty) result of :func:`windows_from_raw`.
    mode : {"fixed", "events"}

    Returns
    -------
    str
    """
    seconds = raw.n_times / float(raw.info["sfreq"])
    if mode == "fixed" and seconds - 2 * config.trim_seconds < config.window_seconds:
        trimmed = f" ({config.trim_seconds:g} s trimmed at each end)" if config.trim_seconds else ""
        return (
            f"recording is {seconds:.1f} s long{trimmed}, too short for one "
            f"{config.window_seconds:g} s window"
        )
    parts = []
    if windows.n_nonfinite:
        parts.append(f"{windows.n_nonfinite} overlap non-finite samples")
    if windows.n_rejected:
        parts.append(f"{windows.n_rejected} rejected by amplitude")
    if parts:
        return "every window was dropped: " + ", ".join(parts)
    if mode == "events":
        return "no event annotation of the requested classes fits a window in the recording"
    return "no window is covered by a labelled annotation"


def _label_by_cover(
    onsets: np.ndarray,
    window_seconds: float,
    annotations: mne.Annotations,
    event_id: Mapping[str, int | float],
    first_time: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Label each window by the annotation covering its centre; mask of labelled windows."""
    is_float = any(isinstance(v, float) for v in event_id.values())
    labels = np.full(len(onsets), -1, dtype=np.float32 if is_float else np.int64)
    keep = np.zeros(len(onsets), dtype=bool)
    centres = onsets + window_seconds / 2.0
    for onset, duration, desc in zip(
        annotations.onset, annotations.duration, annotations.description, strict=True
    ):
        if desc not in event_id:
            continue
        start = float(onset) - first_time
        covered = (centres >= start) & (centres < start + float(duration)) & ~keep
        labels[covered] = event_id[desc]
        keep |= covered
    return labels, keep


def _table_event_id(labels: Mapping[str, mne.Annotations], recordings: Sequence[Any]) -> dict:
    """Classes of a label table for fixed windows (sorted names), after checking it applies."""
    from codebrain.data.io import recording_id

    present = {recording_id(p) for p in recordings}
    named = set(labels)
    if not named & present:
        raise ValueError(
            f"The label table names none of the {len(present)} recordings: it lists "
            f"{sorted(named)[:5]}, the recordings are {sorted(present)[:5]} (the 'recording' "
            "column must hold file names without extension)."
        )
    descriptions = [d for ann in labels.values() for d in ann.description]
    event_id = make_event_id(descriptions)
    if not event_id:
        raise ValueError("The label table has no usable label (only BAD/EDGE rows).")
    missing = sorted(present - named)
    if missing:
        logger.warning(
            "The label table does not name %d recording(s) (e.g. %s); their windows are labelled "
            "by their own annotations when those match the table's classes %s, else dropped.",
            len(missing),
            ", ".join(missing[:3]),
            sorted(event_id),
        )
    return event_id


def _numeric_event_id(descriptions: Iterable[str]) -> dict[str, float]:
    """Map numeric annotation descriptions to float targets (others are not labels)."""
    event_id = {}
    for desc in set(descriptions):
        try:
            event_id[desc] = float(desc)
        except ValueError:
            continue
    if not event_id:
        raise ValueError(
            "regression=True needs numeric annotation descriptions (e.g. '3.5'); none found."
        )
    return event_id


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


def load_windows(
    paths: str | os.PathLike | Iterable[Any],
    config: PreprocessConfig | None = None,
    *,
    mode: Literal["fixed", "events"] = "fixed",
    event_id: Mapping[str, int | float] | None = None,
    tmin: float = 0.0,
    labels: str | os.PathLike | Mapping[str, mne.Annotations] | None = None,
    targets: Mapping[str, int | float] | None = None,
    regression: bool = False,
    on_error: Literal["raise", "skip"] = "raise",
    subject_pattern: str | None = None,
    verbose: bool | str | int | None = None,
) -> WindowDataset:
    """Read → map channels → preprocess → cut windows, for files and folders.

    Parameters
    ----------
    paths : path-like | iterable
        Recordings and/or folders (see :func:`codebrain.data.list_recordings`).
    config : PreprocessConfig | None
        Preprocessing and window settings (default ``PreprocessConfig()``).
    mode : {"fixed", "events"}
        Fixed-length or event-locked windows (see :func:`windows_from_raw`).
    event_id : mapping of str to int | float | None
        Annotation description → label. With ``mode="events"`` and None, every annotation
        description (BAD/EDGE markers excepted) becomes a class, sorted by name.
    tmin : float
        Event-locked window start relative to the onset (seconds).
    labels : path-like | mapping of str to mne.Annotations | None
        A label table (CSV ``recording, onset, duration, label``, see
        :func:`codebrain.data.read_label_table`) or its parsed form; replaces the annotations
        of the recordings it names. With fixed windows and no ``event_id`` its labels are the
        classes (sorted by name) and each window takes the label of the row covering its
        centre; windows no row covers are dropped. A table that names none of the recordings,
        or whose rows cover no window, is an error saying so.
    targets : mapping of str to int | float | None
        Recording id → label for every window of that recording (fixed mode).
    regression : bool
        With ``event_id=None``, read annotation descriptions as numbers (float targets,
        e.g. a label table whose ``label`` column holds scores) instead of class names.
    on_error : {"raise", "skip"}
        A recording that cannot be read or processed raises, or is logged and skipped.
    subject_pattern : str | None
        Subject-id rule (a regex with a group, or a preset name), see
        :func:`codebrain.data.subject_id`; checked against every recording before any is read.
    verbose : bool | str | int | None
        Passed to MNE.

    Returns
    -------
    WindowDataset

    Raises
    ------
    ValueError
        No recordings found, none could be processed, or none gave a window (the message
        says why for each: too short, every window rejected, no matching event). Recordings
        that give no window among others are left out with a logged warning naming them.
    """
    from codebrain.data.io import _labels_for, list_recordings, read_label_table

    config = config or PreprocessConfig()
    check_option("on_error", on_error, ("raise", "skip"))
    if labels is not None and not isinstance(labels, Mapping):
        labels = read_label_table(labels)
    recordings = list_recordings(paths)
    if not recordings:
        raise ValueError(f"No EEG recordings found in {paths!r}.")
    if subject_pattern is not None:  # validate before working: a bad rule fails at once
        for path in recordings:
            subject_id(path, pattern=subject_pattern)
    table_classes = labels is not None and mode == "fixed" and event_id is None and not regression
    if table_classes:
        event_id = _table_event_id(labels, recordings)

    # Windows are cut recording by recording so only one continuous recording is in memory.
    # Without an event_id, class names found in each recording get provisional local
    # indices, remapped to the global (sorted) mapping at the end.
    auto_classes = event_id is None and mode == "events" and not regression
    chunks, y, local_names, recs, subs, onsets = [], [], [], [], [], []
    n_rejected = 0
    empty: dict[str, str] = {}  # recording → why it gave no window
    for path, rec in zip(recordings, recording_ids(recordings), strict=True):
        try:
            raw = read_raw(path, verbose=verbose)
            table = _labels_for(labels, path, rec)
            if table is not None:
                # Table onsets count from the first sample; with an orig_time MNE counts
                # from the measurement date, which lies first_time earlier.
                orig_time = raw.annotations.orig_time
                shift = raw.first_time if orig_time is not None else 0.0
                raw.set_annotations(
                    mne.Annotations(
                        table.onset + shift,
                        table.duration,
                        table.description,
                        orig_time=orig_time,
                    ),
                    verbose=verbose,
                )
            raw = preprocess_raw(raw, config, copy=False, verbose=verbose)
        except ValueError as err:  # RecordingError is a ValueError
            if on_error == "raise":
                raise
            logger.warning("Skipping %s: %s", path, err)
            continue
        if auto_classes:
            local_id = make_event_id(raw.annotations.description)
        elif event_id is None and regression:
            local_id = _numeric_event_id(raw.annotations.description)
        else:
            local_id = event_id
        win = windows_from_raw(
            raw,
            config,
            mode=mode,
            event_id=local_id,
            tmin=tmin,
            target=(targets or {}).get(rec),
        )
        n_rejected += win.n_rejected
        if len(win.onsets) == 0:
            empty[str(path)] = no_window_reason(raw, config, win, mode)
        chunks.append(win.data)
        y.append(win.labels)
        local_names.append(list(local_id or {}))
        recs += [rec] * len(win.onsets)
        subs += [subject_id(path, raw, pattern=subject_pattern)] * len(win.onsets)
        onsets.append(win.onsets)
        del raw
    if not chunks:
        raise ValueError(f"No recording in {paths!r} could be processed.")
    if table_classes and not sum(len(c) for c in chunks):
        raise ValueError(
            "The label table labels no fixed window: a window takes the label of the table row "
            "covering its centre, and no row covers a window centre (rows shorter than the "
            "window, or onsets past the end?). Use --windows events for event-locked labels."
        )
    if len(empty) == len(chunks):
        reasons = "; ".join(f"{p}: {r}" for p, r in empty.items())
        raise ValueError(f"No window could be cut: {reasons}.")
    if empty:
        logger.warning(
            "%d of %d recording(s) gave no window and were left out: %s",
            len(empty),
            len(chunks),
            "; ".join(f"{p} ({r})" for p, r in empty.items()),
        )
    if auto_classes:
        event_id = make_event_id(name for names in local_names for name in names)
        y = [
            np.array([event_id[names[i]] for i in labels_], dtype=np.int64)
            for names, labels_ in zip(local_names, y, strict=True)
        ]
    classes = None
    if event_id and all(isinstance(v, int) for v in event_id.values()):
        classes = [name for name, _ in sorted(event_id.items(), key=lambda kv: kv[1])]
    data = np.concatenate(chunks)
    logger.info(
        "Loaded %d window(s) from %d recording(s); %d rejected by amplitude.",
        data.shape[0],
        len(chunks),
        n_rejected,
    )
    return WindowDataset(
        data,
        np.concatenate(y),
        recs,
        subs,
        np.concatenate(onsets),
        list(config.channels),
        config.sfreq,
        classes,
    )


# ------------------------------------------------------------------------ files
def save_windows_npz(
    ds: WindowDataset, path: str | os.PathLike, preprocess: PreprocessConfig | None = None
) -> Path:
    """Write windows (and the preprocessing that made them) to one ``.npz``, atomically.

    The format of ``codebrain prepare -o``; read back with :func:`load_windows_npz`.

    Parameters
    ----------
    ds : WindowDataset
        Data ``(N, C, T)`` float32, labels, recording/subject ids, onsets, channel names,
        sampling rate and class names.
    path : path-like
        Output file.
    preprocess : PreprocessConfig, optional
        Stored as JSON so consumers can check or repeat the preprocessing.

    Returns
    -------
    Path
    """
    path = Path(path)
    arrays = {
        "data": np.asarray(ds.data, dtype=np.float32),
        "labels": np.asarray(ds.labels),
        "recording_ids": np.asarray(ds.recording_ids, dtype=str),
        "subject_ids": np.asarray(ds.subject_ids, dtype=str),
        "onsets": np.asarray(ds.onsets, dtype=np.float64),
        "ch_names": np.asarray(ds.ch_names, dtype=str),
        "sfreq": np.asarray(ds.sfreq, dtype=np.float64),
        "classes": np.asarray(ds.classes if ds.classes is not None else [], dtype=str),
        "has_classes": np.asarray(ds.classes is not None),
        "preprocess": np.asarray(preprocess.to_json() if preprocess is not None else ""),
    }
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def load_windows_npz(path: str | os.PathLike) -> tuple[WindowDataset, dict[str, Any] | None]:
    """Read a windows ``.npz`` written by :func:`save_windows_npz` (``codebrain prepare -o``).

    Parameters
    ----------
    path : path-like

    Returns
    -------
    ds : WindowDataset
    preprocess : dict or None
        The stored preprocessing settings.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"windows file {path} not found.")
    try:
        with np.load(path, allow_pickle=False) as z:
            fields = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"{path} is not a readable windows .npz: {err}") from err
    needed = {"data", "labels", "recording_ids", "subject_ids", "onsets", "ch_names", "sfreq"}
    missing = sorted(needed - set(fields))
    if missing:
        raise ValueError(
            f"{path} lacks {missing}; expected a windows file written by 'codebrain prepare'."
        )
    has_classes = bool(fields.get("has_classes", np.asarray(False)))
    classes = [str(c) for c in fields["classes"]] if has_classes else None
    ds = WindowDataset(
        fields["data"],
        fields["labels"],
        fields["recording_ids"],
        fields["subject_ids"],
        fields["onsets"],
        [str(c) for c in fields["ch_names"]],
        float(fields["sfreq"]),
        classes,
    )
    pre = str(fields.get("preprocess", np.asarray("")))
    return ds, (json.loads(pre) if pre else None)


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
        if not paths:
            raise ValueError("NpyWindows needs at least one .npy file.")
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
