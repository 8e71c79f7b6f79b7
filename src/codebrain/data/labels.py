"""Label tables: labels kept beside the recordings, in a CSV ``recording, onset, duration, label``.

:func:`read_label_table` parses the table into annotations per recording; ``_labels_for``
finds the rows of one recording (by its id, or by a trailing path where names repeat).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mne

from codebrain.data.formats import _fpath, _strip_extension
from codebrain.data.recordings import recording_id

__all__ = ["read_label_table"]


def read_label_table(path: str | os.PathLike) -> dict[str, mne.Annotations]:
    """Read labels from a CSV table with columns ``recording, onset, duration, label``.

    Parameters
    ----------
    path : path-like
        CSV file with a header row. ``recording`` is matched against :func:`recording_id`
        of each file (its name without extension); ``onset`` and ``duration`` are seconds
        from the start of the recording; ``label`` is a class name or a number.

    Returns
    -------
    dict of str to mne.Annotations
        Annotations per recording id, to replace or extend the file's own annotations.
    """
    path = Path(path)
    required = ("recording", "onset", "duration", "label")
    rows: dict[str, list[tuple[float, float, str]]] = {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        missing = [c for c in required if c not in header]
        if missing:
            raise ValueError(
                f"Label table {path} lacks columns {missing}; expected a header with {list(required)}, "
                f"found {reader.fieldnames}."
            )
        for lineno, row in enumerate(reader, start=2):
            row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
            try:
                onset, duration = float(row["onset"]), float(row["duration"])
            except ValueError as err:
                raise ValueError(
                    f"Label table {path}, line {lineno}: onset/duration must be numbers "
                    f"(seconds), got {row['onset']!r}, {row['duration']!r}."
                ) from err
            if not row["recording"] or not row["label"]:
                raise ValueError(f"Label table {path}, line {lineno}: empty recording or label.")
            key = _label_key(row["recording"])
            rows.setdefault(key, []).append((onset, duration, row["label"]))
    return {
        rec: mne.Annotations([r[0] for r in items], [r[1] for r in items], [r[2] for r in items])
        for rec, items in rows.items()
    }


def _label_key(text: str) -> str:
    """Key of a label-table ``recording`` cell: a name or a path, without extension, ``/``."""
    text = text.replace("\\", "/")
    if "." not in text.rsplit("/", 1)[-1]:
        return text
    head, _, name = text.rpartition("/")
    stem = _strip_extension(Path(name))
    return f"{head}/{stem}" if head else stem


def _labels_for(
    labels: Mapping[str, mne.Annotations] | None, path: Any, rec_id: str | None = None
) -> mne.Annotations | None:
    """Annotations for ``path`` (recording id ``rec_id``) from a label table, or None.

    A table row matches by the recording id (a file name, or a relative path where names
    repeat, see :func:`recording_ids`), or by a path whose trailing parts equal the file's.
    A bare file name shared by several recordings is ambiguous and raises ``ValueError``.
    """
    if labels is None:
        return None
    rec_id = rec_id or recording_id(path)
    if rec_id in labels:
        return labels[rec_id]
    full = Path(os.path.abspath(_fpath(path)))
    full_key = (full.parent / _strip_extension(full)).as_posix()
    for key, table in labels.items():
        if "/" in key and (full_key == key or full_key.endswith("/" + key.lstrip("/"))):
            return table
    stem = recording_id(path)
    if stem != rec_id and stem in labels:
        raise ValueError(
            f"Label table row {stem!r} is ambiguous: several recordings are named {stem!r}, "
            f"so their ids are relative paths (this one is {rec_id!r}); name the recording "
            "by that path in the table's recording column."
        )
    return None
