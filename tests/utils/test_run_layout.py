"""Run-folder names and recognition (``codebrain.utils.run_layout``), and loading from one."""

from __future__ import annotations

import json

import pytest
import torch

from _fixtures import make_tiny_classifier, make_tiny_tokenizer
from codebrain import CodeBrain
from codebrain.models.tokenizer import TFDualTokenizer
from codebrain.utils.run_layout import RUN_KINDS, run_final_dir, run_kind


@pytest.mark.parametrize("kind", RUN_KINDS)
def test_run_kind_reads_the_config_section(tmp_path, kind):
    (tmp_path / "config.json").write_text(json.dumps({kind: {}, "model": {}}))
    assert run_kind(tmp_path) == kind
    with pytest.raises(FileNotFoundError, match=f"is a {kind} run folder without a trained"):
        run_final_dir(tmp_path)


def test_folders_that_are_not_run_folders(tmp_path):
    assert run_kind(tmp_path / "absent") is None and run_final_dir(tmp_path) is None
    make_tiny_classifier().save_pretrained(tmp_path / "model")  # a model's own config.json
    assert run_kind(tmp_path / "model") is None and run_final_dir(tmp_path / "model") is None
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{not json")
    assert run_kind(tmp_path / "bad") is None


def test_from_pretrained_opens_the_final_model_of_a_run_folder(tmp_path):
    model, tok = make_tiny_classifier(), make_tiny_tokenizer(seed=0)
    for kind, obj in (("pretrain", model), ("tokenizer-train", tok)):
        run = tmp_path / kind
        run.mkdir()
        (run / "config.json").write_text(json.dumps({kind: {}}))
        obj.save_pretrained(run / "final")
    loaded = CodeBrain.from_pretrained(tmp_path / "pretrain")
    for a, b in zip(loaded.state_dict().values(), model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    tok2 = TFDualTokenizer.from_pretrained(tmp_path / "tokenizer-train")
    for a, b in zip(tok2.state_dict().values(), tok.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    assert run_final_dir(tmp_path / "pretrain") == tmp_path / "pretrain" / "final"
