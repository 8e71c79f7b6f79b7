"""NaN/Inf samples and the storage range: found before filtering, never written silently."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import mne
import numpy as np
import pytest

from codebrain.cli import main
from codebrain.data import (
    DEFAULT_CHANNELS,
    NONFINITE_ANNOTATION,
    CorpusDataset,
    CorpusError,
    PreprocessConfig,
    RecordingError,
    build_corpus,
    load_windows,
    load_windows_npz,
    preprocess_raw,
    windows_from_raw,
)

NAMES = [f"EEG {c}-REF" for c in DEFAULT_CHANNELS]
CONFIG = PreprocessConfig(window_seconds=10.0)
DROP = PreprocessConfig(window_seconds=10.0, on_nonfinite="drop")


def _data(sfreq: float = 200.0, seconds: float = 120.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 10e-6 * rng.standard_normal((len(NAMES), int(seconds * sfreq)))  # volts


def _raw(data: np.ndarray, sfreq: float = 200.0) -> mne.io.RawArray:
    info = mne.create_info(NAMES, sfreq, ch_types="eeg")
    return mne.io.RawArray(data, info, verbose=False)


def _fif(path: Path, data: np.ndarray, sfreq: float = 200.0) -> Path:
    _raw(data, sfreq).save(path, verbose=False)
    return path


def _with_gap(data: np.ndarray, sfreq: float = 200.0) -> np.ndarray:
    data = data.copy()
    data[3, int(50 * sfreq) : int(52 * sfreq)] = np.nan  # a 2 s NaN gap on F4
    return data


@pytest.mark.parametrize("where", ["nan-gap", "one-inf", "all-nan"])
def test_nonfinite_samples_raise_before_filtering(where: str) -> None:
    data = _data()
    if where == "nan-gap":
        data = _with_gap(data)
    elif where == "one-inf":
        data[0, 12345] = np.inf
    else:
        data[:] = np.nan
    with pytest.raises(RecordingError, match=r"non-finite sample.*on_nonfinite='drop'"):
        preprocess_raw(_raw(data), CONFIG, verbose="error")
    if where == "all-nan":  # nothing to keep either way
        with pytest.raises(RecordingError, match="no finite stretch"):
            preprocess_raw(_raw(data), DROP, verbose="error")


def test_drop_keeps_finite_windows_exactly(caplog: pytest.LogCaptureFixture) -> None:
    data = _data()
    clean = windows_from_raw(preprocess_raw(_raw(data), CONFIG, verbose="error"), CONFIG)
    with caplog.at_level(logging.WARNING, logger="codebrain"):
        raw = preprocess_raw(_raw(_with_gap(data)), DROP, verbose="error")
    assert "kept 2 finite stretch(es)" in caplog.text
    marks = raw.annotations[raw.annotations.description == NONFINITE_ANNOTATION]
    assert len(marks) == 1
    np.testing.assert_allclose([marks.onset[0], marks.duration[0]], [49.5, 3.0])
    assert np.isfinite(raw.get_data()).all()
    win = windows_from_raw(raw, DROP)
    # The windows at 40 s and 50 s overlap the gap (plus its 0.5 s margins): dropped.
    np.testing.assert_array_equal(win.onsets, [0, 10, 20, 30, 60, 70, 80, 90, 100, 110])
    assert win.n_nonfinite == 2 and np.isfinite(win.data).all()
    # Far from the gap and from the stretch edges the FIR filters see the same samples.
    np.testing.assert_allclose(win.data[1], clean.data[1], atol=1e-5)
    np.testing.assert_allclose(win.data[-3], clean.data[-3], atol=1e-5)


def test_drop_with_resampling_keeps_the_time_line() -> None:
    data = _data(sfreq=250.0)
    data[0, int(75.1 * 250)] = np.inf
    raw = _raw(data, 250.0)
    raw.set_meas_date(1_600_000_000)
    raw.set_annotations(mne.Annotations([5.0], [1.0], ["left"], orig_time=raw.info["meas_date"]))
    out = preprocess_raw(raw, DROP, verbose="error")
    assert out.info["sfreq"] == 200.0 and out.n_times == 24000
    assert sorted(out.annotations.description) == [NONFINITE_ANNOTATION, "left"]
    win = windows_from_raw(out, DROP)
    assert 70.0 not in win.onsets and 60.0 in win.onsets and 80.0 in win.onsets
    assert win.n_nonfinite == 1 and len(win.onsets) == 11
    out.set_annotations(
        out.annotations + mne.Annotations([20.0, 70.0], [1.0, 1.0], ["left", "left"],
                                          orig_time=out.annotations.orig_time)
    )  # fmt: skip
    events = windows_from_raw(out, DROP, mode="events", event_id={"left": 0})
    np.testing.assert_allclose(events.onsets, [5.0, 20.0])  # the one at 70 s overlaps the Inf
    assert events.n_nonfinite == 1


def test_windows_from_raw_refuses_nonfinite_input() -> None:
    data = _data()
    data[2, 100] = np.nan
    with pytest.raises(RecordingError, match="NaN/Inf"):
        windows_from_raw(_raw(data), CONFIG)


def test_load_windows_on_files(tmp_path: Path) -> None:
    bad = _fif(tmp_path / "gap_raw.fif", _with_gap(_data()))
    with pytest.raises(RecordingError, match="gap_raw.fif has 400 non-finite"):
        load_windows(bad, CONFIG, verbose="error")
    ds = load_windows(bad, DROP, verbose="error")
    assert len(ds) == 10 and np.isfinite(ds.data).all()


def test_corpus_never_stores_nonfinite(tmp_path: Path) -> None:
    bad = _fif(tmp_path / "gap_raw.fif", _with_gap(_data()))
    good = _fif(tmp_path / "good_raw.fif", _data(seed=1))
    summary = build_corpus([bad, good], tmp_path / "c", CONFIG)
    assert list(summary.failed) == [str(bad.resolve())]
    assert "non-finite" in summary.failed[str(bad.resolve())]
    summary = build_corpus([bad, good], tmp_path / "d", DROP)
    assert len(summary.processed) == 2
    ds = CorpusDataset(tmp_path / "d", verify_checksums=True)
    assert len(ds) == 12 + 10
    entry = next(e for e in ds.manifest["recordings"] if e["recording_id"] == "gap_raw")
    assert entry["n_nonfinite"] == 2
    assert all(np.isfinite(ds[i].numpy()).all() for i in range(len(ds)))


def test_float16_range_checked_before_casting(tmp_path: Path) -> None:
    t = np.arange(int(60 * 200)) / 200.0
    data = _data(seconds=60.0)
    data[5] += 10.0 * np.sin(2 * np.pi * 10 * t)  # 10 V = 1e7 µV: beyond float16 in µV/100
    loud = _fif(tmp_path / "loud_raw.fif", data)
    with pytest.raises(CorpusError, match="No recording could be added") as err:
        build_corpus([loud], tmp_path / "c", CONFIG)
    assert "float16 range" in str(err.value) and "--on-overflow clip" in str(err.value)
    assert not (tmp_path / "c").exists()  # nothing written
    summary = build_corpus([loud], tmp_path / "clip", CONFIG, on_overflow="clip")
    ds = CorpusDataset(tmp_path / "clip", verify_checksums=True)
    entry = ds.manifest["recordings"][0]
    assert entry["n_clipped"] > 0 and summary.processed
    x = np.stack([ds[i].numpy() for i in range(len(ds))])
    assert np.isfinite(x).all() and np.abs(x).max() == 65504.0
    build_corpus([loud], tmp_path / "f32", CONFIG, dtype="float32")
    x32 = CorpusDataset(tmp_path / "f32")[0].numpy()
    assert np.abs(x32).max() > 9e4
    with pytest.raises(ValueError, match="on_overflow"):
        build_corpus([loud], tmp_path / "x", CONFIG, on_overflow="wrap")  # type: ignore[arg-type]


def test_manifest_of_an_older_config_still_resumes(tmp_path: Path) -> None:
    good = _fif(tmp_path / "good_raw.fif", _data(seed=1))
    out = tmp_path / "c"
    build_corpus([good], out, CONFIG)
    manifest = json.loads((out / "manifest.json").read_text())
    for key in ("on_nonfinite", "resample_first", "trim_seconds", "reject_abs_uv"):
        del manifest["config"][key]  # as written before these fields existed
    (out / "manifest.json").write_text(json.dumps(manifest))
    summary = build_corpus([good], out, CONFIG)
    assert len(summary.skipped_existing) == 1


def test_prepare_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = str(_fif(tmp_path / "gap_raw.fif", _with_gap(_data())))
    npz, corpus = tmp_path / "w.npz", tmp_path / "corpus"
    assert main(["-q", "prepare", bad, "-o", str(npz), "--window-seconds", "10"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "non-finite" in err[0] and "--on-nonfinite drop" in err[0]
    assert main(["-q", "prepare", bad, "--corpus", str(corpus), "--window-seconds", "10"]) == 2
    assert "non-finite" in capsys.readouterr().err
    assert not npz.exists() and not corpus.exists()
    args = ["--window-seconds", "10", "--on-nonfinite", "drop"]
    assert main(["-q", "prepare", bad, "-o", str(npz), *args]) == 0
    assert "10 windows" in capsys.readouterr().out
    assert main(["-q", "prepare", bad, "--corpus", str(corpus), *args]) == 0
    ds, _ = load_windows_npz(npz)
    assert np.isfinite(ds.data).all() and len(CorpusDataset(corpus)) == 10
