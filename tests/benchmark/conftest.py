"""Fixtures for the benchmark tests: where the shared real EEG lives (skip when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path | None:
    """``$CODEBRAIN_SHARED_DATA``, ``<repo>/../shared/data`` or ``/work/shared/data``."""
    candidates = [os.environ.get("CODEBRAIN_SHARED_DATA"), _REPO.parent / "shared" / "data"]
    candidates.append(Path("/work/shared/data"))
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real-EEG folder; skips the test when it is absent."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("real EEG folder ../shared/data (or $CODEBRAIN_SHARED_DATA) is absent")
    return path


@pytest.fixture(scope="session")
def eegmat_dir(shared_data: Path) -> Path:
    """The EEGMAT copy (Subject00-23)."""
    path = shared_data / "eegmat"
    if not (path / "Subject00_1.edf").is_file():
        pytest.skip(f"EEGMAT files are absent from {path}")
    return path


@pytest.fixture(scope="session")
def eegbci_dir(shared_data: Path) -> Path:
    """The EEGBCI copy (S001, imagery runs)."""
    path = shared_data / "eegbci"
    if not (path / "S001" / "S001R04.edf").is_file():
        pytest.skip(f"EEGBCI files are absent from {path}")
    return path
