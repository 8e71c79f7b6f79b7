"""One vocabulary for the settings of the three training loops (HF ``TrainingArguments`` style).

:class:`LoopConfig` holds what every loop has (batch, learning rate and its cosine floor,
weight decay, clipping, seed, device, workers, progress bar); :class:`StepLoopConfig` adds what
the resumable step-counted loops (tokenizer training, pretraining) have: the step budget,
warm-up, precision, resume, log and checkpoint cadence. ``PretrainConfig`` and
``TokenizerTrainConfig`` inherit :class:`StepLoopConfig`; ``FinetuneConfig`` (epoch-counted)
inherits :class:`LoopConfig`. The same name means the same thing in every config:

* ``min_lr`` is the absolute floor of the cosine (of the ``lr`` group; other parameter groups
  end at the same fraction of their own peak). ``None`` gives ``lr / 100``.
* ``grad_clip`` ``0`` disables clipping.
* ``device`` ``None`` picks this rank's GPU when there is one, else the CPU.
* ``resume`` ``False`` starts fresh, ``True`` continues from the newest checkpoint of the run
  folder (fresh when there is none), a path continues from that checkpoint.

Old spellings keep working with a ``DeprecationWarning``, as constructor keyword arguments and
as keys of saved configs (:meth:`LoopConfig.from_dict`): each class lists them in
``_deprecated_fields`` (``{old: new}``), which the CLI also reads to accept the old flags.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from codebrain.utils.check import check_int, check_number, check_option, check_type, check_value
from codebrain.utils.config import JSONConfig

__all__ = ["PRECISIONS", "LoopConfig", "StepLoopConfig"]

PRECISIONS = ("fp32", "bf16", "fp16")
#: the default cosine floor as a fraction of ``lr`` when ``min_lr`` is ``None``
DEFAULT_MIN_LR_FRACTION = 0.01

C = TypeVar("C", bound="LoopConfig")


def _check_betas(name: str, betas: Any) -> tuple[float, float]:
    """Check AdamW ``betas``: a pair (tuple or list) of numbers in [0, 1); return floats.

    Parameters
    ----------
    name : str
        The argument's name in messages (``"PretrainConfig.betas"``).
    betas : object
        The value to check (a JSON file gives a list).

    Returns
    -------
    tuple of float
        ``(beta1, beta2)``.

    Raises
    ------
    TypeError
        Not a tuple or list (``name``), or an element that is not a real number, a bool
        included (``name[i]``).
    ValueError
        Not two elements, or an element outside [0, 1) (NaN included).
    """
    expected = "a pair (beta1, beta2) of numbers in [0, 1)"
    check_type(name, betas, (tuple, list), expected)
    check_value(name, betas, len(betas) == 2, expected)
    for i, beta in enumerate(betas):
        check_type(f"{name}[{i}]", beta, numbers.Real, "a number in [0, 1)")
    ok = all(math.isfinite(float(b)) and 0 <= b < 1 for b in betas)
    check_value(name, tuple(betas), ok, expected)
    return (float(betas[0]), float(betas[1]))


class _DeprecatedKwargs(type):
    """Metaclass: translate deprecated keyword arguments before the dataclass ``__init__``."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        kwargs, given_as = cls._translate_deprecated(kwargs)  # type: ignore[attr-defined]
        obj = cls.__new__(cls)  # type: ignore[call-overload]
        object.__setattr__(obj, "_given_as", given_as)
        obj.__init__(*args, **kwargs)
        return obj


