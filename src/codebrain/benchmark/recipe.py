"""Declarative downstream-task recipes: what the authors did to a dataset, as one frozen object.

A :class:`TaskRecipe` states everything the benchmark needs to reproduce a downstream protocol
of CodeBrain (arXiv 2506.09110) or CBraMod: classes, channels and their order (monopolar names
or bipolar pairs ``"FP1-F7"``), preprocessing in the authors' order (:class:`Resample`,
:class:`BandPass`, :class:`Notch`, :class:`CommonAverage`, in
:mod:`codebrain.benchmark.preprocessing`), sampling rate, window length and stride, amplitude
scale, the subject-id rule, the authors' split (explicit subject ids, or a rule computed from
the recordings found; :mod:`codebrain.benchmark.split`), metrics and the model-selection
metric, the head, the fine-tuning recipe (:class:`FinetuneRecipe`), the expected local layout
and where the dataset is obtained, and two per-dataset hooks (:mod:`codebrain.benchmark.hooks`):

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

Recipes are registered by name (:mod:`codebrain.benchmark.registry`). The names this module
used to define before they moved to their own modules are re-exported here.

Shape legend: ``n_windows`` windows, ``n_chans`` channels, ``n_times`` samples.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from codebrain.benchmark.hooks import (
    DownloadHook,
    FindHook,
    LoadHook,
    Recording,
    SplitRule,
    TaskWindows,
)
from codebrain.benchmark.preprocessing import (
    BandPass,
    CommonAverage,
    Notch,
    PreprocessStep,
    Resample,
)
from codebrain.benchmark.split import (
    Split,
    _natural_key,
    fallback_split,
    resolve_split,
)
from codebrain.utils._lazy import lazy_reexports
from codebrain.utils.check import (
    check_callable,
    check_int,
    check_number,
    check_option,
    check_type,
    check_value,
)

# The registry imports this module, so its names are re-exported lazily (PEP 562).
_MOVED = {
    "register_recipe": "codebrain.benchmark.registry",
    "get_recipe": "codebrain.benchmark.registry",
    "list_recipes": "codebrain.benchmark.registry",
}

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
    "fallback_split",
    "resolve_split",
    *_MOVED,
]


#: Samples per patch of the released model (1 s at 200 Hz).
PATCH_SIZE: int = 200

#: Test metrics of a binary task (``auprc`` is the authors' ``auc(recall, precision)``;
#: ``average_precision`` is sklearn's step-wise ``average_precision_score`` beside it;
#: ``balanced_accuracy_val_threshold`` is codebrain's: the threshold chosen on validation).
BINARY_METRICS: tuple[str, ...] = (
    "balanced_accuracy",
    "auroc",
    "auprc",
    "average_precision",
    "balanced_accuracy_val_threshold",
)
#: Test metrics of a multi-class task.
MULTICLASS_METRICS: tuple[str, ...] = ("balanced_accuracy", "cohen_kappa", "f1_weighted")

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class DatasetNotFoundError(FileNotFoundError):
    """A local copy of a dataset is missing or incomplete.

    The message says what layout is expected and where the dataset is obtained.
    """


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
            check_int(f"FinetuneRecipe.{name}", getattr(self, name))
        check_int("FinetuneRecipe.warmup_epochs", self.warmup_epochs, minimum=0)
        for name in ("lr", "clip_grad_norm"):
            check_number(f"FinetuneRecipe.{name}", getattr(self, name), greater=0)
        for name in ("weight_decay", "min_lr"):
            check_number(f"FinetuneRecipe.{name}", getattr(self, name), minimum=0)
        for name in ("label_smoothing", "dropout"):
            check_number(f"FinetuneRecipe.{name}", getattr(self, name), minimum=0, less=1)


@dataclass(frozen=True)
class TaskRecipe:
    r"""One downstream task, as the authors ran it.

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
        name then in the path relative to the data folder (``r"(Subject\d{2})_[12]"``).
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
    augment : bool
        Whether ``codebrain benchmark`` augments the training windows of every deep model by
        default (:class:`~codebrain.training.augment.WindowAugment`). codebrain's addition, not
        the authors' (they augment nothing): True only where it was measured to help
        (MentalArithmetic, ``benchmarks/eegmat_bench_cv.py``).
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
    augment: bool = False
    sequence_length: int = 1
    download: DownloadHook | None = None
    aliases: tuple[str, ...] = ()
    reference: str = ""

    def __post_init__(self) -> None:
        check_type("TaskRecipe.name", self.name, str)
        ok = bool(_NAME_RE.match(self.name))
        check_value("TaskRecipe.name", self.name, ok, "lower case letters, digits and '_'")
        where = f"recipe {self.name!r}"
        classes = tuple(self.classes)
        ok = len(classes) >= 2 and len(set(classes)) == len(classes)
        check_value(f"{where}: classes", classes, ok, ">= 2 distinct names")
        object.__setattr__(self, "classes", classes)
        channels = tuple(str(c) for c in self.channels)
        ok = bool(channels) and len(set(channels)) == len(channels)
        check_value(f"{where}: channels", channels, ok, "distinct and non-empty")
        object.__setattr__(self, "channels", channels)
        steps = tuple(self.preprocessing)
        for s in steps:
            check_type(
                f"{where}: preprocessing steps",
                s,
                (Resample, BandPass, Notch, CommonAverage),
                "Resample/BandPass/Notch/CommonAverage",
            )
        object.__setattr__(self, "preprocessing", steps)
        resamples = [s for s in steps if isinstance(s, Resample)]
        if resamples and resamples[-1].sfreq != self.sfreq:
            raise ValueError(
                f"{where}: the last Resample goes to {resamples[-1].sfreq:g} Hz but sfreq is "
                f"{self.sfreq:g} Hz."
            )
        check_number(f"{where}: window_s", self.window_s, greater=0)
        n_times = self.window_s * self.sfreq
        if abs(n_times - round(n_times)) > 1e-6 or round(n_times) % PATCH_SIZE:
            raise ValueError(
                f"{where}: window_s={self.window_s!r} at {self.sfreq:g} Hz is {n_times:g} samples, "
                f"not a multiple of the {PATCH_SIZE}-sample patch."
            )
        if self.stride_s is not None:
            check_number(f"{where}: stride_s", self.stride_s, greater=0)
        check_number(f"{where}: amplitude_scale", self.amplitude_scale, greater=0)
        check_type(f"{where}: subject_pattern", self.subject_pattern, (str, re.Pattern), "a regex")
        try:
            rx = re.compile(self.subject_pattern)
        except re.error as err:
            raise ValueError(
                f"{where}: subject_pattern {self.subject_pattern!r} is not a regex: {err}."
            ) from err
        check_value(
            f"{where}: subject_pattern",
            self.subject_pattern,
            rx.groups >= 1,
            "a regex with a capture group (named 'subject' or the first group) for the subject id",
        )
        for hook in ("find", "load"):
            check_callable(f"{where}: {hook}", getattr(self, hook))
        check_type(f"{where}: split", self.split, (Split, type(None)), "a Split or None")
        check_callable(f"{where}: split_rule", self.split_rule, allow_none=True)
        check_int(f"{where}: n_folds", self.n_folds)
        fractions = self.fallback_fractions
        if fractions is None:
            if self.split is not None:
                sizes = (len(self.split.train), len(self.split.val), len(self.split.test))
                fractions = tuple(s / sum(sizes) for s in sizes)
            else:
                fractions = (0.7, 0.15, 0.15)
        fractions = tuple(float(f) for f in fractions)
        ok = (
            len(fractions) == 3
            and all(f > 0 for f in fractions)
            and abs(sum(fractions) - 1) <= 1e-6
        )
        check_value(
            f"{where}: fallback_fractions",
            self.fallback_fractions,
            ok,
            "three positive fractions summing to 1",
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
        check_option(f"{where}: head", self.head, ("mlp", "isruc_sequence"))
        check_number(f"{where}: head_dropout", self.head_dropout, minimum=0, less=1)
        check_type(f"{where}: finetune", self.finetune, FinetuneRecipe)
        check_type(f"{where}: augment", self.augment, bool, "True or False")
        check_int(f"{where}: sequence_length", self.sequence_length)
        if (self.head == "isruc_sequence") != (self.sequence_length > 1):
            raise ValueError(
                f"{where}: the 'isruc_sequence' head and sequence_length > 1 go together "
                f"(head={self.head!r}, sequence_length={self.sequence_length})."
            )
        check_callable(f"{where}: download", self.download, allow_none=True)
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


__getattr__, __dir__ = lazy_reexports(__name__, _MOVED)
