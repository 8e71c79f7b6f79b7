"""Every raw format MNE reads: real recordings, multi-file listing, unique ids, channel maps.

The real files are MNE's test recordings in ``shared/data/formats`` (README §3 there), found as
``<repo>/../shared/data`` (CI) or ``/work/shared/data``; tests that need them skip when absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import mne
import numpy as np
import pytest

from _cli_helpers import run_cli
from codebrain.data import (
    READERS,
    PreprocessConfig,
    RecordingError,
    list_recordings,
    load_windows,
    parse_channel_map,
    pick_target_channels,
    read_raw,
    recording_id,
    recording_ids,
    write_synthetic_dataset,
)
from codebrain.data.labels import _labels_for, read_label_table

REPO = Path(__file__).resolve().parents[2]


def _shared_data() -> Path | None:
    for root in (REPO.parent / "shared" / "data", Path("/work/shared/data")):
        if (root / "formats").is_dir():
            return root
    return None


SHARED = _shared_data()
FORMATS = SHARED / "formats" if SHARED else None
needs_formats = pytest.mark.skipif(
    FORMATS is None,
    reason="real format samples absent: shared/data/formats not found beside the repo "
    "(<repo>/../shared/data) nor at /work/shared/data",
)

# README §3 of shared/data, "Format samples": main file -> (channels, sfreq Hz, duration s).
EXPECTED = {
    "bdf/multiple_annotation_chans.bdf": (19, 125.0, 247.0),
    "bdf/test_bdf_stim_channel.bdf": (4, 500.0, 10.0),
    "brainvision/test_CA_208.vhdr": (88, 1000.0, 4.025),
    "edf/MB0400FU.EDF": (25, 200.0, 29.0),
    "edf/chtypes_edf.edf": (42, 200.0, 5.0),
    "edf/subsecond_starttime.edf": (3, 512.0, 5.0),
    "edf/test_reduced.edf": (139, 512.0, 6.0),
    "eeglab/test_raw.set": (32, 128.0, 238.312),
    "gdf/test_1ch.gdf": (1, 150.0, 30.0),
    "nihonkohden/MB0400FU.EEG": (25, 200.0, 29.0),
    "persyst/sub-pt1_ses-02_task-monitor_acq-ecog_run-01_clip2.lay": (83, 200.0, 4.235),
}
COMPANIONS = {
    "brainvision/test_CA_208.eeg": "brainvision/test_CA_208.vhdr",
    "brainvision/test_CA_208.vmrk": "brainvision/test_CA_208.vhdr",
    "eeglab/test_raw.fdt": "eeglab/test_raw.set",
    "persyst/sub-pt1_ses-02_task-monitor_acq-ecog_run-01_clip2.dat": (
        "persyst/sub-pt1_ses-02_task-monitor_acq-ecog_run-01_clip2.lay"
    ),
    **{
        f"nihonkohden/MB0400FU.{e}": "nihonkohden/MB0400FU.EEG"
        for e in ("11D", "21E", "CMT", "CN2", "LOG", "PNT")
    },
}
TEN_TWENTY = ["FP1", "FP2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2"]
TEN_TWENTY += ["F7", "F8", "T3", "T4", "T5", "T6", "FZ", "CZ", "PZ"]


# ----------------------------------------------------------------- every real file


@needs_formats
def test_every_format_file_is_main_or_companion() -> None:
    """The table above covers every file of the folder (a new file must be added here)."""
    on_disk = {p.relative_to(FORMATS).as_posix() for p in FORMATS.rglob("*") if p.is_file()}
    assert on_disk == set(EXPECTED) | set(COMPANIONS)


@needs_formats
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_read_every_format(name: str) -> None:
    n_chans, sfreq, duration = EXPECTED[name]
    raw = read_raw(FORMATS / name, verbose="error")
    assert len(raw.ch_names) == n_chans
    assert raw.info["sfreq"] == pytest.approx(sfreq)
    assert raw.n_times / raw.info["sfreq"] == pytest.approx(duration, abs=1e-3)
    data = raw.get_data()
    assert np.isfinite(data).all() and np.ptp(data) > 0


@needs_formats
def test_nihon_kohden_matches_its_edf_export() -> None:
    nk = read_raw(FORMATS / "nihonkohden/MB0400FU.EEG", verbose="error")
    edf = read_raw(FORMATS / "edf/MB0400FU.EDF", verbose="error")
    assert nk.n_times == edf.n_times
    fp1_nk = nk.get_data(picks=["Fp1"])[0]
    fp1_edf = edf.get_data(picks=[c for c in edf.ch_names if "FP1" in c.upper()][:1])[0]
    assert np.corrcoef(fp1_nk, fp1_edf)[0, 1] > 0.99


@needs_formats
def test_list_real_formats_once_per_recording() -> None:
    found = list_recordings(FORMATS)
    assert [p.relative_to(FORMATS).as_posix() for p in found] == sorted(EXPECTED)
    ids = recording_ids(found)
    assert len(set(ids)) == len(ids)
    # MB0400FU is both the Nihon Kohden recording and its EDF export: ids by relative path.
    assert "edf/MB0400FU" in ids and "nihonkohden/MB0400FU" in ids
    assert "test_raw" in ids  # unique names stay plain file names


@needs_formats
@pytest.mark.parametrize("name", sorted(COMPANIONS))
def test_companion_files(name: str) -> None:
    """Named on the command line, a companion is read through its main file, once."""
    main = FORMATS / COMPANIONS[name]
    assert list_recordings([FORMATS / name, main]) == [main]
    with pytest.raises(RecordingError, match="companion file of the recording"):
        read_raw(FORMATS / name, verbose="error")


@needs_formats
def test_prepare_every_real_file(tmp_path: Path) -> None:
    """``codebrain prepare`` on the whole folder: 10-20 recordings make windows, others are
    reported with the names found."""
    out = tmp_path / "all.npz"
    proc = run_cli("prepare", FORMATS, "-o", out, "--window-seconds", "2", "--on-missing",
                   "interpolate", "--on-error", "skip")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    with np.load(out, allow_pickle=False) as z:
        recs = set(z["recording_ids"].tolist())
        assert z["data"].shape[1:] == (19, 400)
        assert np.isfinite(z["data"]).all()
    # Nihon Kohden, its EDF export, Persyst and BDF (18 EEG: 10 of the 19 are interpolated)
    # read; EEGLAB (positional names), GDF (ECG) and the grid EDF have no 10-20 names.
    assert {"nihonkohden/MB0400FU", "edf/MB0400FU", "test_CA_208"} <= recs
    assert "sub-pt1_ses-02_task-monitor_acq-ecog_run-01_clip2" in recs
    assert "test_raw" not in recs and "test_1ch" not in recs
    assert "Skipping" in proc.stderr and "EEG 000" in proc.stderr and "--channel-map" in proc.stderr


@needs_formats
def test_prepare_nihon_kohden_default_montage(tmp_path: Path) -> None:
    ds = load_windows(
        FORMATS / "nihonkohden/MB0400FU.EEG",
        PreprocessConfig(window_seconds=5.0),
        verbose="error",
    )
    assert ds.data.shape == (5, 19, 1000)  # 29 s -> five 5-s windows at 200 Hz
    assert list(ds.ch_names) == TEN_TWENTY


# ------------------------------------------------------------------ channel maps


@needs_formats
def test_eeglab_positional_names_error_then_channel_map(tmp_path: Path) -> None:
    path = FORMATS / "eeglab/test_raw.set"
    with pytest.raises(
        ValueError, match=r"test_raw.*Found 32 channels: \['EEG 000'.*--channel-map"
    ):
        load_windows(path, PreprocessConfig(), verbose="error")
    mapping = {f"EEG {i:03d}": name for i, name in enumerate(TEN_TWENTY)}
    ds = load_windows(path, PreprocessConfig(channel_map=mapping), verbose="error")
    assert list(ds.ch_names) == TEN_TWENTY
    assert ds.data.shape == (7, 19, 6000)  # 238 s at 128 Hz -> seven 30-s windows at 200 Hz
    raw = read_raw(path, verbose="error")
    # Windows are the mapped source channels (order follows the map, not the file).
    src = raw.get_data(picks=["EEG 012"])[0]  # mapped to T3
    assert np.std(src) > 0 and ds.data[:, TEN_TWENTY.index("T3")].std() > 0
    # The same map from the CLI, as a JSON file.
    map_file = tmp_path / "map.json"
    map_file.write_text(json.dumps(mapping), encoding="utf-8")
    out = tmp_path / "eeglab.npz"
    proc = run_cli("prepare", path, "-o", out, "--channel-map", map_file)
    assert proc.returncode == 0, proc.stderr
    with np.load(out, allow_pickle=False) as z:
        np.testing.assert_allclose(z["data"], ds.data, rtol=1e-5, atol=1e-6)
        assert json.loads(str(z["preprocess"]))["channel_map"] == mapping


@needs_formats
def test_nihon_kohden_channel_map_to_montage() -> None:
    """Map the 25-channel Nihon Kohden names (swapping two, to see it is applied)."""
    raw = read_raw(FORMATS / "nihonkohden/MB0400FU.EEG", verbose="error")
    before = raw.get_data(picks=["Fp1", "Fp2"])
    pick_target_channels(raw, channel_map={"Fp1": "FP2", "fp2": "FP1"})
    assert raw.ch_names == TEN_TWENTY
    np.testing.assert_array_equal(raw.get_data(picks=["FP2", "FP1"]), before)


def test_channel_map_parsing(tmp_path: Path) -> None:
    assert parse_channel_map(" EEG 000 = Fp1 ,EEG 001=Fp2,") == {"EEG 000": "Fp1", "EEG 001": "Fp2"}
    csv_file = tmp_path / "map.csv"
    csv_file.write_text("old,new\nA1,FP1\nA2,FP2\n", encoding="utf-8")
    assert parse_channel_map(csv_file) == {"A1": "FP1", "A2": "FP2"}
    assert parse_channel_map({"x": "CZ"}) == {"x": "CZ"}
    assert parse_channel_map(None) == {}
    with pytest.raises(ValueError, match="has no '='"):
        parse_channel_map("A1:FP1")
    with pytest.raises(ValueError, match="mapped twice"):
        parse_channel_map("A1=FP1,A1=FP2")
    with pytest.raises(ValueError, match="does not exist"):
        parse_channel_map(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ValueError, match="one JSON object"):
        parse_channel_map(bad)
    # Stored parsed in the config, so it round-trips through JSON.
    cfg = PreprocessConfig(channel_map="A1=FP1")
    assert PreprocessConfig.from_dict(json.loads(cfg.to_json())).channel_map == {"A1": "FP1"}


def test_channel_map_clash(raw_factory) -> None:
    raw = raw_factory(["X1", "FP1", "C3"])
    with pytest.raises(ValueError, match="already has channels of these names"):
        pick_target_channels(raw, ["FP1", "C3"], channel_map={"X1": "FP1"})


def test_cli_channel_map_error(tmp_path: Path, synthetic_edfs: list[Path]) -> None:
    out = tmp_path / "x.npz"
    proc = run_cli("prepare", synthetic_edfs[0], "-o", out, "--channel-map", "A1:FP1")
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln]
    assert lines[-1].startswith("codebrain prepare: error: --channel-map:") and "'='" in lines[-1]
    assert not out.exists()


# ------------------------------------------------- multi-file listing (made here)


def _touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def test_list_multi_file_formats(tmp_path: Path) -> None:
    _touch(
        tmp_path / "nk", *(f"rec.{e}" for e in ("EEG", "PNT", "LOG", "21E", "11D", "CMT", "CN2"))
    )
    _touch(tmp_path / "bv", "rec.vmrk", "rec.eeg")
    (tmp_path / "bv" / "rec.vhdr").write_text(
        "[Common Infos]\nDataFile=rec.eeg\nMarkerFile=rec.vmrk\n"
    )
    # A BrainVision header naming a data file of another stem.
    _touch(tmp_path / "bv2", "data_file.eeg", "markers.vmrk")
    (tmp_path / "bv2" / "head.vhdr").write_text("DataFile=data_file.eeg\nMarkerFile=markers.vmrk\n")
    _touch(tmp_path / "eeglab", "rec.set", "rec.fdt")
    _touch(tmp_path / "persyst", "rec.lay", "rec.dat")
    _touch(tmp_path / "bci2k", "run.dat")  # a .dat without a .lay is a recording itself
    _touch(tmp_path / "curry", "c7.dat", "c7.dap", "c7.rs3", "c8.cdt", "c8.cdt.dpa")
    _touch(tmp_path / "misc", "notes.txt", "results.mat", "README.md")
    (tmp_path / "egi" / "rec.mff" / "signal1.bin").parent.mkdir(parents=True)
    (tmp_path / "egi" / "rec.mff" / "signal1.bin").write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in list_recordings(tmp_path)]
    assert found == [
        "bci2k/run.dat",
        "bv/rec.vhdr",
        "bv2/head.vhdr",
        "curry/c7.dat",
        "curry/c8.cdt",
        "eeglab/rec.set",
        "egi/rec.mff",
        "nk/rec.EEG",
        "persyst/rec.lay",
    ]
    # Explicit companions map to their main file; a .mff folder is one recording.
    got = list_recordings([tmp_path / "bv2" / "data_file.eeg", tmp_path / "nk" / "rec.21E"])
    assert got == [tmp_path / "bv2" / "head.vhdr", tmp_path / "nk" / "rec.EEG"]
    assert list_recordings(tmp_path / "egi" / "rec.mff") == [tmp_path / "egi" / "rec.mff"]
    # Explicit generic files are kept (and reading them says what is wrong).
    assert list_recordings(tmp_path / "misc" / "README.md") == [tmp_path / "misc" / "README.md"]
    with pytest.raises(RecordingError, match=r"unknown EEG file extension '\.md'"):
        read_raw(tmp_path / "misc" / "README.md")


def test_brainvision_eeg_vs_nihon_kohden_eeg(tmp_path: Path) -> None:
    """Same stem, both a .vhdr and a .PNT: the .vhdr's DataFile names its lower-case .eeg."""
    _touch(tmp_path, "a.EEG", "a.PNT", "a.LOG", "a.21E", "b.eeg", "b.vmrk")
    (tmp_path / "b.vhdr").write_text("DataFile=b.eeg\n")
    found = [p.name for p in list_recordings(tmp_path)]
    assert found == ["a.EEG", "b.vhdr"]
    # A lone .eeg is read as Nihon Kohden, and the error says what a .eeg can be.
    _touch(tmp_path / "lone", "x.eeg")
    assert list_recordings(tmp_path / "lone") == [tmp_path / "lone" / "x.eeg"]
    with pytest.raises(RecordingError, match=r"Nihon Kohden recording.*BrainVision"):
        read_raw(tmp_path / "lone" / "x.eeg", verbose="error")


