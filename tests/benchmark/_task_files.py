"""Writers of small files in the downstream datasets' own formats (EDF, .rec, .mat, .pkl)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import edfio
import numpy as np


def write_edf(path: Path, names: Sequence[str], data_uv: np.ndarray, sfreq: float) -> Path:
    """An EDF file with ``names`` (duplicates allowed, as in CHB-MIT) and ``data_uv`` in µV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lim = float(np.abs(data_uv).max()) * 1.1 + 1.0
    signals = [
        edfio.EdfSignal(
            np.asarray(row, dtype=np.float64),
            sfreq,
            label=name,
            physical_dimension="uV",
            physical_range=(-lim, lim),
        )
        for name, row in zip(names, data_uv, strict=True)
    ]
    edfio.Edf(signals).write(path)
    return path


def sine(n_times: int, sfreq: float, freq: float, amp: float, phase: float = 0.0) -> np.ndarray:
    """``amp * sin(2 pi freq t + phase)``."""
    t = np.arange(n_times) / sfreq
    return amp * np.sin(2 * np.pi * freq * t + phase)
