"""Reading EEG recordings with MNE (and BIDS folders with mne-bids), and their labels.

Every raw format MNE reads is dispatched through MNE's own reader table
(``mne.io._read_raw._get_supported``, exposed here as :data:`READERS`), so a format MNE adds
is read without a change here. Formats that need an optional package (ANT ``.cnt``:
``antio``; EGI ``.mff``: ``mffpy``; ``.nedf``: ``defusedxml``; HDF5 EEGLAB ``.set``:
``pymatreader``; Curry: ``curryreader``) are installed with ``pip install 'codebrain[formats]'``.
Multi-file formats (BrainVision, EEGLAB ``.set``/``.fdt``, Nihon Kohden, Persyst, Curry) are
listed once per recording by :func:`list_recordings`. A BIDS dataset is read through
``mne_bids`` (an optional dependency). Labels come from the file's own annotations/events or
from a user table (CSV with ``recording, onset, duration, label``).
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections import Counter, defaultdict
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
    "recording_ids",
    "subject_id",
    "SUBJECT_PATTERNS",
]

logger = logging.getLogger(__name__)


def _mne_reader_table() -> dict[str, dict[str, Callable[..., mne.io.BaseRaw]]]:
    """MNE's table of raw readers: lower-case extension → {format name: reader}."""
    from mne.io import _read_raw

    get_supported = getattr(_read_raw, "_get_supported", None)
    table = get_supported() if callable(get_supported) else getattr(_read_raw, "supported", None)
    if not isinstance(table, Mapping):  # pragma: no cover - depends on the MNE version
        raise ImportError(
            f"MNE {mne.__version__} has no reader table (mne.io._read_raw._get_supported); "
            "codebrain needs mne>=1.6."
        )
    out: dict[str, dict[str, Callable[..., mne.io.BaseRaw]]] = {}
    for ext, readers in table.items():
        if not isinstance(readers, Mapping):  # older MNE: one reader per extension
            readers = {getattr(readers, "__name__", ext): readers}
        out[ext.lower()] = dict(readers)
    return out


#: File extension (lower case, e.g. ``".edf"``, ``".fif.gz"``) → {format name: MNE reader},
#: taken from MNE's own table; several readers for one extension are tried in order.
READERS: dict[str, dict[str, Callable[..., mne.io.BaseRaw]]] = _mne_reader_table()

#: Optional module (as MNE imports it) → PyPI package; these are in the ``formats`` extra.
_FORMAT_PACKAGES: dict[str, str] = {
    "antio": "antio",
    "mffpy": "mffpy",
    "defusedxml": "defusedxml",
    "pymatreader": "pymatreader",
    "curryreader": "curryreader",
}

# Extensions shared with many non-EEG files (text, MATLAB, raw binary, headers of other
# kinds): read when named explicitly, never picked up while searching a folder.
_GENERIC_EXTENSIONS = frozenset({".txt", ".mat", ".bin", ".hdr", ".data", ".asc"})

# Companion files of multi-file formats that are not in MNE's table (or that are, but are read
# through their main file): companion extension → main-file extensions, same stem.
_NIHON_COMPANIONS = frozenset({".pnt", ".log", ".21e", ".11d", ".cmt", ".cn2", ".bft", ".egf"})
_SAME_STEM_COMPANIONS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(_NIHON_COMPANIONS, (".eeg",)),  # Nihon Kohden
    ".fdt": (".set",),  # EEGLAB
    ".vmrk": (".vhdr",),  # BrainVision
    ".amrk": (".ahdr",),
    ".dap": (".cdt", ".dat"),  # Curry 7 (.dat) / Curry 8 (.cdt)
    ".rs3": (".cdt", ".dat"),
    ".cef": (".cdt", ".dat"),
    ".cdt.dpa": (".cdt",),
    ".cdt.cef": (".cdt",),
}

_MISSING_MODULE_RE = re.compile(r"the module (?P<name>[A-Za-z0-9_.]+)")
_SUBJECT_RE = re.compile(r"(?:^|[_/\\])sub-([A-Za-z0-9]+)")


class RecordingError(ValueError):
    """A recording cannot be read or processed; the message names the file and the reason."""


def _extension(path: Path) -> str:
    """The longest known extension of ``path`` (lower case), else its last suffix."""
    name = path.name.lower()
    known = [e for e in (*READERS, *_SAME_STEM_COMPANIONS) if name.endswith(e) and name != e]
    return max(known, key=len) if known else path.suffix.lower()


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


# ------------------------------------------------------------------ multi-file formats


