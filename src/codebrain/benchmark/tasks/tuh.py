"""TUAB (abnormal EEG, binary) and TUEV (six EEG event classes) from the TUH EEG corpus.

Protocol of CodeBrain, which uses CBraMod's preprocessing (``preprocessing_tuab.py``,
``preprocessing_tuev.py`` after its 2025-06-02 deterministic-split fix; loaders
``tuab_dataset.py``/``tuev_dataset.py``):

* MNE ``raw.resample(200)`` → ``raw.filter(0.3, 75)`` → ``raw.notch_filter(60)`` → µV → the 16
  TCP bipolar derivations (:data:`codebrain.data.TCP_BIPOLAR_CHANNELS`) → /100 at load.
  Here the derivations are taken first and then filtered: every step is linear and the same
  for each channel, so the result is the same (to float rounding) for 16 instead of ~33
  channels. A file lacking one of the 19 electrodes is skipped, as the authors skip it.
* TUAB: non-overlapping 10 s windows from the start of each file (remainder dropped); label
  from the folder (``normal`` 0, ``abnormal`` 1). Split: in ``train/`` the subjects of each
  class folder are sorted and the first 80 % train, the rest validate; ``eval/`` is the test
  set (v3.0.1: 297,103 / 75,407 / 36,945 windows).
* TUEV: one 5 s window per row of the ``.rec`` event file (``channel, start_s, end_s,
  label``, 1-s events): from 2 s before the event to 2 s after it, the recording wrapped
  around at its ends as the authors' tripled signal does; labels 1-6 → 0-5. Split: subjects
  of ``train/`` sorted, first 80 % train, rest validate; ``eval/`` is the test set (v2.0.0:
  67,436 / 15,634 / 29,421 windows).

Subject id: the file-name prefix before the first ``_`` (``aaaaamye_s001_t000.edf`` →
``aaaaamye``), the authors' ``name.split("_")[0]``. Ids are sorted as plain strings, as the
authors sort them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from codebrain.benchmark.hooks import Recording, TaskWindows
from codebrain.benchmark.preprocessing import BandPass, Notch, Resample
from codebrain.benchmark.recipe import DatasetNotFoundError, TaskRecipe
from codebrain.benchmark.signal import fixed_windows
from codebrain.benchmark.split import Split
from codebrain.benchmark.tasks._common import (
    first_fraction,
    kept_recordings,
    split_from_assignment,
)
from codebrain.data.bipolar import TCP_BIPOLAR_CHANNELS, bipolar_derivations

__all__ = ["TUAB", "TUEV", "TUEV_CLASSES", "read_tuev_events", "RECIPES"]

logger = logging.getLogger(__name__)

TUH_SOURCE = (
    "https://isip.piconepress.com/projects/nedc/html/tuh_eeg/ (free for research, but only "
    "after a signed data-sharing agreement is emailed to help@nedcdata.org; TUH then sends "
    "rsync credentials, so there is no public downloader)"
)
#: TUEV's classes in label order (``.rec`` labels 1-6).
TUEV_CLASSES = ("spsw", "gped", "pled", "eyem", "artf", "bckg")
_PREPROCESSING = (Resample(200.0, "mne"), BandPass(0.3, 75.0), Notch(60.0))
_SETS = ("train", "eval")


def _base(root: Path, recipe_title: str, layout: str) -> Path:
    """``root/edf`` or ``root`` itself, whichever holds ``train/`` or ``eval/``."""
    for base in (root / "edf", root):
        if any((base / s).is_dir() for s in _SETS):
            return base
    raise DatasetNotFoundError(
        f"{recipe_title}: no edf/train or edf/eval folder under {root}. Expected layout: "
        f"{layout} Obtain the dataset from {TUH_SOURCE}."
    )


def _read_bipolar(path: Path) -> tuple[np.ndarray, float] | None:
    """The 16 TCP derivations of a TUH file in µV and its rate.

    None (warned) when the file lacks an electrode.
    """
    from codebrain.data.io import read_raw

    raw = read_raw(path, preload=True, verbose="error")
    try:
        data = bipolar_derivations(raw.get_data() * 1e6, raw.ch_names)
    except ValueError as err:
        logger.warning("Skipping %s (as the authors do): %s", path.name, err)
        return None
    return data, float(raw.info["sfreq"])


# --------------------------------------------------------------------------------------------
# TUAB
# --------------------------------------------------------------------------------------------

_TUAB_CLASSES = ("normal", "abnormal")
_TUAB_LAYOUT = (
    "<DIR>/edf/{train,eval}/{normal,abnormal}/01_tcp_ar/<subject>_sNNN_tNNN.edf (TUAB v3.0.1 "
    "as distributed; <DIR> may also be the edf/ folder itself)."
)


def _tuab_find(root: Path) -> list[Recording]:
    base = _base(root, TUAB.title, _TUAB_LAYOUT)
    out = []
    for set_name in _SETS:
        for label, cls in enumerate(_TUAB_CLASSES):
            folder = base / set_name / cls / "01_tcp_ar"
            for f in sorted(folder.rglob("*.edf")) if folder.is_dir() else []:
                out.append(
                    Recording(
                        f,
                        TUAB.subject_of(f, base),
                        label=label,
                        meta={"set": set_name, "class": cls},
                    )
                )
    if not out:
        raise DatasetNotFoundError(
            f"{TUAB.title}: no .edf files in {base}/{{train,eval}}/{{normal,abnormal}}/01_tcp_ar. "
            f"Expected layout: {_TUAB_LAYOUT} Obtain the dataset from {TUH_SOURCE}."
        )
    return out


def _tuab_split(recordings: Sequence[Recording], fold: int) -> Split | None:
    """The authors' rule; None unless train and eval both hold normal and abnormal files."""
    groups = {(r.meta["set"], r.meta["class"]) for r in recordings}
    if len(groups) < 4:
        return None
    part_of: dict[str, str] = {}
    for cls in _TUAB_CLASSES:
        in_cls = [r for r in recordings if r.meta["class"] == cls]
        train_val = [r for r in in_cls if r.meta["set"] == "train"]
        train_ids, _ = first_fraction([r.subject for r in train_val], 0.8)
        train_ids = set(train_ids)
        for r in train_val:
            part_of[r.id] = "train" if r.subject in train_ids else "val"
        for r in in_cls:
            if r.meta["set"] == "eval":
                part_of[r.id] = "test"
    return split_from_assignment(recordings, part_of)


