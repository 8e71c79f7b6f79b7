"""The windows file of ``codebrain prepare -o``: a :class:`WindowDataset` in one ``.npz``.

:func:`save_windows_npz` writes the windows ``(n_windows, n_chans, n_times)`` float32, their
labels and metadata, and the preprocessing that made them, atomically;
:func:`load_windows_npz` reads them back, checking the file holds what it should.

Shape legend: ``n_windows`` windows, ``n_chans`` channels, ``n_times`` samples per window.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from codebrain.data.datasets import WindowDataset
from codebrain.data.preprocess import PreprocessConfig
from codebrain.utils.io import atomic_open

__all__ = ["save_windows_npz", "load_windows_npz"]


def save_windows_npz(
    ds: WindowDataset, path: str | os.PathLike, preprocess: PreprocessConfig | None = None
) -> Path:
    """Write windows (and the preprocessing that made them) to one ``.npz``, atomically.

    The format of ``codebrain prepare -o``; read back with :func:`load_windows_npz`.

    Parameters
    ----------
    ds : WindowDataset
        Data ``(N, C, T)`` float32, labels, recording/subject ids, onsets, channel names,
        sampling rate and class names.
    path : path-like
        Output file.
    preprocess : PreprocessConfig, optional
        Stored as JSON so consumers can check or repeat the preprocessing.

    Returns
    -------
    Path
    """
    path = Path(path)
    arrays = {
        "data": np.asarray(ds.data, dtype=np.float32),
        "labels": np.asarray(ds.labels),
        "recording_ids": np.asarray(ds.recording_ids, dtype=str),
        "subject_ids": np.asarray(ds.subject_ids, dtype=str),
        "onsets": np.asarray(ds.onsets, dtype=np.float64),
        "ch_names": np.asarray(ds.ch_names, dtype=str),
        "sfreq": np.asarray(ds.sfreq, dtype=np.float64),
        "classes": np.asarray(ds.classes if ds.classes is not None else [], dtype=str),
        "has_classes": np.asarray(ds.classes is not None),
        "preprocess": np.asarray(preprocess.to_json() if preprocess is not None else ""),
    }
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def load_windows_npz(path: str | os.PathLike) -> tuple[WindowDataset, dict[str, Any] | None]:
    """Read a windows ``.npz`` written by :func:`save_windows_npz` (``codebrain prepare -o``).

    Parameters
    ----------
    path : path-like

    Returns
    -------
    ds : WindowDataset
    preprocess : dict or None
        The stored preprocessing settings.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"windows file {path} not found.")
    try:
        with np.load(path, allow_pickle=False) as z:
            fields = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"{path} is not a readable windows .npz: {err}") from err
    needed = {"data", "labels", "recording_ids", "subject_ids", "onsets", "ch_names", "sfreq"}
    missing = sorted(needed - set(fields))
    if missing:
        raise ValueError(
            f"{path} lacks {missing}; expected a windows file written by 'codebrain prepare'."
        )
    has_classes = bool(fields.get("has_classes", np.asarray(False)))
    classes = [str(c) for c in fields["classes"]] if has_classes else None
    ds = WindowDataset(
        fields["data"],
        fields["labels"],
        fields["recording_ids"],
        fields["subject_ids"],
        fields["onsets"],
        [str(c) for c in fields["ch_names"]],
        float(fields["sfreq"]),
        classes,
    )
    pre = str(fields.get("preprocess", np.asarray("")))
    return ds, (json.loads(pre) if pre else None)
