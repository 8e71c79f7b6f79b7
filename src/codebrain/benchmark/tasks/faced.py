"""FACED: Finer-grained Affective Computing EEG Dataset, nine emotion classes.

Protocol of CodeBrain, which uses CBraMod's preprocessing (``preprocessing_faced.py``, loader
``faced_dataset.py``):

* Input: the distributed ``Processed_data/subNNN.pkl`` files (123 subjects, sub000-sub122),
  each one pickled array of 28 video clips × 32 channels × 7500 samples (30 s at 250 Hz,
  already cleaned by the dataset's authors).
* Each clip resampled with ``scipy.signal.resample`` 7500 → 6000 samples (200 Hz), no filter,
  then cut into three non-overlapping 10 s windows; µV/100 at load.
* Labels: the fixed clip order of the experiment (:data:`CLIP_LABELS`): clips 1-3 anger,
  4-6 disgust, 7-9 fear, 10-12 sadness, 13-16 neutral, 17-19 amusement, 20-22 inspiration,
  23-25 joy, 26-28 tenderness.
* Channels are positional (the pickles carry no names); :data:`CHANNELS` is the order the
  dataset documents.
* Split: file names sorted, the first 80 train (sub000-sub079), the next 20 validate
  (sub080-sub099), the last 23 test (sub100-sub122).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from codebrain.benchmark.hooks import Recording, TaskWindows
from codebrain.benchmark.preprocessing import Resample
from codebrain.benchmark.recipe import TaskRecipe
from codebrain.benchmark.signal import fixed_windows, glob_recordings
from codebrain.benchmark.split import Split
from codebrain.benchmark.tasks._common import load_array_pickle

__all__ = ["CHANNELS", "CLASSES", "CLIP_LABELS", "RECIPE", "RECIPES"]

#: Class names in label order.
CLASSES = (
    "anger",
    "disgust",
    "fear",
    "sadness",
    "neutral",
    "amusement",
    "inspiration",
    "joy",
    "tenderness",
)
#: Label of each of the 28 clips, in the order they are stored (CBraMod's label array).
CLIP_LABELS = np.repeat(np.arange(9), [3, 3, 3, 3, 4, 3, 3, 3, 3])
#: The 32 channels in stored order (positional: the pickles have no channel names).
CHANNELS = (
    "FP1", "FP2", "FZ", "F3", "F4", "F7", "F8", "FC1", "FC2", "FC5", "FC6",
    "CZ", "C3", "C4", "T7", "T8", "A1", "A2", "CP1", "CP2", "CP5", "CP6",
    "PZ", "P3", "P4", "P7", "P8", "PO3", "PO4", "OZ", "O1", "O2",
)  # fmt: skip
N_SUBJECTS = 123
SFREQ_IN = 250.0

_SOURCE = (
    "https://www.synapse.org/Synapse:syn50614821 (FACED, Tsinghua University; free after a "
    "Synapse login: download Processed_data.zip)"
)
_LAYOUT = (
    "<DIR>/Processed_data/subNNN.pkl or <DIR>/subNNN.pkl for NNN = 000..122 (FACED "
    "Processed_data as distributed: each a pickled array 28 clips x 32 channels x 7500 samples)."
)


def _subjects(lo: int, hi: int) -> tuple[str, ...]:
    return tuple(f"sub{i:03d}" for i in range(lo, hi))


def find(root: Path) -> list[Recording]:
    """``subNNN.pkl`` in ``root`` or ``root/Processed_data``."""
    return glob_recordings(
        RECIPE, root, ["sub[0-9][0-9][0-9].pkl", "Processed_data/sub[0-9][0-9][0-9].pkl"]
    )


def load(recipe: TaskRecipe, rec: Recording) -> TaskWindows:
    """Three 10 s windows per clip, 84 per subject."""
    array = load_array_pickle(rec.path)
    n_clips = len(CLIP_LABELS)
    if array.ndim != 3 or array.shape[:2] != (n_clips, recipe.n_chans):
        raise ValueError(
            f"{rec.path}: expected an array ({n_clips} clips, {recipe.n_chans} channels, "
            f"samples), got shape {array.shape}."
        )
    windows, labels = [], []
    for clip, label in zip(array, CLIP_LABELS, strict=True):
        w = fixed_windows(recipe.prepare(clip, SFREQ_IN), recipe.n_times)
        windows.append(w)
        labels += [int(label)] * len(w)
    return TaskWindows(np.concatenate(windows), labels, rec.subject, rec.id)


RECIPE = TaskRecipe(
    name="faced",
    title="FACED (Finer-grained Affective Computing EEG Dataset, 9 emotions)",
    classes=CLASSES,
    channels=CHANNELS,
    preprocessing=(Resample(200.0, "scipy"),),
    window_s=10.0,
    stride_s=10.0,
    window_rule="each 30 s clip resampled 7500 -> 6000 samples, then cut into three 10 s windows",
    subject_pattern=r"(?P<subject>sub\d{3})\.pkl$",
    find=find,
    load=load,
    layout=_LAYOUT,
    source=_SOURCE,
    split=Split(_subjects(0, 80), _subjects(80, 100), _subjects(100, N_SUBJECTS)),
    split_note="sorted files: sub000-sub079 train, sub080-sub099 val, sub100-sub122 test",
    aliases=("faced9",),
    reference="CBraMod preprocessing/preprocessing_faced.py, datasets/faced_dataset.py",
)

RECIPES = (RECIPE,)
