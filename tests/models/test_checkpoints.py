"""The authors' checkpoint format: conversion, reporting, loading (.pth, weights_only)."""

from __future__ import annotations

import warnings
from collections import OrderedDict

import pytest
import torch

from _fixtures import tiny_codebrain_config
from codebrain import (
    CodeBrain,
    convert_upstream_state_dict,
    load_checkpoint_file,
    to_upstream_state_dict,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    bd_models = pytest.importorskip("braindecode.models")


@pytest.fixture
def reference_and_upstream():
    """A braindecode state dict and the same weights in the authors' (DataParallel) naming."""
    cfg = tiny_codebrain_config(swa_window_size=3)
    ref = bd_models.CodeBrain(**cfg).eval()
    x = torch.randn(2, cfg["n_chans"], cfg["n_times"])
    with torch.no_grad():
        y = ref(x)
    return cfg, ref.state_dict(), to_upstream_state_dict(ref.state_dict()), x, y


def test_upstream_naming_rules(reference_and_upstream):
    _, sd, up, _, _ = reference_and_upstream
    keys = list(up)
    assert all(k.startswith("module.") for k in keys)
    assert "module.residual_layer.residual_blocks.0.S41.kernel_list.0.kernel" in up
    assert "module.residual_layer.residual_blocks.0.S41.D" in up
    assert "module.residual_layer.residual_blocks.1.sn.scale" in up
    assert "module.residual_layer.residual_blocks.0.res_conv.weight_g" in up
    assert "module.init_conv.0.conv.weight_v" in up
    assert not any("sgconv" in k or "parametrizations" in k for k in keys)
    converted, report = convert_upstream_state_dict(up, sd)
    assert list(converted) == list(sd)
    assert report.ok and len(report.renamed) == len(sd)


def test_load_state_dict_accepts_upstream_checkpoint(reference_and_upstream, tmp_path):
    cfg, _, up, x, y = reference_and_upstream
    path = tmp_path / "CodeBrain.pth"
    torch.save(up, path)
    loaded = load_checkpoint_file(path)  # torch.load(weights_only=True)
    m = CodeBrain(**cfg).eval()
    m.load_state_dict(loaded)
    with torch.no_grad():
        torch.testing.assert_close(m(x), y, rtol=1e-5, atol=1e-6)


def test_from_pretrained_on_a_folder_with_the_authors_pth(reference_and_upstream, tmp_path):
    cfg, _, up, x, _ = reference_and_upstream
    backbone = OrderedDict((k, v) for k, v in up.items() if ".final_layer." not in k)
    torch.save(backbone, tmp_path / "CodeBrain.pth")
    m = CodeBrain.from_pretrained(tmp_path, **cfg)
    feats = m.eval().encode(x)
    ref = CodeBrain(**cfg).eval()
    ref.load_state_dict(up)
    torch.testing.assert_close(feats, ref.encode(x))


def test_report_names_missing_unexpected_and_mismatched(reference_and_upstream):
    _, sd, up, _, _ = reference_and_upstream
    broken = OrderedDict(up)
    del broken["module.lm_head_t.weight"]
    broken["module.extra.weight"] = torch.zeros(1)
    broken["module.norm.weight"] = torch.zeros(3)
    with pytest.raises(ValueError) as err:
        convert_upstream_state_dict(broken, sd)
    msg = str(err.value)
    assert "1 missing key(s): lm_head_t.weight" in msg
    assert "1 unexpected key(s): extra.weight" in msg
    assert "norm.weight: checkpoint (3,) vs model (8,)" in msg
    _, report = convert_upstream_state_dict(broken, sd, strict=False)
    assert report.missing == ["lm_head_t.weight"] and report.unexpected == ["extra.weight"]
    assert not report.ok


def test_allow_missing_head(reference_and_upstream):
    _, sd, up, _, _ = reference_and_upstream
    no_head = OrderedDict((k, v) for k, v in up.items() if "final_layer" not in k)
    _, report = convert_upstream_state_dict(no_head, sd, allow_missing=("final_layer.",))
    assert report.ok


def test_colliding_keys_are_rejected():
    with pytest.raises(ValueError, match="collide"):
        convert_upstream_state_dict({"module.a.D": torch.zeros(1), "a.skip_weight": torch.zeros(1)})


def test_checkpoint_files_that_are_not_state_dicts(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="weights_only=True"):
        load_checkpoint_file(bad)
    with pytest.raises(FileNotFoundError):
        load_checkpoint_file(tmp_path / "missing.pth")
    torch.save({"epoch": 3}, tmp_path / "meta.pth")
    with pytest.raises(ValueError, match="does not contain a state dict"):
        load_checkpoint_file(tmp_path / "meta.pth")
    torch.save({"model": {"w": torch.ones(2)}}, tmp_path / "wrapped.pth")
    assert list(load_checkpoint_file(tmp_path / "wrapped.pth")) == ["w"]
