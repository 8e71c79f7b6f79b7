"""Filtering, notch, resampling, scaling, flat channels and amplitude rejection."""

from __future__ import annotations

import json
import logging

import mne
import numpy as np
import pytest

from codebrain.data import (
    DEFAULT_CHANNELS,
    PreprocessConfig,
    find_flat_channels,
    preprocess_raw,
    windows_from_raw,
)


def _sines(freqs_amps: list[tuple[float, float]], sfreq: float, seconds: float) -> np.ndarray:
    t = np.arange(int(sfreq * seconds)) / sfreq
    return sum(a * np.sin(2 * np.pi * f * t) for f, a in freqs_amps)


def _raw_from_signal(signal: np.ndarray, sfreq: float) -> mne.io.RawArray:
    data = np.tile(signal, (len(DEFAULT_CHANNELS), 1))
    data += 1e-6 * np.random.default_rng(0).standard_normal(data.shape)
    info = mne.create_info([f"EEG {c}-REF" for c in DEFAULT_CHANNELS], sfreq, ch_types="eeg")
    return mne.io.RawArray(data, info, verbose=False)


def test_config_json_roundtrip() -> None:
    config = PreprocessConfig(notch_freq=50.0, channels=("Fp1", "T7"), reject_peak_to_peak_uv=300)
    assert config.channels == ("FP1", "T3")  # normalised
    d = json.loads(config.to_json())
    assert PreprocessConfig.from_dict(d) == config
    assert PreprocessConfig().n_times == 6000


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sfreq": 0}, "sfreq must be a finite number > 0"),
        ({"l_freq": 40.0, "h_freq": 30.0}, "l_freq"),
        ({"on_flat": "ignore-it"}, "on_flat"),
        ({"stride_seconds": -1.0}, "stride_seconds"),
        ({"reject_peak_to_peak_uv": 0.0}, "reject_peak_to_peak_uv"),
    ],
)
def test_config_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PreprocessConfig(**kwargs)


INF, NAN = float("inf"), float("nan")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sfreq": -200}, ValueError, r"^sfreq must be a finite number > 0 and <= 100000 \(Hz\)"),
        ({"sfreq": 1e9}, ValueError, r"^sfreq must be .*<= 100000 \(Hz\), got 1000000000.0\.$"),
        ({"sfreq": NAN}, ValueError, "sfreq must be a finite number"),
        ({"sfreq": "200"}, TypeError, r"^sfreq must be a number, got str '200'\.$"),
        ({"sfreq": True}, TypeError, "sfreq must be a number, got bool"),
        ({"window_seconds": INF}, ValueError, r"^window_seconds must be a finite number > 0 \(s\)"),
        ({"window_seconds": 0}, ValueError, "window_seconds must be a finite number > 0"),
        (
            {"window_seconds": 1e6},
            ValueError,
            "window_seconds must be between 1 and 16777216 samples",
        ),
        ({"window_seconds": 1e-4}, ValueError, "window_seconds must be between 1 and"),
        ({"stride_seconds": INF}, ValueError, r"stride_seconds \(or None\) must be a finite"),
        ({"stride_seconds": "1"}, TypeError, "stride_seconds"),
        ({"notch_freq": 0}, ValueError, r"^notch_freq \(or None\) must be a finite number > 0"),
        ({"notch_freq": -50}, ValueError, "notch_freq"),
        ({"notch_freq": INF}, ValueError, "notch_freq"),
        ({"l_freq": -0.5}, ValueError, r"^l_freq \(or None\) must be a finite number >= 0 \(Hz\)"),
        ({"l_freq": 40.0, "h_freq": 40.0}, ValueError, r"^l_freq must be below h_freq \(40.0\)"),
        ({"l_freq": 120.0, "h_freq": None}, ValueError, "l_freq must be below the Nyquist"),
        ({"h_freq": 0}, ValueError, r"^h_freq \(or None\) must be a finite number > 0"),
        ({"h_freq": NAN}, ValueError, "h_freq"),
        ({"scale": 0}, ValueError, r"^scale must be a finite number > 0"),
        ({"scale": INF}, ValueError, "scale"),
        ({"trim_seconds": -1}, ValueError, r"^trim_seconds must be a finite number >= 0"),
        ({"min_duration_seconds": INF}, ValueError, "min_duration_seconds"),
        ({"flat_threshold_uv": -0.1}, ValueError, "flat_threshold_uv must be a finite number >= 0"),
        (
            {"reject_abs_uv": 0},
            ValueError,
            r"^reject_abs_uv \(or None\) must be a finite number > 0 \(µV\)",
        ),
        ({"reject_peak_to_peak_uv": INF}, ValueError, "reject_peak_to_peak_uv"),
        ({"resample_first": "yes"}, TypeError, r"^resample_first must be a bool, got str 'yes'\.$"),
        (
            {"channels": "Fp1,Fp2"},
            TypeError,
            "channels must be a sequence of channel names, got str",
        ),
        (
            {"channels": ("Fp1", 3)},
            TypeError,
            r"^channels\[1\] must be a channel name \(str\), got int",
        ),
        ({"channels": ()}, ValueError, "channels must be at least one channel"),
        (
            {"channels": ("Fp1", "FP1")},
            ValueError,
            r"channels must be distinct names \(\['FP1'\] repeat",
        ),
        (
            {"on_missing": "zeros"},
            ValueError,
            r"^on_missing must be one of \('raise', 'interpolate'\)",
        ),
        ({"on_nonfinite": "repair"}, ValueError, "on_nonfinite must be one of"),
    ],
)
def test_every_field_is_checked_at_construction(kwargs: dict, error: type, match: str) -> None:
    """One line naming the field and what was expected, TypeError or ValueError (issue 14)."""
    with pytest.raises(error, match=match) as info:
        PreprocessConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_edge_values_that_are_allowed() -> None:
    assert PreprocessConfig(l_freq=0, h_freq=None, notch_freq=None).l_freq == 0  # 0: no high-pass
    assert PreprocessConfig(sfreq=100_000, window_seconds=1.0).n_times == 100_000
    assert PreprocessConfig(h_freq=150.0).h_freq == 150.0  # above Nyquist: skipped, logged
    assert PreprocessConfig(channels=["fp1", "fp2"]).channels == ("FP1", "FP2")
    assert PreprocessConfig(sfreq=256, trim_seconds=0, flat_threshold_uv=0).sfreq == 256


