"""The authors' pretraining corpus recipe for the TUH EEG Corpus (TUEG).

CodeBrain's pretraining corpus is built with CBraMod's
``preprocessing/preprocessing_tueg_for_pretraining.py`` (``shared/docs/paper.md`` §2):

* only recordings in the ``01_tcp_ar``, ``02_tcp_le`` and ``03_tcp_ar_a`` montage folders, and
  only those with all 19 channels (FP1, FP2, F3, F4, C3, C4, P3, P4, O1, O2, F7, F8, T3, T4,
  T5, T6, FZ, CZ, PZ, ``-REF`` or ``-LE``; no interpolation);
* resample to 200 Hz first, then band-pass 0.3-75 Hz, then notch 60 Hz (MNE defaults);
* skip recordings under 300 s; cut off the first and last 60 s (and the remainder after the
  last whole window);
* non-overlapping 30 s windows; drop every window whose max |x| is 100 µV or more.

:func:`tueg_config` is that recipe as a :class:`~codebrain.data.preprocess.PreprocessConfig`,
:func:`tueg_recordings` the montage selection, and :func:`build_tueg_corpus` both run through
:func:`~codebrain.data.build_corpus` (``codebrain prepare --corpus OUT --recipe tueg``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from codebrain.data.corpus_format import CorpusError
from codebrain.data.montage import DEFAULT_CHANNELS
from codebrain.data.preprocess import PreprocessConfig
from codebrain.data.recordings import list_recordings
from codebrain.data.store import CorpusSummary, build_corpus

__all__ = ["TUEG_MONTAGES", "tueg_config", "tueg_recordings", "build_tueg_corpus"]

logger = logging.getLogger(__name__)

#: TUEG montage folders the authors keep (``edf/<montage>/...``).
TUEG_MONTAGES: tuple[str, ...] = ("01_tcp_ar", "02_tcp_le", "03_tcp_ar_a")


def tueg_config(**overrides: Any) -> PreprocessConfig:
    """The authors' TUEG corpus preprocessing as a config.

    Parameters
    ----------
    **overrides
        Fields that do not change the recipe's output on clean data, e.g.
        ``on_nonfinite="drop"``; anything else is refused.

    Returns
    -------
    PreprocessConfig
        19 channels, resample to 200 Hz then 0.3-75 Hz band-pass then a 60 Hz notch, 300 s
        minimum, 60 s trimmed at each end, 30 s windows without overlap, max |x| < 100 µV.
    """
    allowed = {"on_nonfinite", "on_flat"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ValueError(f"tueg_config fixes {unknown}; only {sorted(allowed)} may be overridden.")
    return PreprocessConfig(
        channels=DEFAULT_CHANNELS,
        on_missing="raise",
        l_freq=0.3,
        h_freq=75.0,
        notch_freq=60.0,
        sfreq=200.0,
        window_seconds=30.0,
        stride_seconds=None,
        reject_peak_to_peak_uv=None,
        resample_first=True,
        trim_seconds=60.0,
        min_duration_seconds=300.0,
        reject_abs_uv=100.0,
        **overrides,
    )


def _montage_of(path: Path) -> str | None:
    """The TUEG montage folder (``NN_tcp_*``) in a path, or None."""
    for part in reversed(path.parts[:-1]):
        if len(part) > 3 and part[:2].isdigit() and part[2:7] == "_tcp_":
            return part
    return None


def tueg_recordings(paths: str | os.PathLike | Iterable[Any]) -> list[Path]:
    """The recordings the recipe keeps: EDF files in one of :data:`TUEG_MONTAGES`.

    Parameters
    ----------
    paths : path-like | iterable
        TUEG files and/or folders (e.g. the ``edf/`` folder of a TUEG release).

    Returns
    -------
    list of Path
        Sorted recordings whose path has a folder in :data:`TUEG_MONTAGES`.

    Raises
    ------
    ValueError
        No recordings found, or none in a kept montage folder.
    """
    found = [Path(p) for p in list_recordings(paths)]
    if not found:
        raise ValueError(f"No EEG recordings found in {paths!r}.")
    kept = [p for p in found if _montage_of(p) in TUEG_MONTAGES]
    other = len(found) - len(kept)
    if not kept:
        raise ValueError(
            f"None of the {len(found)} recording(s) in {paths!r} lies in a TUEG montage folder "
            f"{list(TUEG_MONTAGES)} (TUEG layout: edf/<montage>/<group>/<subject>/<session>/"
            "<file>.edf)."
        )
    if other:
        logger.info(
            "TUEG recipe: left out %d recording(s) outside the montage folders %s.",
            other,
            list(TUEG_MONTAGES),
        )
    return kept


def build_tueg_corpus(
    paths: str | os.PathLike | Iterable[Any],
    out_dir: str | os.PathLike,
    **kwargs: Any,
) -> CorpusSummary:
    """Build the authors' TUEG pretraining corpus (:func:`tueg_recordings` + :func:`tueg_config`).

    Parameters
    ----------
    paths : path-like | iterable
        TUEG files and/or folders.
    out_dir : path-like
        Corpus folder (see :func:`~codebrain.data.build_corpus`; resumable).
    **kwargs
        ``on_nonfinite`` goes to :func:`tueg_config`; the rest (``n_jobs``, ``dtype``, ...)
        to :func:`~codebrain.data.build_corpus`.

    Returns
    -------
    CorpusSummary
        Recordings the recipe excludes (missing channels, under 300 s, no window under
        100 µV) are listed in ``failed`` with the reason.
    """
    if "config" in kwargs:
        raise CorpusError("build_tueg_corpus fixes the config; use build_corpus for another one.")
    overrides = {k: kwargs.pop(k) for k in ("on_nonfinite", "on_flat") if k in kwargs}
    return build_corpus(tueg_recordings(paths), out_dir, tueg_config(**overrides), **kwargs)
