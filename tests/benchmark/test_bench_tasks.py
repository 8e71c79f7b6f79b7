"""The MentalArithmetic, PhysioNet-MI and BCIC-IV-2a recipes: discovery, subject and label
rules on the real files in ../shared/data, BCIC-IV-2a on small files in BNCI's .mat layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from codebrain.benchmark import DatasetNotFoundError, get_recipe, resolve_split
from codebrain.benchmark.tasks.mental_arithmetic import parse_sha256sums


def test_eegmat_discovery_subjects_and_labels(eegmat_dir: Path) -> None:
    r = get_recipe("mental_arithmetic")
    recs = r.find_recordings(eegmat_dir)
    assert len(recs) == 48
    by_id = {x.id: x for x in recs}
    assert by_id["Subject00_1"].subject == by_id["Subject00_2"].subject == "Subject00"
    assert (by_id["Subject00_1"].label, by_id["Subject00_2"].label) == (0, 1)
    assert len({x.subject for x in recs}) == 24


def test_eegmat_split_is_fallback_and_subject_disjoint(eegmat_dir: Path) -> None:
    r = get_recipe("mental_arithmetic")
    recs = r.find_recordings(eegmat_dir)
    split, protocol = resolve_split(r, recs)
    assert protocol == "fallback" and split.unit == "subject"
    assert not (set(split.train) & set(split.val) | set(split.train) & set(split.test))
    assert set(split.ids) == {x.subject for x in recs}
    # the full dataset gets the authors' split exactly
    assert r.split.train[-1] == "Subject27" and r.split.test == tuple(
        f"Subject{i}" for i in range(32, 36)
    )


def test_eegmat_load_matches_the_authors_windows(eegmat_dir: Path) -> None:
    r = get_recipe("mental_arithmetic")
    rec = next(x for x in r.find_recordings(eegmat_dir) if x.id == "Subject00_2")
    w = r.load(r, rec)
    # 62 s at 500 Hz -> 12400 samples at 200 Hz -> 12 whole 5 s windows
    assert w.x.shape == (12, 20, 1000) and w.x.dtype == np.float32
    assert set(w.y) == {1} and set(w.subjects) == {"Subject00"}
    assert 0.01 < float(w.x.std()) < 10  # µV/100: tens of µV -> ~0.1-1


def test_eegbci_six_runs_are_one_subject(eegbci_dir: Path) -> None:
    r = get_recipe("physionet_mi")
    recs = r.find_recordings(eegbci_dir)
    assert [x.id for x in recs] == [f"S001R{k:02d}" for k in (4, 6, 8, 10, 12, 14)]
    assert {x.subject for x in recs} == {"S001"}
    split, protocol = resolve_split(r, recs)
    assert protocol == "fallback" and split.unit == "recording"
    for part in (split.train, split.val, split.test):  # each part has both kinds of run
        assert any(p[-2:] in ("04", "08", "12") for p in part)
        assert any(p[-2:] in ("06", "10", "14") for p in part)


def test_eegbci_load_events_and_classes(eegbci_dir: Path) -> None:
    r = get_recipe("physionet_mi")
    recs = {x.id: x for x in r.find_recordings(eegbci_dir)}
    fists = r.load(r, recs["S001R04"])
    feet = r.load(r, recs["S001R06"])
    assert fists.x.shape == (15, 64, 800) and sorted(set(fists.y)) == [0, 1]
    assert (fists.y == 0).sum() == 8 and sorted(set(feet.y)) == [2, 3]


def _write_bnci(path: Path, n_trials: int, seed: int, eog_blocks: int = 1) -> None:
    rng = np.random.default_rng(seed)
    runs = []
    for _ in range(eog_blocks):
        runs.append({"X": rng.standard_normal((2500, 25)), "trial": np.zeros((0, 1)),
                     "y": np.zeros((0, 1)), "fs": 250.0})  # fmt: skip
    trial_len = 8 * 250
    X = 10 * rng.standard_normal((n_trials * trial_len + 500, 25))
    trial = (np.arange(n_trials) * trial_len + 1).reshape(-1, 1)
    y = (np.arange(n_trials) % 4 + 1).reshape(-1, 1)
    runs.append({"X": X, "trial": trial, "y": y, "fs": 250.0})
    data = np.empty((1, len(runs)), dtype=object)
    for j, run in enumerate(runs):
        data[0, j] = run
    scipy.io.savemat(path, {"data": data})


def test_bcic_iv_2a_on_bnci_files(tmp_path: Path) -> None:
    r = get_recipe("BCIC-IV-2a")
    folder = tmp_path / "MNE-bnci-data" / "database" / "data-sets" / "001-2014"
    folder.mkdir(parents=True)
    for s in range(1, 10):
        for k, sess in enumerate("TE"):
            _write_bnci(folder / f"A0{s}{sess}.mat", n_trials=4, seed=10 * s + k)
    recs = r.find_recordings(tmp_path)
    assert len(recs) == 18 and {x.subject for x in recs} == {f"A0{s}" for s in range(1, 10)}
    split, protocol = resolve_split(r, recs)
    assert protocol == "authors" and split.test == ("A08", "A09")
    w = r.load(r, recs[0])
    assert w.x.shape == (4, 22, 800) and list(w.y) == [0, 1, 2, 3]


def test_missing_dataset_error_names_layout_and_source(tmp_path: Path) -> None:
    for name, hint in [
        ("mental_arithmetic", "physionet.org/content/eegmat"),
        ("physionet_mi", "eegmmidb"),
        ("bcic_iv_2a", "bnci-horizon"),
    ]:
        with pytest.raises(DatasetNotFoundError, match=rf"Expected layout.*{hint}.*--download"):
            get_recipe(name).find_recordings(tmp_path)


def test_sha256sums_parser() -> None:
    text = "a" * 64 + "  Subject00_1.edf\n" + "B" * 64 + " *files/Subject00_2.edf\njunk\n"
    assert parse_sha256sums(text) == {"Subject00_1.edf": "a" * 64, "Subject00_2.edf": "b" * 64}
