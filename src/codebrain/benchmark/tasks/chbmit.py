"""CHB-MIT: seizure detection (binary) on the CHB-MIT Scalp EEG Database (PhysioNet).

CBraMod's protocol (taken over from BIOT; CodeBrain runs it as ``CHB-MIT``):

* Each ``chbNN/chbNN_MM.edf`` file, the 16 TCP bipolar derivations under the CHB-MIT names
  (``FP1-F7``, ``F7-T7``, ``T7-P7`` ... ``P4-O2``, :data:`CHANNELS`) as stored in the file;
  a repeated label (``T8-P8`` twice) keeps its first copy; a derivation the file lacks is
  zero-filled. µV at 256 Hz, no filter.
* Seizure times from ``chbNN/chbNN-summary.txt``; a seizure's first and last samples are
  ``seconds * 256 - 1``.
* Non-overlapping 10 s windows (2560 samples) from the file start, label 1 only when a
  seizure's start or end sample lies strictly inside the window (a window wholly inside a
  long seizure is 0, as in the authors' code). Each seizure adds label-1 windows starting
  every 5 s from 1 s before its start up to (not including) 1 s after its end. The
  authors also keep such a window when it runs past the file end (a shorter cut that their
  loader then stretches to 2000 samples); here only windows that fit in the file are kept.
* Every window resampled with ``scipy.signal.resample`` 2560 → 2000 samples (200 Hz), /100.
  The head has no dropout.
* The authors never processed patients chb12, chb13 and chb17, nor file chb24_02; they are
  left out here too. Split: chb01-chb20 (less those) train, chb21-chb22 val, chb23-chb24
  test.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from codebrain.benchmark.hooks import Recording, TaskWindows
from codebrain.benchmark.preprocessing import Resample
from codebrain.benchmark.recipe import DatasetNotFoundError, TaskRecipe
from codebrain.benchmark.split import Split
from codebrain.benchmark.tasks._common import kept_recordings
from codebrain.data.bipolar import bipolar_derivations

__all__ = ["CHANNELS", "RECIPE", "RECIPES", "read_chbmit_summary", "seizure_windows"]

logger = logging.getLogger(__name__)

#: The 16 bipolar derivations in the authors' order, CHB-MIT spelling (T7/P7/T8/P8).
CHANNELS = (
    "FP1-F7", "F7-T7", "T7-P7", "P7-O1", "FP2-F8", "F8-T8", "T8-P8", "P8-O2",
    "FP1-F3", "F3-C3", "C3-P3", "P3-O1", "FP2-F4", "F4-C4", "C4-P4", "P4-O2",
)  # fmt: skip
_PAIRS = tuple(tuple(c.split("-")) for c in CHANNELS)
NATIVE_SFREQ = 256.0
#: Patients and files the authors never processed.
EXCLUDED_PATIENTS = ("chb12", "chb13", "chb17")
EXCLUDED_FILES = ("chb24_02",)

_FILE_RE = re.compile(r"^(chb\d{2})_\d+\.edf$", re.IGNORECASE)
_LAYOUT = (
    "<DIR>/chbNN/chbNN_MM.edf with <DIR>/chbNN/chbNN-summary.txt for patients chb01-chb24 "
    "(PhysioNet chbmit 1.0.0 as distributed)."
)
_SOURCE = (
    "https://physionet.org/content/chbmit/1.0.0/ (open access; e.g. "
    "wget -r -N -c -np https://physionet.org/files/chbmit/1.0.0/)"
)


def read_chbmit_summary(path: str | Path) -> dict[str, list[tuple[float, float]]]:
    """Seizures per file of a ``chbNN-summary.txt``, in seconds.

    Parameters
    ----------
    path : path-like
        The summary file.

    Returns
    -------
    dict
        ``{"chb01_03.edf": [(start_s, end_s), ...], ...}``; every file the summary lists is
        a key (seizure-free files map to ``[]``).

    Raises
    ------
    ValueError
        A file's seizure start and end lines do not pair up, or an end precedes its start.
    """
    path = Path(path)
    out: dict[str, list[tuple[float, float]]] = {}
    for block in re.split(r"^File Name:\s*", path.read_text(errors="replace"), flags=re.M)[1:]:
        name = block.split()[0]
        starts = re.findall(r"Seizure\s*\d*\s*Start Time:\s*(\d+(?:\.\d+)?)", block)
        ends = re.findall(r"Seizure\s*\d*\s*End Time:\s*(\d+(?:\.\d+)?)", block)
        if len(starts) != len(ends):
            raise ValueError(
                f"{path}: {name} lists {len(starts)} seizure start(s) but {len(ends)} end(s)."
            )
        pairs = [(float(a), float(b)) for a, b in zip(starts, ends, strict=True)]
        for a, b in pairs:
            if b < a:
                raise ValueError(
                    f"{path}: {name} has a seizure ending ({b}) before it starts ({a})."
                )
        out[name] = pairs
    return out


def seizure_windows(
    n_samples: int, seizures_s: list[tuple[float, float]], *, sfreq: float = NATIVE_SFREQ
) -> tuple[list[int], list[int]]:
    """The authors' window starts and labels for one file, in native samples.

    Parameters
    ----------
    n_samples : int
        Length of the file.
    seizures_s : list of (start_s, end_s)
        From :func:`read_chbmit_summary`.
    sfreq : float
        Native rate (256 Hz).

    Returns
    -------
    (list of int, list of int)
        Window start samples and labels: first the non-overlapping 10 s windows (label 1
        when a seizure's start or end sample is strictly inside), then per seizure the
        5-s-stride label-1 windows from 1 s before its start to 1 s after its end that
        fit in the file (the authors keep truncated ones too; see the module notes).
    """
    length, stride, margin = round(10 * sfreq), round(5 * sfreq), round(sfreq)
    bounds = [(round(a * sfreq) - 1, round(b * sfreq) - 1) for a, b in seizures_s]
    starts, labels = [], []
    for w in range(0, n_samples - length + 1, length):
        inside = any(w < s < w + length or w < e < w + length for s, e in bounds)
        starts.append(w)
        labels.append(int(inside))
    for s, e in bounds:
        for w in range(max(0, s - margin), min(e + margin, n_samples - length), stride):
            starts.append(w)
            labels.append(1)
    return starts, labels


def _find(root: Path) -> list[Recording]:
    summaries: dict[str, Mapping[str, list[tuple[float, float]]]] = {}
    out, unlisted = [], []
    for f in sorted(root.glob("**/chb*_*.edf")):
        m = _FILE_RE.match(f.name)
        if not m or not f.is_file():
            continue
        patient = m.group(1).lower()
        if patient in EXCLUDED_PATIENTS or f.stem.lower() in EXCLUDED_FILES:
            continue
        summary = f.parent / f"{patient}-summary.txt"
        if patient not in summaries:
            if not summary.is_file():
                raise DatasetNotFoundError(
                    f"{RECIPE.title}: {f} has no {summary.name} beside it (seizure times). "
                    f"Expected layout: {_LAYOUT} Obtain the dataset from {_SOURCE}."
                )
            summaries[patient] = read_chbmit_summary(summary)
        if f.name not in summaries[patient]:
            unlisted.append(f.name)
            continue
        seizures = summaries[patient][f.name]
        out.append(
            Recording(
                f,
                RECIPE.subject_of(f, root),
                meta={"seizures": tuple(seizures), "stratum": int(bool(seizures))},
            )
        )
    return kept_recordings(
        out,
        unlisted,
        skip_warning="CHB-MIT: %d .edf file(s) are not in their patient's summary and are "
        "skipped (no seizure times)",
        not_found=f"{RECIPE.title}: no chbNN/chbNN_MM.edf files under {root}. Expected layout: "
        f"{_LAYOUT} Obtain the dataset from {_SOURCE}.",
    )


def _load(recipe: TaskRecipe, rec: Recording) -> TaskWindows:
    from codebrain.data.io import read_raw

    raw = read_raw(rec.path, preload=True, verbose="error")
    sfreq = float(raw.info["sfreq"])
    if abs(sfreq - NATIVE_SFREQ) > 1e-6:
        raise ValueError(f"{rec.path}: sampled at {sfreq:g} Hz; CHB-MIT files are 256 Hz.")
    data = bipolar_derivations(raw.get_data() * 1e6, raw.ch_names, _PAIRS, on_missing="zeros")
    starts, labels = seizure_windows(data.shape[1], list(rec.meta["seizures"]), sfreq=sfreq)
    if not starts:
        return TaskWindows.empty(recipe.n_chans, recipe.n_times)
    length = round(10 * sfreq)
    x = np.stack([recipe.prepare(data[:, w : w + length], sfreq) for w in starts])
    return TaskWindows(x, labels, rec.subject, rec.id)


def _patients(numbers) -> tuple[str, ...]:
    return tuple(f"chb{i:02d}" for i in numbers if f"chb{i:02d}" not in EXCLUDED_PATIENTS)


RECIPE = TaskRecipe(
    name="chb_mit",
    title="CHB-MIT (Scalp EEG seizure detection, PhysioNet chbmit 1.0.0)",
    classes=("background", "seizure"),
    channels=CHANNELS,
    preprocessing=(Resample(200.0, "scipy"),),
    window_s=10.0,
    stride_s=10.0,
    window_rule=(
        "non-overlapping from the file start (label 1 when a seizure starts or ends strictly "
        "inside), plus label-1 windows every 5 s from 1 s before each seizure to 1 s after; "
        "each window resampled 2560 -> 2000 samples"
    ),
    subject_pattern=r"^(?P<subject>chb\d{2})_",
    find=_find,
    load=_load,
    layout=_LAYOUT,
    source=_SOURCE,
    split=Split(_patients(range(1, 21)), _patients((21, 22)), _patients((23, 24))),
    split_note=(
        "patients chb01-chb20 train (chb12, chb13, chb17 never processed), chb21-chb22 val, "
        "chb23-chb24 test (chb24_02 left out)"
    ),
    head_dropout=0.0,
    aliases=("chbmit", "chb-mit", "chb"),
    reference="CBraMod preprocessing/CHB-MIT/process1.py, process2.py, datasets/chb_dataset.py",
)

RECIPES = (RECIPE,)
