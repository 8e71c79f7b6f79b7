"""Loading a model folder or checkpoint never runs code named or embedded in it."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from codebrain import CodeBrain


def test_hostile_config_runs_no_code(tmp_path, monkeypatch, tiny_codebrain):
    """A model folder naming a ``__main__`` module must not import (and so run) it."""
    model = tiny_codebrain()
    model.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    marker = tmp_path / "pwned"
    for target in ("codebrain.cli.__main__.X", "torch.utils.model_dump.__main__.X"):
        cfg["activation"] = target
        (tmp_path / "config.json").write_text(json.dumps(cfg))
        monkeypatch.setattr(sys, "argv", ["codebrain", "demo", "--out", str(marker)])
        monkeypatch.delitem(sys.modules, target.rpartition(".")[0], raising=False)
        with pytest.raises(ValueError, match="not an allowed activation"):
            CodeBrain.from_pretrained(tmp_path)
        assert target.rpartition(".")[0] not in sys.modules
        assert not marker.exists()


def test_pickle_that_writes_a_file_is_refused(tmp_path):
    """``.pth`` checkpoints load with ``weights_only=True``: a payload that runs code is refused."""
    from codebrain.models.checkpoints import load_checkpoint_file

    marker = tmp_path / "pwned"

    class _Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pth"
    torch.save({"w": _Payload()}, path)
    with pytest.raises(Exception, match=r"(?i)weights_only|unsupported|global"):
        load_checkpoint_file(path)
    assert not marker.exists()
