"""Reading EEG files (EDF+, FIF, BrainVision, BIDS), errors on bad files, label tables."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import mne
import numpy as np
import pytest
import torch

from codebrain.data import (
    PreprocessConfig,
    RecordingError,
    list_recordings,
    load_windows,
    read_label_table,
    read_raw,
    recording_id,
    subject_id,
)

HAS_PYBV = importlib.util.find_spec("pybv") is not None


def _write_brainvision(path: Path, raw: mne.io.BaseRaw) -> Path:
    """Write ``raw`` as BrainVision (float32, µV) by hand; ``mne.export`` needs pybv."""
    data = raw.get_data() * 1e6  # (n_chans, n_times), µV
    eeg = path.with_suffix(".eeg")
    eeg.write_bytes(data.T.astype("<f4").tobytes())  # multiplexed
    channels = "\n".join(f"Ch{i + 1}={name},,1,µV" for i, name in enumerate(raw.ch_names))
    path.write_text(
        "Brain Vision Data Exchange Header File Version 1.0\n"
        "[Common Infos]\nCodepage=UTF-8\n"
        f"DataFile={eeg.name}\nMarkerFile={path.with_suffix('.vmrk').name}\n"
        "DataFormat=BINARY\nDataOrientation=MULTIPLEXED\n"
        f"NumberOfChannels={len(raw.ch_names)}\n"
        f"SamplingInterval={1e6 / raw.info['sfreq']:g}\n"
        "[Binary Infos]\nBinaryFormat=IEEE_FLOAT_32\n"
        f"[Channel Infos]\n{channels}\n",
        encoding="utf-8",
    )
    markers = ["Mk1=New Segment,,1,1,0"]
    for i, (onset, desc) in enumerate(
        zip(raw.annotations.onset, raw.annotations.description, strict=True), start=2
    ):
        markers.append(f"Mk{i}=Stimulus,{desc},{int(round(onset * raw.info['sfreq'])) + 1},1,0")
    path.with_suffix(".vmrk").write_text(
        "Brain Vision Data Exchange Marker File, Version 1.0\n[Common Infos]\nCodepage=UTF-8\n"
        f"DataFile={eeg.name}\n[Marker Infos]\n" + "\n".join(markers) + "\n",
        encoding="utf-8",
    )
    return path


def test_read_synthetic_edf(synthetic_edfs: list[Path]) -> None:
    raw = read_raw(synthetic_edfs[0], verbose="error")
    assert raw.ch_names[0] == "EEG FP1-REF"
    assert raw.info["sfreq"] == 250.0
    assert set(raw.annotations.description) == {"left_hand", "right_hand"}
    assert 5e-6 < raw.get_data().std() < 50e-6  # tens of µV, in volts


def test_fif_roundtrip(tmp_path: Path, raw_factory) -> None:
    raw = raw_factory(["Fp1", "Cz"], seconds=3)
    path = tmp_path / "rec_raw.fif"
    raw.save(path, verbose="error")
    back = read_raw(path, verbose="error")
    np.testing.assert_allclose(back.get_data(), raw.get_data(), rtol=1e-6)


def test_brainvision(tmp_path: Path, raw_factory) -> None:
    raw = raw_factory(["Fp1", "Cz", "O2"], sfreq=500.0, seconds=4)
    raw.set_annotations(mne.Annotations([1.0, 2.0], [0.0, 0.0], ["S  1", "S  2"]))
    if HAS_PYBV:
        path = tmp_path / "rec.vhdr"
        mne.export.export_raw(path, raw, fmt="brainvision", verbose="error")
    else:
        path = _write_brainvision(tmp_path / "rec.vhdr", raw)
    back = read_raw(path, verbose="error")
    assert back.ch_names == ["Fp1", "Cz", "O2"]
    np.testing.assert_allclose(back.get_data(), raw.get_data(), atol=1e-9)
    assert "Stimulus/S  2" in set(back.annotations.description)


def test_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "notes.xyz"
    path.write_text("not EEG")
    with pytest.raises(RecordingError, match=r"notes\.xyz.*unknown EEG file extension '\.xyz'"):
        read_raw(path)
    # .txt is in MNE's table (BOXY): the error names the reader that was tried.
    text = tmp_path / "notes.txt"
    text.write_text("not EEG")
    with pytest.raises(RecordingError, match=r"notes\.txt \(\.txt file\): as BOXY: "):
        read_raw(text, verbose="error")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="no such file"):
        read_raw(tmp_path / "absent.edf")


def test_garbage_and_truncated_edf(tmp_path: Path, synthetic_edfs: list[Path]) -> None:
    garbage = tmp_path / "garbage.edf"
    garbage.write_bytes(b"\x00garbage" * 64)
    with pytest.raises(RecordingError, match="garbage.edf"):
        read_raw(garbage, verbose="error")

    content = synthetic_edfs[0].read_bytes()
    truncated = tmp_path / "truncated.edf"
    truncated.write_bytes(content[: len(content) // 2])
    with pytest.raises(RecordingError, match=r"truncated\.edf: file is truncated"):
        read_raw(truncated, verbose="error")
    raw = read_raw(truncated, allow_truncated=True, verbose="error")  # opt-in: what is there
    assert 0 < raw.n_times < read_raw(synthetic_edfs[0], verbose="error").n_times

    header_only = tmp_path / "header.edf"
    header_only.write_bytes(content[:100])
    with pytest.raises(RecordingError, match="corrupt EDF/BDF header"):
        read_raw(header_only)


def test_ids() -> None:
    assert recording_id("/d/sub-07_task-mi_eeg.edf") == "sub-07_task-mi_eeg"
    assert recording_id("/d/x_raw.fif.gz") == "x_raw"
    assert subject_id("/d/sub-07_task-mi_eeg.edf") == "07"
    assert subject_id("/d/patient3.edf") == "patient3"


def test_subject_from_file_header(tmp_path: Path, synthetic_edfs: list[Path]) -> None:
    renamed = tmp_path / "recording.edf"
    renamed.write_bytes(synthetic_edfs[1].read_bytes())
    raw = read_raw(renamed, verbose="error")
    assert subject_id(renamed, raw) == "sub-02"  # his_id stored in the EDF header


def test_list_recordings(tmp_path: Path, synthetic_edfs: list[Path]) -> None:
    found = list_recordings(synthetic_edfs[0].parent)
    assert found == sorted(synthetic_edfs)
    assert list_recordings(synthetic_edfs[0]) == [synthetic_edfs[0]]


def test_label_table(tmp_path: Path, synthetic_edfs: list[Path]) -> None:
    table = tmp_path / "labels.csv"
    rec = recording_id(synthetic_edfs[0])
    table.write_text(
        f"recording,onset,duration,label\n{rec},5.0,2.0,sleep\n{synthetic_edfs[0].name},10,2,awake\n"
    )
    labels = read_label_table(table)
    assert list(labels) == [rec]
    assert list(labels[rec].description) == ["sleep", "awake"]

    config = PreprocessConfig(window_seconds=2.0)
    ds = load_windows(synthetic_edfs[0], config, mode="events", labels=table, verbose="error")
    assert ds.classes == ["awake", "sleep"]
    assert ds.labels.tolist() == [1, 0]
    np.testing.assert_allclose(ds.onsets, [5.0, 10.0])


def test_label_table_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("recording,start,label\na,1,x\n")
    with pytest.raises(ValueError, match=r"lacks columns \['onset', 'duration'\]"):
        read_label_table(bad)
    bad.write_text("recording,onset,duration,label\na,one,1,x\n")
    with pytest.raises(ValueError, match="line 2"):
        read_label_table(bad)


def test_bids(tmp_path: Path, synthetic_edfs: list[Path]) -> None:
    mne_bids = pytest.importorskip("mne_bids")
    raw = read_raw(synthetic_edfs[0], verbose="error")
    bids_path = mne_bids.BIDSPath(subject="05", task="mi", root=tmp_path / "bids", datatype="eeg")
    mne_bids.write_raw_bids(raw, bids_path, format="EDF", allow_preload=True, verbose=False)
    recordings = list_recordings(tmp_path / "bids")
    assert len(recordings) == 1
    assert subject_id(recordings[0]) == "05"
    back = read_raw(recordings[0], verbose="error")
    assert set(back.annotations.description) == {"left_hand", "right_hand"}
    ds = load_windows(
        tmp_path / "bids", PreprocessConfig(window_seconds=4.0), mode="events", verbose="error"
    )
    assert len(ds) == 8 and set(ds.subject_ids) == {"05"}


def test_label_table_regression(tmp_path: Path, synthetic_edfs: list[Path]) -> None:
    table = tmp_path / "scores.csv"
    rec = recording_id(synthetic_edfs[0])
    table.write_text(f"recording,onset,duration,label\n{rec},4,2,0.25\n{rec},12,2,7.5\n")
    config = PreprocessConfig(window_seconds=2.0)
    ds = load_windows(
        synthetic_edfs[0], config, mode="events", labels=table, regression=True, verbose="error"
    )
    assert ds.labels.dtype == np.float32 and ds.labels.tolist() == [0.25, 7.5]
    assert ds.classes is None
    x, y = ds[1]
    assert y.dtype == torch.float32 and float(y) == 7.5


def test_eeglab(tmp_path: Path) -> None:
    """A minimal EEGLAB ``.set`` written with scipy (``mne.export`` would need eeglabio)."""
    from scipy.io import savemat

    names = ["Fp1", "Cz", "O2"]
    data = np.random.default_rng(0).standard_normal((3, 500)) * 20  # (n_chans, n_times), µV
    chanlocs = np.zeros((1, 3), dtype=[("labels", object)])
    for i, name in enumerate(names):
        chanlocs[0, i]["labels"] = name
    event = np.zeros((1, 2), dtype=[("type", object), ("latency", object), ("duration", object)])
    for i, (kind, latency) in enumerate([("left", 101.0), ("right", 301.0)]):  # 1-based samples
        event[0, i]["type"], event[0, i]["latency"], event[0, i]["duration"] = kind, latency, 0.0
    eeg = {
        "nbchan": 3.0, "pnts": 500.0, "trials": 1.0, "srate": 100.0, "xmin": 0.0, "xmax": 4.99,
        "data": data, "chanlocs": chanlocs, "event": event,
        "icawinv": np.zeros((0, 0)), "epoch": np.zeros((0, 0)),
    }  # fmt: skip
    path = tmp_path / "rec.set"
    savemat(path, {"EEG": eeg}, appendmat=False)
    raw = read_raw(path, verbose="error")
    assert raw.ch_names == names
    np.testing.assert_allclose(raw.get_data() * 1e6, data, atol=1e-9)
    np.testing.assert_allclose(raw.annotations.onset, [1.0, 3.0])
    assert list(raw.annotations.description) == ["left", "right"]


def test_label_table_on_cropped_fif(tmp_path: Path, synthetic_edfs: list[Path]) -> None:
    """Table onsets count from the first sample, also when the file starts after meas_date."""
    raw = read_raw(synthetic_edfs[0], verbose="error").crop(tmin=10.0)
    path = tmp_path / "cropped_raw.fif"
    raw.save(path, verbose="error")
    assert read_raw(path, verbose="error").first_time == pytest.approx(10.0)
    table = tmp_path / "labels.csv"
    table.write_text("recording,onset,duration,label\ncropped_raw,3.0,2.0,x\n")
    ds = load_windows(
        path, PreprocessConfig(window_seconds=2.0), mode="events", labels=table, verbose="error"
    )
    np.testing.assert_allclose(ds.onsets, [3.0])
    expected = load_windows(path, PreprocessConfig(window_seconds=30.0), verbose="error")
    np.testing.assert_allclose(ds.data[0], expected.data[0][:, 600:1000], atol=1e-6)


def _edf_to_bdf(edf: Path, bdf: Path) -> None:
    """Rewrite an EDF file as BDF: BioSemi signature, 24-bit samples, same values."""
    content = edf.read_bytes()
    n_signals = int(content[252:256])
    header_bytes = int(content[184:192])
    n_records = int(content[236:244])
    offset = 256 + n_signals * 216
    per_record = [int(content[offset + 8 * i : offset + 8 * i + 8]) for i in range(n_signals)]
    samples = np.frombuffer(content[header_bytes:], dtype="<i2").astype("<i4")
    assert samples.size == n_records * sum(per_record)
    as_bytes = samples.view(np.uint8).reshape(-1, 4)[:, :3]  # little-endian low 3 bytes
    header = bytearray(content[:header_bytes])
    header[0:8] = b"\xffBIOSEMI"
    header[192:236] = b"24BIT".ljust(44)
    bdf.write_bytes(bytes(header) + as_bytes.tobytes())


def test_bdf_and_truncated_bdf(tmp_path: Path, synthetic_edfs: list[Path]) -> None:
    bdf = tmp_path / "rec.bdf"
    _edf_to_bdf(synthetic_edfs[0], bdf)
    raw = read_raw(bdf, verbose="error")
    edf = read_raw(synthetic_edfs[0], verbose="error")
    assert raw.ch_names == edf.ch_names
    np.testing.assert_allclose(raw.get_data(), edf.get_data(), atol=1e-7)
    content = bdf.read_bytes()
    bdf.write_bytes(content[:-1000])
    with pytest.raises(RecordingError, match="truncated"):
        read_raw(bdf, verbose="error")
