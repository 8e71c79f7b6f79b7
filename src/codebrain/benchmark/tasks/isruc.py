"""ISRUC-Sleep subgroups 1 and 3: five-class sleep staging on sequences of 20 epochs.

CodeBrain's protocol (``Preprocessing/`` ISRUC_S3 pipeline and CBraMod's ISRUC scripts;
loaders ``isruc_dataset.py``/``isruc3_dataset.py``, which return raw µV, no /100):

* Six EEG derivations F3-A2, C3-A2, O1-A2, F4-A1, C4-A1, O2-A1 (:data:`CHANNELS`; some
  files spell the mastoids M1/M2), 200 Hz; FIR band-pass 0.3-35 Hz then a 50 Hz notch.
* 30 s epochs with scorer 1's stage per epoch (``N_1.txt``: 0 W, 1 N1, 2 N2, 3 N3, 5 REM;
  5 → 4), the epoch count cut to a multiple of 20, and non-overlapping sequences of 20
  epochs (the sequence head): ``x`` ``(n, 6, 20 * 6000)``, ``y`` ``(n, 20)``.
* ISRUC-S1 (100 subjects): the PSG file ``N/N.rec`` (EDF) filtered whole, then cut into
  epochs. Split: subjects 1-80 train, 81-90 val, 91-100 test.
* ISRUC-S3 (10 subjects): the distributed ``ExtractedChannels/subjectN.mat`` (one array
  ``(epochs, samples)`` per channel, keys ``F3_A2`` ...), each epoch resampled with
  ``scipy.signal.resample`` to 6000 samples (a no-op at 200 Hz) and filtered; labels
  ``RawData/N/N_1.txt`` with the last 30 lines dropped (they score epochs the extracted
  channels do not hold). Ten folds: fold f validates on subject f+1 and tests on subject
  (f+1) mod 10 + 1, the other eight train.

Subject ids are the dataset's numbers as strings (``"1"`` ... ``"100"``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from codebrain.benchmark.hooks import Recording, TaskWindows
from codebrain.benchmark.preprocessing import BandPass, Notch, Resample
from codebrain.benchmark.recipe import TaskRecipe
from codebrain.benchmark.signal import pick_channels
from codebrain.benchmark.split import Split
from codebrain.benchmark.tasks._common import kept_recordings, load_mat, mat_key, read_edf_raw

__all__ = [
    "CHANNELS",
    "ISRUC_S1",
    "ISRUC_S3",
    "RECIPES",
    "SLEEP_STAGES",
    "read_isruc_labels",
    "epoch_sequences",
]

logger = logging.getLogger(__name__)

#: The six EEG derivations in the authors' order.
CHANNELS = ("F3-A2", "C3-A2", "O1-A2", "F4-A1", "C4-A1", "O2-A1")
#: Classes in label order (file label 5, REM, is class 4).
SLEEP_STAGES = ("W", "N1", "N2", "N3", "REM")
SEQUENCE_LENGTH = 20
EPOCH_S = 30.0
_PREPROCESSING = (BandPass(0.3, 35.0), Notch(50.0))
_SOURCE = (
    "https://sleeptight.isr.uc.pt/ (ISRUC-Sleep; files at http://dataset.isr.uc.pt/ISRUC_Sleep/: "
    "subgroupI/N.rar and subgroupIII/N.rar, unpacked with unrar, and "
    "ExtractedChannels/subgroupIII-Extractedchannels/subjectN.mat)"
)
_S1_LAYOUT = (
    "<DIR>/N/N.rec with scorer 1's labels <DIR>/N/N_1.txt for subjects N = 1..100 (ISRUC-Sleep "
    "subgroup I, archives unpacked as distributed; any depth)."
)
_S3_LAYOUT = (
    "<DIR>/ExtractedChannels/subjectN.mat and <DIR>/RawData/N/N_1.txt for N = 1..10 "
    "(ISRUC-Sleep subgroup III as distributed)."
)


def read_isruc_labels(path: str | Path, drop_last: int = 0) -> np.ndarray:
    """Scorer labels of an ISRUC ``N_1.txt``, as class indices.

    Parameters
    ----------
    path : path-like
        One stage per line (0, 1, 2, 3, 5; blank lines ignored).
    drop_last : int
        Lines dropped from the end (30 for ISRUC-S3, as the authors do).

    Returns
    -------
    np.ndarray, shape (n_epochs,)
        int64 in 0..4 (5, REM, becomes 4).

    Raises
    ------
    ValueError
        A line that is not one of the stages (names the file and line).
    """
    path = Path(path)
    out = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.strip()
        if not text:
            continue
        if text not in ("0", "1", "2", "3", "5"):
            raise ValueError(f"{path}:{n}: sleep stage {text!r} is not one of 0, 1, 2, 3, 5.")
        out.append(int(text))
    labels = np.asarray(out[: len(out) - drop_last] if drop_last else out, dtype=np.int64)
    labels[labels == 5] = 4
    return labels


def epoch_sequences(
    epochs: np.ndarray, labels: np.ndarray, length: int = SEQUENCE_LENGTH
) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping sequences of ``length`` epochs.

    Parameters
    ----------
    epochs : np.ndarray, shape (n_epochs, n_chans, n_times)
    labels : np.ndarray, shape (n_labels,)
        One per epoch; the shorter of the two sets the count, then cut to a multiple of
        ``length`` (the authors' trimming).

    Returns
    -------
    (np.ndarray, np.ndarray)
        ``(n_seq, n_chans, length * n_times)`` (epochs one after the other) and
        ``(n_seq, length)``.
    """
    n = min(len(epochs), len(labels))
    n_seq = n // length
    _, n_chans, n_times = epochs.shape
    x = epochs[: n_seq * length].reshape(n_seq, length, n_chans, n_times)
    x = x.transpose(0, 2, 1, 3).reshape(n_seq, n_chans, length * n_times)
    return x, labels[: n_seq * length].reshape(n_seq, length)


