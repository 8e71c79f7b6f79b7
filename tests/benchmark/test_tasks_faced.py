"""FACED recipe on small pickles laid out as ``Processed_data/subNNN.pkl``."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np
import pytest

from codebrain.benchmark import DatasetNotFoundError, get_recipe, resolve_split
from codebrain.benchmark.tasks.faced import CLIP_LABELS


def _clips() -> np.ndarray:
    """28 clips x 32 channels x 7500 samples: channel c of clip k is 100 c + k µV, plus
    1000 µV in the second 10 s and 2000 µV in the third."""
    base = 100.0 * np.arange(32)[None, :, None] + np.arange(28)[:, None, None]
    step = np.repeat([0.0, 1000.0, 2000.0], 2500)[None, None, :]
    return (base + step).astype(np.float32)


@pytest.fixture(scope="module")
def faced_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("faced")
    folder = root / "Processed_data"
    folder.mkdir()
    with open(folder / "sub081.pkl", "wb") as f:
        pickle.dump(_clips(), f)
    for i in range(123):  # the others are only listed, never read
        (folder / f"sub{i:03d}.pkl").touch(exist_ok=True)
    (folder / "README.txt").write_text("not a subject")
    return root


def test_faced_clip_labels_are_the_authors():
    authors = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 6, 6, 6, 7, 7, 7, 8, 8, 8]
    assert list(CLIP_LABELS) == authors


def test_faced_discovery_and_authors_split(faced_root):
    recipe = get_recipe("FACED")
    recs = recipe.find_recordings(faced_root)
    assert len(recs) == 123
    assert recs[0].subject == "sub000" and recs[-1].id == "sub122"
    split, protocol = resolve_split(recipe, recs)
    assert protocol == "authors" and split.unit == "subject"
    assert split.train[0] == "sub000" and split.train[-1] == "sub079" and len(split.train) == 80
    assert split.val[0] == "sub080" and split.val[-1] == "sub099" and len(split.val) == 20
    assert split.test[0] == "sub100" and split.test[-1] == "sub122" and len(split.test) == 23


def test_faced_windows_labels_channel_order(faced_root):
    recipe = get_recipe("faced")
    assert recipe.n_chans == 32 and recipe.n_outputs == 9
    assert recipe.selection_metric == "cohen_kappa"
    rec = next(r for r in recipe.find_recordings(faced_root) if r.id == "sub081")
    tw = recipe.load(recipe, rec)
    assert tw.x.shape == (84, 32, 2000) and tw.x.dtype == np.float32
    assert list(tw.y) == list(np.repeat(CLIP_LABELS, 3))
    assert list(tw.y[:12]) == [0] * 9 + [1] * 3
    assert list(tw.y[36:48]) == [4] * 12  # clips 13-16 are neutral
    assert set(tw.subjects) == {"sub081"}
    # window 3k + j is clip k, 10 s part j: (100 c + k + 1000 j) / 100, away from the edges
    mid = tw.x[:, :, 300:-300]
    for k, j in [(0, 0), (5, 1), (27, 2)]:
        expected = np.arange(32) + k / 100 + 10 * j
        np.testing.assert_allclose(mid[3 * k + j].mean(axis=1), expected, atol=0.05)


def test_faced_partial_copy_falls_back(tmp_path, caplog):
    for i in (3, 90, 110):
        (tmp_path / f"sub{i:03d}.pkl").touch()
    recipe = get_recipe("faced")
    with caplog.at_level(logging.WARNING):
        split, protocol = resolve_split(recipe, recipe.find_recordings(tmp_path))
    assert protocol == "fallback" and "absent" in caplog.text
    assert split.ids == ("sub003", "sub090", "sub110")


def test_faced_bad_files(tmp_path):
    recipe = get_recipe("faced")
    with pytest.raises(DatasetNotFoundError, match="subNNN.pkl.*synapse.org"):
        recipe.find_recordings(tmp_path)
    with open(tmp_path / "sub000.pkl", "wb") as f:
        pickle.dump(np.zeros((28, 30, 100)), f)
    rec = recipe.find_recordings(tmp_path)[0]
    with pytest.raises(ValueError, match="28 clips, 32 channels"):
        recipe.load(recipe, rec)
    with open(tmp_path / "sub000.pkl", "wb") as f:
        pickle.dump({"x": 1}, f)
    with pytest.raises(ValueError, match="not a pickled numpy array|expected a pickled"):
        recipe.load(recipe, rec)