def _tuab_load(recipe: TaskRecipe, rec: Recording) -> TaskWindows:
    read = _read_bipolar(rec.path)
    if read is None:
        return TaskWindows.empty(recipe.n_chans, recipe.n_times)
    x = recipe.prepare(*read)
    w = fixed_windows(x, recipe.n_times)
    return TaskWindows(w, [int(rec.label)] * len(w), rec.subject, rec.id)


TUAB = TaskRecipe(
    name="tuab",
    title="TUAB (TUH Abnormal EEG Corpus v3.0.1)",
    classes=_TUAB_CLASSES,
    channels=TCP_BIPOLAR_CHANNELS,
    preprocessing=_PREPROCESSING,
    window_s=10.0,
    stride_s=10.0,
    window_rule="non-overlapping from the file start; the remainder is dropped",
    subject_pattern=r"^(?P<subject>[^_.]+)",
    find=_tuab_find,
    load=_tuab_load,
    layout=_TUAB_LAYOUT,
    source=TUH_SOURCE,
    split_rule=_tuab_split,
    split_note=(
        "train/: per class folder, subjects sorted, first 80 % train, last 20 % val; "
        "eval/ = test (297,103 / 75,407 / 36,945 windows on v3.0.1)"
    ),
    aliases=("tuh_abnormal", "tuh-abnormal"),
    reference="CBraMod preprocessing/preprocessing_tuab.py, datasets/tuab_dataset.py",
)


# --------------------------------------------------------------------------------------------
# TUEV
# --------------------------------------------------------------------------------------------

_TUEV_LAYOUT = (
    "<DIR>/edf/{train,eval}/<subject>/<subject>_NNNNNNNN.edf, each with its .rec event file "
    "(TUEV v2.0.0 as distributed; <DIR> may also be the edf/ folder itself)."
)


def read_tuev_events(path: str | Path) -> np.ndarray:
    """Rows ``(channel, start_s, end_s, label)`` of a TUEV ``.rec`` file.

    Parameters
    ----------
    path : path-like
        The ``.rec`` file: comma-separated, one event per line.

    Returns
    -------
    np.ndarray, shape (n_events, 4)
        float64; labels are 1-6 (:data:`TUEV_CLASSES`).

    Raises
    ------
    ValueError
        Not four numeric columns, or a label outside 1-6 (names the file and line).
    """
    path = Path(path)
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        try:
            values = [float(p) for p in parts]
        except ValueError:
            values = []
        if len(values) != 4:
            raise ValueError(
                f"{path}:{n}: expected 'channel,start,end,label' (4 numbers), got {line!r}."
            )
        if values[3] not in (1, 2, 3, 4, 5, 6):
            raise ValueError(f"{path}:{n}: label {values[3]:g} is not one of 1-6.")
        if values[2] <= values[1]:
            raise ValueError(
                f"{path}:{n}: event ends ({values[2]}) before it starts ({values[1]})."
            )
        rows.append(values)
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def _tuev_find(root: Path) -> list[Recording]:
    base = _base(root, TUEV.title, _TUEV_LAYOUT)
    out = []
    no_rec = []
    for set_name in _SETS:
        folder = base / set_name
        for f in sorted(folder.rglob("*.edf")) if folder.is_dir() else []:
            rec_file = f.with_suffix(".rec")
            if not rec_file.is_file():
                no_rec.append(f.name)
                continue
            out.append(
                Recording(f, TUEV.subject_of(f, base), meta={"set": set_name, "rec": rec_file})
            )
    return kept_recordings(
        out,
        no_rec,
        skip_warning="TUEV: %d .edf file(s) have no .rec event file beside them and are skipped",
        not_found=f"{TUEV.title}: no .edf + .rec pairs under {base}/{{train,eval}}. Expected "
        f"layout: {_TUEV_LAYOUT} Obtain the dataset from {TUH_SOURCE}.",
    )


