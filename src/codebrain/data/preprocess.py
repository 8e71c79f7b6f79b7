"""Signal preprocessing to the released model's conventions (DESIGN §4).

Band-pass 0.3-75 Hz, a notch at the mains frequency and its harmonics below Nyquist,
resampling to 200 Hz (all with MNE: ``raw.filter``, ``raw.notch_filter``, ``raw.resample``;
by default filters first, or resampling first as the authors' pretraining corpus does), then
scaling from volts to units of 100 µV (µV / 100) when windows are cut. Flat channels are
detected and reported.

Non-finite samples (NaN gaps, ±Inf) are found before any filtering, because every filter
would spread one of them over the whole channel. By default they raise
:class:`~codebrain.data.io.RecordingError`; with ``on_nonfinite="drop"`` each finite stretch
long enough for a window is filtered and resampled on its own, the rest (the bad samples and
:data:`NONFINITE_MARGIN_S` around them) is zero-filled and marked by a
:data:`NONFINITE_ANNOTATION` annotation, and :func:`~codebrain.data.windows_from_raw` drops
every window that overlaps one.

Shape legend: ``n_chans`` channels, ``n_times`` samples.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Literal

import mne
import numpy as np

from codebrain.data.io import RecordingError
from codebrain.data.montage import (
    DEFAULT_CHANNELS,
    normalize_channel_name,
    parse_channel_map,
    pick_target_channels,
)
from codebrain.utils.check import check_number, check_option, check_type, check_value
from codebrain.utils.config import JSONConfig

__all__ = [
    "PreprocessConfig",
    "preprocess_raw",
    "find_flat_channels",
    "VOLTS_TO_MODEL_UNITS",
    "NONFINITE_ANNOTATION",
    "NONFINITE_MARGIN_S",
    "MAX_SFREQ",
    "MAX_WINDOW_SAMPLES",
]

logger = logging.getLogger(__name__)

#: Volts → units of 100 µV: x[V] * 1e6 [µV/V] / 100.
VOLTS_TO_MODEL_UNITS: float = 1e4
#: Description of the annotations marking non-finite stretches (``on_nonfinite="drop"``).
NONFINITE_ANNOTATION = "BAD_nonfinite"
#: Seconds dropped on each side of a non-finite sample (``on_nonfinite="drop"``): samples next
#: to a dropout are rarely trustworthy, and it keeps every marked stretch at least 1 s long.
NONFINITE_MARGIN_S = 0.5
#: Largest output sampling rate accepted (Hz). A judgment call: scalp EEG is recorded at up to
#: a few kHz and the model runs at 200 Hz; 100 kHz leaves room for any amplifier while
#: ``sfreq=1e9`` (a typo) fails at once instead of in the allocator.
MAX_SFREQ: float = 100_000.0
#: Largest window accepted, in samples (``window_seconds * sfreq``): 2**24, about 23 h at
#: 200 Hz (the released model uses 30 s). Also a judgment call, against ``inf``-like typos.
MAX_WINDOW_SAMPLES: int = 2**24


@dataclass
class PreprocessConfig(JSONConfig):
    """Everything that turns a recording into model-ready windows (JSON-able fields only).

    Parameters
    ----------
    channels : tuple of str
        Target montage, in order (default: the released model's 19 channels).
    on_missing : {"raise", "interpolate"}
        What to do with a target channel absent from a recording.
    channel_map : dict of str to str | None
        Renames applied to each recording before the channels are picked,
        ``{name in the file: target name}``, for recordings not named by 10-20 labels
        (see :func:`codebrain.data.parse_channel_map`; inline ``"old=new,..."`` text or a
        ``.json``/``.csv`` path is parsed too).
    l_freq, h_freq : float | None
        Band-pass edges in Hz (None disables that edge). ``h_freq`` at or above the
        recording's Nyquist frequency is skipped (logged).
    notch_freq : float | None
        Mains frequency in Hz (50 or 60); its harmonics below Nyquist are notched too.
        None disables the notch.
    sfreq : float
        Output sampling rate in Hz.
    scale : float
        Multiplier from volts to model units (default ``1e4``: µV / 100).
    window_seconds : float
        Window length in seconds (30 s for the released model).
    stride_seconds : float | None
        Step between fixed-length windows (None: ``window_seconds``, no overlap).
    reject_peak_to_peak_uv : float | None
        Drop windows whose peak-to-peak amplitude on any channel exceeds this (µV).
    flat_threshold_uv : float
        A channel whose peak-to-peak amplitude is below this (µV) is flat.
    on_flat : {"warn", "raise", "ignore"}
        Report flat channels as a logged warning, raise a ``ValueError``, or say nothing.
    on_nonfinite : {"raise", "drop"}
        A recording with NaN/±Inf samples raises :class:`~codebrain.data.io.RecordingError`
        (default), or its finite stretches are processed separately and the windows that
        overlap the bad samples are dropped (see the module docstring).
    resample_first : bool
        Resample to ``sfreq`` before filtering and notching (the authors' pretraining corpus
        order) instead of after.
    trim_seconds : float
        Seconds cut off at each end of a recording before fixed-length windows are cut.
    min_duration_seconds : float
        Recordings shorter than this (after resampling) raise
        :class:`~codebrain.data.io.RecordingError`.
    reject_abs_uv : float | None
        Drop windows whose largest absolute value on any channel is at or above this (µV).
    """

    channels: tuple[str, ...] = DEFAULT_CHANNELS
    on_missing: Literal["raise", "interpolate"] = "raise"
    channel_map: dict[str, str] | None = None
    l_freq: float | None = 0.3
    h_freq: float | None = 75.0
    notch_freq: float | None = 60.0
    sfreq: float = 200.0
    scale: float = VOLTS_TO_MODEL_UNITS
    window_seconds: float = 30.0
    stride_seconds: float | None = None
    reject_peak_to_peak_uv: float | None = None
    flat_threshold_uv: float = 0.1
    on_flat: Literal["warn", "raise", "ignore"] = "warn"
    on_nonfinite: Literal["raise", "drop"] = "raise"
    resample_first: bool = False
    trim_seconds: float = 0.0
    min_duration_seconds: float = 0.0
    reject_abs_uv: float | None = None

    def __post_init__(self) -> None:
        self._check_channels()
        check_option("on_missing", self.on_missing, ("raise", "interpolate"))
        if self.channel_map is not None:
            self.channel_map = parse_channel_map(self.channel_map)
        check_option("on_flat", self.on_flat, ("warn", "raise", "ignore"))
        check_option("on_nonfinite", self.on_nonfinite, ("raise", "drop"))
        check_type("resample_first", self.resample_first, bool)
        check_number("sfreq", self.sfreq, greater=0, maximum=MAX_SFREQ, unit="Hz")
        check_number("scale", self.scale, greater=0)
        check_number("window_seconds", self.window_seconds, greater=0, unit="s")
        check_value(
            "window_seconds",
            self.window_seconds,
            1 <= self.n_times <= MAX_WINDOW_SAMPLES,
            f"between 1 and {MAX_WINDOW_SAMPLES} samples at sfreq={self.sfreq:g} Hz "
            f"(window_seconds * sfreq = {self.window_seconds * self.sfreq:g})",
        )
        self._check_optional("stride_seconds", greater=0, unit="s")
        for name in ("trim_seconds", "min_duration_seconds", "flat_threshold_uv"):
            check_number(name, getattr(self, name), minimum=0)
        for name in ("reject_peak_to_peak_uv", "reject_abs_uv"):
            self._check_optional(name, greater=0, unit="µV")
        self._check_band()

    def _check_channels(self) -> None:
        check_type("channels", self.channels, (tuple, list), "a sequence of channel names")
        for i, name in enumerate(self.channels):
            check_type(f"channels[{i}]", name, str, "a channel name (str)")
        self.channels = tuple(normalize_channel_name(c) for c in self.channels)
        check_value("channels", self.channels, len(self.channels) > 0, "at least one channel")
        repeated = sorted({c for c in self.channels if self.channels.count(c) > 1})
        check_value("channels", self.channels, not repeated, f"distinct names ({repeated} repeat)")

    def _check_optional(self, name: str, **bounds: object) -> None:
        if getattr(self, name) is not None:
            check_number(f"{name} (or None)", getattr(self, name), **bounds)

    def _check_band(self) -> None:
        """Filter edges: numbers or None, ordered, the high-pass below the output Nyquist."""
        self._check_optional("l_freq", minimum=0, unit="Hz")
        self._check_optional("h_freq", greater=0, unit="Hz")
        self._check_optional("notch_freq", greater=0, unit="Hz")
        if self.l_freq is not None and self.h_freq is not None:
            check_value(
                "l_freq", self.l_freq, self.l_freq < self.h_freq, f"below h_freq ({self.h_freq})"
            )
        if self.l_freq is not None:
            nyquist = self.sfreq / 2
            check_value(
                "l_freq",
                self.l_freq,
                self.l_freq < nyquist,
                f"below the Nyquist frequency of sfreq={self.sfreq:g} Hz ({nyquist:g} Hz)",
            )

    @property
    def n_times(self) -> int:
        """Samples per window, ``round(window_seconds * sfreq)``."""
        return int(round(self.window_seconds * self.sfreq))

    def to_json(self) -> str:
        """The fields as a JSON string."""
        return json.dumps(self.to_dict(), sort_keys=True)


def find_flat_channels(raw: mne.io.BaseRaw, threshold_uv: float = 0.1) -> list[str]:
    """Names of EEG channels whose peak-to-peak amplitude is below ``threshold_uv``.

    Parameters
    ----------
    raw : mne.io.BaseRaw
        Preloaded recording (volts).
    threshold_uv : float
        Peak-to-peak threshold in µV.

    Returns
    -------
    list of str
    """
    return _flat_channels(raw.get_data(), raw.ch_names, threshold_uv)


def preprocess_raw(
    raw: mne.io.BaseRaw,
    config: PreprocessConfig | None = None,
    *,
    copy: bool = True,
    verbose: bool | str | int | None = None,
) -> mne.io.BaseRaw:
    """Map channels, filter, notch and resample one recording (data stay in volts).

    Parameters
    ----------
    raw : mne.io.BaseRaw
        A recording from :func:`codebrain.data.read_raw`.
    config : PreprocessConfig | None
        Settings (defaults to ``PreprocessConfig()``).
    copy : bool
        Work on a copy (True) or modify ``raw`` in place. With non-finite samples and
        ``on_nonfinite="drop"`` a new object is returned either way.
    verbose : bool | str | int | None
        Passed to MNE.

    Returns
    -------
    mne.io.BaseRaw
        ``config.channels`` in order, filtered, at ``config.sfreq``; annotations kept (plus
        :data:`NONFINITE_ANNOTATION` stretches with ``on_nonfinite="drop"``).

    Raises
    ------
    RecordingError
        Non-finite samples (``on_nonfinite="raise"``, or no finite stretch as long as one
        window), a recording shorter than ``min_duration_seconds``.
    ValueError
        Missing/duplicate channels, flat channels with ``on_flat="raise"``.
    """
    config = config or PreprocessConfig()
    if copy:
        raw = raw.copy()
    if not raw.preload:
        raw.load_data(verbose=verbose)
    try:
        pick_target_channels(
            raw,
            config.channels,
            on_missing=config.on_missing,
            channel_map=config.channel_map,
            verbose=verbose,
        )
    except ValueError as err:
        raise ValueError(f"{_describe(raw)}: {err}") from err
    name = _describe(raw)
    sfreq = float(raw.info["sfreq"])

    if config.min_duration_seconds > 0:
        # Counted at the output rate, as the authors' corpus script does.
        n_out = int(round(raw.n_times * config.sfreq / sfreq))
        if n_out < int(round(config.min_duration_seconds * config.sfreq)):
            raise RecordingError(
                f"{name} is {raw.n_times / sfreq:.1f} s long, shorter than "
                f"min_duration_seconds={config.min_duration_seconds:g} s."
            )

    data = raw.get_data()  # (n_chans, n_times), volts
    finite = np.isfinite(data)
    bad = ~finite.all(axis=0)  # (n_times,)
    if bad.any() and config.on_nonfinite == "raise":
        raise RecordingError(_nonfinite_message(name, raw.ch_names, finite, sfreq))

    flat = _flat_channels(data[:, ~bad], raw.ch_names, config.flat_threshold_uv)
    del data, finite
    if flat and config.on_flat != "ignore":
        msg = f"Flat channels (peak-to-peak < {config.flat_threshold_uv} µV) in {name}: {flat}"
        if config.on_flat == "raise":
            raise ValueError(msg)
        logger.warning(msg)

    if bad.any():
        return _preprocess_finite_stretches(raw, bad, config, name, verbose)
    _filter_and_resample(raw, config, name, verbose)
    return raw


def _flat_channels(data: np.ndarray, names: list[str], threshold_uv: float) -> list[str]:
    """Channels of ``data`` (volts, ``(n_chans, n_times)``) with peak-to-peak below threshold."""
    ptp_uv = np.ptp(data, axis=1) * 1e6 if data.shape[1] else np.zeros(data.shape[0])
    return [n for n, p in zip(names, ptp_uv, strict=True) if p < threshold_uv]


def _nonfinite_message(name: str, ch_names: list[str], finite: np.ndarray, sfreq: float) -> str:
    """One-line description of the non-finite samples of a recording."""
    per_channel = (~finite).sum(axis=1)
    channels = [c for c, k in zip(ch_names, per_channel, strict=True) if k]
    bad_times = np.flatnonzero(~finite.all(axis=0))
    shown = channels[:5] + (["..."] if len(channels) > 5 else [])
    return (
        f"{name} has {int(per_channel.sum())} non-finite sample(s) (NaN/Inf) in "
        f"{len(channels)} channel(s) {shown}, first at {bad_times[0] / sfreq:.2f} s "
        f"({len(bad_times)} of {finite.shape[1]} time points); filtering would spread them over "
        "the whole channel. Repair the file, or pass on_nonfinite='drop' (--on-nonfinite drop) "
        "to drop the windows that overlap them."
    )


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` of every run of True in a 1-D boolean mask."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _preprocess_finite_stretches(
    raw: mne.io.BaseRaw,
    bad: np.ndarray,
    config: PreprocessConfig,
    name: str,
    verbose: bool | str | int | None,
) -> mne.io.BaseRaw:
    """``on_nonfinite="drop"``: process each long-enough finite stretch on its own.

    The output has the length and time line MNE's resampling of the whole recording would
    give; each stretch lands at its own (rounded) start, everything else is zero and covered
    by a :data:`NONFINITE_ANNOTATION` annotation.
    """
    sfreq = float(raw.info["sfreq"])
    margin = int(np.ceil(max(NONFINITE_MARGIN_S, 1.0 / config.sfreq) * sfreq))
    cum = np.concatenate([[0], np.cumsum(bad)])
    idx = np.arange(bad.size)
    hi = np.minimum(idx + margin + 1, bad.size)
    dilated = cum[hi] - cum[np.maximum(idx - margin, 0)] > 0  # a bad sample within the margin
    min_len = int(np.ceil(config.window_seconds * sfreq))
    stretches = [(a, b) for a, b in _runs(~dilated) if b - a >= min_len]
    n_bad = int(bad.sum())
    if not stretches:
        raise RecordingError(
            f"{name}: {n_bad} of {raw.n_times} time points are non-finite (NaN/Inf) and no "
            f"finite stretch is {config.window_seconds:g} s long (one window); nothing to keep."
        )
    ratio = 1.0 if np.isclose(sfreq, config.sfreq) else config.sfreq / sfreq
    n_out = int(round(raw.n_times * ratio))
    data = raw.get_data()  # (n_chans, n_times)
    out = np.zeros((len(raw.ch_names), n_out))
    keep = np.zeros(n_out, dtype=bool)
    info = None
    for a, b in stretches:
        piece = mne.io.RawArray(
            data[:, a:b], raw.info.copy(), first_samp=raw.first_samp + a, verbose=verbose
        )
        _filter_and_resample(piece, config, f"{name} [{a / sfreq:.1f}-{b / sfreq:.1f} s]", verbose)
        o = int(round(a * ratio))
        length = min(piece.n_times, n_out - o)
        out[:, o : o + length] = piece.get_data()[:, :length]
        keep[o : o + length] = True
        info = piece.info
    del data
    first_samp = int(round(raw.first_samp * ratio))
    new = mne.io.RawArray(out, info.copy(), first_samp=first_samp, verbose=verbose)
    orig_time = raw.annotations.orig_time
    offset = first_samp / config.sfreq if orig_time is not None else 0.0
    holes = _runs(~keep)
    marks = mne.Annotations(
        [offset + a / config.sfreq for a, _ in holes],
        [(b - a) / config.sfreq for a, b in holes],
        [NONFINITE_ANNOTATION] * len(holes),
        orig_time=orig_time,
    )
    new.set_annotations(raw.annotations + marks, verbose=verbose)
    kept_s = float(keep.sum()) / config.sfreq
    logger.warning(
        "%s: %d non-finite time point(s); kept %d finite stretch(es), %.1f of %.1f s (marked "
        "%s around the rest, windows overlapping it are dropped).",
        name,
        n_bad,
        len(stretches),
        kept_s,
        n_out / config.sfreq,
        NONFINITE_ANNOTATION,
    )
    return new


def _filter_and_resample(
    raw: mne.io.BaseRaw,
    config: PreprocessConfig,
    name: str,
    verbose: bool | str | int | None,
) -> None:
    """Band-pass, notch and resample ``raw`` in place, in the order the config asks for."""
    if config.resample_first:
        _resample(raw, config, verbose)
    sfreq = float(raw.info["sfreq"])
    nyquist = sfreq / 2.0
    h_freq = config.h_freq
    if h_freq is not None and h_freq >= nyquist:
        logger.info(
            "h_freq %.1f Hz is at or above Nyquist (%.1f Hz) of %s: low-pass skipped.",
            h_freq,
            nyquist,
            name,
        )
        h_freq = None
    if config.l_freq is not None or h_freq is not None:
        raw.filter(config.l_freq, h_freq, picks="eeg", verbose=verbose)
    if config.notch_freq is not None:
        freqs = np.arange(config.notch_freq, nyquist, config.notch_freq)
        # Keep a margin to Nyquist so the notch's transition band fits.
        freqs = freqs[freqs + config.notch_freq / 20.0 < nyquist]
        if freqs.size:
            raw.notch_filter(freqs, picks="eeg", verbose=verbose)
        else:
            logger.info("No notch frequency below Nyquist (%.1f Hz): notch skipped.", nyquist)
    if not config.resample_first:
        _resample(raw, config, verbose)


def _resample(
    raw: mne.io.BaseRaw, config: PreprocessConfig, verbose: bool | str | int | None
) -> None:
    if not np.isclose(float(raw.info["sfreq"]), config.sfreq):
        raw.resample(config.sfreq, verbose=verbose)


def _describe(raw: mne.io.BaseRaw) -> str:
    """Short description of a recording for messages (its file name when known)."""
    names = getattr(raw, "filenames", None) or ()
    names = [str(n) for n in names if n is not None]
    return names[0] if names else "recording"
