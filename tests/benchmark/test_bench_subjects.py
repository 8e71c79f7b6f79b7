"""Issue 11 item 5: subject rules (--subject-pattern), label tables on fixed windows, the
one-recording-per-subject warning, and log lines vs progress bars."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from codebrain.data import SUBJECT_PATTERNS, subject_id
from codebrain.training._splits import warn_if_subjects_are_recordings


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/d/S001/S001R04.edf", "S001"),
        ("/d/S001/S001R14.edf", "S001"),
        ("/d/Subject00_1.edf", "Subject00"),
        ("/d/Subject00_2.edf", "Subject00"),
        ("/tuh/aaaaaaav/s002_2013/02_tcp_le/aaaaaaav_s002_t001.edf", "aaaaaaav"),
        ("/bids/sub-07/eeg/sub-07_task-rest_eeg.edf", "07"),
        ("/d/recording.edf", "recording"),  # unknown naming: one subject per file
    ],
)
def test_default_subject_rules(path: str, expected: str) -> None:
    assert subject_id(path) == expected


def test_subject_pattern_regex_presets_and_errors() -> None:
    assert subject_id("/d/p12/rec3.edf", pattern=r"/(?P<subject>p\d+)/") == "p12"
    assert subject_id("/d/ab_3.edf", pattern=r"^(ab)_\d$") == "ab"
    for name in ("eegbci", "eegmat", "tuh", "bids"):
        assert name in SUBJECT_PATTERNS
    assert subject_id("S009R06.edf", pattern="EEGBCI") == "S009"
    with pytest.raises(ValueError, match="capture group"):
        subject_id("x.edf", pattern=r"S\d+")
    with pytest.raises(ValueError, match="not a valid regular expression"):
        subject_id("x.edf", pattern=r"(S")
    with pytest.raises(ValueError, match="does not match"):
        subject_id("/d/x.edf", pattern="eegmat")


def test_warn_when_every_subject_has_one_recording(caplog) -> None:
    assert warn_if_subjects_are_recordings(["a", "a", "b"], ["r1", "r1", "r2"])
    assert "--subject-pattern" in caplog.text
    assert not warn_if_subjects_are_recordings(["a", "a", "b"], ["r1", "r2", "r3"])
    assert not warn_if_subjects_are_recordings(["a"], ["r1"])


def _copy_eegmat(eegmat_dir: Path, dst: Path, subjects=("00", "01")) -> Path:
    dst.mkdir()
    for s in subjects:
        for k in (1, 2):
            shutil.copy(eegmat_dir / f"Subject{s}_{k}.edf", dst / f"Subject{s}_{k}.edf")
    return dst


def test_prepare_label_table_labels_fixed_windows(eegmat_dir: Path, tmp_path: Path, capsys):
    from codebrain.cli import main
    from codebrain.data import load_windows_npz

    data = _copy_eegmat(eegmat_dir, tmp_path / "eegmat", subjects=("00",))
    table = tmp_path / "labels.csv"
    table.write_text(
        "recording,onset,duration,label\nSubject00_1,0,182,rest\nSubject00_2,0,62,arithmetic\n"
    )
    out = tmp_path / "w.npz"
    args = ["-q", "prepare", str(data), "-o", str(out), "--labels", str(table)]
    assert main([*args, "--window-seconds", "5"]) == 0
    printed = capsys.readouterr().out
    ds, _ = load_windows_npz(out)
    assert ds.classes == ["arithmetic", "rest"]
    assert (ds.labels >= 0).all() and f"{len(ds)} labelled" in printed
    assert set(ds.subject_ids.tolist()) == {"Subject00"}  # both files: one subject
    rest = ds.labels[ds.recording_ids == "Subject00_1"]
    assert set(rest.tolist()) == {1} and (ds.recording_ids == "Subject00_2").sum() == 12
    # a table naming no recording, or covering no window, fails and says why
    table.write_text("recording,onset,duration,label\nSubject99_1,0,60,rest\n")
    assert main([*args, "--window-seconds", "5", "--force"]) == 2
    assert "names none of the" in capsys.readouterr().err
    table.write_text("recording,onset,duration,label\nSubject00_1,0,1,rest\n")
    assert main([*args, "--window-seconds", "5", "--force"]) == 2
    assert "labels no fixed window" in capsys.readouterr().err


def test_prepare_and_corpus_subject_pattern(eegmat_dir: Path, tmp_path: Path, capsys):
    from codebrain.cli import main
    from codebrain.data import CorpusDataset, load_windows_npz

    data = tmp_path / "renamed"
    data.mkdir()
    for i, src in enumerate(["Subject00_1", "Subject00_2", "Subject01_1"]):
        person = "p01" if i < 2 else "p02"
        shutil.copy(eegmat_dir / f"{src}.edf", data / f"{person}-run{i}.edf")
    out = tmp_path / "w.npz"
    base = ["-q", "prepare", str(data), "--window-seconds", "10"]
    assert main([*base, "-o", str(out), "--subject-pattern", r"^(p\d+)-run"]) == 0
    ds, _ = load_windows_npz(out)
    assert sorted(set(ds.subject_ids.tolist())) == ["p01", "p02"]
    # a rule that does not fit fails before any work, naming the file
    corpus = tmp_path / "corpus"
    assert main([*base, "--corpus", str(corpus), "--subject-pattern", "eegmat"]) == 2
    assert "does not match" in capsys.readouterr().err
    assert not list((corpus / "shards").glob("*.npy")) if corpus.exists() else True
    assert main([*base, "--corpus", str(corpus), "--subject-pattern", r"^(p\d+)-"]) == 0
    assert sorted(set(CorpusDataset(corpus).subjects)) == ["p01", "p02"]


def test_finetune_npz_subject_pattern_rederives_subjects(tmp_path: Path) -> None:
    import argparse

    from codebrain.cli._common import load_data_arg
    from codebrain.data import WindowDataset, save_windows_npz

    ds = WindowDataset(
        np.zeros((4, 2, 400), np.float32),
        np.array([0, 1, 0, 1]),
        ["S001R04", "S001R06", "S002R04", "S002R06"],
        ["S001R04", "S001R06", "S002R04", "S002R06"],  # one "subject" per file
        np.zeros(4),
        ["C3", "C4"],
        200.0,
        ["a", "b"],
    )
    path = tmp_path / "w.npz"
    save_windows_npz(ds, path)
    loaded, _ = load_data_arg([str(path)], argparse.Namespace(subject_pattern="eegbci"))
    assert loaded.subject_ids.tolist() == ["S001", "S001", "S002", "S002"]


def test_cli_log_lines_go_through_tqdm(monkeypatch) -> None:
    import codebrain.cli.cmd_info as cmd_info
    from codebrain.cli import main

    seen = {}

    def fake_run(args) -> int:
        handlers = logging.getLogger("codebrain").handlers
        seen["types"] = [type(h).__name__ for h in handlers]
        return 0

    monkeypatch.setattr(cmd_info, "run", fake_run)
    assert main(["info"]) == 0
    assert seen["types"] == ["_TqdmLoggingHandler"]
    assert [type(h).__name__ for h in logging.getLogger("codebrain").handlers] == ["StreamHandler"]
