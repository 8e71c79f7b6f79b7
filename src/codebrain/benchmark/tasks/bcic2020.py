"""BCIC2020-3: BCI Competition 2020 Track 3, imagined speech (5 words, 15 subjects, 64 ch).

Protocol of CodeBrain, which uses CBraMod's preprocessing (``preprocessing_speech.py``, loader
``speech_dataset.py``):

* Input: the competition's three sets as distributed, ``Training set/Data_SampleNN.mat``
  (``epo_train``), ``Validation set/Data_SampleNN.mat`` (``epo_validation``) with fields
  ``x`` (time, 64, trials) and ``y`` (one-hot, 5 × trials), and ``Test set/Data_SampleNN.mat``
  (MATLAB v7.3 / HDF5, ``epo_test/x``, read with h5py) whose labels are in
  ``Track3_Answer Sheet_Test.xlsx``: Excel rows 4-53 (the 50 trials), column C for subject 1,
  E for subject 2, ... (every other column), values 1-5.
* Per trial: the last 768 samples (3 s at 256 Hz), resampled with ``scipy.signal.resample``
  to 600 samples (200 Hz), no filter; µV/100 at load.
* Split: the competition's own sets; the unit is the recording (``Data_Sample01:train``,
  ``Data_Sample01:val``, ``Data_Sample01:test``), since every subject is in all three.
* Head without dropout.
"""

from __future__ import annotations

import logging
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from xml.etree import ElementTree

import numpy as np

from codebrain.benchmark.hooks import Recording, TaskWindows
from codebrain.benchmark.preprocessing import Resample
from codebrain.benchmark.recipe import DatasetNotFoundError, TaskRecipe
from codebrain.benchmark.split import Split
from codebrain.benchmark.tasks._common import load_mat, mat_key

__all__ = ["CHANNELS", "CLASSES", "RECIPE", "RECIPES", "read_answer_sheet"]

logger = logging.getLogger(__name__)

CLASSES = ("hello", "help_me", "stop", "thank_you", "yes")
#: The 64 channels in stored order (BrainAmp actiCAP order of the competition files).
CHANNELS = (
    "FP1", "FP2", "F7", "F3", "FZ", "F4", "F8", "FC5", "FC1", "FC2", "FC6", "T7", "C3", "CZ",
    "C4", "T8", "TP9", "CP5", "CP1", "CP2", "CP6", "TP10", "P7", "P3", "PZ", "P4", "P8", "PO9",
    "O1", "OZ", "O2", "PO10", "AF7", "AF3", "AF4", "AF8", "F5", "F1", "F2", "F6", "FT9", "FT7",
    "FC3", "FC4", "FT8", "FT10", "C5", "C1", "C2", "C6", "TP7", "CP3", "CPZ", "CP4", "TP8",
    "P5", "P1", "P2", "P6", "PO7", "PO3", "POZ", "PO4", "PO8",
)  # fmt: skip
#: Native rate: the authors take the last 768 samples (3 s) and resample them to 600.
SFREQ_IN = 256.0
N_LAST = 768
ANSWER_SHEET = "Track3_Answer Sheet_Test.xlsx"
#: Excel rows (1-based) of the 50 test trials in the answer sheet.
ANSWER_ROWS = (4, 53)

# set key -> (folder as distributed, .mat variable)
_SETS = {
    "train": ("Training set", "epo_train"),
    "val": ("Validation set", "epo_validation"),
    "test": ("Test set", "epo_test"),
}
_FILE_RE = re.compile(r"^Data_Sample(\d{2})\.mat$")
_SOURCE = (
    "https://osf.io/pq7vb/ (BCI Competition 2020 Track 3, imagined speech: the Training, "
    "Validation and Test set folders and Track3_Answer Sheet_Test.xlsx; no public downloader)"
)
_LAYOUT = (
    "<DIR>/{Training set,Validation set,Test set}/Data_SampleNN.mat (NN = 01..15) and "
    f"<DIR>/{ANSWER_SHEET} (the answer sheet may also sit in Test set/), as distributed."
)
_NS = {
    "m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
    "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "rel": "http://schemas.openxmlformats.org/package/2006/relationships",
}


# --------------------------------------------------------------------------------------------
# The answer sheet (.xlsx, read with the standard library)
# --------------------------------------------------------------------------------------------


def _column_index(letters: str) -> int:
    """``"A"`` → 1, ``"C"`` → 3, ``"AA"`` → 27."""
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - ord("A") + 1
    return n


