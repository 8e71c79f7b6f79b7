"""MentalArithmetic: PhysioNet EEGMAT 1.0.0, rest vs serial subtraction (binary).

Protocol of CodeBrain/CBraMod (``preprocessing_stress.py``, ``stress_dataset.py``): 20 channels
(the 19 10-20 electrodes + the ``A2-A1`` derivation) in the file's order, MNE resample 500 →
200 Hz, no filter, non-overlapping 5 s windows from the start (the remainder dropped), µV/100;
label from the file-name suffix (``_1`` rest → 0, ``_2`` task → 1); sorted files 56/8/8 =
subjects 0-27 / 28-31 / 32-35.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from codebrain.benchmark.hooks import Recording, TaskWindows
from codebrain.benchmark.preprocessing import Resample
from codebrain.benchmark.recipe import DatasetNotFoundError, TaskRecipe
from codebrain.benchmark.signal import fixed_windows, glob_recordings, read_channels
from codebrain.benchmark.split import Split

logger = logging.getLogger(__name__)

EEGMAT_URL = "https://physionet.org/files/eegmat/1.0.0/"
N_SUBJECTS = 36
_FILE_RE = re.compile(r"^Subject(\d{2})_([12])\.edf$", re.IGNORECASE)

CHANNELS = (
    "FP1",
    "FP2",
    "F3",
    "F4",
    "F7",
    "F8",
    "T3",
    "T4",
    "C3",
    "C4",
    "T5",
    "T6",
    "P3",
    "P4",
    "O1",
    "O2",
    "FZ",
    "CZ",
    "PZ",
    "A2-A1",
)


def _subjects(lo: int, hi: int) -> tuple[str, ...]:
    return tuple(f"Subject{i:02d}" for i in range(lo, hi))


def _label(path: Path) -> int:
    m = _FILE_RE.match(path.name)
    if m is None:  # glob already restricts names; kept for direct calls
        raise ValueError(f"{path.name} is not named SubjectNN_1.edf or SubjectNN_2.edf.")
    return int(m.group(2)) - 1


def find(root: Path) -> list[Recording]:
    """``SubjectNN_1.edf`` (rest) and ``SubjectNN_2.edf`` (arithmetic) under ``root``."""
    recordings = glob_recordings(RECIPE, root, ["Subject[0-9][0-9]_[12].edf"], label=_label)
    by_subject: dict[str, list[str]] = {}
    for r in recordings:
        by_subject.setdefault(r.subject, []).append(r.id)
    lonely = sorted(s for s, ids in by_subject.items() if len(ids) != 2)
    if lonely:
        logger.warning(
            "MentalArithmetic: %d subject(s) lack their rest or task file: %s.",
            len(lonely),
            ", ".join(lonely[:6]),
        )
    return recordings


def load(recipe: TaskRecipe, rec: Recording) -> TaskWindows:
    """Windows of one EEGMAT file, labelled by its suffix."""
    data, sfreq, _ = read_channels(rec.path, recipe.channels)
    x = recipe.prepare(data, sfreq)
    w = fixed_windows(x, recipe.n_times)
    return TaskWindows(w, [int(rec.label)] * len(w), rec.subject, rec.id)


def download(recipe: TaskRecipe, root: Path) -> None:
    """Fetch the 72 EDF files of EEGMAT from PhysioNet into ``root`` with pooch.

    Each file is checked against PhysioNet's ``SHA256SUMS.txt``.
    """
    try:
        import pooch
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "--download for MentalArithmetic needs pooch: pip install 'codebrain[benchmarks]'."
        ) from err
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    sums_path = pooch.retrieve(
        EEGMAT_URL + "SHA256SUMS.txt", known_hash=None, path=root, fname="SHA256SUMS.txt"
    )
    sums = parse_sha256sums(Path(sums_path).read_text())
    for i in range(N_SUBJECTS):
        for k in (1, 2):
            name = f"Subject{i:02d}_{k}.edf"
            if name not in sums:
                raise DatasetNotFoundError(
                    f"PhysioNet's SHA256SUMS.txt for EEGMAT does not list {name}; cannot verify it."
                )
            pooch.retrieve(
                EEGMAT_URL + name, known_hash=f"sha256:{sums[name]}", path=root, fname=name
            )


def parse_sha256sums(text: str) -> dict[str, str]:
    """``{file name: sha256}`` from a ``sha256sum`` listing (``<hash>  <name>`` per line)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split()
        if len(parts) == 2 and re.fullmatch(r"[0-9a-fA-F]{64}", parts[0]):
            out[parts[1].lstrip("*").split("/")[-1]] = parts[0].lower()
    return out


RECIPE = TaskRecipe(
    name="mental_arithmetic",
    title="MentalArithmetic (PhysioNet EEGMAT)",
    classes=("rest", "arithmetic"),
    channels=CHANNELS,
    preprocessing=(Resample(200.0, "mne"),),
    window_s=5.0,
    stride_s=5.0,
    window_rule="non-overlapping from the file start; the remainder is dropped",
    subject_pattern=r"(?P<subject>Subject\d{2})_[12]",
    find=find,
    load=load,
    layout=(
        "<DIR>/SubjectNN_1.edf (rest) and <DIR>/SubjectNN_2.edf (arithmetic), NN = 00..35, "
        "as in PhysioNet's eegmat/1.0.0 folder."
    ),
    source="https://physionet.org/content/eegmat/1.0.0/ (open, ODC-By 1.0)",
    split=Split(_subjects(0, 28), _subjects(28, 32), _subjects(32, 36)),
    split_note="sorted files 56/8/8: subjects 00-27 train, 28-31 val, 32-35 test",
    download=download,
    # codebrain's addition, not the authors': over 6 subject folds x 3 seeds at 50 epochs it
    # raised CodeBrain's test AUROC 0.673 -> 0.708 (12 of 18 folds); EEGNet's 0.593 -> 0.678 at
    # 10 epochs, 0.710 -> 0.712 at 50 (benchmarks/results/eegmat_bench_cv.md); --no-augment
    # turns it off
    augment=True,
    aliases=("eegmat", "mentalarithmetic", "mental-arithmetic", "stress"),
    reference="CBraMod preprocessing/preprocessing_stress.py, datasets/stress_dataset.py",
)

RECIPES = (RECIPE,)