def test_from_dict_unknown_field() -> None:
    with pytest.raises(ValueError, match="Unknown PreprocessConfig fields"):
        PreprocessConfig.from_dict({"window": 3})


def test_resample_filter_notch_scale() -> None:
    sfreq = 512.0  # not the model rate: exercises resampling
    signal = _sines([(10.0, 50e-6), (60.0, 20e-6), (120.0, 20e-6), (0.05, 100e-6)], sfreq, 20)
    raw = preprocess_raw(_raw_from_signal(signal, sfreq), verbose="error")
    assert raw.info["sfreq"] == 200.0
    assert raw.ch_names == list(DEFAULT_CHANNELS)
    assert raw.n_times == 4000
    win = windows_from_raw(raw, PreprocessConfig(window_seconds=10.0))
    assert win.data.shape == (2, 19, 2000) and win.data.dtype == np.float32
    x = win.data[0, 4, 500:1500]  # C3, away from the edges, model units (µV / 100)
    spectrum = np.abs(np.fft.rfft(x)) / len(x) * 2
    freqs = np.fft.rfftfreq(len(x), 1 / 200)
    amp = dict(zip(freqs, spectrum, strict=True))
    assert amp[10.0] == pytest.approx(0.5, rel=0.05)  # 50 µV → 0.5
    assert amp[60.0] < 0.01  # notched
    assert np.abs(x.mean()) < 0.05  # drift removed by the high-pass


def test_notch_disabled_and_low_rate(caplog: pytest.LogCaptureFixture) -> None:
    sfreq = 128.0  # Nyquist 64 Hz: low-pass at 75 Hz skipped, notch at 60 Hz kept
    signal = _sines([(10.0, 30e-6), (60.0, 20e-6)], sfreq, 10)
    config = PreprocessConfig(notch_freq=None, window_seconds=5.0)
    with caplog.at_level(logging.INFO, logger="codebrain.data.preprocess"):
        raw = preprocess_raw(_raw_from_signal(signal, sfreq), config, verbose="error")
    assert "low-pass skipped" in caplog.text
    x = raw.get_data(picks="C3")[0, 200:800] * 1e6
    amp = np.abs(np.fft.rfft(x)) / len(x) * 2
    assert amp[int(60 * len(x) / 200)] > 10  # 60 Hz still there without a notch
    notched = preprocess_raw(
        _raw_from_signal(signal, sfreq), PreprocessConfig(window_seconds=5.0), verbose="error"
    )
    y = notched.get_data(picks="C3")[0, 200:800] * 1e6
    amp = np.abs(np.fft.rfft(y)) / len(y) * 2
    assert amp[int(60 * len(y) / 200)] < 2


def test_flat_channels(raw_factory, caplog: pytest.LogCaptureFixture) -> None:
    raw = raw_factory([f"EEG {c}-REF" for c in DEFAULT_CHANNELS], seconds=10)
    raw._data[3] = 0.0
    assert find_flat_channels(raw) == ["EEG F4-REF"]
    with caplog.at_level(logging.WARNING, logger="codebrain.data.preprocess"):
        preprocess_raw(raw, PreprocessConfig(window_seconds=5.0), verbose="error")
    assert "Flat channels" in caplog.text and "F4" in caplog.text
    with pytest.raises(ValueError, match=r"Flat channels.*\['F4'\]"):
        preprocess_raw(raw, PreprocessConfig(on_flat="raise"), verbose="error")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="codebrain.data.preprocess"):
        preprocess_raw(raw, PreprocessConfig(on_flat="ignore"), verbose="error")
    assert "Flat" not in caplog.text


def test_amplitude_rejection(raw_factory) -> None:
    raw = raw_factory([f"EEG {c}-REF" for c in DEFAULT_CHANNELS], seconds=30)
    raw._data[5, 2200:2300] += 800e-6  # a large artefact in the second 10 s window
    config = PreprocessConfig(window_seconds=10.0, reject_peak_to_peak_uv=400.0, l_freq=None)
    raw = preprocess_raw(raw, config, verbose="error")
    win = windows_from_raw(raw, config)
    assert win.n_rejected == 1
    np.testing.assert_allclose(win.onsets, [0.0, 20.0])


def test_copy_leaves_input(raw_factory) -> None:
    raw = raw_factory([f"EEG {c}-REF" for c in DEFAULT_CHANNELS], seconds=5)
    before = raw.get_data().copy()
    preprocess_raw(raw, PreprocessConfig(window_seconds=5.0), verbose="error")
    np.testing.assert_array_equal(raw.get_data(), before)
    assert raw.ch_names[0] == "EEG FP1-REF"
