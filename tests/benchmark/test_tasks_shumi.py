"""SHU-MI recipe on small .mat files named and shaped as the figshare release."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from _task_files import sine

from codebrain.benchmark import DatasetNotFoundError, get_recipe, resolve_split
from codebrain.benchmark.tasks.shumi import CHANNELS


def _write(path: Path, labels: list[int], n_chans: int = 32) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    trials = []
    for k, _ in enumerate(labels):
        rows = np.zeros((n_chans, 1000))
        rows[k % n_chans] = sine(1000, 250.0, 10.0, 50.0)  # 50 uV 10 Hz on one channel
        trials.append(rows)
    scipy.io.savemat(path, {"data": np.stack(trials), "labels": np.asarray([labels])})


@pytest.fixture(scope="module")
def shu_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shu")
    for s in range(1, 26):
        for ses in (1, 2):
            _write(root / f"sub-{s:03d}_ses-{ses:02d}_task_motorimagery_eeg.mat", [1, 2, 2])
    return root


def test_shumi_discovery_and_authors_split(shu_root):
    recipe = get_recipe("SHU-MI")
    recs = recipe.find_recordings(shu_root)
    assert len(recs) == 50
    assert recs[0].subject == "sub-001" and recs[0].meta["session"] == "ses-01"
    assert recs[0].id == "sub-001_ses-01_task_motorimagery_eeg"
    split, protocol = resolve_split(recipe, recs)
    assert protocol == "authors"
    assert split.train[0] == "sub-001" and split.train[-1] == "sub-015"
    assert split.val == ("sub-016", "sub-017", "sub-018", "sub-019", "sub-020")
    assert split.test[-1] == "sub-025" and len(split.test) == 5
    assert recipe.n_outputs == 1 and recipe.selection_metric == "auroc"


def test_shumi_windows_resampled_and_scaled(shu_root):
    recipe = get_recipe("shu_mi")
    assert len(recipe.channels) == 32 and recipe.channels == CHANNELS
    rec = recipe.find_recordings(shu_root)[0]
    tw = recipe.load(recipe, rec)
    assert tw.x.shape == (3, 32, 800) and tw.x.dtype == np.float32
    assert list(tw.y) == [0, 1, 1] and set(tw.subjects) == {"sub-001"}
    # trial k carries the wave on row k: channel order is the files' row order; 50 uV / 100
    for k in range(3):
        assert np.std(tw.x[k, k]) == pytest.approx(0.5 / np.sqrt(2), rel=1e-3)
        assert np.abs(np.delete(tw.x[k], k, axis=0)).max() < 1e-9


def test_shumi_bad_files_are_named(tmp_path):
    recipe = get_recipe("shu_mi")
    f = tmp_path / "sub-001_ses-01_task_motorimagery_eeg.mat"
    _write(f, [1, 3])
    with pytest.raises(ValueError, match="labels \\[3\\]"):
        recipe.load(recipe, recipe.find_recordings(tmp_path)[0])
    _write(f, [1], n_chans=30)
    with pytest.raises(ValueError, match="expected \\(trials, 32"):
        recipe.load(recipe, recipe.find_recordings(tmp_path)[0])
    scipy.io.savemat(f, {"x": np.zeros(3)})
    with pytest.raises(ValueError, match="no variable 'data'"):
        recipe.load(recipe, recipe.find_recordings(tmp_path)[0])
    with pytest.raises(DatasetNotFoundError, match="figshare"):
        recipe.find_recordings(tmp_path / "none")