def _header_entries(path: Path, keys: tuple[str, ...]) -> list[str]:
    """Values of ``key=value`` lines (case-insensitive keys) in a small text header."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read(1 << 16)
    except OSError:
        return []
    wanted = {k.lower() for k in keys}
    out = []
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip().lower() in wanted and value.strip():
            out.append(value.strip())
    return out


def _siblings(path: Path, extensions: Iterable[str]) -> list[Path]:
    """Files beside ``path`` with its stem and one of ``extensions`` (any case)."""
    stem = path.name[: len(path.name) - len(_extension(path))].lower()
    wanted = {stem + e for e in extensions}
    try:
        return sorted(p for p in path.parent.iterdir() if p.name.lower() in wanted and p != path)
    except OSError:
        return []


def _brainvision_referenced(folder: Path) -> dict[str, Path]:
    """File names referenced by the BrainVision headers of ``folder`` → their header."""
    out: dict[str, Path] = {}
    try:
        headers = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".vhdr", ".ahdr"))
    except OSError:
        return out
    for header in headers:
        for name in _header_entries(header, ("DataFile", "MarkerFile")):
            out.setdefault(Path(name.replace("\\", "/")).name.lower(), header)
    return out


def _main_file(path: Path, referenced: Mapping[str, Path] | None = None) -> Path | None:
    """The main file of the recording ``path`` belongs to, when ``path`` is a companion.

    BrainVision data/marker files (named by a ``.vhdr``/``.ahdr`` beside them, or sharing its
    stem), EEGLAB ``.fdt``, Nihon Kohden ``.PNT``/``.LOG``/``.21E``/... , Persyst ``.dat`` (a
    ``.lay`` beside it) and Curry parameter files. A ``.eeg`` is a BrainVision companion when
    a BrainVision header names it or shares its stem without a Nihon Kohden ``.PNT`` beside
    it; otherwise it is a Nihon Kohden main file. ``None`` when ``path`` is a main file or its
    main file is absent.
    """
    ext = _extension(path)
    if referenced is None and ext in (".eeg", ".vmrk", ".amrk", ".dat"):
        referenced = _brainvision_referenced(path.parent)
    header = (referenced or {}).get(path.name.lower())
    if (
        header is not None
        and header != path
        and (ext != ".eeg" or not _siblings(path, (".pnt",)) or header.stem == path.stem)
    ):
        return header
    if ext == ".eeg":
        if _siblings(path, (".pnt",)):
            return None  # Nihon Kohden
        found = _siblings(path, (".vhdr", ".ahdr"))
        return found[0] if found else None
    if ext == ".dat":
        lay = _siblings(path, (".lay",))  # Persyst
        if lay:
            return lay[0]
        cdt = _siblings(path, (".cdt",))  # Curry 8 beside a Curry 7 export
        return cdt[0] if cdt else None
    mains = _SAME_STEM_COMPANIONS.get(ext)
    if mains:
        for main_ext in mains:  # in order of preference
            found = _siblings(path, (main_ext,))
            if main_ext == ".eeg":
                found = [f for f in found if _main_file(f) is None]
            if found:
                return found[0]
    return None


# ------------------------------------------------------------------------------ reading


def _missing_package(err: BaseException) -> str | None:
    """The module a reader failed to import, from its ImportError or MNE's soft-import error."""
    for e in (err, err.__cause__, err.__context__):
        if isinstance(e, ImportError) and getattr(e, "name", None):
            return str(e.name).split(".")[0]
        if isinstance(e, RuntimeError) and "could not be imported" in str(e):
            match = _MISSING_MODULE_RE.search(str(e))
            if match:
                return match.group("name").split(".")[0]
    return None


def _missing_package_error(path: Path, kind: str, module: str) -> RecordingError:
    package = _FORMAT_PACKAGES.get(module, module)
    how = (
        f"pip install 'codebrain[formats]' (or pip install {package})"
        if module in _FORMAT_PACKAGES
        else f"pip install {package}"
    )
    return RecordingError(
        f"Cannot read {path} ({kind} format): it needs the optional package {package!r}; "
        f"install it with {how}."
    )


def _is_riff(path: Path) -> bool:
    """True for a RIFF/RF64 container (ANT Neuro ``.cnt``); Neuroscan ``.cnt`` is not one."""
    try:
        with open(path, "rb") as f:
            return f.read(4) in (b"RIFF", b"RF64")
    except OSError:
        return False


def _readers_for(path: Path, ext: str) -> dict[str, Callable[..., mne.io.BaseRaw]]:
    """The MNE readers to try for ``path``, in order."""
    readers = dict(READERS[ext])
    if ext == ".cnt":
        # Both Neuroscan and ANT Neuro use .cnt. MNE tries Neuroscan then ANT, but antio
        # crashes the interpreter (segmentation fault) on a Neuroscan file, so choose by
        # the file's magic bytes instead of by trial.
        ant = {k: v for k, v in readers.items() if "ant" in getattr(v, "__name__", "")}
        other = {k: v for k, v in readers.items() if k not in ant}
        readers = (ant or readers) if _is_riff(path) else (other or readers)
    return readers