def _tuev_split(recordings: Sequence[Recording], fold: int) -> Split | None:
    """The authors' rule; None unless both ``train/`` and ``eval/`` hold recordings."""
    if {r.meta["set"] for r in recordings} != set(_SETS):
        return None
    train_ids, _ = first_fraction([r.subject for r in recordings if r.meta["set"] == "train"], 0.8)
    train_ids = set(train_ids)
    part_of = {
        r.id: "test" if r.meta["set"] == "eval" else ("train" if r.subject in train_ids else "val")
        for r in recordings
    }
    return split_from_assignment(recordings, part_of)


def tuev_event_windows(
    x: np.ndarray, events: np.ndarray, sfreq: float, *, pad_s: float = 2.0, event_s: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """The authors' event windows: ``pad_s`` before to ``pad_s`` after each event, wrapped.

    Parameters
    ----------
    x : np.ndarray, shape (n_chans, n_times)
        The preprocessed recording.
    events : np.ndarray, shape (n_events, 4)
        From :func:`read_tuev_events`.
    sfreq : float
        Rate of ``x`` in Hz.
    pad_s, event_s : float
        Context on each side and the event length (TUEV events are 1 s).

    Returns
    -------
    (np.ndarray, np.ndarray)
        Windows ``(n_kept, n_chans, round((event_s + 2 pad_s) sfreq))`` and their labels
        (0-5). An event's first and last samples are the first samples at or after its start
        and end times (the authors' ``np.where(times >= t)[0][0]``); an event not 1 s long,
        or ending at or past the end of the recording, is dropped with a warning (the
        authors' script fails on such a row).
    """
    n_chans, n_times = x.shape
    times = np.arange(n_times) / sfreq
    pad = round(pad_s * sfreq)
    length = round(event_s * sfreq) + 2 * pad
    windows, labels, dropped = [], [], 0
    for _, t0, t1, label in events:
        start = int(np.searchsorted(times, t0, side="left"))
        end = int(np.searchsorted(times, t1, side="left"))
        if end >= n_times or end - start + 2 * pad != length:
            dropped += 1
            continue
        idx = np.arange(start - pad, end + pad) % n_times  # the authors' tripled signal
        windows.append(x[:, idx])
        labels.append(int(label) - 1)
    if dropped:
        logger.warning(
            "TUEV: dropped %d of %d events that are not %g s long or run past the recording end.",
            dropped,
            len(events),
            event_s,
        )
    if not windows:
        return np.zeros((0, n_chans, length), dtype=x.dtype), np.zeros(0, dtype=np.int64)
    return np.stack(windows), np.asarray(labels, dtype=np.int64)


def _tuev_load(recipe: TaskRecipe, rec: Recording) -> TaskWindows:
    events = read_tuev_events(rec.meta["rec"])
    read = _read_bipolar(rec.path)
    if read is None or not len(events):
        return TaskWindows.empty(recipe.n_chans, recipe.n_times)
    x = recipe.prepare(*read)
    w, y = tuev_event_windows(x, events, recipe.sfreq)
    return TaskWindows(w, y, rec.subject, rec.id)


TUEV = TaskRecipe(
    name="tuev",
    title="TUEV (TUH EEG Events Corpus v2.0.0)",
    classes=TUEV_CLASSES,
    channels=TCP_BIPOLAR_CHANNELS,
    preprocessing=_PREPROCESSING,
    window_s=5.0,
    stride_s=None,
    window_rule="one window per .rec event: 2 s before to 2 s after the 1-s event, wrapped",
    subject_pattern=r"^(?P<subject>[^_.]+)",
    find=_tuev_find,
    load=_tuev_load,
    layout=_TUEV_LAYOUT,
    source=TUH_SOURCE,
    split_rule=_tuev_split,
    split_note=(
        "train/: subjects sorted, first 80 % train, last 20 % val; eval/ = test "
        "(67,436 / 15,634 / 29,421 windows on v2.0.0)"
    ),
    aliases=("tuh_events", "tuh-events"),
    reference="CBraMod preprocessing/preprocessing_tuev.py, datasets/tuev_dataset.py",
)

RECIPES = (TUAB, TUEV)
