"""Listing EEG recordings in files and folders (BIDS included) and naming them.

:func:`list_recordings` expands files and folders into recordings, each listed once by its
main file (multi-file formats, see :mod:`codebrain.data.formats`); a BIDS folder is listed
through ``mne_bids`` (:func:`find_bids_recordings`). :func:`recording_id` names one recording
by its file name; :func:`recording_ids` names a set of them uniquely.
"""

from __future__ import annotations

import logging
import os
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from codebrain.data.formats import (
    _GENERIC_EXTENSIONS,
    READERS,
    _brainvision_referenced,
    _extension,
    _fpath,
    _import_mne_bids,
    _is_bids_path,
    _main_file,
    _strip_extension,
)

__all__ = ["list_recordings", "find_bids_recordings", "recording_id", "recording_ids"]

logger = logging.getLogger(__name__)


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
    extensions = [e for e in READERS if e != ".fif.gz" and e not in _GENERIC_EXTENSIONS]
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
    # BIDS keeps a BrainVision .eeg / EEGLAB .fdt beside its header: list the header only.
    paths = [p for p in paths if not Path(p.fpath).is_file() or _main_file(Path(p.fpath)) is None]
    return sorted(paths, key=lambda p: str(p.fpath))


def _folder_recordings(folder: Path) -> list[Path]:
    """Recordings under ``folder``, once each.

    Main files of multi-file formats, and recording folders (EGI ``.mff``, CTF ``.ds``...)
    without descending into them.
    """
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        keep_dirs = []
        for d in sorted(dirnames):
            if _extension(Path(d)) in READERS:
                found.append(here / d)  # a recording stored as a folder
            else:
                keep_dirs.append(d)
        dirnames[:] = keep_dirs
        referenced = _brainvision_referenced(here)
        for name in sorted(filenames):
            f = here / name
            ext = _extension(f)
            if (
                ext in READERS
                and ext not in _GENERIC_EXTENSIONS
                and not name.startswith("._")  # macOS resource forks
                and _main_file(f, referenced) is None
            ):
                found.append(f)
    return sorted(found)


def _dedupe_key(p: Any) -> str:
    return os.path.realpath(p.fpath if _is_bids_path(p) else p)


def list_recordings(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Any]:
    """Expand files and folders into a list of readable recordings, each listed once.

    A folder holding ``dataset_description.json`` is read as BIDS (``BIDSPath`` entries);
    any other folder is searched recursively for files MNE reads (:data:`READERS`; files with
    generic extensions such as ``.txt``/``.mat``/``.bin`` are only read when named). A
    multi-file recording is listed once, by its main file: BrainVision ``.vhdr`` (not its
    ``.eeg``/``.vmrk``), EEGLAB ``.set`` (not ``.fdt``), Nihon Kohden ``.EEG`` (not
    ``.PNT``/``.LOG``/``.21E``/``.11D``/``.CMT``/``.CN2``), Persyst ``.lay`` (not ``.dat``),
    Curry ``.cdt``/``.dat`` (not ``.dap``/``.rs3``); recordings stored as folders (EGI
    ``.mff``) are listed as such.

    Parameters
    ----------
    paths : path-like | iterable of path-like
        Files and/or folders.

    Returns
    -------
    list of Path | mne_bids.BIDSPath
        Recordings in the order given, folders expanded (sorted). An explicit companion file
        is replaced by its main file; the same recording given twice (or a file and its
        folder) is kept once, at its first place. Explicit files are otherwise kept as given
        (even with an unknown extension, so reading them reports a clear error).
    """
    if isinstance(paths, str | os.PathLike) or _is_bids_path(paths):
        paths = [paths]
    out: list[Any] = []
    for p in paths:
        if _is_bids_path(p):
            out.append(p)
            continue
        p = Path(p)
        if p.is_dir() and _extension(p) not in READERS:
            if (p / "dataset_description.json").is_file():
                out.extend(find_bids_recordings(p))
            else:
                out.extend(_folder_recordings(p))
        else:
            main = _main_file(p) if p.is_file() else None
            if main is not None:
                logger.info("%s is a companion file of %s: reading %s.", p, main, main)
                p = main
            out.append(p)
    seen: dict[str, Any] = {}
    unique = []
    for rec in out:
        key = _dedupe_key(rec)
        if key in seen:
            logger.warning("%s is given more than once (as %s): reading it once.", rec, seen[key])
            continue
        seen[key] = rec
        unique.append(rec)
    return unique


def recording_id(path: str | os.PathLike | Any) -> str:
    """Recording identifier of one file: its name without the extension.

    Use :func:`recording_ids` for a set of recordings: it keeps these names where they are
    unique and uses relative paths where they are not.

    Parameters
    ----------
    path : path-like | mne_bids.BIDSPath

    Returns
    -------
    str
        e.g. ``"sub-01_task-mi_eeg"`` for ``/data/sub-01_task-mi_eeg.edf``.
    """
    return _strip_extension(_fpath(path))


def recording_ids(recordings: Iterable[Any]) -> list[str]:
    """Unique identifiers for a list of recordings (as :func:`list_recordings` returns).

    A recording whose file name (without extension) is unique among ``recordings`` keeps it
    (:func:`recording_id`), so label tables keyed on file names keep working. Recordings
    sharing a name get their path relative to the folder their files have in common, without
    the extension, with ``/`` separators (``s1/rec``, ``s2/rec`` for ``s1/rec.edf`` and
    ``s2/rec.edf``); the extension is kept when only it differs (``rec.edf``, ``rec.bdf``).

    Parameters
    ----------
    recordings : iterable of path-like | mne_bids.BIDSPath
        Distinct recordings.

    Returns
    -------
    list of str
        One id per recording, in order, all different.

    Raises
    ------
    ValueError
        The same file is listed twice (deduplicate with :func:`list_recordings`).
    """
    paths = [Path(os.path.abspath(_fpath(r))) for r in recordings]
    ids = [_strip_extension(p) for p in paths]
    groups: dict[str, list[int]] = defaultdict(list)
    for i, rec in enumerate(ids):
        groups[rec].append(i)
    for members in groups.values():
        if len(members) < 2:
            continue
        root = Path(os.path.commonpath([paths[i].parent for i in members]))
        rel = [paths[i].relative_to(root) for i in members]
        named = [(r.parent / _strip_extension(r)).as_posix() for r in rel]
        if len(set(named)) < len(named):
            named = [r.as_posix() for r in rel]
        for i, name in zip(members, named, strict=True):
            ids[i] = name
    repeated = sorted(k for k, n in Counter(ids).items() if n > 1)
    if repeated:
        raise ValueError(
            f"Recordings {repeated} are listed more than once; pass each file once "
            "(codebrain.data.list_recordings removes repeats)."
        )
    return ids
