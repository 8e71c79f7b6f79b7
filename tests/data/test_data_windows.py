"""Fixed-length and event-locked windows, WindowDataset, load_windows."""

from __future__ import annotations

from pathlib import Path

import mne
import numpy as np
import pytest
import torch

from codebrain.data import (
    DEFAULT_CHANNELS,
    NpyWindows,
    PreprocessConfig,
    WindowDataset,
    event_windows,
    fixed_length_windows,
    load_windows,
    load_windows_npz,
    make_event_id,
    save_windows_npz,
    windows_from_raw,
)


def test_fixed_length_windows_and_stride() -> None:
    data = np.arange(2 * 1000, dtype=np.float32).reshape(2, 1000)  # (n_chans, n_times)
    windows, onsets = fixed_length_windows(data, 100.0, 3.0)
    assert windows.shape == (3, 2, 300)
    np.testing.assert_allclose(onsets, [0.0, 3.0, 6.0])
    np.testing.assert_array_equal(windows[1], data[:, 300:600])
    windows, onsets = fixed_length_windows(data, 100.0, 3.0, stride_seconds=1.0)
    assert windows.shape == (8, 2, 300)
    np.testing.assert_array_equal(windows[7], data[:, 700:1000])
    empty, _ = fixed_length_windows(data, 100.0, 20.0)
    assert empty.shape == (0, 2, 2000)


def test_event_windows() -> None:
    data = np.arange(3000, dtype=np.float32)[None]  # (1, n_times) at 100 Hz
    annotations = mne.Annotations([1.0, 5.0, 29.0, 10.0], 1.0, ["a", "b", "a", "BAD_x"])
    event_id = make_event_id(annotations.description)
    assert event_id == {"a": 0, "b": 1}
    windows, labels, onsets = event_windows(
        data, 100.0, annotations, event_id, tmin=-0.5, window_seconds=2.0
    )
    assert windows.shape == (2, 1, 200)  # the window at 28 s runs past the end
    assert labels.dtype == np.int64 and labels.tolist() == [0, 1]
    np.testing.assert_allclose(onsets, [0.5, 4.5])
    assert windows[0, 0, 0] == 50
    _, reg, _ = event_windows(data, 100.0, annotations, {"a": 0.5}, window_seconds=1.0)
    assert reg.dtype == np.float32


def test_window_dataset_items_and_subset() -> None:
    data = np.random.default_rng(0).standard_normal((4, 3, 10))
    ds = WindowDataset(
        data, np.array([0, 1, 0, 1]), ["r1", "r1", "r2", "r2"], ["s1", "s1", "s2", "s2"],
        np.array([0.0, 1.0, 0.0, 1.0]), ["C3", "C4", "CZ"], 200.0, ["left", "right"],
    )  # fmt: skip
    x, y = ds[1]
    assert x.dtype == torch.float32 and x.shape == (3, 10)
    assert y.dtype == torch.long and int(y) == 1
    held_out = ds.subset(ds.subject_ids == "s2")
    assert len(held_out) == 2 and set(held_out.recording_ids) == {"r2"}
    reg = WindowDataset(
        data, np.array([0.5, 1.5, 2.5, 3.5], dtype=np.float32), ["r"] * 4, ["s"] * 4,
        np.zeros(4), ["C3", "C4", "CZ"], 200.0,
    )  # fmt: skip
    assert reg[0][1].dtype == torch.float32
    with pytest.raises(ValueError, match="labels must have shape"):
        WindowDataset(data, np.zeros(3), ["r"] * 4, ["s"] * 4, np.zeros(4), ["a", "b", "c"], 1.0)
    loader = torch.utils.data.DataLoader(ds, batch_size=2)
    xb, yb = next(iter(loader))
    assert xb.shape == (2, 3, 10) and yb.dtype == torch.long


def test_load_windows_event_locked(synthetic_edfs: list[Path]) -> None:
    config = PreprocessConfig(window_seconds=4.0)
    ds = load_windows(synthetic_edfs, config, mode="events", verbose="error")
    assert len(ds) == 3 * 8
    assert ds.classes == ["left_hand", "right_hand"]
    assert ds.ch_names == list(DEFAULT_CHANNELS) and ds.n_times == 800
    assert sorted(set(ds.subject_ids)) == ["01", "02", "03"]
    assert np.bincount(ds.labels).tolist() == [12, 12]
    x, y = ds[0]
    assert x.shape == (19, 800) and y.dtype == torch.long
    assert 0.02 < float(x.std()) < 1.0  # tens of µV in units of 100 µV


