"""Fixtures for the data tests: MNE Raw objects of random EEG-like data.

The synthetic EDF files (``synthetic_edfs``) are root fixtures (``tests/conftest.py``).
"""

from __future__ import annotations

import mne
import numpy as np
import pytest


def make_raw(
    ch_names: list[str], sfreq: float = 200.0, seconds: float = 20.0, seed: int = 0
) -> mne.io.RawArray:
    """Random EEG-like data (about 20 µV, in volts) with the given channel names."""
    rng = np.random.default_rng(seed)
    data = 20e-6 * rng.standard_normal((len(ch_names), int(seconds * sfreq)))
    info = mne.create_info(ch_names, sfreq, ch_types="eeg")
    return mne.io.RawArray(data, info, verbose=False)


@pytest.fixture
def raw_factory():
    """The :func:`make_raw` factory."""
    return make_raw
