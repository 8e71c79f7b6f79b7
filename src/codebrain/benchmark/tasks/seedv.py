"""SEED-V: five emotions from 62-channel EEG (16 subjects × 3 sessions × 15 film clips).

Protocol of CodeBrain, which uses CBraMod's preprocessing (``preprocessing_SEEDV.py``, loader
``seedv_dataset.py``):

* Input: the distributed Neuroscan files ``EEG_raw/S_session_date.cnt`` (``1_1_20180804.cnt``:
  subject 1, session 1), 66 channels at 1000 Hz.
* M1, M2, VEO and HEO dropped → the 62 EEG channels in the usual SEED order
  (:data:`CHANNELS`); MNE ``raw.resample(200)`` → ``raw.filter(0.3, 75)``, no notch, no
  re-reference; µV/100 at load.
* The 15 trials of a session are the spans ``[start, end)`` seconds of
  :data:`TRIAL_SECONDS` (the same table for every subject of that session), labelled by
  :data:`SESSION_LABELS`; each trial is cut into non-overlapping 1 s windows.
* Split **by trial**, not by subject: in every session file trials 0-4 train, 5-9 validate,
  10-14 test (split unit ``"trial"``; a trial id is ``<recording>/trialNN``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from codebrain.benchmark.hooks import Recording, TaskWindows
from codebrain.benchmark.preprocessing import BandPass, Resample
from codebrain.benchmark.recipe import TaskRecipe
from codebrain.benchmark.signal import fixed_windows, glob_recordings, pick_channels
from codebrain.benchmark.split import Split

__all__ = [
    "CHANNELS",
    "CLASSES",
    "DROPPED",
    "RECIPE",
    "RECIPES",
    "SESSION_LABELS",
    "TRIAL_SECONDS",
    "trial_id",
]

CLASSES = ("disgust", "fear", "sad", "neutral", "happy")
#: Non-EEG channels of the files, dropped by the authors.
DROPPED = ("M1", "M2", "VEO", "HEO")
#: The 62 EEG channels, in the files' order.
CHANNELS = (
    "FP1", "FPZ", "FP2", "AF3", "AF4", "F7", "F5", "F3", "F1", "FZ", "F2", "F4", "F6", "F8",
    "FT7", "FC5", "FC3", "FC1", "FCZ", "FC2", "FC4", "FC6", "FT8", "T7", "C5", "C3", "C1",
    "CZ", "C2", "C4", "C6", "T8", "TP7", "CP5", "CP3", "CP1", "CPZ", "CP2", "CP4", "CP6",
    "TP8", "P7", "P5", "P3", "P1", "PZ", "P2", "P4", "P6", "P8", "PO7", "PO5", "PO3", "POZ",
    "PO4", "PO6", "PO8", "CB1", "O1", "OZ", "O2", "CB2",
)  # fmt: skip
#: Per session: the 15 trials' (start, end) in seconds from the recording start.
TRIAL_SECONDS: dict[int, tuple[tuple[int, int], ...]] = {
    1: tuple(zip(
        (30, 132, 287, 555, 773, 982, 1271, 1628, 1730, 2025, 2227, 2435, 2667, 2932, 3204),
        (102, 228, 524, 742, 920, 1240, 1568, 1697, 1994, 2166, 2401, 2607, 2901, 3172, 3359),
        strict=True,
    )),
    2: tuple(zip(
        (30, 299, 548, 646, 836, 1000, 1091, 1392, 1657, 1809, 1966, 2186, 2333, 2490, 2741),
        (267, 488, 614, 773, 967, 1059, 1331, 1622, 1777, 1908, 2153, 2302, 2428, 2709, 2817),
        strict=True,
    )),
    3: tuple(zip(
        (30, 353, 478, 674, 825, 908, 1200, 1346, 1451, 1711, 2055, 2307, 2457, 2726, 2888),
        (321, 418, 643, 764, 877, 1147, 1284, 1418, 1679, 1996, 2275, 2425, 2664, 2857, 3066),
        strict=True,
    )),
}  # fmt: skip
#: Per session: the label (index into :data:`CLASSES`) of each of the 15 trials.
SESSION_LABELS: dict[int, tuple[int, ...]] = {
    1: (4, 1, 3, 2, 0, 4, 1, 3, 2, 0, 4, 1, 3, 2, 0),
    2: (2, 1, 3, 0, 4, 4, 0, 3, 2, 1, 3, 4, 1, 2, 0),
    3: (2, 1, 3, 0, 4, 4, 0, 3, 2, 1, 3, 4, 1, 2, 0),
}
#: Trials of each part, per session (the authors' ``range(5)``, ``range(5, 10)``, ...).
TRIAL_PARTS = {"train": range(0, 5), "val": range(5, 10), "test": range(10, 15)}

_SOURCE = (
    "https://bcmi.sjtu.edu.cn/home/seed/seed-v.html (SEED-V, SJTU BCMI lab; free for "
    "research after an emailed licence agreement, no public downloader)"
)
_LAYOUT = (
    "<DIR>/EEG_raw/S_session_date.cnt (e.g. 1_1_20180804.cnt: subject 1, session 1; sessions "
    "1-3; any depth), the Neuroscan files as distributed."
)


def trial_id(recording_id: str, trial: int) -> str:
    """The split id of one trial: ``"1_1_20180804/trial03"``."""
    return f"{recording_id}/trial{trial:02d}"


def _session(path: Path) -> int:
    parts = path.stem.split("_")
    if len(parts) < 3 or parts[1] not in ("1", "2", "3"):
        raise ValueError(
            f"{path.name}: expected S_session_date.cnt with session 1, 2 or 3. Layout: {_LAYOUT}"
        )
    return int(parts[1])


def find(root: Path) -> list[Recording]:
    """The ``S_session_date.cnt`` files under ``root``."""
    return glob_recordings(
        RECIPE,
        root,
        ["**/[0-9]*_[123]_*.cnt"],
        meta=lambda p: {"session": _session(p), "stratum": _session(p)},
    )


def _read_cnt(path: Path) -> Any:
    """The Neuroscan recording (an ``mne.io.BaseRaw``)."""
    from codebrain.data.io import read_raw

    return read_raw(path, preload=True, verbose="error")


def load(recipe: TaskRecipe, rec: Recording) -> TaskWindows:
    """1 s windows of the 15 trials, with their trial ids as groups."""
    raw = _read_cnt(rec.path)
    sfreq = float(raw.info["sfreq"])
    names = [n for n in raw.ch_names if n.strip().upper() not in DROPPED]
    keep = [i for i, n in enumerate(raw.ch_names) if n.strip().upper() not in DROPPED]
    data = raw.get_data()[keep] * 1e6
    x = recipe.prepare(pick_channels(data, names, recipe.channels, where=str(rec.path)), sfreq)
    session = rec.meta["session"]
    windows, labels, groups = [], [], []
    for j, ((start, end), label) in enumerate(
        zip(TRIAL_SECONDS[session], SESSION_LABELS[session], strict=True)
    ):
        a, b = round(start * recipe.sfreq), round(end * recipe.sfreq)
        if b > x.shape[1]:
            raise ValueError(
                f"{rec.path}: trial {j} of session {session} ends at {end} s but the "
                f"recording lasts {x.shape[1] / recipe.sfreq:g} s."
            )
        w = fixed_windows(x[:, a:b], recipe.n_times)
        windows.append(w)
        labels += [label] * len(w)
        groups += [trial_id(rec.id, j)] * len(w)
    return TaskWindows(np.concatenate(windows), labels, rec.subject, rec.id, groups)


def split_rule(recordings: Sequence[Recording], fold: int) -> Split:
    """Trials 0-4 / 5-9 / 10-14 of every session file found."""
    parts = {
        part: tuple(trial_id(r.id, j) for r in recordings for j in trials)
        for part, trials in TRIAL_PARTS.items()
    }
    return Split(parts["train"], parts["val"], parts["test"], unit="trial")


RECIPE = TaskRecipe(
    name="seed_v",
    title="SEED-V (5 emotions, 62-channel EEG, split by trial)",
    classes=CLASSES,
    channels=CHANNELS,
    preprocessing=(Resample(200.0, "mne"), BandPass(0.3, 75.0)),
    window_s=1.0,
    stride_s=1.0,
    window_rule="non-overlapping 1 s windows inside each trial's [start, end) seconds",
    subject_pattern=r"^(?P<subject>\d+)_[123]_",
    find=find,
    load=load,
    layout=_LAYOUT,
    source=_SOURCE,
    split_rule=split_rule,
    split_note="by trial: in every session file trials 0-4 train, 5-9 val, 10-14 test",
    aliases=("seedv", "seed-v"),
    reference="CBraMod preprocessing/preprocessing_SEEDV.py, datasets/seedv_dataset.py",
)

RECIPES = (RECIPE,)
