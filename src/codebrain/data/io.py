"""Reading one EEG recording with MNE (or mne-bids), the reader chosen from MNE's own table.

:func:`read_raw` dispatches on the file's extension through :data:`READERS` (MNE's reader
table, see :mod:`codebrain.data.formats`), refuses companion files of multi-file recordings by
naming their main file, checks EDF/BDF files for truncation, and turns every failure into one
:class:`RecordingError` naming the file and the reason (a missing optional package with its
``pip install`` line). A ``BIDSPath`` is read through ``mne_bids`` (an optional dependency).

Listing recordings and their ids (:mod:`codebrain.data.recordings`), subject ids
(:mod:`codebrain.data.subjects`) and label tables (:mod:`codebrain.data.labels`) live in their
own modules; their public names are re-exported here, where they used to live.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mne

from codebrain.data.formats import (
    _FORMAT_PACKAGES,
    READERS,
    _extension,
    _import_mne_bids,
    _is_bids_path,
    _main_file,
)
from codebrain.data.labels import read_label_table
from codebrain.data.recordings import (
    find_bids_recordings,
    list_recordings,
    recording_id,
    recording_ids,
)
from codebrain.data.subjects import SUBJECT_PATTERNS, subject_id

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


_MISSING_MODULE_RE = re.compile(r"the module (?P<name>[A-Za-z0-9_.]+)")


class RecordingError(ValueError):
    """A recording cannot be read or processed; the message names the file and the reason."""


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
    """Call ``reader``.

    A Neuroscan ``.cnt`` whose sample size cannot be inferred is re-read as 16-bit.
    """
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
