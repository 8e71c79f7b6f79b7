"""The built-in synthetic motor-imagery data: reproducible, balanced, learnable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.signal import welch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import LeaveOneGroupOut, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from codebrain.data import (
    SYNTHETIC_CHANNELS,
    PreprocessConfig,
    make_synthetic_recording,
    normalize_channel_name,
    preprocess_raw,
    read_raw,
    windows_from_raw,
    write_synthetic_dataset,
)


def test_reproducible_for_a_seed() -> None:
    a = make_synthetic_recording(2, seed=3, n_trials=4)
    b = make_synthetic_recording(2, seed=3, n_trials=4)
    c = make_synthetic_recording(2, seed=4, n_trials=4)
    np.testing.assert_array_equal(a.get_data(), b.get_data())
    assert list(a.annotations.description) == list(b.annotations.description)
    n = min(a.n_times, c.n_times)
    assert not np.allclose(a.get_data()[:, :n], c.get_data()[:, :n])


def test_recording_contents() -> None:
    raw = make_synthetic_recording(
        1, seed=0, n_trials=12, classes=("left_hand", "right_hand", "feet")
    )
    assert raw.ch_names == list(SYNTHETIC_CHANNELS)
    assert raw.ch_names[0] == "EEG FP1-REF" and "EEG T3-REF" in raw.ch_names
    assert [normalize_channel_name(c) for c in raw.ch_names].count("T3") == 1
    labels, counts = np.unique(raw.annotations.description, return_counts=True)
    assert labels.tolist() == ["feet", "left_hand", "right_hand"] and counts.tolist() == [4, 4, 4]
    assert np.allclose(raw.annotations.duration, 4.0)
    uv = raw.get_data() * 1e6
    assert 5 < np.median(uv.std(axis=1)) < 50  # tens of µV
    fp1 = uv[raw.ch_names.index("EEG FP1-REF")]
    assert np.ptp(fp1) > 100  # blinks on frontal channels
    spectrum = np.abs(np.fft.rfft(uv[0]))
    freqs = np.fft.rfftfreq(uv.shape[1], 1 / raw.info["sfreq"])
    assert spectrum[np.argmin(np.abs(freqs - 60))] > 5 * np.median(
        spectrum[(freqs > 55) & (freqs < 65)]
    )


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="multiple"):
        make_synthetic_recording(1, n_trials=5)
    with pytest.raises(ValueError, match="subset"):
        make_synthetic_recording(1, classes=("tongue",))


def test_write_dataset(tmp_path: Path) -> None:
    paths = write_synthetic_dataset(tmp_path, n_subjects=2, n_trials=4, seed=0, mains_freq=50.0)
    assert [p.name for p in paths] == [
        "sub-01_task-motorimagery_eeg.edf",
        "sub-02_task-motorimagery_eeg.edf",
    ]
    raw = read_raw(paths[1], verbose="error")
    direct = make_synthetic_recording(2, seed=0, n_trials=4, mains_freq=50.0)
    np.testing.assert_allclose(raw.get_data(), direct.get_data(), atol=0.1e-6)  # EDF quantisation
    assert list(raw.annotations.description) == list(direct.annotations.description)
    assert not list(tmp_path.glob(".*.tmp"))


def _band_power_features(
    n_subjects: int, n_trials: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    config = PreprocessConfig(window_seconds=3.5)
    feats, labels, groups = [], [], []
    for subject in range(1, n_subjects + 1):
        raw = preprocess_raw(
            make_synthetic_recording(subject, seed=0, n_trials=n_trials), config, verbose="error"
        )
        win = windows_from_raw(
            raw, config, mode="events", event_id={"left_hand": 0, "right_hand": 1}, tmin=0.5
        )
        freqs, psd = welch(win.data[:, [4, 5]], fs=200.0, nperseg=200, axis=-1)  # C3, C4
        mu = np.log(psd[..., (freqs >= 8) & (freqs <= 13)].mean(-1))
        beta = np.log(psd[..., (freqs >= 18) & (freqs <= 26)].mean(-1))
        feats.append(np.concatenate([mu, beta], axis=1))
        labels.append(win.labels)
        groups += [subject] * len(win.labels)
    return np.concatenate(feats), np.concatenate(labels), np.asarray(groups)


def test_band_power_baseline_beats_chance_across_subjects() -> None:
    X, y, groups = _band_power_features(n_subjects=4, n_trials=20)
    scores = cross_val_score(
        make_pipeline(StandardScaler(), LogisticRegression()),
        X,
        y,
        groups=groups,
        cv=LeaveOneGroupOut(),
        scoring="balanced_accuracy",
    )
    assert scores.mean() >= 0.8, scores
