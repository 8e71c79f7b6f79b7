"""Fixtures for the data tests: small synthetic EDF files written once per session."""

from __future__ import annotations

from pathlib import Path

import mne
import numpy as np
import pytest

from codebrain.data import write_synthetic_dataset


@pytest.fixture(scope="session")
def synthetic_edfs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three short synthetic subjects (8 trials, about 60 s each) as EDF+ files."""
    out = tmp_path_factory.mktemp("synthetic")
    return write_synthetic_dataset(out, n_subjects=3, n_trials=8, seed=1)


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
