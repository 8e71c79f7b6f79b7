"""Helpers shared by the task modules.

Safe pickle reading, EDF files under other extensions, ``.mat`` reading, the end of a ``find``
hook that skips files lacking their labels, and splits given as a per-recording assignment.

Shape legend: ``n_chans`` channels, ``n_times`` samples.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from codebrain.benchmark.hooks import Recording
from codebrain.benchmark.recipe import DatasetNotFoundError
from codebrain.benchmark.split import Split

logger = logging.getLogger(__name__)

# What a pickled numpy array needs to be rebuilt, and nothing else (no code can run).
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("builtins", "bytearray"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: only numpy arrays are accepted"
        )


def load_array_pickle(path: str | Path) -> np.ndarray:
    """Read a pickle that holds one numpy array, refusing anything that could run code.

    Parameters
    ----------
    path : path-like
        The ``.pkl`` file (FACED's ``Processed_data/subNNN.pkl``).

    Returns
    -------
    np.ndarray
        The array.

    Raises
    ------
    ValueError
        The file is not a pickled numpy array (names the file and what was found).
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            obj = _ArrayUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError) as err:
        raise ValueError(f"{path}: not a pickled numpy array ({err}).") from err
    if not isinstance(obj, np.ndarray):
        raise ValueError(f"{path}: expected a pickled numpy array, found {type(obj).__name__}.")
    return obj


def read_edf_raw(path: str | Path) -> Any:
    """Read an EDF file whatever its extension (ISRUC ships EDF as ``.rec``), data in volts.

    Raises
    ------
    ValueError
        MNE cannot parse it (names the file).
    """
    from mne.io.edf.edf import RawEDF

    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: no such file.")
    try:
        return RawEDF(path, preload=True, verbose="error")
    except Exception as err:
        raise ValueError(f"Cannot read {path} as EDF: {type(err).__name__}: {err}") from err


def load_mat(path: str | Path) -> dict[str, Any]:
    """``scipy.io.loadmat`` with a one-line error naming the file (v7.3 files need h5py)."""
    import scipy.io

    path = Path(path)
    try:
        return scipy.io.loadmat(path)
    except NotImplementedError as err:  # MATLAB v7.3 (HDF5)
        raise ValueError(
            f"{path} is a MATLAB v7.3 (HDF5) file; it is read with h5py, not scipy."
        ) from err
    except Exception as err:
        raise ValueError(f"Cannot read {path} as a .mat file: {type(err).__name__}: {err}") from err


def mat_key(mat: Mapping[str, Any], key: str, path: str | Path) -> Any:
    """``mat[key]`` or a ``ValueError`` listing the keys the file has."""
    if key not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise ValueError(f"{path}: no variable {key!r} in the .mat file (it has {keys}).")
    return mat[key]


def kept_recordings(
    found: list[Recording], skipped: Sequence[str], *, skip_warning: str, not_found: str
) -> list[Recording]:
    """The end of a ``find`` hook: warn about the files it skipped, fail when none is left.

    Parameters
    ----------
    found : list of Recording
        The recordings with everything they need (a label file, seizure times, ...).
    skipped : sequence of str
        Names of the files left out because they lack it.
    skip_warning : str
        The warning about them: a ``%``-format with one ``%d`` (their number), to which
        ``": "`` and the first five names are appended.
    not_found : str
        The message of the :class:`DatasetNotFoundError` raised when ``found`` is empty.

    Returns
    -------
    list of Recording
        ``found``.

    Raises
    ------
    DatasetNotFoundError
        No recording was kept.
    """
    if skipped:
        logger.warning(skip_warning + ": %s", len(skipped), ", ".join(skipped[:5]))
    if not found:
        raise DatasetNotFoundError(not_found)
    return found


def split_from_assignment(recordings: Sequence[Recording], part_of: Mapping[str, str]) -> Split:
    """A :class:`Split` from a part (``"train"``/``"val"``/``"test"``) per recording id.

    Subject-wise when every subject's recordings fall in one part (the ids are then subject
    ids); otherwise by recording, with a warning naming the subjects that straddle parts (the
    authors' TUAB rule splits the normal and abnormal folders separately, so a subject with
    both kinds of session can land in two parts).
    """
    parts: dict[str, set[str]] = {}
    for rec in recordings:
        parts.setdefault(rec.subject, set()).add(part_of[rec.id])
    straddling = sorted(s for s, p in parts.items() if len(p) > 1)
    if not straddling:
        by_part: dict[str, list[str]] = {"train": [], "val": [], "test": []}
        for subject, p in sorted(parts.items()):
            by_part[next(iter(p))].append(subject)
        return Split(tuple(by_part["train"]), tuple(by_part["val"]), tuple(by_part["test"]))
    logger.warning(
        "The authors' split puts %d subject(s) in two parts (e.g. %s); splitting by recording "
        "to keep their assignment exactly.",
        len(straddling),
        ", ".join(straddling[:4]),
    )
    by_part = {"train": [], "val": [], "test": []}
    for rec in sorted(recordings, key=lambda r: r.id):
        by_part[part_of[rec.id]].append(rec.id)
    return Split(
        tuple(by_part["train"]), tuple(by_part["val"]), tuple(by_part["test"]), unit="recording"
    )


def first_fraction(ids: Sequence[str], fraction: float) -> tuple[list[str], list[str]]:
    """The authors' ``ids[: int(len * fraction)]`` / rest cut of a plainly sorted id list."""
    ordered = sorted(set(ids))
    cut = int(len(ordered) * fraction)
    return ordered[:cut], ordered[cut:]
