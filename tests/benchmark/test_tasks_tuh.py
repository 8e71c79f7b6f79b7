"""TUAB and TUEV recipes on small EDF files laid out as TUH distributes them."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from _task_files import sine, write_edf

from codebrain.benchmark import DatasetNotFoundError, get_recipe, resolve_split
from codebrain.benchmark.tasks.tuh import read_tuev_events, tuev_event_windows
from codebrain.data import TCP_BIPOLAR_CHANNELS

_ELECTRODES = ["FP1", "FP2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2"]
_ELECTRODES += ["F7", "F8", "T3", "T4", "T5", "T6", "FZ", "CZ", "PZ", "A1", "A2"]
SFREQ = 250.0


def _tuh_edf(path: Path, seconds: float, suffix: str = "REF", drop: str | None = None) -> None:
    """Monopolar TUH file: every electrode carries the same 3 Hz wave, FP1 adds 10 Hz, 50 µV."""
    n = int(seconds * SFREQ)
    common = sine(n, SFREQ, 3.0, 20.0)
    names, rows = [], []
    for e in _ELECTRODES:
        if e == drop:
            continue
        names.append(f"EEG {e}-{suffix}")
        rows.append(common + (sine(n, SFREQ, 10.0, 50.0) if e == "FP1" else 0.0))
    names.append("EKG1-REF")
    rows.append(sine(n, SFREQ, 1.0, 300.0))
    write_edf(path, names, np.stack(rows), SFREQ)


@pytest.fixture(scope="module")
def tuab_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tuab")
    edf = root / "edf"
    layout = {
        ("train", "normal"): ["aaaaaaaa", "aaaaaaab", "aaaaaaac", "aaaaaaad", "aaaaaaae"],
        ("train", "abnormal"): ["aaaaaaba", "aaaaaabb", "aaaaaabc", "aaaaaabd", "aaaaaabe"],
        ("eval", "normal"): ["aaaaacaa"],
        ("eval", "abnormal"): ["aaaaacab"],
    }
    for (set_name, cls), subjects in layout.items():
        for s in subjects:
            folder = edf / set_name / cls / "01_tcp_ar"
            _tuh_edf(folder / f"{s}_s001_t000.edf", 25.0, "LE" if cls == "abnormal" else "REF")
    # a second session of one subject, and a file lacking an electrode (skipped on load)
    _tuh_edf(edf / "train" / "normal" / "01_tcp_ar" / "aaaaaaaa_s002_t001.edf", 12.0)
    _tuh_edf(edf / "train" / "normal" / "01_tcp_ar" / "aaaaaaae_s003_t000.edf", 12.0, drop="T5")
    return root


def test_tuab_discovery_labels_subjects(tuab_root):
    recipe = get_recipe("TUAB")
    recs = recipe.find_recordings(tuab_root)
    assert len(recs) == 14
    by_id = {r.id: r for r in recs}
    assert by_id["aaaaaaaa_s002_t001"].subject == "aaaaaaaa"
    assert by_id["aaaaaaba_s001_t000"].label == 1
    assert by_id["aaaaaaab_s001_t000"].label == 0
    assert {r.meta["set"] for r in recs} == {"train", "eval"}
    # the edf/ folder itself works as the root too
    assert len(recipe.find_recordings(tuab_root / "edf")) == 14


def test_tuab_authors_split(tuab_root):
    recipe = get_recipe("tuab")
    split, protocol = resolve_split(recipe, recipe.find_recordings(tuab_root))
    assert protocol == "authors"
    assert split.unit == "subject"
    # per class folder: 5 sorted subjects -> first int(0.8 * 5) = 4 train, 1 val
    assert split.train == (
        "aaaaaaaa", "aaaaaaab", "aaaaaaac", "aaaaaaad",
        "aaaaaaba", "aaaaaabb", "aaaaaabc", "aaaaaabd",
    )  # fmt: skip
    assert split.val == ("aaaaaaae", "aaaaaabe")
    assert split.test == ("aaaaacaa", "aaaaacab")


def test_tuab_windows_are_bipolar_scaled(tuab_root):
    recipe = get_recipe("tuab")
    assert recipe.channels == TCP_BIPOLAR_CHANNELS
    recs = {r.id: r for r in recipe.find_recordings(tuab_root)}
    tw = recipe.load(recipe, recs["aaaaaaba_s001_t000"])
    assert tw.x.shape == (2, 16, 2000)  # 25 s -> two 10 s windows at 200 Hz
    assert tw.x.dtype == np.float32
    assert list(tw.y) == [1, 1] and set(tw.subjects) == {"aaaaaaba"}
    # FP1-F7 and FP1-F3 carry FP1's 10 Hz, 50 uV wave /100; other derivations cancel out
    core = tw.x[:, :, 400:-400]
    for k in (0, 8):
        assert np.std(core[:, k]) == pytest.approx(0.5 / np.sqrt(2), rel=0.03)
    others = [k for k in range(16) if k not in (0, 8)]
    assert np.abs(core[:, others]).max() < 1e-3


def test_tuab_file_without_electrode_is_skipped(tuab_root, caplog):
    recipe = get_recipe("tuab")
    recs = {r.id: r for r in recipe.find_recordings(tuab_root)}
    with caplog.at_level(logging.WARNING):
        tw = recipe.load(recipe, recs["aaaaaaae_s003_t000"])
    assert len(tw) == 0 and tw.x.shape[1:] == (16, 2000)
    assert "T3-T5" in caplog.text


def test_tuab_partial_copy_falls_back(tmp_path):
    _tuh_edf(tmp_path / "train" / "normal" / "01_tcp_ar" / "aaaaaaaa_s001_t000.edf", 11.0)
    recipe = get_recipe("tuab")
    recs = recipe.find_recordings(tmp_path)
    assert recipe.split_rule(recs, 0) is None


def test_tuab_missing_layout_says_where(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="01_tcp_ar.*isip.piconepress.com"):
        get_recipe("tuab").find_recordings(tmp_path)


# ---- TUEV -------------------------------------------------------------------------------


def test_read_tuev_events(tmp_path):
    f = tmp_path / "a.rec"
    f.write_text("0,12.0,13.0,6\n3,20.5,21.5,1\n")
    ev = read_tuev_events(f)
    assert ev.shape == (2, 4) and ev[1, 3] == 1
    f.write_text("0,12.0,13.0,7\n")
    with pytest.raises(ValueError, match="1-6"):
        read_tuev_events(f)
    f.write_text("0,12.0,13.0\n")
    with pytest.raises(ValueError, match="4 numbers"):
        read_tuev_events(f)


def test_tuev_event_windows_wrap_like_the_authors():
    sfreq = 200.0
    x = np.arange(3 * 2000, dtype=float).reshape(3, 2000)
    events = np.array([[0, 5.0, 6.0, 2], [1, 1.0, 2.0, 6], [0, 9.0, 9.5, 1], [0, 9.5, 10.0, 1]])
    w, y = tuev_event_windows(x, events, sfreq)
    assert w.shape == (2, 3, 1000) and list(y) == [1, 5]
    np.testing.assert_array_equal(w[0, 0], np.arange(600, 1600))  # 5 s - 2 s .. 6 s + 2 s
    tripled = np.concatenate([x, x, x], axis=1)
    np.testing.assert_array_equal(w[1], tripled[:, 2000 + 200 - 400 : 2000 + 400 + 400])


@pytest.fixture(scope="module")
def tuev_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tuev")
    subjects = {"train": ["aaaaaaar", "aaaaaaas", "aaaaaaat", "aaaaaaau", "aaaaaaav"]}
    subjects["eval"] = ["aaaaaaba", "aaaaaabb"]
    for set_name, subs in subjects.items():
        for s in subs:
            f = root / "edf" / set_name / s / f"{s}_00000001.edf"
            _tuh_edf(f, 20.0)
            f.with_suffix(".rec").write_text("0,3.0,4.0,1\n5,3.0,4.0,1\n2,10.0,11.0,6\n")
    (root / "edf" / "train" / "aaaaaaar" / "aaaaaaar_00000002.edf").write_bytes(b"")  # no .rec
    return root


def test_tuev_discovery_split_and_windows(tuev_root, caplog):
    recipe = get_recipe("TUEV")
    with caplog.at_level(logging.WARNING):
        recs = recipe.find_recordings(tuev_root)
    assert (
        "TUEV: 1 .edf file(s) have no .rec event file beside them and are skipped: "
        "aaaaaaar_00000002.edf"
    ) in caplog.messages
    assert len(recs) == 7 and recs[0].subject == "aaaaaaar"
    split, protocol = resolve_split(recipe, recs)
    assert protocol == "authors"
    assert split.train == ("aaaaaaar", "aaaaaaas", "aaaaaaat", "aaaaaaau")
    assert split.val == ("aaaaaaav",)
    assert split.test == ("aaaaaaba", "aaaaaabb")
    tw = recipe.load(recipe, recs[0])
    assert tw.x.shape == (3, 16, 1000)
    assert list(tw.y) == [0, 0, 5]
    assert recipe.n_outputs == 6 and recipe.selection_metric == "cohen_kappa"