def test_reader_table_is_mnes() -> None:
    from mne.io._read_raw import _get_supported

    assert set(READERS) == {e.lower() for e in _get_supported()}
    for ext in (".eeg", ".lay", ".cnt", ".mff", ".nedf", ".set", ".edf", ".vhdr"):
        assert ext in READERS


def test_missing_optional_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader that cannot import its package gives one line naming it and the extra."""
    nedf = tmp_path / "x.nedf"
    nedf.write_bytes(b"\0" * 64)

    def fake_reader(*args, **kwargs):
        mne.utils._soft_import("defusedxml_not_installed_here", "reading NEDF data")

    monkeypatch.setitem(READERS, ".nedf", {"NEDF": fake_reader})
    with pytest.raises(RecordingError) as info:
        read_raw(nedf)
    msg = str(info.value)
    assert "\n" not in msg and "defusedxml_not_installed_here" in msg and "pip install" in msg


def test_neuroscan_and_ant_cnt_chosen_by_magic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """antio crashes on a Neuroscan file, so .cnt picks the reader from the magic bytes;
    a Neuroscan file whose sample size MNE cannot infer is re-read as int16."""
    calls = []

    def neuroscan(path, **kwargs):
        calls.append(("cnt", kwargs.get("data_format")))
        if "data_format" not in kwargs:
            raise RuntimeError("Could not automatically compute ...  set data_format manually.")
        return "neuroscan-int16"

    def ant(path, **kwargs):
        calls.append(("ant", None))
        return "ant"

    neuroscan.__name__, ant.__name__ = "read_raw_cnt", "read_raw_ant"
    monkeypatch.setitem(READERS, ".cnt", {"CNT": neuroscan, "ANT": ant})
    ns = tmp_path / "ns.cnt"
    ns.write_bytes(b"Version 3.0\0" + b"\0" * 100)
    riff = tmp_path / "ant.cnt"
    riff.write_bytes(b"RF64" + b"\0" * 100)
    assert read_raw(ns) == "neuroscan-int16"
    assert calls == [("cnt", None), ("cnt", "int16")]
    calls.clear()
    assert read_raw(riff) == "ant" and calls == [("ant", None)]
    calls.clear()
    assert read_raw(ns, data_format="int32") == "neuroscan-int16"  # explicit: no retry
    assert calls == [("cnt", "int32")]


# ----------------------------------------------------- duplicates and unique ids


def test_duplicate_inputs_read_once(tmp_path: Path) -> None:
    paths = write_synthetic_dataset(tmp_path / "base", n_subjects=1, n_trials=4, seed=3)
    folder = paths[0].parent
    assert list_recordings([folder, paths[0]]) == paths
    assert list_recordings([paths[0], paths[0], folder]) == paths
    cfg = PreprocessConfig(window_seconds=4.0)
    once = load_windows(paths[0], cfg, verbose="error")
    twice = load_windows([folder, paths[0]], cfg, verbose="error")
    assert len(twice) == len(once)


def test_unique_recording_ids(tmp_path: Path) -> None:
    src = write_synthetic_dataset(tmp_path / "src", n_subjects=2, n_trials=4, seed=4)
    for i, p in enumerate(src, start=1):
        (tmp_path / "data" / f"s{i}").mkdir(parents=True)
        p.rename(tmp_path / "data" / f"s{i}" / "rec.edf")
    only = tmp_path / "data" / "other.edf"
    src2 = write_synthetic_dataset(tmp_path / "src2", n_subjects=1, n_trials=4, seed=5)
    src2[0].rename(only)
    recs = list_recordings(tmp_path / "data")
    assert recording_ids(recs) == ["other", "s1/rec", "s2/rec"]
    assert recording_id(recs[1]) == "rec"
    assert recording_ids(["/a/rec.edf", "/a/rec.bdf"]) == ["rec.edf", "rec.bdf"]
    with pytest.raises(ValueError, match="more than once"):
        recording_ids(["/a/rec.edf", "/a/rec.edf"])
    cfg = PreprocessConfig(window_seconds=4.0)
    ds = load_windows(tmp_path / "data", cfg, verbose="error")
    assert set(ds.recording_ids.tolist()) == {"other", "s1/rec", "s2/rec"}


def test_label_table_by_relative_path(tmp_path: Path) -> None:
    recs = [Path("/d/s1/rec.edf"), Path("/d/s2/rec.edf"), Path("/d/other.edf")]
    ids = recording_ids(recs)
    table = tmp_path / "labels.csv"
    table.write_text(
        "recording,onset,duration,label\ns2/rec.edf,0,1,a\nother,0,1,b\n/d/s1/rec,0,1,c\n"
    )
    labels = read_label_table(table)
    assert set(labels) == {"s2/rec", "other", "/d/s1/rec"}
    got = [_labels_for(labels, p, i) for p, i in zip(recs, ids, strict=True)]
    assert [list(a.description) for a in got] == [["c"], ["a"], ["b"]]
    # A bare name shared by two recordings is ambiguous.
    ambiguous = {"rec": labels["other"]}
    with pytest.raises(ValueError, match="ambiguous"):
        _labels_for(ambiguous, recs[0], ids[0])
