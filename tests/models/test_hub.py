"""save_pretrained / from_pretrained / push_to_hub, local folders and an offline Hub cache."""

from __future__ import annotations

import json
import os
import warnings

import pytest
import torch
from _codebrain_tiny import tiny

from codebrain import CodeBrain

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    bd_models = pytest.importorskip("braindecode.models")


def _model(**kw):
    cfg = tiny(**kw)
    return CodeBrain(**cfg).eval(), torch.randn(2, cfg["n_chans"], cfg["n_times"])


def test_save_and_load_round_trip(tmp_path):
    m, x = _model(swa_window_size=3, activation=torch.nn.ELU)
    out = m.save_pretrained(tmp_path / "m")
    assert sorted(os.listdir(out)) == ["config.json", "model.safetensors"]
    assert json.loads((out / "config.json").read_text()) == m.get_config()
    m2 = CodeBrain.from_pretrained(out).eval()
    torch.testing.assert_close(m2(x), m(x))
    assert m2.activation is torch.nn.ELU


def test_save_is_atomic_and_keeps_other_files(tmp_path, monkeypatch):
    m, _ = _model()
    (tmp_path / "notes.txt").write_text("keep me")
    import safetensors.torch

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        m.save_pretrained(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]  # no partial weights, no config


def test_from_pretrained_with_new_n_outputs_rebuilds_head(tmp_path):
    m, x = _model()
    m.save_pretrained(tmp_path)
    m5 = CodeBrain.from_pretrained(tmp_path, n_outputs=5).eval()
    assert m5.n_outputs == 5 and m5(x).shape == (2, 5)
    torch.testing.assert_close(m5.encode(x), m.encode(x))
    torch.testing.assert_close(m5.final_layer[1].weight, m.final_layer[1].weight)


def test_from_pretrained_with_other_window_length_keeps_backbone(tmp_path):
    m, x = _model()
    m.save_pretrained(tmp_path)
    long = CodeBrain.from_pretrained(tmp_path, n_times=800).eval()
    x_long = torch.randn(1, 3, 800)
    assert long(x_long).shape == (1, 3)
    torch.testing.assert_close(long.encode(x_long), m.encode(x_long))


def test_braindecode_folder_loads_in_ours_and_back(tmp_path):
    cfg = tiny(swa_window_size=5)
    torch.manual_seed(0)
    ref = bd_models.CodeBrain(**cfg).eval()
    x = torch.randn(2, cfg["n_chans"], cfg["n_times"])
    with torch.no_grad():
        y = ref(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref.save_pretrained(tmp_path / "bd")
    ours = CodeBrain.from_pretrained(tmp_path / "bd").eval()
    torch.testing.assert_close(ours(x), y, rtol=1e-5, atol=1e-6)

    ours.save_pretrained(tmp_path / "ours")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = bd_models.CodeBrain.from_pretrained(str(tmp_path / "ours")).eval()
        with torch.no_grad():
            torch.testing.assert_close(back(x), y, rtol=1e-5, atol=1e-6)


def test_braindecode_cannot_rebuild_the_head_but_ours_can(tmp_path):
    m, _ = _model()
    m.save_pretrained(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises((ValueError, NotImplementedError)):
            bd_models.CodeBrain.from_pretrained(str(tmp_path), n_outputs=5)
    assert CodeBrain.from_pretrained(tmp_path, n_outputs=5).n_outputs == 5


def _fake_hub_cache(cache_dir, repo_id, folder):
    """Lay out ``folder``'s files as huggingface_hub's cache holds a downloaded repo."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache_dir / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for f in folder.iterdir():
        (snap / f.name).write_bytes(f.read_bytes())


def test_from_pretrained_repo_id_through_the_hub_cache_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    m, x = _model()
    m.save_pretrained(tmp_path / "src")
    _fake_hub_cache(tmp_path / "cache", "someone/codebrain-tiny", tmp_path / "src")
    m2 = CodeBrain.from_pretrained("someone/codebrain-tiny", cache_dir=tmp_path / "cache").eval()
    torch.testing.assert_close(m2(x), m(x))
    with pytest.raises(FileNotFoundError, match="neither a local folder nor a Hub repo"):
        CodeBrain.from_pretrained("someone/absent", cache_dir=tmp_path / "cache")


def test_from_pretrained_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="No weights"):
        CodeBrain.from_pretrained(tmp_path)
    f = tmp_path / "x.safetensors"
    f.write_bytes(b"")
    with pytest.raises(ValueError, match="is a file"):
        CodeBrain.from_pretrained(f)
    m, _ = _model()
    m.save_pretrained(tmp_path / "a")
    (tmp_path / "a" / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        CodeBrain.from_pretrained(tmp_path / "a")


def test_from_pretrained_rejects_backbone_of_another_shape(tmp_path):
    m, _ = _model()
    m.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="do not fit the model"):
        CodeBrain.from_pretrained(tmp_path, res_channels=8)


def test_push_to_hub_uploads_a_saved_folder(monkeypatch):
    import huggingface_hub

    calls = {}

    def create_repo(self, repo_id, **kwargs):
        calls["create"] = (repo_id, kwargs)

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        calls["upload"] = (repo_id, sorted(os.listdir(folder_path)), kwargs)
        with open(os.path.join(folder_path, "config.json")) as f:
            calls["config"] = json.load(f)
        return "commit-info"

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    m, _ = _model()
    assert m.push_to_hub("me/cb", commit_message="hello", private=True) == "commit-info"
    assert calls["create"][0] == "me/cb" and calls["create"][1]["private"] is True
    assert calls["upload"][1] == ["config.json", "model.safetensors"]
    assert calls["upload"][2]["commit_message"] == "hello"
    assert calls["config"] == m.get_config()


def test_interrupted_save_never_leaves_a_loadable_mismatch(tmp_path, monkeypatch):
    """A save killed while writing the weights leaves no config.json: the folder does not
    pass for a model (old config + new/partial weights is impossible)."""
    import safetensors.torch

    m, _ = _model()
    m.save_pretrained(tmp_path)

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", boom)
    with pytest.raises(KeyboardInterrupt):
        m.save_pretrained(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["model.safetensors"]  # the old weights, no config
    with pytest.raises(FileNotFoundError, match="no config.json .*interrupted save_pretrained"):
        CodeBrain.from_pretrained(tmp_path)