@dataclass
class LoopConfig(JSONConfig, metaclass=_DeprecatedKwargs):
    """Settings every training loop shares.

    Parameters
    ----------
    batch_size : int
        Windows per process and per (micro-)batch.
    lr : float
        Peak learning rate (after the linear warm-up).
    min_lr : float or None
        Final learning rate of the cosine decay (absolute); ``None``: ``lr / 100``.
    weight_decay : float
        AdamW weight decay (of the parameters the loop's groups decay).
    grad_clip : float
        Max global gradient norm; ``0`` disables clipping.
    seed : int
        Seeds the model initialisation, the data order and the random streams.
    device : str or None
        ``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...; ``None``: this rank's GPU if any, else CPU.
    num_workers : int
        DataLoader worker processes per rank.
    progress : bool
        tqdm progress bar (rank 0).
    """

    #: deprecated field names and their replacement, ``{old: new}``
    _deprecated_fields: ClassVar[dict[str, str]] = {}

    batch_size: int = 32
    lr: float = 1e-3
    min_lr: float | None = None
    weight_decay: float = 0.0
    grad_clip: float = 0.0
    seed: int = 0
    device: str | None = None
    num_workers: int = 0
    progress: bool = True

    # ----------------------------------------------------------------- deprecated spellings
    @classmethod
    def _translate_deprecated(cls, kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict]:
        """``kwargs`` with old names turned into new ones (warned); ``{new: old}`` used."""
        given_as: dict[str, str] = {}
        if not any(old in kwargs for old in cls._deprecated_fields):
            return kwargs, given_as
        kwargs = dict(kwargs)
        for old, new in cls._deprecated_fields.items():
            if old not in kwargs:
                continue
            if new in kwargs:
                raise TypeError(
                    f"{cls.__name__} got both {old!r} (deprecated) and {new!r}; pass only {new!r}."
                )
            warnings.warn(
                f"{cls.__name__}.{old} is deprecated; use {new!r}.",
                DeprecationWarning,
                stacklevel=4,
            )
            kwargs[new] = cls._convert_deprecated(old, kwargs.pop(old), kwargs)
            given_as[new] = old
        return kwargs, given_as

    @classmethod
    def _convert_deprecated(cls, old: str, value: Any, kwargs: Mapping[str, Any]) -> Any:
        """The new field's value for the deprecated ``old=value``.

        ``min_lr_ratio`` is a fraction of ``lr``; other renames keep the value.
        """
        if old == "min_lr_ratio":
            lr = kwargs.get("lr", cls.__dataclass_fields__["lr"].default)  # type: ignore[attr-defined]
            return float(value) * float(lr)
        return value

    @classmethod
    def from_dict(cls: type[C], d: Mapping[str, Any]) -> C:
        """Inverse of :meth:`to_dict`; also reads configs saved with deprecated names."""
        kwargs, _ = cls._translate_deprecated(dict(d))
        return super().from_dict(kwargs)  # type: ignore[misc]

    def to_legacy_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` with the deprecated field names (for files older versions read)."""
        d = self.to_dict()
        for old, new in self._deprecated_fields.items():
            value = d.pop(new)
            d[old] = self.min_lr_fraction if old == "min_lr_ratio" else value
        return d

    def _label(self, name: str) -> str:
        """``Class.field`` for messages, naming the deprecated spelling the caller used."""
        old = getattr(self, "_given_as", {}).get(name)
        label = f"{type(self).__name__}.{name}"
        return f"{label} (given as {old})" if old else label

    # ----------------------------------------------------------------------- validation
    def __post_init__(self) -> None:
        check_int(self._label("batch_size"), self.batch_size, minimum=1)
        check_int(self._label("num_workers"), self.num_workers, minimum=0)
        check_type(self._label("seed"), self.seed, int)
        check_number(self._label("lr"), self.lr, greater=0)
        if self.min_lr is None:
            self.min_lr = DEFAULT_MIN_LR_FRACTION * self.lr
        in_range = f"in [0, lr={self.lr}]"
        check_type(self._label("min_lr"), self.min_lr, numbers.Real, f"a number {in_range}")
        check_value(self._label("min_lr"), self.min_lr, 0 <= self.min_lr <= self.lr, in_range)
        check_type(self._label("weight_decay"), self.weight_decay, numbers.Real, "a number >= 0")
        check_value(self._label("weight_decay"), self.weight_decay, self.weight_decay >= 0, ">= 0")
        clip = ">= 0 (0 disables clipping)"
        check_type(self._label("grad_clip"), self.grad_clip, numbers.Real, f"a number {clip}")
        check_value(self._label("grad_clip"), self.grad_clip, self.grad_clip >= 0, clip)
        device = "a device name or None"
        check_type(self._label("device"), self.device, (str, type(None)), device)

    @property
    def min_lr_fraction(self) -> float:
        """``min_lr / lr``: the cosine's final multiplier."""
        return min(1.0, float(self.min_lr) / float(self.lr))  # type: ignore[arg-type]

    @property
    def min_lr_ratio(self) -> float:
        """Deprecated: ``min_lr / lr`` (use :attr:`min_lr`)."""
        warnings.warn(
            f"{type(self).__name__}.min_lr_ratio is deprecated; use min_lr (absolute).",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.min_lr_fraction


@dataclass
class StepLoopConfig(LoopConfig):
    """Settings of the resumable step-counted loops (tokenizer training, pretraining).

    Parameters
    ----------
    steps : int
        Optimizer steps of the whole run (a resumed run continues up to this number).
    warmup_steps : int
        Linear warm-up length in optimizer steps.
    precision : {"fp32", "bf16", "fp16"}
        Autocast dtype of the network's forward (``fp16`` needs CUDA and uses a grad scaler).
    resume : bool or str
        ``False``: start fresh; ``True``: newest checkpoint of the run folder (fresh when there
        is none); a path: that checkpoint.
    log_every : int
        Steps between metric rows.
    checkpoint_every : int
        Steps between checkpoints (``0``: none on the way; one is always written at the end).
    keep_checkpoints : int
        Newest checkpoints kept in ``out_dir/checkpoints``.
    See :class:`LoopConfig` for the other fields.
    """

    steps: int = 10_000
    warmup_steps: int = 0
    precision: str = "fp32"
    resume: bool | str = False
    log_every: int = 50
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("steps", "log_every", "keep_checkpoints"):
            check_int(self._label(name), getattr(self, name), minimum=1)
        for name in ("warmup_steps", "checkpoint_every"):
            check_int(self._label(name), getattr(self, name), minimum=0)
        check_option(self._label("precision"), self.precision, PRECISIONS)
        resume = "True, False or a checkpoint path"
        check_type(self._label("resume"), self.resume, (bool, str), resume)
        check_value(self._label("resume"), self.resume, self.resume != "", resume)