def _mastoids_as_a(names: Sequence[str]) -> list[str]:
    """``F3-M2`` → ``F3-A2`` (some ISRUC files name the mastoids M1/M2)."""
    return [re.sub(r"M([12])\b", r"A\1", n.upper()) for n in names]


# --------------------------------------------------------------------------------------------
# ISRUC-S1
# --------------------------------------------------------------------------------------------


def _s1_find(root: Path) -> list[Recording]:
    out, no_labels = [], []
    for f in sorted(root.glob("**/*.rec")):
        if not (f.is_file() and f.stem.isdigit() and f.parent.name == f.stem):
            continue
        labels = f.parent / f"{f.stem}_1.txt"
        if not labels.is_file():
            no_labels.append(f.name)
            continue
        out.append(Recording(f, ISRUC_S1.subject_of(f, root), meta={"labels": labels}))
    return kept_recordings(
        out,
        no_labels,
        skip_warning="ISRUC-S1: %d .rec file(s) have no scorer-1 label file N_1.txt and are "
        "skipped",
        not_found=f"{ISRUC_S1.title}: no N/N.rec + N/N_1.txt pairs under {root}. Expected "
        f"layout: {_S1_LAYOUT} Obtain the dataset from {_SOURCE}.",
    )


def _s1_load(recipe: TaskRecipe, rec: Recording) -> TaskWindows:
    labels = read_isruc_labels(rec.meta["labels"])
    raw = read_edf_raw(rec.path)
    data = pick_channels(
        raw.get_data() * 1e6, _mastoids_as_a(raw.ch_names), recipe.channels, where=str(rec.path)
    )
    x = recipe.prepare(data, float(raw.info["sfreq"]))
    n = min(x.shape[1] // recipe.n_times, len(labels))
    epochs = x[:, : n * recipe.n_times].reshape(recipe.n_chans, n, recipe.n_times)
    xs, ys = epoch_sequences(epochs.transpose(1, 0, 2), labels[:n])
    if not len(xs):
        return TaskWindows.empty(recipe.n_chans, recipe.n_times * recipe.sequence_length)
    return TaskWindows(xs, ys, rec.subject, rec.id)


def _ids(a: int, b: int) -> tuple[str, ...]:
    return tuple(str(i) for i in range(a, b + 1))


ISRUC_S1 = TaskRecipe(
    name="isruc_s1",
    title="ISRUC-S1 (ISRUC-Sleep subgroup I, five-stage sleep scoring)",
    classes=SLEEP_STAGES,
    channels=CHANNELS,
    preprocessing=_PREPROCESSING,
    window_s=EPOCH_S,
    stride_s=EPOCH_S,
    window_rule="30 s epochs with scorer 1's labels, in non-overlapping sequences of 20",
    amplitude_scale=1.0,
    subject_pattern=r"^(?P<subject>\d+)\.rec$",
    find=_s1_find,
    load=_s1_load,
    layout=_S1_LAYOUT,
    source=_SOURCE,
    split=Split(_ids(1, 80), _ids(81, 90), _ids(91, 100)),
    split_note="subjects 1-80 train, 81-90 val, 91-100 test",
    head="isruc_sequence",
    sequence_length=SEQUENCE_LENGTH,
    aliases=("isruc", "isruc1", "isruc-s1", "isruc_sleep_1"),
    reference="CBraMod preprocessing/ISRUC/prepare_ISRUC_1.py; CodeBrain isruc_dataset.py",
)


# --------------------------------------------------------------------------------------------
# ISRUC-S3
# --------------------------------------------------------------------------------------------

_S3_RE = re.compile(r"^subject(\d+)\.mat$")


def _s3_find(root: Path) -> list[Recording]:
    out, no_labels = [], []
    for f in sorted(root.glob("**/ExtractedChannels/subject*.mat")):
        m = _S3_RE.match(f.name)
        if not (m and f.is_file()):
            continue
        n = m.group(1)
        labels = f.parent.parent / "RawData" / n / f"{n}_1.txt"
        if not labels.is_file():
            no_labels.append(f.name)
            continue
        out.append(Recording(f, ISRUC_S3.subject_of(f, root), meta={"labels": labels}))
    return kept_recordings(
        out,
        no_labels,
        skip_warning="ISRUC-S3: %d subject file(s) have no RawData/N/N_1.txt labels and are "
        "skipped",
        not_found=f"{ISRUC_S3.title}: no ExtractedChannels/subjectN.mat with RawData/N/N_1.txt "
        f"under {root}. Expected layout: {_S3_LAYOUT} Obtain the dataset from {_SOURCE}.",
    )


def _s3_load(recipe: TaskRecipe, rec: Recording) -> TaskWindows:
    labels = read_isruc_labels(rec.meta["labels"], drop_last=30)
    mat = load_mat(rec.path)
    rows = []
    for ch in recipe.channels:
        arr = np.asarray(mat_key(mat, ch.replace("-", "_"), rec.path), dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] < 2:
            raise ValueError(
                f"{rec.path}: {ch.replace('-', '_')} has shape {arr.shape}; expected "
                "(epochs, samples per 30 s epoch)."
            )
        rows.append(arr)
    if len({r.shape for r in rows}) != 1:
        raise ValueError(f"{rec.path}: the channels hold arrays of different shapes.")
    epochs = np.stack(rows, axis=1)  # (n_epochs, 6, samples per epoch)
    sfreq = epochs.shape[2] / recipe.window_s
    n = min(len(epochs), len(labels))
    n = n - n % recipe.sequence_length
    filtered = np.stack([recipe.prepare(e, sfreq) for e in epochs[:n]]) if n else None
    if filtered is None:
        return TaskWindows.empty(recipe.n_chans, recipe.n_times * recipe.sequence_length)
    xs, ys = epoch_sequences(filtered, labels[:n])
    return TaskWindows(xs, ys, rec.subject, rec.id)


def _s3_split(recordings: Sequence[Recording], fold: int) -> Split | None:
    """The authors' fold; None unless the ten subjects are all present."""
    subjects = {r.subject for r in recordings}
    if subjects != set(_ids(1, 10)):
        return None
    val = str(fold + 1)
    test = str((fold + 1) % 10 + 1)
    train = tuple(s for s in _ids(1, 10) if s not in (val, test))
    return Split(train, (val,), (test,))


ISRUC_S3 = TaskRecipe(
    name="isruc_s3",
    title="ISRUC-S3 (ISRUC-Sleep subgroup III, five-stage sleep scoring, 10 folds)",
    classes=SLEEP_STAGES,
    channels=CHANNELS,
    preprocessing=(Resample(200.0, "scipy"), *_PREPROCESSING),
    window_s=EPOCH_S,
    stride_s=EPOCH_S,
    window_rule=(
        "the extracted 30 s epochs (each resampled to 6000 samples and filtered) with "
        "scorer 1's labels (last 30 lines dropped), in non-overlapping sequences of 20"
    ),
    amplitude_scale=1.0,
    subject_pattern=r"^subject(?P<subject>\d+)\.mat$",
    find=_s3_find,
    load=_s3_load,
    layout=_S3_LAYOUT,
    source=_SOURCE,
    split_rule=_s3_split,
    n_folds=10,
    split_note="fold f: val = subject f+1, test = subject (f+1) mod 10 + 1, the other 8 train",
    head="isruc_sequence",
    sequence_length=SEQUENCE_LENGTH,
    aliases=("isruc3", "isruc-s3", "isruc_sleep_3"),
    reference="CodeBrain Preprocessing/ISRUC_S3.py, isruc3_dataset.py",
)

RECIPES = (ISRUC_S1, ISRUC_S3)
