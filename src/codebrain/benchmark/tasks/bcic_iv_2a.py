"""BCIC-IV-2a: BCI Competition IV dataset 2a (BNCI 2014-001), 4-class motor imagery.

CBraMod's protocol (``preprocessing_bciciv2a.py``; CodeBrain has no BCIC-IV-2a run): the
BNCI Horizon ``.mat`` files ``A0sT.mat``/``A0sE.mat`` (what MOABB's ``BNCI2014_001``
downloads); per trial (cue-to-next-cue segment) the 22 EEG channels, the mean over channels
subtracted, a causal Butterworth band-pass 0.3-40 Hz of order 5, then the 2-6 s part after
the trial start (the 4 s of imagery) resampled 1000 → 800 samples (250 → 200 Hz,
``scipy.signal.resample``); µV/100; classes left hand, right hand, feet, tongue; A01-A05 (T
and E sessions) train, A06-A07 val, A08-A09 test.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from codebrain.benchmark.hooks import Recording, TaskWindows
from codebrain.benchmark.preprocessing import BandPass, CommonAverage, Resample
from codebrain.benchmark.recipe import TaskRecipe
from codebrain.benchmark.signal import apply_preprocessing, glob_recordings
from codebrain.benchmark.split import Split

_FILE_RE = re.compile(r"^(A0[1-9])([TE])\.mat$")
N_EEG = 22
TRIAL_START_S, TRIAL_STOP_S = 2.0, 6.0

CHANNELS = (
    "FZ", "FC3", "FC1", "FCZ", "FC2", "FC4",
    "C5", "C3", "C1", "CZ", "C2", "C4", "C6",
    "CP3", "CP1", "CPZ", "CP2", "CP4",
    "P1", "PZ", "P2", "POZ",
)  # fmt: skip


def find(root: Path) -> list[Recording]:
    """``A01T.mat`` ... ``A09E.mat`` anywhere under ``root``."""
    return glob_recordings(
        RECIPE,
        root,
        ["**/A0[1-9][TE].mat"],
        meta=lambda p: {"session": _FILE_RE.match(p.name).group(2)},  # type: ignore[union-attr]
    )


def trial_windows(
    recipe: TaskRecipe, runs: list[tuple[np.ndarray, np.ndarray, np.ndarray]], sfreq: float
) -> tuple[np.ndarray, np.ndarray]:
    """CBraMod's per-trial processing of BNCI runs.

    Parameters
    ----------
    recipe : TaskRecipe
    runs : list of (X, trial, y)
        Per run: ``X`` ``(n_samples, >= 22)`` µV, ``trial`` start samples, ``y`` labels 1..4.
        Runs without labels (EOG calibration) must be left out.
    sfreq : float
        Native rate (250 Hz).

    Returns
    -------
    (np.ndarray, np.ndarray)
        ``(n_trials, 22, 800)`` float32 model units and labels 0..3.
    """
    filters = [s for s in recipe.preprocessing if not isinstance(s, Resample)]
    resample = [s for s in recipe.preprocessing if isinstance(s, Resample)]
    a, b = round(TRIAL_START_S * sfreq), round(TRIAL_STOP_S * sfreq)
    out, labels = [], []
    for X, trial, y in runs:
        bounds = [int(t) - 1 for t in np.ravel(trial)] + [len(X)]  # MATLAB 1-based starts
        for i, label in enumerate(np.ravel(y)):
            seg = np.asarray(X[bounds[i] : bounds[i + 1], :N_EEG], dtype=np.float64).T
            seg, _ = apply_preprocessing(seg, sfreq, filters)
            cut = seg[:, a:b]
            if cut.shape[1] != b - a:
                continue  # trial shorter than 6 s (end of a run)
            x, _ = apply_preprocessing(cut, sfreq, resample)
            out.append((x * recipe.amplitude_scale).astype(np.float32))
            labels.append(int(label) - 1)
    if not out:
        return np.zeros((0, N_EEG, recipe.n_times), np.float32), np.zeros(0, np.int64)
    return np.stack(out), np.asarray(labels, dtype=np.int64)


def load(recipe: TaskRecipe, rec: Recording) -> TaskWindows:
    """Trials of one BNCI session file."""
    import scipy.io

    mat = scipy.io.loadmat(rec.path)
    if "data" not in mat:
        raise ValueError(f"{rec.path}: no 'data' variable; expected a BNCI 2014-001 .mat file.")
    runs, sfreq = [], 250.0
    for j in range(mat["data"].shape[1]):
        run = mat["data"][0, j][0, 0]
        y = np.ravel(run["y"]) if "y" in run.dtype.names else np.ravel(run[2])
        if y.size == 0:  # EOG calibration block, no trials
            continue
        sfreq = float(np.ravel(run["fs"])[0]) if "fs" in run.dtype.names else sfreq
        runs.append((run["X"], run["trial"], y))
    x, y = trial_windows(recipe, runs, sfreq)
    return TaskWindows(x, y, rec.subject, rec.id)


def download(recipe: TaskRecipe, root: Path) -> None:
    """Fetch the 18 session files with MOABB's ``BNCI2014_001`` into ``root``."""
    try:
        from moabb.datasets import BNCI2014_001
    except ImportError as err:
        raise ImportError(
            "--download for BCIC-IV-2a needs MOABB: pip install 'codebrain[benchmarks]' "
            "(or pip install moabb)."
        ) from err
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    dataset = BNCI2014_001()
    for subject in dataset.subject_list:
        dataset.data_path(subject, path=str(root))


RECIPE = TaskRecipe(
    name="bcic_iv_2a",
    title="BCIC-IV-2a (BNCI 2014-001 motor imagery, CBraMod protocol)",
    classes=("left_hand", "right_hand", "feet", "tongue"),
    channels=CHANNELS,
    preprocessing=(
        CommonAverage(),
        BandPass(0.3, 40.0, method="butter", order=5, causal=True),
        Resample(200.0, "scipy"),
    ),
    window_s=4.0,
    stride_s=None,
    window_rule="per trial: 2-6 s after the trial start (the imagery period), filtered per trial",
    subject_pattern=r"(?P<subject>A0[1-9])[TE]\.mat",
    find=find,
    load=load,
    layout=(
        "<DIR>/A0sT.mat and <DIR>/A0sE.mat for s = 1..9 (BNCI Horizon 001-2014 files, as MOABB's "
        "BNCI2014_001 stores them under MNE-bnci-data/database/data-sets/001-2014/; any depth)."
    ),
    source="http://bnci-horizon-2020.eu/database/data-sets/001-2014/ (or MOABB BNCI2014_001)",
    split=Split(("A01", "A02", "A03", "A04", "A05"), ("A06", "A07"), ("A08", "A09")),
    split_note="A01-A05 train, A06-A07 val, A08-A09 test (T and E sessions each)",
    download=download,
    aliases=("bciciv2a", "bcic-iv-2a", "bnci2014_001", "bnci2014001"),
    reference="CBraMod preprocessing/preprocessing_bciciv2a.py, datasets/bciciv2a_dataset.py",
)

RECIPES = (RECIPE,)
