"""The run folder (codebrain.training.run): one layout, resume rules, old layouts still read."""

from __future__ import annotations

import json
import os

import pytest
import torch

from _fixtures import random_windows, tiny_loop_tokenizer_config
from codebrain.models.tokenizer import TFDualTokenizer
from codebrain.training.run import LAYOUT, RunFolder, run_kind
from codebrain.training.tokenizer_trainer import TokenizerTrainConfig, train_tokenizer


def _train_config(**kw) -> TokenizerTrainConfig:
    base = dict(steps=6, batch_size=8, lr=1e-3, warmup_steps=1, checkpoint_every=2,
                keep_checkpoints=2, log_every=2, progress=False, seed=3)  # fmt: skip
    return TokenizerTrainConfig(**{**base, **kw})


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _rows(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_tokenizer_run_uses_the_layout_and_keeps_old_names(tmp_path):
    out = tmp_path / "run"
    train_tokenizer(
        random_windows(16), _train_config(), out, model_config=tiny_loop_tokenizer_config()
    )
    for name in (LAYOUT.config, "metrics.csv", "metrics.jsonl", LAYOUT.result):
        assert (out / name).is_file(), name
    assert (out / LAYOUT.final / "model.safetensors").is_file()
    assert json.loads((out / "config.json").read_text())["tokenizer-train"]["steps"] == 6
    assert run_kind(out) == "tokenizer-train"
    # the deprecated names still lead to the same files
    assert (out / "log.jsonl").read_text() == (out / "metrics.jsonl").read_text()
    assert json.loads((out / "summary.json").read_text())["steps"] == 6
    assert (out / "tokenizer" / "model.safetensors").is_file()
    assert RunFolder(out, "tokenizer-train").read_config()["tokenizer-train"]["steps"] == 6


def test_a_folder_of_the_old_layout_resumes(tmp_path):
    """A run written by the previous version (train_config.json, log.*) continues exactly."""
    ds, mcfg = random_windows(16), tiny_loop_tokenizer_config()
    straight = train_tokenizer(ds, _train_config(), tmp_path / "a", model_config=mcfg)
    out = tmp_path / "b"
    train_tokenizer(ds, _train_config(), out, model_config=mcfg, stop_after=4)
    # turn it into the previous version's folder: real log.* files, old config, no config.json
    for suffix in (".csv", ".jsonl"):
        (out / f"log{suffix}").unlink()
        (out / f"metrics{suffix}").rename(out / f"log{suffix}")
    (out / "config.json").unlink()
    assert run_kind(out) == "tokenizer-train"
    assert RunFolder(out, "tokenizer-train").read_config()["tokenizer-train"]["max_steps"] == 6

    resumed = train_tokenizer(ds, _train_config(), out, model_config=mcfg)
    assert resumed.finished and resumed.step == 6
    for k, v in straight.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    assert [r["step"] for r in _rows(out / "metrics.jsonl")] == [2, 4, 6]
    assert (out / "log.jsonl").is_symlink() or os.name == "nt"
    TFDualTokenizer.from_pretrained(out / "final")


def test_resume_rules(tmp_path):
    run = RunFolder(tmp_path / "r", "pretrain")
    assert run.resume_checkpoint(True, refuse_existing=True) is None  # nothing yet: fresh
    assert run.resume_checkpoint(False, refuse_existing=True) is None
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run.resume_checkpoint(str(tmp_path / "nope.pt"), refuse_existing=True)
    run.path.mkdir()
    run.write_checkpoint(
        3, keep=1, model=torch.nn.Linear(2, 2), optimizer=None, scheduler=None, scaler=None,
        extra={"step": 3},
    )  # fmt: skip
    assert run.resume_checkpoint(True, refuse_existing=True).name == "ckpt_00000003.pt"
    with pytest.raises(ValueError, match="already holds checkpoints"):
        run.resume_checkpoint(False, refuse_existing=True)
    assert run.resume_checkpoint(False, refuse_existing=False) is None


def test_a_folder_of_another_command_is_refused(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"pretrain": {}}))
    assert run_kind(out) == "pretrain"
    with pytest.raises(ValueError, match="is a pretrain run folder, not a tokenizer-train one"):
        train_tokenizer(
            random_windows(16), _train_config(), out, model_config=tiny_loop_tokenizer_config()
        )
    legacy = tmp_path / "old_tok"
    (legacy / "tokenizer").mkdir(parents=True)
    assert run_kind(legacy) == "tokenizer-train"
    with pytest.raises(ValueError, match="tokenizer-train run folder"):
        RunFolder(legacy, "pretrain").check_kind()
    assert run_kind(tmp_path / "absent") is None
    with pytest.raises(ValueError, match="kind"):
        RunFolder(tmp_path, "finetune-x")
