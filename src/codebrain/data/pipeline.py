"""From EEG files to labelled windows in memory: read → map channels → preprocess → cut.

:func:`load_windows` runs the whole pipeline over files and folders, one recording at a time
(so only one continuous recording is in memory): list the recordings
(:mod:`codebrain.data.recordings`), read each (:func:`~codebrain.data.io.read_raw`), apply a
label table (:mod:`codebrain.data.labels`), preprocess
(:func:`~codebrain.data.preprocess.preprocess_raw`), cut windows
(:func:`~codebrain.data.windows.windows_from_raw`), and gather them with their classes,
recording and subject ids into a :class:`~codebrain.data.datasets.WindowDataset`.

Shape legend: ``n_windows`` windows, ``n_chans`` channels, ``n_times`` samples per window.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import mne
import numpy as np

from codebrain.data.datasets import WindowDataset
from codebrain.data.io import read_raw
from codebrain.data.labels import _labels_for, read_label_table
from codebrain.data.preprocess import PreprocessConfig, preprocess_raw
from codebrain.data.recordings import list_recordings, recording_id, recording_ids
from codebrain.data.subjects import subject_id
from codebrain.data.windows import make_event_id, no_window_reason, windows_from_raw
from codebrain.utils.check import check_option

__all__ = ["load_windows"]

logger = logging.getLogger(__name__)


def load_windows(
    paths: str | os.PathLike | Iterable[Any],
    config: PreprocessConfig | None = None,
    *,
    mode: Literal["fixed", "events"] = "fixed",
    event_id: Mapping[str, int | float] | None = None,
    tmin: float = 0.0,
    labels: str | os.PathLike | Mapping[str, mne.Annotations] | None = None,
    targets: Mapping[str, int | float] | None = None,
    regression: bool = False,
    on_error: Literal["raise", "skip"] = "raise",
    subject_pattern: str | None = None,
    verbose: bool | str | int | None = None,
) -> WindowDataset:
    """Read → map channels → preprocess → cut windows, for files and folders.

    Parameters
    ----------
    paths : path-like | iterable
        Recordings and/or folders (see :func:`codebrain.data.list_recordings`).
    config : PreprocessConfig | None
        Preprocessing and window settings (default ``PreprocessConfig()``).
    mode : {"fixed", "events"}
        Fixed-length or event-locked windows (see :func:`windows_from_raw`).
    event_id : mapping of str to int | float | None
        Annotation description → label. With ``mode="events"`` and None, every annotation
        description (BAD/EDGE markers excepted) becomes a class, sorted by name.
    tmin : float
        Event-locked window start relative to the onset (seconds).
    labels : path-like | mapping of str to mne.Annotations | None
        A label table (CSV ``recording, onset, duration, label``, see
        :func:`codebrain.data.read_label_table`) or its parsed form; replaces the annotations
        of the recordings it names. With fixed windows and no ``event_id`` its labels are the
        classes (sorted by name) and each window takes the label of the row covering its
        centre; windows no row covers are dropped. A table that names none of the recordings,
        or whose rows cover no window, is an error saying so.
    targets : mapping of str to int | float | None
        Recording id → label for every window of that recording (fixed mode).
    regression : bool
        With ``event_id=None``, read annotation descriptions as numbers (float targets,
        e.g. a label table whose ``label`` column holds scores) instead of class names.
    on_error : {"raise", "skip"}
        A recording that cannot be read or processed raises, or is logged and skipped.
    subject_pattern : str | None
        Subject-id rule (a regex with a group, or a preset name), see
        :func:`codebrain.data.subject_id`; checked against every recording before any is read.
    verbose : bool | str | int | None
        Passed to MNE.

    Returns
    -------
    WindowDataset

    Raises
    ------
    ValueError
        No recordings found, none could be processed, or none gave a window (the message
        says why for each: too short, every window rejected, no matching event). Recordings
        that give no window among others are left out with a logged warning naming them.
    """
    config = config or PreprocessConfig()
    check_option("on_error", on_error, ("raise", "skip"))
    if labels is not None and not isinstance(labels, Mapping):
        labels = read_label_table(labels)
    recordings = list_recordings(paths)
    if not recordings:
        raise ValueError(f"No EEG recordings found in {paths!r}.")
    if subject_pattern is not None:  # validate before working: a bad rule fails at once
        for path in recordings:
            subject_id(path, pattern=subject_pattern)
    table_classes = labels is not None and mode == "fixed" and event_id is None and not regression
    if table_classes:
        event_id = _table_event_id(labels, recordings)

    # Windows are cut recording by recording so only one continuous recording is in memory.
    # Without an event_id, class names found in each recording get provisional local
    # indices, remapped to the global (sorted) mapping at the end.
    auto_classes = event_id is None and mode == "events" and not regression
    chunks, y, local_names, recs, subs, onsets = [], [], [], [], [], []
    n_rejected = 0
    empty: dict[str, str] = {}  # recording → why it gave no window
    for path, rec in zip(recordings, recording_ids(recordings), strict=True):
        try:
            raw = read_raw(path, verbose=verbose)
            table = _labels_for(labels, path, rec)
            if table is not None:
                # Table onsets count from the first sample; with an orig_time MNE counts
                # from the measurement date, which lies first_time earlier.
                orig_time = raw.annotations.orig_time
                shift = raw.first_time if orig_time is not None else 0.0
                raw.set_annotations(
                    mne.Annotations(
                        table.onset + shift,
                        table.duration,
                        table.description,
                        orig_time=orig_time,
                    ),
                    verbose=verbose,
                )
            raw = preprocess_raw(raw, config, copy=False, verbose=verbose)
        except ValueError as err:  # RecordingError is a ValueError
            if on_error == "raise":
                raise
            logger.warning("Skipping %s: %s", path, err)
            continue
        if auto_classes:
            local_id = make_event_id(raw.annotations.description)
        elif event_id is None and regression:
            local_id = _numeric_event_id(raw.annotations.description)
        else:
            local_id = event_id
        win = windows_from_raw(
            raw,
            config,
            mode=mode,
            event_id=local_id,
            tmin=tmin,
            target=(targets or {}).get(rec),
        )
        n_rejected += win.n_rejected
        if len(win.onsets) == 0:
            empty[str(path)] = no_window_reason(raw, config, win, mode)
        chunks.append(win.data)
        y.append(win.labels)
        local_names.append(list(local_id or {}))
        recs += [rec] * len(win.onsets)
        subs += [subject_id(path, raw, pattern=subject_pattern)] * len(win.onsets)
        onsets.append(win.onsets)
        del raw
    if not chunks:
        raise ValueError(f"No recording in {paths!r} could be processed.")
    if table_classes and not sum(len(c) for c in chunks):
        raise ValueError(
            "The label table labels no fixed window: a window takes the label of the table row "
            "covering its centre, and no row covers a window centre (rows shorter than the "
            "window, or onsets past the end?). Use --windows events for event-locked labels."
        )
    if len(empty) == len(chunks):
        reasons = "; ".join(f"{p}: {r}" for p, r in empty.items())
        raise ValueError(f"No window could be cut: {reasons}.")
    if empty:
        logger.warning(
            "%d of %d recording(s) gave no window and were left out: %s",
            len(empty),
            len(chunks),
            "; ".join(f"{p} ({r})" for p, r in empty.items()),
        )
    if auto_classes:
        event_id = make_event_id(name for names in local_names for name in names)
        y = [
            np.array([event_id[names[i]] for i in labels_], dtype=np.int64)
            for names, labels_ in zip(local_names, y, strict=True)
        ]
    classes = None
    if event_id and all(isinstance(v, int) for v in event_id.values()):
        classes = [name for name, _ in sorted(event_id.items(), key=lambda kv: kv[1])]
    data = np.concatenate(chunks)
    logger.info(
        "Loaded %d window(s) from %d recording(s); %d rejected by amplitude.",
        data.shape[0],
        len(chunks),
        n_rejected,
    )
    return WindowDataset(
        data,
        np.concatenate(y),
        recs,
        subs,
        np.concatenate(onsets),
        list(config.channels),
        config.sfreq,
        classes,
    )


def _table_event_id(labels: Mapping[str, mne.Annotations], recordings: Sequence[Any]) -> dict:
    """Classes of a label table for fixed windows (sorted names), after checking it applies."""
    present = {recording_id(p) for p in recordings}
    named = set(labels)
    if not named & present:
        raise ValueError(
            f"The label table names none of the {len(present)} recordings: it lists "
            f"{sorted(named)[:5]}, the recordings are {sorted(present)[:5]} (the 'recording' "
            "column must hold file names without extension)."
        )
    descriptions = [d for ann in labels.values() for d in ann.description]
    event_id = make_event_id(descriptions)
    if not event_id:
        raise ValueError("The label table has no usable label (only BAD/EDGE rows).")
    missing = sorted(present - named)
    if missing:
        logger.warning(
            "The label table does not name %d recording(s) (e.g. %s); their windows are labelled "
            "by their own annotations when those match the table's classes %s, else dropped.",
            len(missing),
            ", ".join(missing[:3]),
            sorted(event_id),
        )
    return event_id


def _numeric_event_id(descriptions: Iterable[str]) -> dict[str, float]:
    """Map numeric annotation descriptions to float targets (others are not labels)."""
    event_id = {}
    for desc in set(descriptions):
        try:
            event_id[desc] = float(desc)
        except ValueError:
            continue
    if not event_id:
        raise ValueError(
            "regression=True needs numeric annotation descriptions (e.g. '3.5'); none found."
        )
    return event_id
