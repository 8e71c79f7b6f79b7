"""SEED-V recipe on files named as distributed; MNE cannot write Neuroscan .cnt, so the
reader is replaced by one returning a RawArray with the files' 66 channels."""

from __future__ import annotations

from pathlib import Path

import mne
import numpy as np
import pytest

from codebrain.benchmark import DatasetNotFoundError, get_recipe, resolve_split
from codebrain.benchmark.tasks import seedv

# trial j of the fake sessions: [1 + 2j, 2 + 2j + (j odd)) seconds -> 1 or 2 s
_SHORT_TABLE = tuple((1 + 2 * j, 2 + 2 * j + j % 2) for j in range(15))
_SECONDS = 32.0


def _fake_raw(path: Path) -> mne.io.RawArray:
    """1000 Hz: EEG channel c is a 10 Hz sine of 10 (c + 1) µV; M1, M2 sit among the EEG
    channels and VEO/HEO at the end, all four at 1000 µV."""
    sfreq = 1000.0
    t = np.arange(int(_SECONDS * sfreq)) / sfreq
    names = list(seedv.CHANNELS)
    names.insert(names.index("TP7"), "M1")
    names.insert(names.index("TP8") + 1, "M2")
    names += ["VEO", "HEO"]
    rows = []
    for n in names:
        amp = 1000.0 if n in seedv.DROPPED else 10.0 * (seedv.CHANNELS.index(n) + 1)
        rows.append(amp * 1e-6 * np.sin(2 * np.pi * 10.0 * t))
    info = mne.create_info(names, sfreq, "eeg")
    return mne.io.RawArray(np.array(rows), info, verbose="error")


@pytest.fixture
def seedv_root(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "EEG_raw"
    folder.mkdir()
    for name in ("1_1_20180804", "1_2_20180810", "1_3_20180817", "2_1_20180416", "2_2_20180419"):
        (folder / f"{name}.cnt").touch()
    (folder / "notes.txt").touch()
    monkeypatch.setattr(seedv, "_read_cnt", _fake_raw)
    for s in (1, 2, 3):
        monkeypatch.setitem(seedv.TRIAL_SECONDS, s, _SHORT_TABLE)
    return tmp_path


def test_seedv_tables_are_the_authors():
    assert set(seedv.TRIAL_SECONDS) == set(seedv.SESSION_LABELS) == {1, 2, 3}
    for s in (1, 2, 3):
        spans = seedv.TRIAL_SECONDS[s]
        assert len(spans) == len(seedv.SESSION_LABELS[s]) == 15
        assert all(a < b for a, b in spans) and spans[0][0] == 30
        assert sorted(seedv.SESSION_LABELS[s]) == sorted([0, 1, 2, 3, 4] * 3)
    assert seedv.TRIAL_SECONDS[1][-1] == (3204, 3359)
    assert seedv.TRIAL_SECONDS[3][4] == (825, 877)
    assert seedv.SESSION_LABELS[1][:5] == (4, 1, 3, 2, 0)
    assert len(seedv.CHANNELS) == 62


def test_seedv_discovery_and_split_by_trial(seedv_root):
    recipe = get_recipe("SEED-V")
    recs = recipe.find_recordings(seedv_root)
    assert [r.id for r in recs] == [
        "1_1_20180804", "1_2_20180810", "1_3_20180817", "2_1_20180416", "2_2_20180419",
    ]  # fmt: skip
    assert [r.subject for r in recs] == ["1", "1", "1", "2", "2"]
    assert [r.meta["session"] for r in recs] == [1, 2, 3, 1, 2]
    split, protocol = resolve_split(recipe, recs)
    assert protocol == "authors" and split.unit == "trial"
    assert len(split.train) == len(split.val) == len(split.test) == 5 * 5
    assert split.train[:2] == ("1_1_20180804/trial00", "1_1_20180804/trial01")
    assert "1_1_20180804/trial05" in split.val and "2_2_20180419/trial14" in split.test


def test_seedv_windows_labels_channels(seedv_root):
    recipe = get_recipe("seed_v")
    assert recipe.n_times == 200 and recipe.head_hidden == 200
    recs = {r.id: r for r in recipe.find_recordings(seedv_root)}
    tw = recipe.load(recipe, recs["1_2_20180810"])
    assert tw.x.shape == (22, 62, 200) and tw.x.dtype == np.float32  # 8 x 1 s + 7 x 2 s
    expected_y, expected_groups = [], []
    for j, (a, b) in enumerate(_SHORT_TABLE):
        expected_y += [seedv.SESSION_LABELS[2][j]] * (b - a)
        expected_groups += [f"1_2_20180810/trial{j:02d}"] * (b - a)
    assert list(tw.y) == expected_y and list(tw.groups) == expected_groups
    assert set(tw.subjects) == {"1"}
    # channel c: 10 (c + 1) µV sine / 100 -> std 0.1 (c + 1) / sqrt 2; M1/M2/VEO/HEO dropped
    std = tw.x[2:-2].std(axis=(0, 2))
    np.testing.assert_allclose(std, 0.1 * np.arange(1, 63) / np.sqrt(2), rtol=0.03)
    # a trial's windows split into train/val/test by the trial rule
    split, _ = resolve_split(recipe, list(recs.values()))
    parts = [split.part_of(g) for g in tw.groups]
    assert parts[:5] == ["train"] * 5 and parts[-1] == "test"


def test_seedv_too_short_recording(seedv_root, monkeypatch):
    monkeypatch.setitem(seedv.TRIAL_SECONDS, 1, ((1, 2),) * 14 + ((30, 40),))
    recipe = get_recipe("seed_v")
    rec = recipe.find_recordings(seedv_root)[0]
    with pytest.raises(ValueError, match="trial 14 of session 1 ends at 40 s"):
        recipe.load(recipe, rec)


def test_seedv_missing_layout_says_where(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="S_session_date.cnt.*bcmi.sjtu.edu.cn"):
        get_recipe("seedv").find_recordings(tmp_path)


def test_seedv_runner_splits_windows_by_trial(seedv_root):
    from codebrain.benchmark.runner import load_split_windows

    recipe = get_recipe("seed_v")
    recs = recipe.find_recordings(seedv_root)[:2]
    split, _ = resolve_split(recipe, recs)
    data = load_split_windows(recipe, recs, split)
    # per session file: trials 0-4 -> 1+2+1+2+1 s, 5-9 -> 2+1+2+1+2 s, 10-14 -> 1+2+1+2+1 s
    assert [len(data[p]) for p in ("train", "val", "test")] == [14, 16, 14]
    assert set(data["val"].groups) == {f"{r.id}/trial{j:02d}" for r in recs for j in range(5, 10)}
    assert set(data["test"].subjects) == {"1"}
