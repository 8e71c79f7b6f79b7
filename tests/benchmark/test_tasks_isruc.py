"""ISRUC-S1 and ISRUC-S3 recipes on small files laid out as ISRUC-Sleep distributes them."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from _task_files import sine, write_edf

from codebrain.benchmark import DatasetNotFoundError, get_recipe, resolve_split
from codebrain.benchmark.tasks.isruc import CHANNELS, epoch_sequences, read_isruc_labels

SFREQ = 200.0
EPOCH = 6000
# stage per epoch as written in N_1.txt (5 = REM)
_STAGES = [0, 1, 2, 3, 5] * 9  # 45 epochs


def _labels(path: Path, stages: list[int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{s}\n" for s in stages) + "\n")


def _s1_rec(path: Path, n_epochs: int, mastoid: str = "A") -> None:
    """A PSG file: EOG/EMG first, then the six EEG derivations with a 10 Hz wave of k*10 uV."""
    n = n_epochs * EPOCH
    names = ["LOC-A2", "ROC-A1", "X1"]
    rows = [sine(n, SFREQ, 2.0, 80.0)] * 3
    for k, ch in enumerate(reversed(CHANNELS)):
        names.append(ch.replace("A", mastoid))
        rows.append(sine(n, SFREQ, 10.0, 10.0 * (6 - k)))
    edf = write_edf(path.with_suffix(".edf"), names, np.stack(rows), SFREQ)
    edf.rename(path)


def test_read_isruc_labels(tmp_path):
    f = tmp_path / "1_1.txt"
    _labels(f, [0, 5, 2, 3, 1])
    assert list(read_isruc_labels(f)) == [0, 4, 2, 3, 1]
    assert list(read_isruc_labels(f, drop_last=2)) == [0, 4, 2]
    f.write_text("0\n4\n")
    with pytest.raises(ValueError, match="1_1.txt:2.*'4'"):
        read_isruc_labels(f)


def test_epoch_sequences_keep_epoch_order():
    epochs = np.arange(45 * 2 * 3, dtype=float).reshape(45, 2, 3)
    x, y = epoch_sequences(epochs, np.arange(43), 20)
    assert x.shape == (2, 2, 60) and y.shape == (2, 20)
    np.testing.assert_array_equal(x[1, 1, 3:6], epochs[21, 1])
    assert list(y[1, :2]) == [20, 21]


@pytest.fixture(scope="module")
def s1_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("isruc1")
    for s in range(1, 101):
        _labels(root / str(s) / f"{s}_1.txt", _STAGES[:43])
        (root / str(s) / f"{s}.rec").write_bytes(b"")  # placeholders: find reads no signal
    _s1_rec(root / "1" / "1.rec", 45)
    _s1_rec(root / "2" / "2.rec", 21, mastoid="M")
    (root / "101").mkdir()
    (root / "101" / "101.rec").write_bytes(b"")  # no labels: skipped
    return root


def test_isruc_s1_discovery_and_split(s1_root, caplog):
    recipe = get_recipe("ISRUC-S1")
    with caplog.at_level(logging.WARNING):
        recs = recipe.find_recordings(s1_root)
    assert (
        "ISRUC-S1: 1 .rec file(s) have no scorer-1 label file N_1.txt and are skipped: 101.rec"
    ) in caplog.messages
    assert len(recs) == 100 and [r.subject for r in recs[:3]] == ["1", "2", "3"]
    split, protocol = resolve_split(recipe, recs)
    assert protocol == "authors"
    assert split.train[-1] == "80" and len(split.train) == 80
    assert split.val == tuple(str(i) for i in range(81, 91))
    assert split.test[-1] == "100" and len(split.test) == 10


def test_isruc_s1_sequences_channels_raw_uv(s1_root):
    recipe = get_recipe("isruc_s1")
    assert recipe.head == "isruc_sequence" and recipe.amplitude_scale == 1.0
    recs = {r.id: r for r in recipe.find_recordings(s1_root)}
    tw = recipe.load(recipe, recs["1"])
    # 45 epochs, 43 labels -> 40 -> two sequences of 20 epochs
    assert tw.x.shape == (2, 6, 20 * EPOCH) and tw.y.shape == (2, 20)
    assert list(tw.y[0, :6]) == [0, 1, 2, 3, 4, 0]
    # channel k carries 10 Hz at (k+1)*10 uV in raw uV; the 0.3-35 Hz pass keeps it
    core = tw.x[:, :, 4 * EPOCH : -4 * EPOCH]
    for k in range(6):
        assert np.std(core[:, k]) == pytest.approx(10.0 * (k + 1) / np.sqrt(2), rel=0.02)
    tw = recipe.load(recipe, recs["2"])  # F3-M2 spelling, 21 epochs -> one sequence
    assert tw.x.shape == (1, 6, 20 * EPOCH)


def test_isruc_missing_layout(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="N_1.txt.*sleeptight"):
        get_recipe("isruc_s1").find_recordings(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="ExtractedChannels.*sleeptight"):
        get_recipe("isruc_s3").find_recordings(tmp_path)


@pytest.fixture(scope="module")
def s3_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("isruc3")
    for s in range(1, 11):
        n_epochs = 22 if s == 1 else 1
        mat = {
            ch.replace("-", "_"): np.stack([sine(EPOCH, SFREQ, 10.0, 10.0 * (k + 1))] * n_epochs)
            for k, ch in enumerate(CHANNELS)
        }
        (root / "ExtractedChannels").mkdir(exist_ok=True)
        scipy.io.savemat(root / "ExtractedChannels" / f"subject{s}.mat", mat)
        _labels(root / "RawData" / str(s) / f"{s}_1.txt", _STAGES[:21] + [0] * 30)
    return root


def test_isruc_s3_folds_and_windows(s3_root):
    recipe = get_recipe("ISRUC-S3")
    recs = recipe.find_recordings(s3_root)
    assert [r.subject for r in recs] == [str(i) for i in range(1, 11)]
    assert recipe.n_folds == 10
    split, protocol = resolve_split(recipe, recs, fold=0)
    assert protocol == "authors"
    assert split.val == ("1",) and split.test == ("2",) and len(split.train) == 8
    split, _ = resolve_split(recipe, recs, fold=9)
    assert split.val == ("10",) and split.test == ("1",)
    assert recipe.split_rule(recs[:9], 0) is None
    tw = recipe.load(recipe, recs[0])  # 22 epochs, 51 - 30 = 21 labels -> one sequence
    assert tw.x.shape == (1, 6, 20 * EPOCH) and tw.y.shape == (1, 20)
    assert list(tw.y[0, :5]) == [0, 1, 2, 3, 4]
    mid = tw.x[0, :, 10 * EPOCH + 2000 : 10 * EPOCH + 4000]  # middle of epoch 10
    for k in range(6):
        assert np.std(mid[k]) == pytest.approx(10.0 * (k + 1) / np.sqrt(2), rel=0.02)
    assert len(recipe.load(recipe, recs[1])) == 0  # one epoch: no full sequence


def test_isruc_s3_epochs_resampled_to_6000(tmp_path):
    mat = {ch.replace("-", "_"): np.stack([sine(3000, 100.0, 10.0, 20.0)] * 20) for ch in CHANNELS}
    (tmp_path / "ExtractedChannels").mkdir()
    scipy.io.savemat(tmp_path / "ExtractedChannels" / "subject4.mat", mat)
    _labels(tmp_path / "RawData" / "4" / "4_1.txt", [2] * 50)
    recipe = get_recipe("isruc_s3")
    (rec,) = recipe.find_recordings(tmp_path)
    assert rec.subject == "4"
    tw = recipe.load(recipe, rec)
    assert tw.x.shape == (1, 6, 20 * EPOCH) and set(tw.y.ravel()) == {2}
    mid = tw.x[0, 0, 10 * EPOCH + 2000 : 10 * EPOCH + 4000]
    assert np.std(mid) == pytest.approx(20.0 / np.sqrt(2), rel=0.02)
    mat["C3_A2"] = mat["C3_A2"][:5]
    scipy.io.savemat(tmp_path / "ExtractedChannels" / "subject4.mat", mat)
    with pytest.raises(ValueError, match="different shapes"):
        recipe.load(recipe, rec)