def test_load_windows_fixed_labelled_by_cover(synthetic_edfs: list[Path]) -> None:
    config = PreprocessConfig(window_seconds=1.0)
    ds = load_windows(
        synthetic_edfs[:1],
        config,
        event_id={"left_hand": 0, "right_hand": 1},
        verbose="error",
    )
    # 8 trials x 4 s imagery → about 4 one-second windows per trial
    assert 24 <= len(ds) <= 32
    unlabelled = load_windows(
        synthetic_edfs[:1], PreprocessConfig(window_seconds=10.0), verbose="error"
    )
    assert (unlabelled.labels == -1).all() and unlabelled.classes is None
    targets = {"sub-01_task-motorimagery_eeg": 1}
    tagged = load_windows(
        synthetic_edfs[:1], PreprocessConfig(window_seconds=10.0), targets=targets, verbose="error"
    )
    assert (tagged.labels == 1).all()


def test_load_windows_skips_bad_files(tmp_path: Path, synthetic_edfs: list[Path]) -> None:
    bad = tmp_path / "bad.edf"
    bad.write_bytes(b"junk" * 100)
    config = PreprocessConfig(window_seconds=10.0)
    with pytest.raises(ValueError, match="bad.edf"):
        load_windows([bad, synthetic_edfs[0]], config, verbose="error")
    ds = load_windows([bad, synthetic_edfs[0]], config, on_error="skip", verbose="error")
    assert set(ds.recording_ids) == {"sub-01_task-motorimagery_eeg"}


def test_events_mode_needs_event_id(raw_factory) -> None:
    raw = raw_factory(list(DEFAULT_CHANNELS), seconds=5)
    with pytest.raises(ValueError, match="event_id"):
        windows_from_raw(raw, PreprocessConfig(window_seconds=1.0), mode="events")


def test_auto_classes_across_recordings(tmp_path: Path) -> None:
    from codebrain.data import make_synthetic_recording

    paths = []
    for subject, classes in [(1, ("rest", "feet")), (2, ("left_hand", "feet"))]:
        raw = make_synthetic_recording(subject, n_trials=4, classes=classes)
        paths.append(tmp_path / f"sub-{subject}_raw.fif")
        raw.save(paths[-1], verbose="error")
    ds = load_windows(paths, PreprocessConfig(window_seconds=4.0), mode="events", verbose="error")
    assert ds.classes == ["feet", "left_hand", "rest"]
    for rec, names in [("sub-1_raw", {"rest", "feet"}), ("sub-2_raw", {"left_hand", "feet"})]:
        got = {ds.classes[i] for i in ds.labels[ds.recording_ids == rec]}
        assert got == names


def test_windows_npz_round_trip_and_errors(tmp_path: Path) -> None:
    data = np.random.default_rng(0).standard_normal((4, 3, 10)).astype(np.float32)
    ds = WindowDataset(
        data, np.array([0, 1, 0, 1]), ["r1", "r1", "r2", "r2"], ["s1", "s1", "s2", "s2"],
        np.array([0.0, 1.0, 0.0, 1.0]), ["C3", "C4", "CZ"], 200.0, ["left", "right"],
    )  # fmt: skip
    cfg = PreprocessConfig(l_freq=4.0, h_freq=40.0)
    path = save_windows_npz(ds, tmp_path / "w.npz", cfg)
    back, pre = load_windows_npz(path)
    assert np.array_equal(back.data, ds.data) and np.array_equal(back.labels, ds.labels)
    assert list(back.subject_ids) == list(ds.subject_ids) and back.classes == ["left", "right"]
    assert back.ch_names == ["C3", "C4", "CZ"] and back.sfreq == 200.0
    assert PreprocessConfig.from_dict(pre) == cfg
    with pytest.raises(FileNotFoundError, match="not found"):
        load_windows_npz(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", data=data)
    with pytest.raises(ValueError, match="lacks .*labels"):
        load_windows_npz(tmp_path / "other.npz")


def test_npy_windows_concatenates_memory_mapped_files(tmp_path: Path) -> None:
    a = np.arange(2 * 3 * 5, dtype=np.float64).reshape(2, 3, 5)
    b = -np.arange(3 * 3 * 5, dtype=np.float16).reshape(3, 3, 5)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    ds = NpyWindows([tmp_path / "a.npy", tmp_path / "b.npy"])
    assert len(ds) == 5 and (ds.n_chans, ds.n_times) == (3, 5)
    assert ds[1].dtype == torch.float32 and torch.equal(ds[1], torch.as_tensor(a[1]).float())
    assert torch.equal(ds[-1], torch.as_tensor(b[2]).float())
    with pytest.raises(IndexError):
        ds[5]
    np.save(tmp_path / "c.npy", np.zeros((1, 4, 5)))
    with pytest.raises(ValueError, match="disagree"):
        NpyWindows([tmp_path / "a.npy", tmp_path / "c.npy"])
    with pytest.raises(ValueError, match="at least one"):
        NpyWindows([])
