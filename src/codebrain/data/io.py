"""Reading EEG recordings with MNE (and BIDS folders with mne-bids), and their labels.

Every format MNE reads natively is dispatched by file extension (:data:`READERS`); a BIDS
dataset is read through ``mne_bids`` (an optional dependency). Labels come from the file's
own annotations/events or from a user table (CSV with ``recording, onset, duration, label``).
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import mne

__all__ = [
    "READERS",
    "RecordingError",
    "read_raw",
    "list_recordings",
    "find_bids_recordings",
    "read_label_table",
    "recording_id",
    "subject_id",
]

logger = logging.getLogger(__name__)

#: File extension (lower case) → MNE reader.
READERS: dict[str, Callable[..., mne.io.BaseRaw]] = {
    ".edf": mne.io.read_raw_edf,
    ".bdf": mne.io.read_raw_bdf,
    ".gdf": mne.io.read_raw_gdf,
    ".fif": mne.io.read_raw_fif,
    ".fif.gz": mne.io.read_raw_fif,
    ".vhdr": mne.io.read_raw_brainvision,
    ".set": mne.io.read_raw_eeglab,
}

_SUBJECT_RE = re.compile(r"(?:^|[_/\\])sub-([A-Za-z0-9]+)")


class RecordingError(ValueError):
    """A recording cannot be read or processed; the message names the file and the reason."""


def _extension(path: Path) -> str:
    name = path.name.lower()
    return ".fif.gz" if name.endswith(".fif.gz") else path.suffix.lower()


def _is_bids_path(obj: Any) -> bool:
    return type(obj).__name__ == "BIDSPath" and hasattr(obj, "fpath")


def _import_mne_bids() -> Any:
    try:
        import mne_bids
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Reading BIDS datasets needs the optional dependency mne-bids: "
            "pip install 'codebrain[bids]' (or pip install mne-bids)."
        ) from err
    return mne_bids


def read_raw(
    path: str | os.PathLike | Any,
    *,
    preload: bool = True,
    allow_truncated: bool = False,
    verbose: bool | str | int | None = None,
) -> mne.io.BaseRaw:
    """Read one EEG recording with MNE, choosing the reader from the file extension.

    Parameters
    ----------
    path : path-like | mne_bids.BIDSPath
        EDF/EDF+ (``.edf``), BDF (``.bdf``), GDF (``.gdf``), FIF (``.fif``, ``.fif.gz``),
        BrainVision (``.vhdr``) or EEGLAB (``.set``) file, or a ``BIDSPath`` (read with
        ``mne_bids.read_raw_bids``, so events.tsv becomes annotations).
    preload : bool
        Load the data into memory (the pipeline filters in place, so the default is True).
    allow_truncated : bool
        Accept an EDF/BDF file shorter than its header says (MNE then reads what is there).
        By default such a file raises :class:`RecordingError`, whatever ``verbose`` says.
    verbose : bool | str | int | None
        Passed to MNE.

    Returns
    -------
    mne.io.BaseRaw
        The recording, data in volts, annotations from the file.

    Raises
    ------
    RecordingError
        Unknown extension, missing file, or a file MNE cannot parse (message names the
        file and the reason).
    """
    if _is_bids_path(path):
        mne_bids = _import_mne_bids()
        try:
            raw = mne_bids.read_raw_bids(path, verbose=verbose)
            if preload:
                raw.load_data(verbose=verbose)
        except Exception as err:
            raise RecordingError(f"Cannot read BIDS recording {path.fpath}: {err}") from err
        return raw

    path = Path(path)
    ext = _extension(path)
    reader = READERS.get(ext)
    if reader is None:
        raise RecordingError(
            f"Cannot read {path}: unknown EEG file extension {ext!r}; expected one of "
            f"{sorted(READERS)} (or a BIDS folder)."
        )
    if not path.is_file():
        raise RecordingError(f"Cannot read {path}: no such file.")
    if ext in (".edf", ".bdf") and not allow_truncated:
        _check_edf_size(path, bytes_per_sample=3 if ext == ".bdf" else 2)
    try:
        raw = reader(path, preload=preload, verbose=verbose)
    except Exception as err:
        raise RecordingError(
            f"Cannot read {path} as {ext} file: {type(err).__name__}: {err}"
        ) from err
    return raw


def _check_edf_size(path: Path, bytes_per_sample: int) -> None:
    """Raise :class:`RecordingError` if an EDF/BDF file is shorter than its header declares."""
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            fixed = f.read(256)
            header_bytes = int(fixed[184:192].decode("ascii").strip())
            n_records = int(fixed[236:244].decode("ascii").strip())
            n_signals = int(fixed[252:256].decode("ascii").strip())
            f.seek(256 + n_signals * 216)
            per_record = [int(f.read(8).decode("ascii").strip()) for _ in range(n_signals)]
    except (ValueError, UnicodeDecodeError) as err:
        raise RecordingError(f"Cannot read {path}: corrupt EDF/BDF header ({err}).") from err
    if n_signals < 1:
        raise RecordingError(
            f"Cannot read {path}: its header declares {n_signals} signals; expected at least "
            "one channel."
        )
    if n_records < 0:  # -1: unknown while recording; MNE infers it from the file size
        return
    expected = header_bytes + n_records * sum(per_record) * bytes_per_sample
    if size < expected:
        raise RecordingError(
            f"Cannot read {path}: file is truncated ({size} bytes, header declares "
            f"{n_records} records = {expected} bytes). Pass allow_truncated=True to read the "
            "part that is there."
        )


def find_bids_recordings(
    root: str | os.PathLike,
    *,
    subjects: Iterable[str] | None = None,
    sessions: Iterable[str] | None = None,
    tasks: Iterable[str] | None = None,
    runs: Iterable[str] | None = None,
    datatype: str = "eeg",
) -> list[Any]:
    """List the EEG recordings of a BIDS dataset as ``mne_bids.BIDSPath`` objects.

    Parameters
    ----------
    root : path-like
        BIDS root (the folder holding ``dataset_description.json``).
    subjects, sessions, tasks, runs : iterable of str | None
        Restrict to these entity values (None: all).
    datatype : str
        BIDS data type folder to search.

    Returns
    -------
    list of mne_bids.BIDSPath
        One path per recording data file, sorted.
    """
    mne_bids = _import_mne_bids()
    root = Path(root)
    if not (root / "dataset_description.json").is_file():
        raise ValueError(f"{root} is not a BIDS root: dataset_description.json not found.")
    extensions = [e for e in READERS if e != ".fif.gz"]
    paths = mne_bids.find_matching_paths(
        root,
        subjects=list(subjects) if subjects is not None else None,
        sessions=list(sessions) if sessions is not None else None,
        tasks=list(tasks) if tasks is not None else None,
        runs=list(runs) if runs is not None else None,
        datatypes=datatype,
        suffixes=datatype,
        extensions=extensions,
    )
    return sorted(paths, key=lambda p: str(p.fpath))


def list_recordings(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Any]:
    """Expand files and folders into a sorted list of readable recordings.

    A folder holding ``dataset_description.json`` is read as BIDS (``BIDSPath`` entries);
    any other folder is searched recursively for files with a known extension (BrainVision
    ``.eeg``/``.vmrk`` companions and EEGLAB ``.fdt`` are skipped, their headers are listed).

    Parameters
    ----------
    paths : path-like | iterable of path-like
        Files and/or folders.

    Returns
    -------
    list of Path | mne_bids.BIDSPath
        Recordings, folders expanded; explicit files are kept as given (even with an unknown
        extension, so reading them reports a clear error).
    """
    if isinstance(paths, str | os.PathLike) or _is_bids_path(paths):
        paths = [paths]
    out: list[Any] = []
    for p in paths:
        if _is_bids_path(p):
            out.append(p)
            continue
        p = Path(p)
        if p.is_dir():
            if (p / "dataset_description.json").is_file():
                out.extend(find_bids_recordings(p))
            else:
                found = [f for f in p.rglob("*") if f.is_file() and _extension(f) in READERS]
                out.extend(sorted(found))
        else:
            out.append(p)
    return out


def recording_id(path: str | os.PathLike | Any) -> str:
    """Stable recording identifier: the file name without its extension.

    Parameters
    ----------
    path : path-like | mne_bids.BIDSPath

    Returns
    -------
    str
        e.g. ``"sub-01_task-mi_eeg"`` for ``/data/sub-01_task-mi_eeg.edf``.
    """
    if _is_bids_path(path):
        path = path.fpath
    path = Path(path)
    ext = _extension(path)
    return path.name[: len(path.name) - len(ext)] if ext else path.name


def subject_id(path: str | os.PathLike | Any, raw: mne.io.BaseRaw | None = None) -> str:
    """Subject identifier of a recording, for subject-wise splits.

    Uses, in order: the BIDS ``sub-<label>`` entity in the path, ``subject_info["his_id"]``
    stored in the file, then the recording id.

    Parameters
    ----------
    path : path-like | mne_bids.BIDSPath
    raw : mne.io.BaseRaw | None
        The opened recording, to read ``subject_info``.

    Returns
    -------
    str
    """
    if _is_bids_path(path):
        if path.subject:
            return str(path.subject)
        path = path.fpath
    match = _SUBJECT_RE.search(str(Path(path).name))
    if match:
        return match.group(1)
    if raw is not None:
        info = raw.info.get("subject_info") or {}
        his_id = info.get("his_id")
        if his_id and str(his_id).strip() not in ("", "X"):
            return str(his_id).strip()
    return recording_id(path)


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
            key = recording_id(row["recording"]) if "." in row["recording"] else row["recording"]
            rows.setdefault(key, []).append((onset, duration, row["label"]))
    return {
        rec: mne.Annotations([r[0] for r in items], [r[1] for r in items], [r[2] for r in items])
        for rec, items in rows.items()
    }


def _labels_for(labels: Mapping[str, mne.Annotations] | None, path: Any) -> mne.Annotations | None:
    """Annotations for ``path`` from a label table, or None when absent."""
    if labels is None:
        return None
    return labels.get(recording_id(path))
