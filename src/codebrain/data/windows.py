"""Cut preprocessed recordings into windows: fixed-length or event-locked, with labels.

:func:`windows_from_raw` cuts one recording already run through
:func:`~codebrain.data.preprocess.preprocess_raw` into :class:`Windows`: ``data`` float32
``(n_windows, n_chans, n_times)`` in model units (µV / 100), ``labels`` (class indices, float
targets, or -1 for unlabelled windows) and ``onsets``; windows overlapping a non-finite stretch
or failing the amplitude criteria are dropped and counted. :func:`fixed_length_windows`,
:func:`event_windows` and :func:`reject_by_amplitude` are its array-level steps.

The rest of the windows API lives in its own modules and is re-exported here, where it used
to live: the files → windows pipeline :func:`~codebrain.data.pipeline.load_windows`, the
dataset classes :class:`~codebrain.data.datasets.WindowDataset` and
:class:`~codebrain.data.datasets.NpyWindows`, and the ``.npz`` format
(:func:`~codebrain.data.window_files.save_windows_npz`,
:func:`~codebrain.data.window_files.load_windows_npz`).

Shape legend: ``n_windows`` windows, ``n_chans`` channels, ``n_times`` samples per window.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import mne
import numpy as np

from codebrain.data.io import RecordingError
from codebrain.data.preprocess import NONFINITE_ANNOTATION, PreprocessConfig
from codebrain.utils._lazy import lazy_reexports
from codebrain.utils.check import check_option

# Names that moved out of this module → their module. Imported on first access (PEP 562):
# the pipeline imports this module, so importing it here eagerly would be circular.
_MOVED = {
    "WindowDataset": "codebrain.data.datasets",
    "NpyWindows": "codebrain.data.datasets",
    "load_windows": "codebrain.data.pipeline",
    "save_windows_npz": "codebrain.data.window_files",
    "load_windows_npz": "codebrain.data.window_files",
}

__all__ = [
    "Windows",
    "fixed_length_windows",
    "event_windows",
    "reject_by_amplitude",
    "make_event_id",
    "windows_from_raw",
    "no_window_reason",
    *_MOVED,
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


__getattr__, __dir__ = lazy_reexports(__name__, _MOVED)
