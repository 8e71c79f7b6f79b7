"""Which file is which EEG format: MNE's reader table, extensions and multi-file recordings.

Every raw format MNE reads is dispatched through MNE's own reader table
(``mne.io._read_raw._get_supported``, exposed here as :data:`READERS`), so a format MNE adds
is read without a change here. Formats that need an optional package (ANT ``.cnt``:
``antio``; EGI ``.mff``: ``mffpy``; ``.nedf``: ``defusedxml``; HDF5 EEGLAB ``.set``:
``pymatreader``; Curry: ``curryreader``) are installed with ``pip install 'codebrain[formats]'``.
Multi-file formats (BrainVision, EEGLAB ``.set``/``.fdt``, Nihon Kohden, Persyst, Curry) have
one main file; :func:`_main_file` finds it from a companion, so that reading
(:func:`codebrain.data.io.read_raw`) and listing (:func:`codebrain.data.recordings.list_recordings`)
agree on what a recording is. BIDS paths (``mne_bids.BIDSPath``) are recognised here too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import mne

__all__ = ["READERS"]


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


# ------------------------------------------------------------------------------ file names


def _fpath(path: Any) -> Path:
    """The file of a recording (a path, or a ``BIDSPath``'s ``fpath``)."""
    return Path(path.fpath) if _is_bids_path(path) else Path(path)


def _strip_extension(path: Path) -> str:
    """The file name of ``path`` without its (longest known) extension."""
    ext = _extension(path)
    return path.name[: len(path.name) - len(ext)] if ext else path.name
