"""Train/validation/test splits of a downstream task: the authors' split, or a fallback.

A :class:`Split` assigns group ids (subjects, or recordings/trials where the protocol says) to
the three parts. :func:`resolve_split` picks the split for the recordings found: the
recipe's explicit split or split rule when the copy holds what it needs, else a deterministic
subject-wise split (:func:`fallback_split`), else a split by recording, each fallback marked
and warned about.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from codebrain.utils.check import check_option, check_type, check_value

if TYPE_CHECKING:
    from codebrain.benchmark.hooks import Recording
    from codebrain.benchmark.recipe import TaskRecipe

__all__ = ["Split", "fallback_split", "resolve_split"]

logger = logging.getLogger(__name__)


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
        check_option("Split.unit", self.unit, ("subject", "recording", "trial"))

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
    check_type(f"{recipe.title}: fold", fold, int)
    check_value(
        f"{recipe.title}: fold", fold, 0 <= fold < recipe.n_folds, f"in [0, {recipe.n_folds})"
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


def _natural_key(text: str) -> tuple:
    """Sort key that orders the digit runs of ``text`` by value (``S2`` before ``S10``)."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text))
