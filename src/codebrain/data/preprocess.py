"""Signal preprocessing to the released model's conventions (DESIGN §4).

Band-pass 0.3-75 Hz, a notch at the mains frequency and its harmonics below Nyquist,
resampling to 200 Hz (all with MNE: ``raw.filter``, ``raw.notch_filter``, ``raw.resample``),
then scaling from volts to units of 100 µV (µV / 100) when windows are cut. Flat channels are
detected and reported.

Shape legend: ``n_chans`` channels, ``n_times`` samples.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Literal

import mne
import numpy as np

from codebrain.data.montage import DEFAULT_CHANNELS, normalize_channel_name, pick_target_channels
from codebrain.utils.check import check_option
from codebrain.utils.config import JSONConfig

__all__ = ["PreprocessConfig", "preprocess_raw", "find_flat_channels", "VOLTS_TO_MODEL_UNITS"]

logger = logging.getLogger(__name__)

#: Volts → units of 100 µV: x[V] * 1e6 [µV/V] / 100.
VOLTS_TO_MODEL_UNITS: float = 1e4


@dataclass
class PreprocessConfig(JSONConfig):
    """Everything that turns a recording into model-ready windows (JSON-able fields only).

    Parameters
    ----------
    channels : tuple of str
        Target montage, in order (default: the released model's 19 channels).
    on_missing : {"raise", "interpolate"}
        What to do with a target channel absent from a recording.
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
    """

    channels: tuple[str, ...] = DEFAULT_CHANNELS
    on_missing: Literal["raise", "interpolate"] = "raise"
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

    def __post_init__(self) -> None:
        self.channels = tuple(normalize_channel_name(c) for c in self.channels)
        check_option("on_missing", self.on_missing, ("raise", "interpolate"))
        check_option("on_flat", self.on_flat, ("warn", "raise", "ignore"))
        for name in ("sfreq", "scale", "window_seconds"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}.")
        if self.stride_seconds is not None and not self.stride_seconds > 0:
            raise ValueError(f"stride_seconds must be > 0 or None, got {self.stride_seconds!r}.")
        if self.l_freq is not None and self.h_freq is not None and self.l_freq >= self.h_freq:
            raise ValueError(f"l_freq ({self.l_freq}) must be below h_freq ({self.h_freq}).")
        if self.reject_peak_to_peak_uv is not None and not self.reject_peak_to_peak_uv > 0:
            raise ValueError(
                f"reject_peak_to_peak_uv must be > 0 µV or None, got {self.reject_peak_to_peak_uv!r}."
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
    data = raw.get_data()  # (n_chans, n_times), volts
    ptp_uv = np.ptp(data, axis=1) * 1e6 if data.shape[1] else np.zeros(data.shape[0])
    return [name for name, p in zip(raw.ch_names, ptp_uv, strict=True) if p < threshold_uv]


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
        Work on a copy (True) or modify ``raw`` in place.
    verbose : bool | str | int | None
        Passed to MNE.

    Returns
    -------
    mne.io.BaseRaw
        ``config.channels`` in order, filtered, at ``config.sfreq``; annotations kept.

    Raises
    ------
    ValueError
        Missing/duplicate channels, flat channels with ``on_flat="raise"``, a recording too
        short for one window.
    """
    config = config or PreprocessConfig()
    if copy:
        raw = raw.copy()
    if not raw.preload:
        raw.load_data(verbose=verbose)
    pick_target_channels(raw, config.channels, on_missing=config.on_missing, verbose=verbose)

    flat = find_flat_channels(raw, config.flat_threshold_uv)
    if flat and config.on_flat != "ignore":
        msg = (
            f"Flat channels (peak-to-peak < {config.flat_threshold_uv} µV) in "
            f"{_describe(raw)}: {flat}"
        )
        if config.on_flat == "raise":
            raise ValueError(msg)
        logger.warning(msg)

    sfreq = float(raw.info["sfreq"])
    nyquist = sfreq / 2.0
    h_freq = config.h_freq
    if h_freq is not None and h_freq >= nyquist:
        logger.info(
            "h_freq %.1f Hz is at or above Nyquist (%.1f Hz) of %s: low-pass skipped.",
            h_freq,
            nyquist,
            _describe(raw),
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
    if not np.isclose(sfreq, config.sfreq):
        raw.resample(config.sfreq, verbose=verbose)
    return raw


def _describe(raw: mne.io.BaseRaw) -> str:
    """Short description of a recording for messages (its file name when known)."""
    names = getattr(raw, "filenames", None) or ()
    names = [str(n) for n in names if n is not None]
    return names[0] if names else "recording"