def _first_sheet_cells(path: Path) -> dict[tuple[int, int], str]:
    """``{(row, column): text}`` of the first worksheet of an ``.xlsx`` file (1-based)."""
    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            book = ElementTree.fromstring(z.read("xl/workbook.xml"))
            first = book.find("m:sheets/m:sheet", _NS)
            target = "xl/worksheets/sheet1.xml"
            if first is not None and "xl/_rels/workbook.xml.rels" in names:
                rid = first.get(f"{{{_NS['r']}}}id")
                rels = ElementTree.fromstring(z.read("xl/_rels/workbook.xml.rels"))
                for rel in rels.findall("rel:Relationship", _NS):
                    if rel.get("Id") == rid:
                        t = rel.get("Target", "").lstrip("/")
                        target = t if t.startswith("xl/") else f"xl/{t}"
            shared: list[str] = []
            if "xl/sharedStrings.xml" in names:
                sst = ElementTree.fromstring(z.read("xl/sharedStrings.xml"))
                for si in sst.findall("m:si", _NS):
                    shared.append("".join(t.text or "" for t in si.iter(f"{{{_NS['m']}}}t")))
            sheet = ElementTree.fromstring(z.read(target))
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError) as err:
        raise ValueError(f"{path}: not a readable .xlsx workbook ({err}).") from err
    cells = {}
    for c in sheet.iter(f"{{{_NS['m']}}}c"):
        m = re.match(r"^([A-Z]+)(\d+)$", c.get("r", ""))
        if m is None:
            continue
        kind = c.get("t")
        if kind == "inlineStr":
            text = "".join(t.text or "" for t in c.iter(f"{{{_NS['m']}}}t"))
        else:
            v = c.find("m:v", _NS)
            if v is None or v.text is None:
                continue
            text = shared[int(v.text)] if kind == "s" else v.text
        cells[(int(m.group(2)), _column_index(m.group(1)))] = text
    return cells


def read_answer_sheet(path: str | Path, subject_number: int) -> np.ndarray:
    """Test labels (0-4) of one subject from ``Track3_Answer Sheet_Test.xlsx``.

    Parameters
    ----------
    path : path-like
        The answer sheet.
    subject_number : int
        1-15 (``Data_Sample01`` is 1); its labels are in column C, E, G, ... (3 + 2·(n − 1)),
        Excel rows 4-53.

    Returns
    -------
    np.ndarray, shape (50,)
        int64 labels, the sheet's 1-5 minus 1.

    Raises
    ------
    ValueError
        A cell is empty or not one of 1-5 (names the cell).
    """
    path = Path(path)
    cells = _first_sheet_cells(path)
    col = 3 + 2 * (subject_number - 1)
    labels = []
    for row in range(ANSWER_ROWS[0], ANSWER_ROWS[1] + 1):
        text = cells.get((row, col))
        try:
            value = float(text) if text is not None else None
        except ValueError:
            value = None
        if value is None or value not in (1, 2, 3, 4, 5):
            letters = ""
            n = col
            while n:
                n, r = divmod(n - 1, 26)
                letters = chr(ord("A") + r) + letters
            raise ValueError(
                f"{path}: cell {letters}{row} (subject {subject_number}) holds {text!r}, "
                "expected a label 1-5."
            )
        labels.append(int(value) - 1)
    return np.asarray(labels, dtype=np.int64)


# --------------------------------------------------------------------------------------------
# Hooks
# --------------------------------------------------------------------------------------------


def find(root: Path) -> list[Recording]:
    """The ``Data_SampleNN.mat`` files of the three set folders (at any depth)."""
    sheet = next(iter(sorted(root.rglob(ANSWER_SHEET))), None)
    out = []
    for key, (folder, var) in _SETS.items():
        for base in sorted(p for p in root.rglob(folder) if p.is_dir()):
            for f in sorted(base.glob("Data_Sample[0-9][0-9].mat")):
                meta = {"set": key, "var": var, "number": int(_FILE_RE.match(f.name).group(1))}  # type: ignore[union-attr]
                if key == "test":
                    if sheet is None:
                        continue
                    meta["answers"] = sheet
                out.append(Recording(f, RECIPE.subject_of(f, root), key=key, meta=meta))
    if not out:
        raise DatasetNotFoundError(
            f"{RECIPE.title}: no Data_SampleNN.mat files in 'Training set', 'Validation set' "
            f"or 'Test set' folders under {root}. Expected layout: {_LAYOUT} Obtain the "
            f"dataset from {_SOURCE}."
        )
    if sheet is None and any(root.rglob("Test set")):
        logger.warning(
            "BCIC2020-3: no %r under %s; the test set has no labels and is skipped.",
            ANSWER_SHEET,
            root,
        )
    return out


