"""Process-group settings read from the environment (no process group is started here)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import torch

from codebrain.training import _distributed
from codebrain.training._distributed import (
    DIST_TIMEOUT_ENV,
    elastic_restart_count,
    process_group_timeout,
    setup_distributed,
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


@pytest.fixture
def four_gpus(monkeypatch):
    """This PyTorch sees 4 CUDA GPUs (nothing is put on them); no group is joined."""
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)


@pytest.mark.parametrize("device", [None, "auto", "cuda"])
def test_the_device_is_the_gpu_of_the_local_rank(four_gpus, monkeypatch, device):
    monkeypatch.setenv("RANK", "3")  # the second process of a second machine
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(_distributed, "rank", lambda: 3)
    ctx = setup_distributed(device)
    assert (ctx.rank, ctx.local_rank, ctx.device) == (3, 1, torch.device("cuda", 1))
    assert setup_distributed("cuda:2").device == torch.device("cuda", 2)  # explicit wins


def test_a_caller_made_group_without_local_rank_spreads_over_the_gpus(four_gpus, monkeypatch):
    """``mp.spawn`` on one machine sets no ``LOCAL_RANK``: the group rank stands in for it."""
    monkeypatch.setattr(_distributed, "is_dist", lambda: True)
    monkeypatch.setattr(_distributed, "rank", lambda: 6)
    ctx = setup_distributed(None)
    assert (ctx.local_rank, ctx.device) == (6, torch.device("cuda", 2))  # 6 % 4 GPUs
    monkeypatch.setattr(_distributed, "is_dist", lambda: False)  # no group at all: GPU 0
    monkeypatch.setattr(_distributed, "rank", lambda: 0)
    assert setup_distributed(None).device == torch.device("cuda", 0)


def test_a_bad_local_rank_is_one_clear_error(four_gpus, monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "first")
    with pytest.raises(ValueError, match="LOCAL_RANK='first': expected a whole number"):
        setup_distributed(None)