def _read_with(
    reader: Callable[..., mne.io.BaseRaw],
    path: Path,
    kwargs: dict[str, Any],
) -> mne.io.BaseRaw:
    """Call ``reader``; a Neuroscan ``.cnt`` whose sample size cannot be inferred is re-read
    as 16-bit."""
    try:
        return reader(path, **kwargs)
    except RuntimeError as err:
        retry = (
            getattr(reader, "__name__", "") == "read_raw_cnt"
            and "data_format" not in kwargs
            and "data_format" in str(err)
        )
        if not retry:
            raise
        # MNE infers 16- or 32-bit samples from the header's sample count and the file size;
        # many Neuroscan files have a 0 or inconsistent count there, and 16-bit is the
        # format of most of them (MNE asks to "set data_format manually").
        logger.info(
            "%s: MNE could not infer the Neuroscan CNT sample size (%s); reading it as 16-bit "
            "(data_format='int16'). Pass data_format='int32' if the signal looks wrong.",
            path,
            next((ln.strip() for ln in str(err).splitlines() if "data_format" in ln), ""),
        )
        return reader(path, **kwargs, data_format="int16")


def read_raw(
    path: str | os.PathLike | Any,
    *,
    preload: bool = True,
    allow_truncated: bool = False,
    verbose: bool | str | int | None = None,
    **reader_kwargs: Any,
) -> mne.io.BaseRaw:
    """Read one EEG recording with MNE, choosing the reader from MNE's own reader table.

    Parameters
    ----------
    path : path-like | mne_bids.BIDSPath
        A raw file in any format of :data:`READERS` (MNE's table: EDF/EDF+, BDF, GDF, FIF,
        BrainVision ``.vhdr``, EEGLAB ``.set``, Nihon Kohden ``.EEG``, Persyst ``.lay``,
        Neuroscan and ANT ``.cnt``, EGI ``.mff``, ``.nedf``, Curry, BCI2000, ...), or a
        ``BIDSPath`` (read with ``mne_bids.read_raw_bids``, so events.tsv becomes
        annotations). A companion file (BrainVision ``.eeg``/``.vmrk``, EEGLAB ``.fdt``,
        Persyst ``.dat``, Nihon Kohden ``.PNT``...) raises an error naming its main file.
    preload : bool
        Load the data into memory (the pipeline filters in place, so the default is True).
    allow_truncated : bool
        Accept an EDF/BDF file shorter than its header says (MNE then reads what is there).
        By default such a file raises :class:`RecordingError`, whatever ``verbose`` says.
    verbose : bool | str | int | None
        Passed to MNE.
    **reader_kwargs
        Passed to the MNE reader, e.g. ``data_format="int32"`` for a Neuroscan ``.cnt``
        (by default one whose sample size MNE cannot infer is read as 16-bit, logged).

    Returns
    -------
    mne.io.BaseRaw
        The recording, data in volts, annotations from the file.

    Raises
    ------
    RecordingError
        Unknown extension, missing file, companion file, missing optional package (named,
        with the ``pip install`` line), or a file MNE cannot parse (message names the file
        and the reason).
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
    if not path.exists():
        raise RecordingError(f"Cannot read {path}: no such file.")
    main = _main_file(path) if path.is_file() else None
    if main is not None:
        raise RecordingError(
            f"Cannot read {path}: it is a companion file of the recording {main}; read that "
            "file instead."
        )
    if ext not in READERS:
        raise RecordingError(
            f"Cannot read {path}: unknown EEG file extension {ext!r}; expected one of "
            f"{sorted(READERS)} (the formats MNE {mne.__version__} reads) or a BIDS folder."
        )
    if ext in (".edf", ".bdf") and not allow_truncated:
        _check_edf_size(path, bytes_per_sample=3 if ext == ".bdf" else 2)
    kwargs = {**reader_kwargs, "preload": preload, "verbose": verbose}
    errors = []
    for kind, reader in _readers_for(path, ext).items():
        try:
            return _read_with(reader, path, kwargs)
        except Exception as err:
            module = _missing_package(err)
            if module is not None:
                raise _missing_package_error(path, kind, module) from err
            reason = " ".join(str(err).split()) or "no reason given"
            errors.append((kind, err, f"{type(err).__name__}: {reason}"))
    hint = ""
    if ext == ".eeg":
        hint = (
            " (a .eeg file is a Nihon Kohden recording, which needs its .PNT/.LOG/.21E files "
            "beside it, or the data file of a BrainVision recording: read its .vhdr)"
        )
    detail = "; ".join(f"as {kind}: {msg}" for kind, _, msg in errors)
    raise RecordingError(f"Cannot read {path} ({ext} file){hint}: {detail}") from errors[-1][1]


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
    """Recordings under ``folder``, once each: main files of multi-file formats, recording
    folders (EGI ``.mff``, CTF ``.ds``...) without descending into them."""
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


def _fpath(path: Any) -> Path:
    return Path(path.fpath) if _is_bids_path(path) else Path(path)


def _strip_extension(path: Path) -> str:
    ext = _extension(path)
    return path.name[: len(path.name) - len(ext)] if ext else path.name


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


#: Subject-id rules by name, for ``--subject-pattern NAME`` (a regex whose group ``subject``,
#: or first group, is the subject id). Without a pattern, :func:`subject_id` tries BIDS, then
#: the file-name rules (anchored to the whole name), then the header's patient id.
SUBJECT_PATTERNS: dict[str, str] = {
    "bids": r"(?:^|[_/\\])sub-(?P<subject>[A-Za-z0-9]+)",
    "eegbci": r"^(?P<subject>S\d{3})R\d{2}$",  # PhysioNet EEGBCI: S001R04
    "eegmat": r"^(?P<subject>Subject\d{2,})_\d+$",  # PhysioNet EEGMAT: Subject00_1
    "tuh": r"^(?P<subject>[a-z0-9]{8})_s\d{3}_t\d{3}$",  # TUH EEG: aaaaaaaa_s001_t000
}


def _subject_regex(pattern: str | re.Pattern) -> re.Pattern:
    """Compile ``pattern`` (a regex or a :data:`SUBJECT_PATTERNS` name); check its group."""
    if isinstance(pattern, re.Pattern):
        rx = pattern
    else:
        text = SUBJECT_PATTERNS.get(str(pattern).strip().lower(), pattern)
        try:
            rx = re.compile(text)
        except re.error as err:
            raise ValueError(
                f"subject pattern {pattern!r} is not a valid regular expression: {err}."
            ) from err
    if rx.groups < 1:
        raise ValueError(
            f"subject pattern {rx.pattern!r} needs a capture group holding the subject id "
            "(named 'subject', or the first group), e.g. '^(S\\d{3})R\\d{2}$'."
        )
    return rx


def _match_subject(rx: re.Pattern, text: str) -> str | None:
    m = rx.search(text)
    if m is None:
        return None
    value = m.group("subject") if "subject" in rx.groupindex else m.group(1)
    return value or None


def subject_id(
    path: str | os.PathLike | Any,
    raw: mne.io.BaseRaw | None = None,
    *,
    pattern: str | re.Pattern | None = None,
) -> str:
    """Subject identifier of a recording, for subject-wise splits.

    With ``pattern``: its group ``subject`` (or first group), searched in the file name
    without extension, then in the full path. Without: the BIDS ``sub-<label>`` entity, the
    known file-name rules of :data:`SUBJECT_PATTERNS` (EEGBCI ``S001R04`` → ``S001``, EEGMAT
    ``Subject00_1`` → ``Subject00``, TUH ``aaaaaaaa_s001_t000`` → ``aaaaaaaa``), the patient
    id stored in the file (``subject_info["his_id"]``), then the recording id (one subject
    per file).

    Parameters
    ----------
    path : path-like | mne_bids.BIDSPath
    raw : mne.io.BaseRaw | None
        The opened recording, to read ``subject_info``.
    pattern : str | re.Pattern | None
        A regex with a capture group, or a name from :data:`SUBJECT_PATTERNS`
        (``"eegbci"``, ``"eegmat"``, ``"tuh"``, ``"bids"``).

    Returns
    -------
    str

    Raises
    ------
    ValueError
        ``pattern`` is not a regex with a group, or does not match the path.
    """
    if _is_bids_path(path):
        if path.subject and pattern is None:
            return str(path.subject)
        path = path.fpath
    path = Path(path)
    stem = recording_id(path)
    if pattern is not None:
        rx = _subject_regex(pattern)
        for text in (stem, path.as_posix()):
            found = _match_subject(rx, text)
            if found:
                return found
        raise ValueError(
            f"subject pattern {rx.pattern!r} does not match {path} (tried the name {stem!r} "
            "and the full path)."
        )
    match = _SUBJECT_RE.search(path.name)
    if match:
        return match.group(1)
    for name in ("eegbci", "eegmat", "tuh"):
        found = _match_subject(re.compile(SUBJECT_PATTERNS[name]), stem)
        if found:
            return found
    if raw is not None:
        info = raw.info.get("subject_info") or {}
        his_id = info.get("his_id")
        if his_id and str(his_id).strip() not in ("", "X"):
            return str(his_id).strip()
    return stem


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
