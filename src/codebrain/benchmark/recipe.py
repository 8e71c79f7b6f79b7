"""Declarative downstream-task recipes: what the authors did to a dataset, as one frozen object.

A :class:`TaskRecipe` states everything the benchmark needs to reproduce a downstream protocol
of CodeBrain (arXiv 2506.09110) or CBraMod: classes, channels and their order (monopolar names
or bipolar pairs ``"FP1-F7"``), preprocessing in the authors' order (:class:`Resample`,
:class:`BandPass`, :class:`Notch`, :class:`CommonAverage`), sampling rate, window length and
stride, amplitude scale, the subject-id rule, the authors' split (explicit subject ids, or a
rule computed from the recordings found), metrics and the model-selection metric, the head,
the fine-tuning recipe (:class:`FinetuneRecipe`), the expected local layout and where the
dataset is obtained, and two per-dataset hooks:

``find(root) -> list[Recording]``
    Lists the recordings of a local copy of the dataset (one :class:`Recording` per unit that
    :func:`load` reads: a file, or a (file, key) pair for containers holding several subjects).
``load(recipe, recording) -> TaskWindows``
    Reads one recording and returns its windows ``(n_windows, n_chans, n_times)`` float32 in
    model units, integer labels and the subject id of every window.

The helpers in :mod:`codebrain.benchmark.signal` (channel picking with bipolar pairs,
:meth:`TaskRecipe.prepare` for the authors' preprocessing and scaling, window cutting) keep
each hook a few lines long whatever the layout (EDF + annotations, file-name labels,
``.mat``/``.pkl``/``.cnt`` files).

Recipes are registered by name (:func:`register_recipe`); the modules of
:mod:`codebrain.benchmark.tasks` are imported on first look-up, so a new task is a new module
there that defines ``RECIPES = (...)`` and nothing else has to change.

Shape legend: ``n_windows`` windows, ``n_chans`` channels, ``n_times`` samples.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = [
    "PATCH_SIZE",
    "BINARY_METRICS",
    "MULTICLASS_METRICS",
    "Resample",
    "BandPass",
    "Notch",
    "CommonAverage",
    "PreprocessStep",
    "FinetuneRecipe",
    "Split",
    "Recording",
    "TaskWindows",
    "TaskRecipe",
    "DatasetNotFoundError",
    "register_recipe",
    "get_recipe",
    "list_recipes",
    "fallback_split",
    "resolve_split",
]

logger = logging.getLogger(__name__)

#: Samples per patch of the released model (1 s at 200 Hz).
PATCH_SIZE: int = 200

#: Test metrics of a binary task (``auprc`` is the authors' ``auc(recall, precision)``;
#: ``average_precision`` is sklearn's step-wise ``average_precision_score`` beside it).
BINARY_METRICS: tuple[str, ...] = ("balanced_accuracy", "auroc", "auprc", "average_precision")
#: Test metrics of a multi-class task.
MULTICLASS_METRICS: tuple[str, ...] = ("balanced_accuracy", "cohen_kappa", "f1_weighted")

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class DatasetNotFoundError(FileNotFoundError):
    """A local copy of a dataset is missing or incomplete; the message says what layout is
    expected and where the dataset is obtained."""


# --------------------------------------------------------------------------------------------
# Preprocessing steps (applied in order by TaskRecipe.prepare; implemented in .signal)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resample:
    """Resample to ``sfreq`` Hz.

    Parameters
    ----------
    sfreq : float
        Target rate in Hz.
    method : {"mne", "scipy"}
        ``"mne"``: ``mne.filter.resample`` (what ``raw.resample`` does, FFT with padding;
        CBraMod's TUEG/TUAB/TUEV/PhysioNet scripts). ``"scipy"``: ``scipy.signal.resample`` to
        ``round(n_times * sfreq / old)`` samples (FFT without padding; CBraMod's CHB-MIT,
        FACED, SHU-MI, BCIC-IV-2a loaders).
    """

    sfreq: float = 200.0
    method: Literal["mne", "scipy"] = "mne"

    def __post_init__(self) -> None:
        if not (isinstance(self.sfreq, int | float) and self.sfreq > 0):
            raise ValueError(f"Resample.sfreq must be a positive number, got {self.sfreq!r}.")
        if self.method not in ("mne", "scipy"):
            raise ValueError(f"Resample.method must be 'mne' or 'scipy', got {self.method!r}.")

    def describe(self) -> str:
        """One-line human description."""
        return f"resample to {self.sfreq:g} Hz ({self.method})"


@dataclass(frozen=True)
class BandPass:
    """Band-pass (or high-/low-pass with one edge None) filter.

    Parameters
    ----------
    l_freq, h_freq : float | None
        Edges in Hz; None disables that edge (``BandPass(0.3, None)`` is a high-pass).
    method : {"fir", "butter"}
        ``"fir"``: MNE's default zero-phase FIR (``raw.filter``). ``"butter"``: a
        Butterworth IIR of ``order`` from SciPy, applied causally (``lfilter``) when
        ``causal`` else forward-backward (``filtfilt``).
    order : int
        Butterworth order (``method="butter"`` only).
    causal : bool
        Causal ``lfilter`` instead of ``filtfilt`` (``method="butter"`` only).
    """

    l_freq: float | None
    h_freq: float | None
    method: Literal["fir", "butter"] = "fir"
    order: int = 5
    causal: bool = False

    def __post_init__(self) -> None:
        if self.l_freq is None and self.h_freq is None:
            raise ValueError("BandPass needs l_freq or h_freq (both are None).")
        for name in ("l_freq", "h_freq"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, int | float) and v > 0):
                raise ValueError(f"BandPass.{name} must be a positive number or None, got {v!r}.")
        if self.l_freq is not None and self.h_freq is not None and self.l_freq >= self.h_freq:
            raise ValueError(
                f"BandPass needs l_freq < h_freq, got {self.l_freq!r} >= {self.h_freq!r}."
            )
        if self.method not in ("fir", "butter"):
            raise ValueError(f"BandPass.method must be 'fir' or 'butter', got {self.method!r}.")
        if not (isinstance(self.order, int) and self.order >= 1):
            raise ValueError(f"BandPass.order must be a positive int, got {self.order!r}.")

    def describe(self) -> str:
        """One-line human description."""
        lo = "" if self.l_freq is None else f"{self.l_freq:g}"
        hi = "" if self.h_freq is None else f"{self.h_freq:g}"
        how = "FIR" if self.method == "fir" else f"Butterworth order {self.order}"
        if self.method == "butter":
            how += ", causal" if self.causal else ", zero-phase"
        return f"band-pass {lo}-{hi} Hz ({how})"


@dataclass(frozen=True)
class Notch:
    """Notch one frequency (MNE ``notch_filter``; the authors notch the mains only, no
    harmonics).

    Parameters
    ----------
    freq : float
        Frequency in Hz (50 or 60).
    """

    freq: float

    def __post_init__(self) -> None:
        if not (isinstance(self.freq, int | float) and self.freq > 0):
            raise ValueError(f"Notch.freq must be a positive number, got {self.freq!r}.")

    def describe(self) -> str:
        """One-line human description."""
        return f"notch {self.freq:g} Hz"


@dataclass(frozen=True)
class CommonAverage:
    """Subtract the mean over channels at every sample (average reference)."""

    def describe(self) -> str:
        """One-line human description."""
        return "common average reference"


PreprocessStep = Resample | BandPass | Notch | CommonAverage


# --------------------------------------------------------------------------------------------
# Fine-tuning recipe, split, recordings, windows
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FinetuneRecipe:
    """The authors' fine-tuning recipe (CodeBrain ``finetune_main.py`` defaults).

    Parameters
    ----------
    epochs, batch_size : int
        50 epochs of batch 64.
    lr, weight_decay : float
        One AdamW group for backbone and head: lr 1e-4, weight decay 5e-4.
    min_lr : float
        Per-step cosine schedule to this lr, no warm-up.
    warmup_epochs : int
        Warm-up epochs (0 in the authors' code).
    clip_grad_norm : float
        Gradient-norm clip.
    label_smoothing : float
        Cross-entropy label smoothing for multi-class tasks (binary tasks use BCE on one
        logit, without smoothing).
    dropout : float
        Dropout of the backbone and head.
    """

    epochs: int = 50
    batch_size: int = 64
    lr: float = 1e-4
    weight_decay: float = 5e-4
    min_lr: float = 1e-6
    warmup_epochs: int = 0
    clip_grad_norm: float = 5.0
    label_smoothing: float = 0.1
    dropout: float = 0.1

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
                raise ValueError(f"FinetuneRecipe.{name} must be a positive int, got {v!r}.")
        if not (isinstance(self.warmup_epochs, int) and self.warmup_epochs >= 0):
            raise ValueError(
                f"FinetuneRecipe.warmup_epochs must be a non-negative int, got {self.warmup_epochs!r}."
            )
        for name in ("lr", "clip_grad_norm"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and v > 0):
                raise ValueError(f"FinetuneRecipe.{name} must be a positive number, got {v!r}.")
        for name in ("weight_decay", "min_lr"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and v >= 0):
                raise ValueError(f"FinetuneRecipe.{name} must be a number >= 0, got {v!r}.")
        for name in ("label_smoothing", "dropout"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and 0 <= v < 1):
                raise ValueError(f"FinetuneRecipe.{name} must be in [0, 1), got {v!r}.")


@dataclass(frozen=True)
class Split:
    """A train/validation/test assignment of group ids (subject ids unless ``unit`` says).

    Parameters
    ----------
    train, val, test : tuple of str
        Group ids as the dataset names them (e.g. ``"Subject00"``, ``"S001"``, ``"chb01"``).
    unit : {"subject", "recording", "trial"}
        What the ids are. The authors split by subject except SEED-V (by trial); a fallback
        split of a one-subject copy splits by recording.
    """

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    unit: Literal["subject", "recording", "trial"] = "subject"

    def __post_init__(self) -> None:
        for part in ("train", "val", "test"):
            ids = getattr(self, part)
            if isinstance(ids, str) or not isinstance(ids, Iterable):
                raise TypeError(f"Split.{part} must be a tuple of ids, got {ids!r}.")
            ids = tuple(str(i) for i in ids)
            object.__setattr__(self, part, ids)
            if not ids:
                raise ValueError(f"Split.{part} is empty; every part needs at least one id.")
            if len(set(ids)) != len(ids):
                raise ValueError(f"Split.{part} lists an id twice: {ids}.")
        overlap = (
            (set(self.train) & set(self.val))
            | (set(self.train) & set(self.test))
            | (set(self.val) & set(self.test))
        )
        if overlap:
            raise ValueError(f"Split parts overlap on {sorted(overlap)}; they must be disjoint.")
        if self.unit not in ("subject", "recording", "trial"):
            raise ValueError(
                f"Split.unit must be 'subject', 'recording' or 'trial', got {self.unit!r}."
            )

    @property
    def ids(self) -> tuple[str, ...]:
        """All ids, train then val then test."""
        return self.train + self.val + self.test

    def part_of(self, group: str) -> str | None:
        """``"train"``, ``"val"``, ``"test"`` or None for an id the split does not list."""
        for part in ("train", "val", "test"):
            if group in getattr(self, part):
                return part
        return None

    def as_dict(self) -> dict[str, list[str]]:
        """``{"train": [...], "val": [...], "test": [...]}`` (JSON-able)."""
        return {"train": list(self.train), "val": list(self.val), "test": list(self.test)}


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
        if not isinstance(self.subject, str) or not self.subject:
            raise ValueError(f"Recording.subject must be a non-empty str, got {self.subject!r}.")

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
        """Per-window ids in the unit of a :class:`Split` (``"subject"``, ``"recording"``,
        ``"trial"``)."""
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


# --------------------------------------------------------------------------------------------
# The recipe
# --------------------------------------------------------------------------------------------

FindHook = Callable[[Path], list[Recording]]
LoadHook = Callable[["TaskRecipe", Recording], TaskWindows]
SplitRule = Callable[[Sequence[Recording], int], Split | None]
DownloadHook = Callable[["TaskRecipe", Path], None]


@dataclass(frozen=True)
class TaskRecipe:
    """One downstream task, as the authors ran it.

    Parameters
    ----------
    name : str
        Registry key, lower case with underscores (``"mental_arithmetic"``).
    title : str
        Display name (``"MentalArithmetic (PhysioNet EEGMAT)"``).
    classes : tuple of str
        Class names; label ``k`` is ``classes[k]``. Two classes make a binary task (one logit
        + BCE, AUROC selection).
    channels : tuple of str
        Channels in the model's input order: monopolar names (normalised spelling, ``"FP1"``)
        or bipolar pairs ``"FP1-F7"`` (first minus second). A name that is itself a derivation
        in the file (EEGMAT's ``"A2-A1"``) is read as stored when the file has it.
    preprocessing : tuple of PreprocessStep
        Steps in the authors' order (e.g. ``(Resample(200), BandPass(0.3, 75), Notch(60))``).
        Empty when the authors filter nothing; a final rate other than ``sfreq`` is an error.
    window_s : float
        Window length in seconds (a multiple of 1 s: the model's patch).
    stride_s : float | None
        Step between fixed windows in seconds; None for event-locked windows (``window_rule``
        says how they are placed).
    window_rule : str
        How windows are cut, in words (``"non-overlapping 5 s windows from the start"``).
    amplitude_scale : float
        Multiplier from µV to model units: 0.01 (µV/100, every dataset but ISRUC), 1.0 (raw
        µV, CodeBrain's ISRUC loaders).
    subject_pattern : str
        Regex whose group ``subject`` (or first group) is the subject id, searched in the file
        name then in the path relative to the data folder (``r"(Subject\\d{2})_[12]"``).
    find : callable
        ``find(root) -> list[Recording]``; raises :class:`DatasetNotFoundError` when nothing
        of the layout is there.
    load : callable
        ``load(recipe, recording) -> TaskWindows``.
    layout : str
        The expected local layout, for error messages (``"<root>/SubjectNN_K.edf ..."``).
    source : str
        Where the dataset is obtained (URL, licence/registration note).
    split : Split | None
        The authors' split as explicit ids.
    split_rule : callable | None
        ``split_rule(recordings, fold) -> Split | None``: the authors' split computed from the
        recordings found (TUAB's sorted 80/20, ISRUC-S3's folds); None when the recordings are
        not the full dataset. Used when ``split`` is None.
    n_folds : int
        Number of folds ``split_rule`` knows (1: a single split).
    split_note : str
        The authors' split in words (``"sorted files 56/8/8: subjects 0-27/28-31/32-35"``).
    fallback_fractions : tuple of float
        Train/val/test fractions of the deterministic subject-wise split used when only part of
        the dataset is present (default: the proportions of ``split``, else 0.7/0.15/0.15).
    metrics : tuple of str | None
        Test metrics (default :data:`BINARY_METRICS` or :data:`MULTICLASS_METRICS`).
    selection_metric : str | None
        Validation metric that picks the epoch (default ``"auroc"`` binary, ``"cohen_kappa"``
        multi-class).
    head : {"mlp", "isruc_sequence"}
        ``"mlp"``: flatten → Linear(C·P·200 → P·200) → ELU → Dropout → Linear(P·200 → 200) →
        ELU → Dropout → Linear(200 → K); ``"isruc_sequence"``: the ISRUC sequence head.
    head_dropout : float
        Dropout of the MLP head (0 for CHB-MIT and BCIC2020-3).
    finetune : FinetuneRecipe
        The authors' fine-tuning recipe.
    sequence_length : int
        Epochs per sequence for the ISRUC sequence head (1 otherwise); ``window_s`` is then the
        length of one epoch and ``load`` returns ``x`` ``(n, C, S · n_times)``, ``y`` ``(n, S)``.
    download : callable | None
        ``download(recipe, root)``: fetch the dataset into ``root`` with a public downloader
        (MNE, MOABB, pooch); None when none exists.
    aliases : tuple of str
        Other names :func:`get_recipe` accepts.
    reference : str
        Where the protocol comes from (authors' script names).
    """

    name: str
    title: str
    classes: tuple[str, ...]
    channels: tuple[str, ...]
    preprocessing: tuple[PreprocessStep, ...]
    window_s: float
    stride_s: float | None
    subject_pattern: str
    find: FindHook
    load: LoadHook
    layout: str
    source: str
    window_rule: str = ""
    sfreq: float = 200.0
    amplitude_scale: float = 0.01
    split: Split | None = None
    split_rule: SplitRule | None = None
    n_folds: int = 1
    split_note: str = ""
    fallback_fractions: tuple[float, float, float] | None = None
    metrics: tuple[str, ...] | None = None
    selection_metric: str | None = None
    head: Literal["mlp", "isruc_sequence"] = "mlp"
    head_dropout: float = 0.1
    finetune: FinetuneRecipe = field(default_factory=FinetuneRecipe)
    sequence_length: int = 1
    download: DownloadHook | None = None
    aliases: tuple[str, ...] = ()
    reference: str = ""

    def __post_init__(self) -> None:
        if not (isinstance(self.name, str) and _NAME_RE.match(self.name)):
            raise ValueError(
                f"TaskRecipe.name must be lower case letters, digits and '_', got {self.name!r}."
            )
        where = f"recipe {self.name!r}"
        classes = tuple(self.classes)
        if len(classes) < 2 or len(set(classes)) != len(classes):
            raise ValueError(f"{where}: classes must be >= 2 distinct names, got {classes}.")
        object.__setattr__(self, "classes", classes)
        channels = tuple(str(c) for c in self.channels)
        if not channels or len(set(channels)) != len(channels):
            raise ValueError(f"{where}: channels must be distinct and non-empty, got {channels}.")
        object.__setattr__(self, "channels", channels)
        steps = tuple(self.preprocessing)
        for s in steps:
            if not isinstance(s, Resample | BandPass | Notch | CommonAverage):
                raise TypeError(
                    f"{where}: preprocessing steps must be Resample/BandPass/Notch/CommonAverage, "
                    f"got {s!r}."
                )
        object.__setattr__(self, "preprocessing", steps)
        resamples = [s for s in steps if isinstance(s, Resample)]
        if resamples and resamples[-1].sfreq != self.sfreq:
            raise ValueError(
                f"{where}: the last Resample goes to {resamples[-1].sfreq:g} Hz but sfreq is "
                f"{self.sfreq:g} Hz."
            )
        if not (isinstance(self.window_s, int | float) and self.window_s > 0):
            raise ValueError(f"{where}: window_s must be a positive number, got {self.window_s!r}.")
        n_times = self.window_s * self.sfreq
        if abs(n_times - round(n_times)) > 1e-6 or round(n_times) % PATCH_SIZE:
            raise ValueError(
                f"{where}: window_s={self.window_s!r} at {self.sfreq:g} Hz is {n_times:g} samples, "
                f"not a multiple of the {PATCH_SIZE}-sample patch."
            )
        if self.stride_s is not None and not (
            isinstance(self.stride_s, int | float) and self.stride_s > 0
        ):
            raise ValueError(
                f"{where}: stride_s must be a positive number or None, got {self.stride_s!r}."
            )
        if not (isinstance(self.amplitude_scale, int | float) and self.amplitude_scale > 0):
            raise ValueError(
                f"{where}: amplitude_scale must be positive, got {self.amplitude_scale!r}."
            )
        try:
            rx = re.compile(self.subject_pattern)
        except (re.error, TypeError) as err:
            raise ValueError(
                f"{where}: subject_pattern {self.subject_pattern!r} is not a regex: {err}."
            ) from err
        if rx.groups < 1:
            raise ValueError(
                f"{where}: subject_pattern {self.subject_pattern!r} needs a capture group "
                "(named 'subject' or the first group) holding the subject id."
            )
        for hook in ("find", "load"):
            if not callable(getattr(self, hook)):
                raise TypeError(f"{where}: {hook} must be callable.")
        if self.split is not None and not isinstance(self.split, Split):
            raise TypeError(f"{where}: split must be a Split or None, got {self.split!r}.")
        if self.split_rule is not None and not callable(self.split_rule):
            raise TypeError(f"{where}: split_rule must be callable or None.")
        if not (isinstance(self.n_folds, int) and self.n_folds >= 1):
            raise ValueError(f"{where}: n_folds must be a positive int, got {self.n_folds!r}.")
        fractions = self.fallback_fractions
        if fractions is None:
            if self.split is not None:
                sizes = (len(self.split.train), len(self.split.val), len(self.split.test))
                fractions = tuple(s / sum(sizes) for s in sizes)
            else:
                fractions = (0.7, 0.15, 0.15)
        fractions = tuple(float(f) for f in fractions)
        if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
            raise ValueError(
                f"{where}: fallback_fractions must be three positive fractions summing to 1, "
                f"got {self.fallback_fractions!r}."
            )
        object.__setattr__(self, "fallback_fractions", fractions)
        metrics = self.metrics
        if metrics is None:
            metrics = BINARY_METRICS if self.is_binary else MULTICLASS_METRICS
        object.__setattr__(self, "metrics", tuple(metrics))
        selection = self.selection_metric
        if selection is None:
            selection = "auroc" if self.is_binary else "cohen_kappa"
        if selection not in self.metrics:
            raise ValueError(
                f"{where}: selection_metric {selection!r} is not among metrics {self.metrics}."
            )
        object.__setattr__(self, "selection_metric", selection)
        if self.head not in ("mlp", "isruc_sequence"):
            raise ValueError(f"{where}: head must be 'mlp' or 'isruc_sequence', got {self.head!r}.")
        if not (isinstance(self.head_dropout, int | float) and 0 <= self.head_dropout < 1):
            raise ValueError(f"{where}: head_dropout must be in [0, 1), got {self.head_dropout!r}.")
        if not isinstance(self.finetune, FinetuneRecipe):
            raise TypeError(f"{where}: finetune must be a FinetuneRecipe.")
        if not (isinstance(self.sequence_length, int) and self.sequence_length >= 1):
            raise ValueError(f"{where}: sequence_length must be a positive int.")
        if (self.head == "isruc_sequence") != (self.sequence_length > 1):
            raise ValueError(
                f"{where}: the 'isruc_sequence' head and sequence_length > 1 go together "
                f"(head={self.head!r}, sequence_length={self.sequence_length})."
            )
        if self.download is not None and not callable(self.download):
            raise TypeError(f"{where}: download must be callable or None.")
        object.__setattr__(self, "aliases", tuple(self.aliases))

    # ---- derived ---------------------------------------------------------------------------

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    @property
    def is_binary(self) -> bool:
        """Two classes: one logit + BCE, AUROC selection."""
        return len(self.classes) == 2

    @property
    def n_outputs(self) -> int:
        """Logits of the authors' head: 1 for binary tasks, else the number of classes."""
        return 1 if self.is_binary else self.n_classes

    @property
    def n_chans(self) -> int:
        """Input channels."""
        return len(self.channels)

    @property
    def n_times(self) -> int:
        """Samples per window."""
        return round(self.window_s * self.sfreq)

    @property
    def n_patches(self) -> int:
        """1-s patches per window (P)."""
        return self.n_times // PATCH_SIZE

    @property
    def head_hidden(self) -> int:
        """Hidden width of the authors' MLP head: P·200."""
        return self.n_patches * PATCH_SIZE

    @property
    def is_bipolar(self) -> bool:
        """Whether any channel is a pair ``"A-B"``."""
        return any("-" in c for c in self.channels)

    # ---- behaviour ---------------------------------------------------------------------------

    def subject_of(self, path: str | Path, root: str | Path | None = None) -> str:
        """Subject id of ``path`` by ``subject_pattern`` (file name first, then the path).

        Raises
        ------
        ValueError
            When the pattern matches neither (names the file and the pattern).
        """
        path = Path(path)
        rx = re.compile(self.subject_pattern)
        rel = path
        if root is not None:
            try:
                rel = path.relative_to(root)
            except ValueError:
                rel = path
        for text in (path.name, rel.as_posix()):
            m = rx.search(text)
            if m:
                return m.group("subject") if "subject" in rx.groupindex else m.group(1)
        raise ValueError(
            f"{self.title}: cannot read a subject id from {path}: subject pattern "
            f"{self.subject_pattern!r} does not match its name or path. Expected layout: "
            f"{self.layout}"
        )

    def prepare(self, data_uv: np.ndarray, sfreq: float) -> np.ndarray:
        """The authors' preprocessing and scaling of a continuous recording.

        Parameters
        ----------
        data_uv : np.ndarray
            ``(n_chans, n_times)`` in µV, channels already in ``self.channels`` order.
        sfreq : float
            Its sampling rate in Hz.

        Returns
        -------
        np.ndarray
            ``(n_chans, n_times')`` float32 at ``self.sfreq``, in model units.
        """
        from codebrain.benchmark.signal import apply_preprocessing

        data, out_sfreq = apply_preprocessing(data_uv, sfreq, self.preprocessing)
        if abs(out_sfreq - self.sfreq) > 1e-6:
            raise ValueError(
                f"{self.title}: after preprocessing the signal is at {out_sfreq:g} Hz, the "
                f"recipe needs {self.sfreq:g} Hz (add a Resample step)."
            )
        return (data * self.amplitude_scale).astype(np.float32)

    def find_recordings(self, root: str | Path) -> list[Recording]:
        """Run the ``find`` hook on ``root`` and check its answer.

        Raises
        ------
        DatasetNotFoundError
            ``root`` missing, or no recording of the expected layout in it.
        """
        root = Path(root)
        if not root.is_dir():
            raise DatasetNotFoundError(
                f"{self.title}: data folder {root} does not exist. Expected layout: {self.layout} "
                f"Obtain the dataset from {self.source}"
                + (" (or pass --download)." if self.download is not None else ".")
            )
        recordings = list(self.find(root))
        if not recordings:
            raise DatasetNotFoundError(
                f"{self.title}: no recordings found under {root}. Expected layout: {self.layout} "
                f"Obtain the dataset from {self.source}"
                + (" (or pass --download)." if self.download is not None else ".")
            )
        ids = [r.id for r in recordings]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(
                f"{self.title}: recording ids are not unique under {root}: {dupes[:5]}."
            )
        return sorted(recordings, key=lambda r: (_natural_key(r.subject), r.id))

    def describe(self) -> str:
        """Multi-line summary of the protocol (for ``--list`` and reports)."""
        steps = ", ".join(s.describe() for s in self.preprocessing) or "none"
        stride = "event-locked" if self.stride_s is None else f"stride {self.stride_s:g} s"
        unit = "raw µV" if self.amplitude_scale == 1 else f"µV × {self.amplitude_scale:g}"
        lines = [
            f"{self.name}: {self.title}",
            f"  classes: {', '.join(self.classes)}",
            f"  channels ({self.n_chans}): {' '.join(self.channels)}",
            f"  preprocessing: {steps}; {self.sfreq:g} Hz; {unit}",
            f"  windows: {self.window_s:g} s ({stride}) {self.window_rule}".rstrip(),
            f"  split: {self.split_note or 'see recipe'}",
            f"  metrics: {', '.join(self.metrics)} (selection: {self.selection_metric})",
            f"  head: {self.head} (hidden {self.head_hidden}, {self.n_outputs} output(s))",
            f"  data: {self.layout}",
            f"  source: {self.source}",
        ]
        return "\n".join(lines)


def _natural_key(text: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text))


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------

_REGISTRY: dict[str, TaskRecipe] = {}
_ALIASES: dict[str, str] = {}
_LOADED = False


def _normal(name: str) -> str:
    return re.sub(r"[\s\-.]+", "_", name.strip().lower())


def register_recipe(recipe: TaskRecipe, *, replace: bool = False) -> TaskRecipe:
    """Add ``recipe`` to the registry (its name and aliases become look-up keys).

    Parameters
    ----------
    recipe : TaskRecipe
    replace : bool
        Allow replacing a recipe of the same name.

    Returns
    -------
    TaskRecipe
        ``recipe``.
    """
    if not isinstance(recipe, TaskRecipe):
        raise TypeError(f"register_recipe needs a TaskRecipe, got {type(recipe).__name__}.")
    keys = [recipe.name, *(_normal(a) for a in recipe.aliases)]
    for key in keys:
        owner = _ALIASES.get(key)
        if owner is not None and owner != recipe.name and not replace:
            raise ValueError(f"Task name {key!r} is already used by recipe {owner!r}.")
    if recipe.name in _REGISTRY and not replace and _REGISTRY[recipe.name] is not recipe:
        raise ValueError(f"A recipe named {recipe.name!r} is already registered.")
    _REGISTRY[recipe.name] = recipe
    for key in keys:
        _ALIASES[key] = recipe.name
    return recipe


def _load_tasks() -> None:
    """Import every module of :mod:`codebrain.benchmark.tasks` and register its ``RECIPES``."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import codebrain.benchmark.tasks as tasks

    for info in sorted(pkgutil.iter_modules(tasks.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{tasks.__name__}.{info.name}")
        for recipe in getattr(module, "RECIPES", ()):
            if _REGISTRY.get(recipe.name) is not recipe:
                register_recipe(recipe)


def get_recipe(name: str | TaskRecipe) -> TaskRecipe:
    """The registered recipe called ``name`` (case, ``-`` and spaces ignored; aliases work).

    Raises
    ------
    KeyError
        Unknown name; the message lists the known tasks.
    """
    if isinstance(name, TaskRecipe):
        return name
    _load_tasks()
    key = _ALIASES.get(_normal(str(name)))
    if key is None:
        raise KeyError(
            f"Unknown benchmark task {name!r}; known tasks: {', '.join(sorted(_REGISTRY))}."
        )
    return _REGISTRY[key]


def list_recipes() -> list[TaskRecipe]:
    """All registered recipes, sorted by name."""
    _load_tasks()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def fallback_split(
    groups: Sequence[str], fractions: tuple[float, float, float], unit: str = "subject"
) -> Split:
    """Deterministic split of ``groups`` in natural-sort order, in contiguous blocks.

    Like the authors' "sorted files" splits: the first ``fractions[0]`` of the sorted ids
    train, the next ``fractions[1]`` validate, the rest test; each part gets at least one id.

    Raises
    ------
    ValueError
        Fewer than three distinct ids.
    """
    ids = sorted({str(g) for g in groups}, key=_natural_key)
    n = len(ids)
    if n < 3:
        raise ValueError(
            f"A {unit}-wise split needs at least 3 distinct {unit}s, found {n}: {ids}."
        )
    n_val = max(1, round(n * fractions[1]))
    n_test = max(1, round(n * fractions[2]))
    n_train = n - n_val - n_test
    if n_train < 1:
        n_train, n_val, n_test = n - 2, 1, 1
    return Split(
        tuple(ids[:n_train]),
        tuple(ids[n_train : n_train + n_val]),
        tuple(ids[n_train + n_val :]),
        unit=unit,  # type: ignore[arg-type]
    )


def resolve_split(
    recipe: TaskRecipe, recordings: Sequence[Recording], *, fold: int = 0
) -> tuple[Split, str]:
    """The split to use for ``recordings`` and its protocol (``"authors"`` or ``"fallback"``).

    The authors' split is used exactly when every subject it lists is present (explicit
    ``split``), or when ``split_rule`` returns one; otherwise a deterministic subject-wise
    split of the subjects present (:func:`fallback_split`, marked ``"fallback"``, with a
    warning). A copy with fewer than three subjects falls back to a split by recording, with a
    warning that windows of one subject then sit in several parts.

    Parameters
    ----------
    recipe : TaskRecipe
    recordings : sequence of Recording
        What ``find`` returned.
    fold : int
        Fold index for recipes with ``n_folds > 1``.

    Returns
    -------
    (Split, str)
    """
    if not (isinstance(fold, int) and 0 <= fold < recipe.n_folds):
        raise ValueError(
            f"{recipe.title}: fold must be an int in [0, {recipe.n_folds}), got {fold!r}."
        )
    subjects = sorted({r.subject for r in recordings}, key=_natural_key)
    if recipe.split is not None:
        if recipe.split.unit != "subject":
            return recipe.split, "authors"
        missing = [s for s in recipe.split.ids if s not in subjects]
        if not missing:
            return recipe.split, "authors"
        reason = (
            f"{len(missing)} of the {len(recipe.split.ids)} subjects of the authors' split are "
            f"absent (e.g. {', '.join(missing[:4])})"
        )
    elif recipe.split_rule is not None:
        split = recipe.split_rule(list(recordings), fold)
        if split is not None:
            return split, "authors"
        reason = "the recordings found are not the full dataset the authors' split rule needs"
    else:
        reason = "the recipe has no authors' split"
    if len(subjects) >= 3:
        split = fallback_split(subjects, recipe.fallback_fractions)
        logger.warning(
            "%s: %s; using a deterministic subject-wise fallback split of the %d subjects "
            "present (%d/%d/%d), marked 'fallback'.",
            recipe.title,
            reason,
            len(subjects),
            len(split.train),
            len(split.val),
            len(split.test),
        )
        return split, "fallback"
    split = _recording_split(recordings, recipe.fallback_fractions)
    logger.warning(
        "%s: %s, and only %d subject(s) are present (%s): falling back to a split by "
        "RECORDING (%d/%d/%d); one subject's recordings sit in several parts, so the scores "
        "are within-subject, not cross-subject.",
        recipe.title,
        reason,
        len(subjects),
        ", ".join(subjects),
        len(split.train),
        len(split.val),
        len(split.test),
    )
    return split, "fallback"


def _recording_split(
    recordings: Sequence[Recording], fractions: tuple[float, float, float]
) -> Split:
    """Split recordings (one-subject copies), stratum by stratum when every stratum allows.

    A recording's stratum is ``meta["stratum"]`` (else its ``label``): recordings of different
    kinds (PhysioNet's fist runs vs fist/feet runs) are split separately so that every part
    holds every kind.
    """
    strata: dict[str, list[str]] = {}
    for r in recordings:
        key = str(r.meta.get("stratum", r.label))
        strata.setdefault(key, []).append(r.id)
    if len(strata) > 1 and all(len(ids) >= 3 for ids in strata.values()):
        parts = [fallback_split(ids, fractions, "recording") for ids in strata.values()]
        return Split(
            tuple(i for p in parts for i in p.train),
            tuple(i for p in parts for i in p.val),
            tuple(i for p in parts for i in p.test),
            unit="recording",
        )
    return fallback_split([r.id for r in recordings], fractions, "recording")
