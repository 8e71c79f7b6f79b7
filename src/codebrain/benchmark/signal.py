"""Building blocks for recipe hooks: find files, pick channels, preprocess, cut windows.

A ``load`` hook is typically::

    data_uv, sfreq, raw = read_channels(rec.path, recipe.channels)   # (C, T) µV, file order fixed
    x = recipe.prepare(data_uv, sfreq)                                  # authors' steps + scale
    windows = fixed_windows(x, recipe.n_times, stride)                  # (n, C, T)
    return TaskWindows(windows, labels, rec.subject, rec.id)

and a ``find`` hook is :func:`glob_recordings` with a label rule. Formats MNE does not read
(``.mat``, ``.pkl``, ``.cnt`` variants) give the array to :meth:`TaskRecipe.prepare` and
:func:`fixed_windows` directly; :func:`pick_channels` picks and derives channels by name from
any ``(n_chans, n_times)`` array.

Shape legend: ``n_windows`` windows, ``n_chans`` channels, ``n_times`` samples.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from codebrain.benchmark.hooks import Recording
from codebrain.benchmark.preprocessing import (
    BandPass,
    CommonAverage,
    Notch,
    PreprocessStep,
    Resample,
)
from codebrain.benchmark.recipe import DatasetNotFoundError, TaskRecipe
from codebrain.utils.check import check_int

__all__ = [
    "apply_preprocessing",
    "pick_channels",
    "read_channels",
    "fixed_windows",
    "event_windows",
    "glob_recordings",
]

logger = logging.getLogger(__name__)


def apply_preprocessing(
    data: np.ndarray, sfreq: float, steps: Sequence[PreprocessStep]
) -> tuple[np.ndarray, float]:
    """Apply preprocessing steps in order to a continuous signal.

    Parameters
    ----------
    data : np.ndarray
        ``(n_chans, n_times)``, any unit (filters are linear).
    sfreq : float
        Sampling rate in Hz.
    steps : sequence of PreprocessStep

    Returns
    -------
    (np.ndarray, float)
        ``(n_chans, n_times')`` float64 and the final sampling rate.
    """
    import mne
    import scipy.signal

    x = np.asarray(data, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"Expected a (n_chans, n_times) signal, got shape {x.shape}.")
    if not np.isfinite(x).all():
        raise ValueError("The signal holds NaN or Inf samples; cannot filter it.")
    sfreq = float(sfreq)
    for step in steps:
        if isinstance(step, Resample):
            if abs(step.sfreq - sfreq) < 1e-9:
                continue
            if step.method == "scipy":
                n_new = round(x.shape[-1] * step.sfreq / sfreq)
                x = scipy.signal.resample(x, n_new, axis=-1)
            else:
                x = mne.filter.resample(x, up=step.sfreq, down=sfreq, npad="auto", verbose=False)
            sfreq = float(step.sfreq)
        elif isinstance(step, BandPass):
            nyquist = sfreq / 2
            h_freq = step.h_freq
            if h_freq is not None and h_freq >= nyquist:
                logger.info(
                    "Low-pass edge %.4g Hz is at or above Nyquist (%.4g Hz); skipped.",
                    h_freq,
                    nyquist,
                )
                h_freq = None
                if step.l_freq is None:
                    continue
            if step.method == "fir":
                x = mne.filter.filter_data(x, sfreq, step.l_freq, h_freq, verbose=False)
            else:
                if step.l_freq is not None and h_freq is not None:
                    wn, btype = [step.l_freq, h_freq], "bandpass"
                elif step.l_freq is not None:
                    wn, btype = step.l_freq, "highpass"
                else:
                    wn, btype = h_freq, "lowpass"
                b, a = scipy.signal.butter(step.order, wn, btype=btype, fs=sfreq)
                x = (scipy.signal.lfilter if step.causal else scipy.signal.filtfilt)(
                    b, a, x, axis=-1
                )
        elif isinstance(step, Notch):
            if step.freq >= sfreq / 2:
                logger.info("Notch %.4g Hz is at or above Nyquist; skipped.", step.freq)
                continue
            x = mne.filter.notch_filter(x, sfreq, step.freq, verbose=False)
        elif isinstance(step, CommonAverage):
            x = x - x.mean(axis=0, keepdims=True)
        else:  # pragma: no cover - TaskRecipe validates the steps
            raise TypeError(f"Unknown preprocessing step {step!r}.")
    return x, sfreq


def _spelling(name: str) -> str:
    from codebrain.data.montage import _PREFIX_RE

    return _PREFIX_RE.sub("", name.strip().rstrip(".").strip()).strip().rstrip(".").upper()


def pick_channels(
    data: np.ndarray, names: Sequence[str], channels: Sequence[str], *, where: str = "recording"
) -> np.ndarray:
    """Pick (and derive bipolar) channels by name from a signal.

    Each wanted channel is matched, in order, against the file's labels spelled as stored
    without a modality prefix (``"EEG A2-A1"`` → ``"A2-A1"``), then as normalised 10-20 names
    (:func:`codebrain.data.normalize_channel_name`: ``"EEG FP1-REF"`` → ``"FP1"``, T7 → T3).
    A wanted ``"A-B"`` not stored as such is derived as channel A minus channel B.

    Parameters
    ----------
    data : np.ndarray
        ``(n_chans_in, n_times)``.
    names : sequence of str
        Labels of the rows of ``data``.
    channels : sequence of str
        Wanted channels in output order.
    where : str
        Names the source in error messages (a file path).

    Returns
    -------
    np.ndarray
        ``(len(channels), n_times)``.

    Raises
    ------
    ValueError
        A wanted channel (or a side of a pair) is absent; the message lists what is there.
    """
    from codebrain.data.montage import normalize_channel_name

    data = np.asarray(data)
    if data.ndim != 2 or data.shape[0] != len(names):
        raise ValueError(f"{where}: {len(names)} channel names for data of shape {data.shape}.")
    stored: dict[str, int] = {}
    normal: dict[str, int] = {}
    for i, n in enumerate(names):
        stored.setdefault(_spelling(n), i)
        normal.setdefault(normalize_channel_name(n), i)

    def index(name: str) -> int | None:
        key = _spelling(name)
        if key in stored:
            return stored[key]
        return normal.get(normalize_channel_name(name))

    rows: list[np.ndarray] = []
    missing: list[str] = []
    for ch in channels:
        i = index(ch)
        if i is not None:
            rows.append(data[i])
            continue
        if "-" in ch:
            a, b = ch.split("-", 1)
            ia, ib = index(a), index(b)
            if ia is not None and ib is not None:
                rows.append(data[ia] - data[ib])
                continue
        missing.append(ch)
    if missing:
        raise ValueError(
            f"{where}: channels {missing} are missing (wanted {list(channels)}; the file has "
            f"{list(names)})."
        )
    return np.stack(rows)


def read_channels(
    path: str | os.PathLike,
    channels: Sequence[str],
    *,
    reader: Callable[..., Any] | None = None,
) -> tuple[np.ndarray, float, Any]:
    """Read a recording with MNE and return the wanted channels in µV.

    Parameters
    ----------
    path : path-like
        Any file :func:`codebrain.data.read_raw` reads (EDF, BDF, GDF, FIF, BrainVision,
        EEGLAB), or anything ``reader`` reads.
    channels : sequence of str
        Wanted channels (monopolar or ``"A-B"`` pairs) in output order; see
        :func:`pick_channels`.
    reader : callable | None
        ``reader(path) -> mne.io.BaseRaw`` (e.g. ``lambda p: mne.io.read_raw_cnt(p,
        data_format="int16", preload=True)``); default :func:`codebrain.data.read_raw`.

    Returns
    -------
    (np.ndarray, float, mne.io.BaseRaw)
        ``(len(channels), n_times)`` float64 µV, the sampling rate, and the raw (for its
        annotations).
    """
    from codebrain.data.io import read_raw

    raw = reader(path) if reader is not None else read_raw(path, preload=True, verbose="error")
    data = raw.get_data() * 1e6
    picked = pick_channels(data, raw.ch_names, channels, where=str(path))
    return picked, float(raw.info["sfreq"]), raw


def fixed_windows(x: np.ndarray, n_times: int, stride: int | None = None) -> np.ndarray:
    """Cut ``(n_chans, total)`` into ``(n_windows, n_chans, n_times)`` from the start.

    Parameters
    ----------
    x : np.ndarray
        ``(n_chans, total)``.
    n_times : int
        Samples per window.
    stride : int | None
        Samples between window starts (None: ``n_times``, no overlap). The remainder at the
        end is dropped.

    Returns
    -------
    np.ndarray
        ``(n_windows, n_chans, n_times)``; zero windows when ``total < n_times``.
    """
    stride = n_times if stride is None else int(stride)
    check_int("n_times", n_times, allow_numpy=True)
    check_int("stride", stride, allow_numpy=True)
    x = np.asarray(x)
    starts = range(0, x.shape[-1] - n_times + 1, stride)
    if not len(starts):
        return np.zeros((0, x.shape[0], n_times), dtype=x.dtype)
    return np.stack([x[:, s : s + n_times] for s in starts])


def event_windows(
    x: np.ndarray, onsets: Sequence[int], n_times: int, offset: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Windows of ``n_times`` samples starting ``offset`` samples after each onset.

    Parameters
    ----------
    x : np.ndarray
        ``(n_chans, total)``.
    onsets : sequence of int
        Event onsets in samples.
    n_times : int
        Samples per window.
    offset : int
        Start relative to the onset (negative: before it).

    Returns
    -------
    (np.ndarray, np.ndarray)
        ``(n_kept, n_chans, n_times)`` windows and the indices of the onsets kept (windows
        running past either end of the signal are dropped).
    """
    x = np.asarray(x)
    kept = [
        i for i, o in enumerate(onsets) if o + offset >= 0 and o + offset + n_times <= x.shape[-1]
    ]
    if not kept:
        return np.zeros((0, x.shape[0], n_times), dtype=x.dtype), np.zeros(0, dtype=np.int64)
    w = np.stack([x[:, onsets[i] + offset : onsets[i] + offset + n_times] for i in kept])
    return w, np.asarray(kept, dtype=np.int64)


def glob_recordings(
    recipe: TaskRecipe,
    root: str | os.PathLike,
    patterns: str | Sequence[str],
    *,
    label: Callable[[Path], int | str | None] | None = None,
    meta: Callable[[Path], dict[str, Any]] | None = None,
) -> list[Recording]:
    """Recordings under ``root`` matching glob ``patterns``, subject from the recipe's rule.

    Parameters
    ----------
    recipe : TaskRecipe
        Gives ``subject_pattern`` (via :meth:`TaskRecipe.subject_of`) and the layout text.
    root : path-like
    patterns : str | sequence of str
        Globs relative to ``root`` (``"Subject*_[12].edf"``, ``"**/*.edf"``).
    label : callable | None
        ``label(path)`` → the recording's label (class index/name) or None; a file for which
        it raises ``ValueError`` is a layout error.
    meta : callable | None
        ``meta(path)`` → extra fields for :attr:`Recording.meta`.

    Raises
    ------
    DatasetNotFoundError
        No file matches (message gives the expected layout and where to get the data).
    """
    root = Path(root)
    if isinstance(patterns, str):
        patterns = [patterns]
    files = sorted({p for pat in patterns for p in root.glob(pat) if p.is_file()})
    if not files:
        raise DatasetNotFoundError(
            f"{recipe.title}: no files matching {list(patterns)} under {root}. Expected layout: "
            f"{recipe.layout} Obtain the dataset from {recipe.source}"
            + (" (or pass --download)." if recipe.download is not None else ".")
        )
    out = []
    for f in files:
        out.append(
            Recording(
                path=f,
                subject=recipe.subject_of(f, root),
                label=None if label is None else label(f),
                meta={} if meta is None else meta(f),
            )
        )
    return out