def _read_epochs(path: Path, var: str) -> tuple[np.ndarray, np.ndarray | None]:
    """``(trials, 64, time)`` µV and the one-hot labels ``(trials, 5)`` (None if absent).

    MATLAB v7.3 files (the test set) are HDF5 and read with h5py, which stores MATLAB's
    (time, 64, trials) as (trials, 64, time); older ones are read with SciPy.
    """
    try:
        import h5py
    except ImportError as err:
        raise ImportError(
            "BCIC2020-3 needs h5py for its MATLAB v7.3 test set: pip install "
            "'codebrain[benchmarks]' (or pip install h5py)."
        ) from err
    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as f:
            if var not in f or "x" not in f[var]:
                raise ValueError(f"{path}: no {var}/x dataset in the v7.3 (HDF5) file.")
            x = np.asarray(f[var]["x"][()], dtype=np.float64)
            y = np.asarray(f[var]["y"][()]) if "y" in f[var] else None
        return x, y
    mat = load_mat(path)
    st = mat_key(mat, var, path)
    if st.dtype.names is None or "x" not in st.dtype.names:
        raise ValueError(f"{path}: {var} has no field 'x' (fields {st.dtype.names}).")
    x = np.asarray(st[0, 0]["x"], dtype=np.float64).transpose(2, 1, 0)
    y = np.asarray(st[0, 0]["y"]).T if "y" in st.dtype.names else None
    return x, y


def load(recipe: TaskRecipe, rec: Recording) -> TaskWindows:
    """The trials of one set file: last 768 samples, resampled to 600."""
    x, onehot = _read_epochs(rec.path, rec.meta["var"])
    if x.ndim != 3 or x.shape[1] != recipe.n_chans or x.shape[2] < N_LAST:
        raise ValueError(
            f"{rec.path}: expected trials x {recipe.n_chans} channels x >= {N_LAST} samples, "
            f"got {x.shape}."
        )
    if rec.meta["set"] == "test":
        y = read_answer_sheet(rec.meta["answers"], rec.meta["number"])[: len(x)]
    else:
        if onehot is None:
            raise ValueError(f"{rec.path}: {rec.meta['var']} has no labels 'y'.")
        y = np.argmax(onehot, axis=1)
    if len(y) != len(x):
        raise ValueError(f"{rec.path}: {len(x)} trials but {len(y)} labels.")
    w = np.stack([recipe.prepare(trial[:, -N_LAST:], SFREQ_IN) for trial in x])
    return TaskWindows(w, y, rec.subject, rec.id)


def split_rule(recordings: Sequence[Recording], fold: int) -> Split | None:
    """The competition's sets, by recording; None unless all three sets are present."""
    parts = {k: tuple(r.id for r in recordings if r.key == k) for k in _SETS}
    if not all(parts.values()):
        return None
    return Split(parts["train"], parts["val"], parts["test"], unit="recording")


RECIPE = TaskRecipe(
    name="bcic2020_3",
    title="BCIC2020-3 (BCI Competition 2020 Track 3, imagined speech, 5 words)",
    classes=CLASSES,
    channels=CHANNELS,
    preprocessing=(Resample(200.0, "scipy"),),
    window_s=3.0,
    stride_s=None,
    window_rule="per trial: the last 768 samples (3 s at 256 Hz) resampled to 600",
    subject_pattern=r"(?P<subject>Data_Sample\d{2})\.mat$",
    find=find,
    load=load,
    layout=_LAYOUT,
    source=_SOURCE,
    split_rule=split_rule,
    split_note=(
        "the competition's sets: Training set = train (300 trials/subject), Validation set = "
        "val (50), Test set = test (50, labels from the answer sheet); by recording"
    ),
    head_dropout=0.0,
    aliases=("bcic2020", "bcic2020-3", "imagined_speech", "speech"),
    reference="CBraMod preprocessing/preprocessing_speech.py, datasets/speech_dataset.py",
)

RECIPES = (RECIPE,)
