"""What a recipe's hooks exchange: the recordings ``find`` lists and the windows ``load`` returns.

``find(root) -> list[Recording]`` lists the recordings of a local copy of a dataset (one
:class:`Recording` per unit that ``load`` reads: a file, or a (file, key) pair for containers
holding several subjects); ``load(recipe, recording) -> TaskWindows`` reads one and returns
its windows ``(n_windows, n_chans, n_times)`` float32 in model units, integer labels and the
subject id of every window (:class:`TaskWindows`). The hook signatures are spelled out as
:data:`FindHook`, :data:`LoadHook`, :data:`SplitRule` and :data:`DownloadHook`.

Shape legend: ``n_windows`` windows, ``n_chans`` channels, ``n_times`` samples.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from codebrain.benchmark.split import Split
from codebrain.utils.check import check_type, check_value

if TYPE_CHECKING:
    from codebrain.benchmark.recipe import TaskRecipe

__all__ = [
    "Recording",
    "TaskWindows",
    "FindHook",
    "LoadHook",
    "SplitRule",
    "DownloadHook",
]


@dataclass(frozen=True)
class Recording:
    """One unit a recipe's ``load`` hook reads.

    Parameters
    ----------
    path : Path
        The file (or folder) holding the recording.
    subject : str
        Subject id as the dataset names it.
    label : int | str | None
        The label source for this recording: a class index or name when the whole file has
        one label (file-name suffix), None when labels come from inside the file or from
        ``meta`` (annotations, label files).
    key : str
        Identifies the recording inside a container holding several (a ``.mat`` field, a
        session index); ``""`` when the file is the recording.
    meta : Mapping
        Anything else ``load`` needs (companion label file, session, run number ...);
        ``"stratum"`` groups recordings of one kind for the by-recording fallback split.
    """

    path: Path
    subject: str
    label: int | str | None = None
    key: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        check_type("Recording.subject", self.subject, str, "a non-empty str")
        check_value("Recording.subject", self.subject, bool(self.subject), "a non-empty str")

    @property
    def id(self) -> str:
        """Unique name: the file name without extension, plus ``:key`` when set."""
        name = self.path.name
        for ext in (".fif.gz",):
            if name.lower().endswith(ext):
                name = name[: -len(ext)]
                break
        else:
            name = self.path.stem if self.path.suffix else name
        return f"{name}:{self.key}" if self.key else name


@dataclass
class TaskWindows:
    """Windows of one or more recordings, in model units.

    Parameters
    ----------
    x : np.ndarray
        ``(n_windows, n_chans, n_times)`` float32, model units.
    y : np.ndarray
        ``(n_windows,)`` int64 class indices into the recipe's ``classes``; for sequence tasks
        (``recipe.sequence_length = S > 1``, the ISRUC sequence head) ``(n_windows, S)``: one
        label per epoch, with ``x`` ``(n_windows, n_chans, S * recipe.n_times)`` (the S epochs
        one after the other).
    subjects : np.ndarray
        ``(n_windows,)`` subject id of every window (str).
    recordings : np.ndarray
        ``(n_windows,)`` recording id of every window (str).
    groups : np.ndarray | None
        ``(n_windows,)`` split-unit id of every window when the split is not by subject
        (SEED-V trials); None means ``subjects``.
    """

    x: np.ndarray
    y: np.ndarray
    subjects: np.ndarray
    recordings: np.ndarray
    groups: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.x = np.asarray(self.x)
        if self.x.ndim != 3:
            raise ValueError(
                f"TaskWindows.x must be (n_windows, n_chans, n_times), got shape {self.x.shape}."
            )
        if self.x.dtype != np.float32:
            self.x = self.x.astype(np.float32)
        n = len(self.x)
        y = np.asarray(self.y, dtype=np.int64)
        self.y = y if y.ndim == 2 else y.reshape(-1)
        self.subjects = _str_array(self.subjects, n)
        self.recordings = _str_array(self.recordings, n)
        if self.groups is not None:
            self.groups = _str_array(self.groups, n)
        for name in ("y", "subjects", "recordings") + (
            ("groups",) if self.groups is not None else ()
        ):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"TaskWindows.{name} has {len(getattr(self, name))} entries for {n} windows."
                )

    def __len__(self) -> int:
        return len(self.x)

    @property
    def group_ids(self) -> np.ndarray:
        """Split-unit id per window (``groups``, else ``subjects``)."""
        return self.groups if self.groups is not None else self.subjects

    def ids_for(self, unit: str) -> np.ndarray:
        """Per-window ids in the unit of a :class:`Split`.

        ``unit`` is ``"subject"``, ``"recording"`` or ``"trial"``.
        """
        if unit == "recording":
            return self.recordings
        if unit == "trial":
            if self.groups is None:
                raise ValueError("A split by trial needs TaskWindows.groups (trial ids).")
            return self.groups
        return self.subjects

    def select(self, mask: np.ndarray) -> TaskWindows:
        """The windows where ``mask`` (bool or index array) selects."""
        return TaskWindows(
            self.x[mask],
            self.y[mask],
            self.subjects[mask],
            self.recordings[mask],
            None if self.groups is None else self.groups[mask],
        )

    @classmethod
    def empty(cls, n_chans: int, n_times: int) -> TaskWindows:
        """No windows, of the given shape."""
        return cls(np.zeros((0, n_chans, n_times), np.float32), [], [], [])

    @classmethod
    def concat(cls, parts: Sequence[TaskWindows]) -> TaskWindows:
        """Concatenate windows of several recordings (they must share channels and length)."""
        parts = [p for p in parts if len(p)]
        if not parts:
            raise ValueError("No windows to concatenate (every recording gave none).")
        shapes = {p.x.shape[1:] for p in parts}
        if len(shapes) != 1:
            raise ValueError(f"Recordings give windows of different shapes: {sorted(shapes)}.")
        with_groups = [p.groups is not None for p in parts]
        if any(with_groups) and not all(with_groups):
            raise ValueError("Some recordings set TaskWindows.groups and others do not.")
        return cls(
            np.concatenate([p.x for p in parts]),
            np.concatenate([p.y for p in parts]),
            np.concatenate([p.subjects for p in parts]),
            np.concatenate([p.recordings for p in parts]),
            np.concatenate([p.groups for p in parts]) if all(with_groups) else None,
        )


def _str_array(values: Any, n: int) -> np.ndarray:
    if isinstance(values, str):
        return np.full(n, values, dtype=object)
    return np.asarray([str(v) for v in values], dtype=object)


#: ``find(root) -> list[Recording]``: the recordings of a local copy of the dataset.
FindHook = Callable[[Path], list[Recording]]
#: ``load(recipe, recording) -> TaskWindows``: the windows of one recording.
LoadHook = Callable[["TaskRecipe", Recording], TaskWindows]
#: ``split_rule(recordings, fold) -> Split | None``: the authors' split computed from the
#: recordings found (None when they are not the full dataset).
SplitRule = Callable[[Sequence[Recording], int], Split | None]
#: ``download(recipe, root)``: fetch the dataset into ``root``.
DownloadHook = Callable[["TaskRecipe", Path], None]
