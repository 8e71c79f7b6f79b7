"""PhysioNet-MI: EEG Motor Movement/Imagery (EEGBCI, ``eegmmidb`` 1.0.0), 4-class imagery.

CBraMod's protocol (``preprocessing_physio.py``; CodeBrain has no PhysioNet-MI run): imagery
runs R04/R06/R08/R10/R12/R14; all 64 channels in the EDF's order; average reference,
high-pass 0.3 Hz (FIR), notch 60 Hz, resample 160 → 200 Hz; 4 s epochs from each cue onset
(T0 rest dropped); R04/R08/R12: T1 → left fist (0), T2 → right fist (1); R06/R10/R14: T1 →
both fists (2), T2 → both feet (3); µV/100; sorted subject folders 70/19/20 = S001-S070 /
S071-S089 / S090-S109.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from codebrain.benchmark.hooks import Recording, TaskWindows
from codebrain.benchmark.preprocessing import BandPass, CommonAverage, Notch, Resample
from codebrain.benchmark.recipe import TaskRecipe
from codebrain.benchmark.signal import event_windows, glob_recordings, read_channels
from codebrain.benchmark.split import Split

IMAGERY_RUNS = (4, 6, 8, 10, 12, 14)
_FISTS_RUNS = (4, 8, 12)  # left vs right fist; the others: both fists vs both feet
_RUN_RE = re.compile(r"S(\d{3})R(\d{2})\.edf$", re.IGNORECASE)

CHANNELS = (
    "FC5", "FC3", "FC1", "FCZ", "FC2", "FC4", "FC6",
    "C5", "C3", "C1", "CZ", "C2", "C4", "C6",
    "CP5", "CP3", "CP1", "CPZ", "CP2", "CP4", "CP6",
    "FP1", "FPZ", "FP2", "AF7", "AF3", "AFZ", "AF4", "AF8",
    "F7", "F5", "F3", "F1", "FZ", "F2", "F4", "F6", "F8",
    "FT7", "FT8", "T7", "T8", "T9", "T10", "TP7", "TP8",
    "P7", "P5", "P3", "P1", "PZ", "P2", "P4", "P6", "P8",
    "PO7", "PO3", "POZ", "PO4", "PO8", "O1", "OZ", "O2", "IZ",
)  # fmt: skip


def _subjects(lo: int, hi: int) -> tuple[str, ...]:
    return tuple(f"S{i:03d}" for i in range(lo, hi + 1))


def _run(path: Path) -> int:
    m = _RUN_RE.search(path.name)
    if m is None:
        raise ValueError(f"{path.name} is not named SxxxRyy.edf.")
    return int(m.group(2))


def find(root: Path) -> list[Recording]:
    """The imagery runs ``SxxxR04/06/08/10/12/14.edf`` anywhere under ``root``."""
    patterns = [f"**/S[0-9][0-9][0-9]R{r:02d}.edf" for r in IMAGERY_RUNS]
    return glob_recordings(RECIPE, root, patterns, meta=_meta)


def _meta(path: Path) -> dict:
    run = _run(path)
    return {"run": run, "stratum": "fists" if run in _FISTS_RUNS else "fists_feet"}


def load(recipe: TaskRecipe, rec: Recording) -> TaskWindows:
    """4 s windows from every T1/T2 cue of one run."""
    data, sfreq, raw = read_channels(rec.path, recipe.channels)
    x = recipe.prepare(data, sfreq)
    run = int(rec.meta.get("run", _run(rec.path)))
    base = 0 if run in _FISTS_RUNS else 2
    onsets, labels = [], []
    for onset, desc in zip(raw.annotations.onset, raw.annotations.description, strict=True):
        if desc in ("T1", "T2"):
            onsets.append(round((onset - raw.first_time) * recipe.sfreq))
            labels.append(base + (0 if desc == "T1" else 1))
    w, kept = event_windows(x, onsets, recipe.n_times)
    return TaskWindows(w, np.asarray(labels, dtype=np.int64)[kept], rec.subject, rec.id)


def download(recipe: TaskRecipe, root: Path) -> None:
    """Fetch the imagery runs of all 109 subjects into ``root`` with MNE's ``eegbci`` fetcher.

    MNE checks PhysioNet's SHA256 sums.
    """
    import mne

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for subject in range(1, 110):
        mne.datasets.eegbci.load_data(
            subject, list(IMAGERY_RUNS), path=str(root), update_path=False, verbose="error"
        )


RECIPE = TaskRecipe(
    name="physionet_mi",
    title="PhysioNet-MI (EEGBCI motor imagery, CBraMod protocol)",
    classes=("left_fist", "right_fist", "both_fists", "both_feet"),
    channels=CHANNELS,
    preprocessing=(CommonAverage(), BandPass(0.3, None), Notch(60.0), Resample(200.0, "mne")),
    window_s=4.0,
    stride_s=None,
    window_rule="event-locked: 4 s from each T1/T2 cue onset (T0 rest dropped)",
    subject_pattern=r"(?P<subject>S\d{3})R\d{2}",
    find=find,
    load=load,
    layout=(
        "<DIR>/SNNN/SNNNRyy.edf (runs 04, 06, 08, 10, 12, 14) for S001..S109, as in PhysioNet's "
        "eegmmidb/1.0.0 folder or MNE's eegbci download (any sub-folder depth)."
    ),
    source="https://physionet.org/content/eegmmidb/1.0.0/ (open, ODC-By 1.0)",
    split=Split(_subjects(1, 70), _subjects(71, 89), _subjects(90, 109)),
    split_note="sorted subject folders 70/19/20: S001-S070 train, S071-S089 val, S090-S109 test",
    download=download,
    aliases=("physionet", "eegbci", "eegmmidb", "physio"),
    reference="CBraMod preprocessing/preprocessing_physio.py, datasets/physio_dataset.py",
)

RECIPES = (RECIPE,)
