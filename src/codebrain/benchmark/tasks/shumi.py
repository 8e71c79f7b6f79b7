"""SHU-MI: the Shanghai University motor-imagery dataset (left vs right hand, 25 subjects).

CBraMod's protocol (``preprocessing_shu.py``, ``datasets/shu_dataset.py``; CodeBrain runs it
as ``SHU-MI``): the distributed per-session files
``sub-XXX_ses-YY_task_motorimagery_eeg.mat`` hold ``data`` ``(trials, 32, 1000)`` (4 s at
250 Hz, µV) and ``labels`` 1 (left) / 2 (right). Each trial is resampled with
``scipy.signal.resample`` to 800 samples (200 Hz), no filter, µV/100; labels minus 1. Split
by the sorted file list 75 / 25 / 25 of the 125 files (25 subjects × 5 sessions), i.e.
subjects sub-001-sub-015 train, sub-016-sub-020 val, sub-021-sub-025 test.

The channel order is the files' row order (the authors use it positionally); the names are
those of the dataset's description (Ma et al. 2022, Sci. Data 9:531).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from codebrain.benchmark.hooks import Recording, TaskWindows
from codebrain.benchmark.preprocessing import Resample
from codebrain.benchmark.recipe import TaskRecipe
from codebrain.benchmark.signal import glob_recordings
from codebrain.benchmark.split import Split
from codebrain.benchmark.tasks._common import load_mat, mat_key

__all__ = ["CHANNELS", "RECIPE", "RECIPES"]

_FILE_RE = re.compile(r"^(sub-\d{3})_(ses-\d{2})_task_motorimagery_eeg\.mat$")

#: The 32 channels in the files' row order.
CHANNELS = (
    "FP1", "FP2", "FZ", "F3", "F4", "F7", "F8", "FC1", "FC2", "FC5", "FC6",
    "CZ", "C3", "C4", "T3", "T4", "A1", "A2", "CP1", "CP2", "CP5", "CP6",
    "PZ", "P3", "P4", "T5", "T6", "PO3", "PO4", "OZ", "O1", "O2",
)  # fmt: skip

_LAYOUT = (
    "<DIR>/sub-XXX_ses-YY_task_motorimagery_eeg.mat for subjects 001-025 and sessions 01-05 "
    "(the figshare release as distributed; any depth), each with 'data' (trials, 32, 1000) "
    "and 'labels' (1 left hand, 2 right hand)."
)
_SOURCE = (
    "https://figshare.com/articles/software/shu_dataset/19228725 (public figshare download; "
    "no scripted downloader is provided here)"
)


def _find(root: Path) -> list[Recording]:
    recs = glob_recordings(RECIPE, root, ["**/sub-*_ses-*_task_motorimagery_eeg.mat"])
    return [
        Recording(r.path, r.subject, meta={"session": _FILE_RE.match(r.path.name).group(2)})  # type: ignore[union-attr]
        for r in recs
    ]


def _load(recipe: TaskRecipe, rec: Recording) -> TaskWindows:
    mat = load_mat(rec.path)
    data = np.asarray(mat_key(mat, "data", rec.path), dtype=np.float64)
    labels = np.ravel(mat_key(mat, "labels", rec.path)).astype(np.int64)
    if data.ndim != 3 or data.shape[1] != recipe.n_chans:
        raise ValueError(
            f"{rec.path}: 'data' has shape {data.shape}; expected (trials, {recipe.n_chans}, 1000)."
        )
    if len(labels) != len(data):
        raise ValueError(f"{rec.path}: {len(labels)} labels for {len(data)} trials.")
    bad = sorted(set(labels.tolist()) - {1, 2})
    if bad:
        raise ValueError(f"{rec.path}: labels {bad} are not 1 (left) or 2 (right).")
    sfreq = data.shape[2] / recipe.window_s  # 1000 samples = 4 s at 250 Hz
    x = np.stack([recipe.prepare(trial, sfreq) for trial in data]) if len(data) else None
    if x is None:
        return TaskWindows.empty(recipe.n_chans, recipe.n_times)
    return TaskWindows(x, labels - 1, rec.subject, rec.id)


def _subjects(a: int, b: int) -> tuple[str, ...]:
    return tuple(f"sub-{i:03d}" for i in range(a, b + 1))


RECIPE = TaskRecipe(
    name="shu_mi",
    title="SHU-MI (Shanghai University motor imagery, left vs right hand)",
    classes=("left_hand", "right_hand"),
    channels=CHANNELS,
    preprocessing=(Resample(200.0, "scipy"),),
    window_s=4.0,
    stride_s=None,
    window_rule="one window per trial (the 4 s of imagery), resampled 1000 -> 800 samples",
    subject_pattern=r"^(?P<subject>sub-\d{3})_ses-\d{2}",
    find=_find,
    load=_load,
    layout=_LAYOUT,
    source=_SOURCE,
    split=Split(_subjects(1, 15), _subjects(16, 20), _subjects(21, 25)),
    split_note="sorted files 75/25/25: sub-001-015 train, sub-016-020 val, sub-021-025 test",
    aliases=("shu", "shumi", "shu-mi"),
    reference="CBraMod preprocessing/preprocessing_shu.py, datasets/shu_dataset.py",
)

RECIPES = (RECIPE,)
