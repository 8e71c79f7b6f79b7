"""Process-group settings read from the environment (no process group is started here)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from codebrain.training._distributed import (
    DIST_TIMEOUT_ENV,
    elastic_restart_count,
    process_group_timeout,
)


def test_process_group_timeout_from_the_environment(monkeypatch):
    monkeypatch.delenv(DIST_TIMEOUT_ENV, raising=False)
    assert process_group_timeout() is None  # torch's default
    monkeypatch.setenv(DIST_TIMEOUT_ENV, "45")
    assert process_group_timeout() == timedelta(seconds=45)
    monkeypatch.setenv(DIST_TIMEOUT_ENV, "0.5")
    assert process_group_timeout() == timedelta(seconds=0.5)


@pytest.mark.parametrize("value", ["0", "-3", "inf", "nan", "soon"])
def test_bad_process_group_timeout_is_one_clear_error(monkeypatch, value):
    monkeypatch.setenv(DIST_TIMEOUT_ENV, value)
    with pytest.raises(ValueError, match=f"{DIST_TIMEOUT_ENV}=.*expected a positive number"):
        process_group_timeout()


def test_elastic_restart_count(monkeypatch):
    monkeypatch.delenv("TORCHELASTIC_RESTART_COUNT", raising=False)
    assert elastic_restart_count() == 0
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "2")
    assert elastic_restart_count() == 2
