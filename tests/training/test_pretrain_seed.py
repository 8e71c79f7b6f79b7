"""``codebrain pretrain --seed S`` builds the same fresh backbone every time (issue 14).

Before, the backbone was initialised from the global RNG, so two runs with one seed differed
from the first logged step and a killed-and-resumed run could not equal an uninterrupted one
unless ``--init`` was given.
"""

from __future__ import annotations

import importlib

import torch

import codebrain.data
from _fixtures import TensorWindows, make_tiny_backbone_tokenizer, sine_windows
from codebrain.cli import main

# The module, not the function: ``codebrain.training`` re-exports ``pretrain`` under that name.
pretrain_module = importlib.import_module("codebrain.training.pretrain")


class _FakeCorpus(TensorWindows):
    recordings = ("rec",)
    sfreq = 200.0

    def __init__(self, path) -> None:
        super().__init__(sine_windows(8).x)


def _initial_weights(tmp_path, monkeypatch, seed: str, name: str) -> dict[str, torch.Tensor]:
    captured = {}

    def fake_pretrain(model, tokenizer, train_ds, val_ds, cfg, out):
        captured.update({k: v.clone() for k, v in model.state_dict().items()})
        raise KeyboardInterrupt  # stop before any training: only the initial weights matter

    monkeypatch.setattr(codebrain.data, "CorpusDataset", _FakeCorpus)
    monkeypatch.setattr(pretrain_module, "pretrain", fake_pretrain)
    tok = tmp_path / "tok"
    if not tok.exists():
        make_tiny_backbone_tokenizer().save_pretrained(tok)
    torch.manual_seed(int(name[-1]) + 100)  # a different global RNG state each time
    code = main(
        ["-q", "pretrain", "--corpus", str(tmp_path), "--tokenizer", str(tok), "--out",
         str(tmp_path / name), "--seed", seed, "--val-fraction", "0", "--res-channels", "8",
         "--skip-channels", "8", "--out-channels", "8", "--num-res-layers", "1"]
    )  # fmt: skip
    assert code == 130 and captured
    return captured


def test_same_seed_same_fresh_backbone(tmp_path, monkeypatch):
    a = _initial_weights(tmp_path, monkeypatch, "0", "run1")
    b = _initial_weights(tmp_path, monkeypatch, "0", "run2")
    c = _initial_weights(tmp_path, monkeypatch, "1", "run3")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())
