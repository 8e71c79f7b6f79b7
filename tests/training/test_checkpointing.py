"""Finding the checkpoint to resume from: newest readable file, checked without reading it whole."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from codebrain.training.checkpointing import checkpoint_path, latest_checkpoint, save_checkpoint


def _save(directory, step: int) -> None:
    model = nn.Linear(64, 64)
    save_checkpoint(checkpoint_path(directory, step), model=model, extra={"step": step})


def test_the_newest_readable_checkpoint_is_found_and_broken_ones_are_skipped(tmp_path, caplog):
    for step in (1, 2, 3):
        _save(tmp_path, step)
    assert latest_checkpoint(tmp_path) == checkpoint_path(tmp_path, 3)
    newest = checkpoint_path(tmp_path, 3)
    newest.write_bytes(newest.read_bytes()[:-200])  # truncated: a full disk, a partial copy
    checkpoint_path(tmp_path, 2).write_bytes(b"not a checkpoint")
    with caplog.at_level(logging.WARNING, logger="codebrain.training.checkpointing"):
        assert latest_checkpoint(tmp_path) == checkpoint_path(tmp_path, 1)
    skipped = [r.getMessage() for r in caplog.records]
    assert len(skipped) == 2 and all("Skipping unreadable checkpoint" in m for m in skipped)
    assert latest_checkpoint(tmp_path / "absent") is None


def test_finding_a_checkpoint_maps_its_tensors_instead_of_reading_them(tmp_path, monkeypatch):
    _save(tmp_path, 1)
    calls = []
    load = torch.load

    def recording_load(*args, **kwargs):
        calls.append(kwargs.get("mmap"))
        return load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    assert latest_checkpoint(tmp_path) == checkpoint_path(tmp_path, 1)
    assert calls == [True]


def test_a_checkpoint_that_cannot_be_mapped_is_read_instead(tmp_path):
    from codebrain.training.checkpointing import capture_rng_state

    state = {  # what save_checkpoint writes, in torch's legacy (pre-1.6, unmappable) format
        "format_version": 1,
        "model": nn.Linear(4, 4).state_dict(),
        "rng": capture_rng_state(),
        "extra": {"step": 7},
    }
    path = checkpoint_path(tmp_path, 7)
    torch.save(state, path, _use_new_zipfile_serialization=False)
    with pytest.raises(RuntimeError, match="mmap"):
        torch.load(path, mmap=True, weights_only=False)
    assert latest_checkpoint(tmp_path) == path
