"""save_pretrained / from_pretrained / push_to_hub, local folders and an offline Hub cache."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import pytest
import torch

from _fixtures import tiny_codebrain_config
from codebrain import CodeBrain

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    bd_models = pytest.importorskip("braindecode.models")


def _model(**kw):
    cfg = tiny_codebrain_config(**kw)
    return CodeBrain(**cfg).eval(), torch.randn(2, cfg["n_chans"], cfg["n_times"])


def test_save_and_load_round_trip(tmp_path):
    m, x = _model(swa_window_size=3, activation=torch.nn.ELU)
    out = m.save_pretrained(tmp_path / "m")
    assert sorted(os.listdir(out)) == ["README.md", "config.json", "model.safetensors"]
    saved = json.loads((out / "config.json").read_text())
    assert saved.pop("braindecode_version") == "1.8.1" and saved.pop("codebrain_version")
    assert saved == m.get_config()
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
    cfg = tiny_codebrain_config(swa_window_size=5)
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


def test_push_to_hub_uploads_a_saved_folder(monkeypatch, tmp_path):
    import huggingface_hub

    calls = {}

    def create_repo(self, repo_id, **kwargs):
        calls["create"] = (repo_id, kwargs)
        return huggingface_hub.RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        calls["upload"] = (repo_id, sorted(os.listdir(folder_path)), kwargs)
        with open(os.path.join(folder_path, "config.json")) as f:
            calls["config"] = json.load(f)
        calls["card"] = (Path(folder_path) / "README.md").read_text()
        shutil.copytree(folder_path, tmp_path / "uploaded")
        return "commit-info"

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    m, x = _model()
    out = m.push_to_hub(
        "me/cb",
        commit_message="hello",
        private=True,
        branch="v1",
        create_pr=True,
        model_card_kwargs={"repo_id": "me/cb", "license": "mit"},
    )
    assert out == "commit-info"
    assert calls["create"][0] == "me/cb" and calls["create"][1]["private"] is True
    assert calls["upload"][1] == ["README.md", "config.json", "model.safetensors"]
    kw = calls["upload"][2]
    assert kw["commit_message"] == "hello" and kw["revision"] == "v1" and kw["create_pr"]
    assert {
        k: v for k, v in calls["config"].items() if not k.endswith("_version")
    } == m.get_config()
    assert 'CodeBrain.from_pretrained("me/cb")' in calls["card"] and "license: mit" in calls["card"]
    torch.testing.assert_close(CodeBrain.from_pretrained(tmp_path / "uploaded")(x), m(x))


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
    # the old weights and card, no config
    assert sorted(os.listdir(tmp_path)) == ["README.md", "model.safetensors"]
    with pytest.raises(FileNotFoundError, match="no config.json .*interrupted save_pretrained"):
        CodeBrain.from_pretrained(tmp_path)


def test_built_on_the_huggingface_hub_mixin():
    import huggingface_hub

    from codebrain import TFDualTokenizer

    for cls in (CodeBrain, TFDualTokenizer):
        assert issubclass(cls, huggingface_hub.PyTorchModelHubMixin)
        assert cls._hub_mixin_info.model_card_data.library_name == "codebrain"
        assert "arxiv.org/abs/2506.09110" in cls._hub_mixin_info.paper_url


def test_private_hook_writes_weights_then_config(tmp_path):
    """braindecode's tests (and other tools) call ``_save_pretrained`` directly."""
    m, x = _model()
    m._save_pretrained(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["config.json", "model.safetensors"]
    torch.testing.assert_close(CodeBrain.from_pretrained(tmp_path)(x), m(x))


def test_model_card_names_architecture_config_and_citation(tmp_path):
    m, _ = _model(swa_window_size=3)
    card = (m.save_pretrained(tmp_path) / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: codebrain\n")
    assert "EEGSSM backbone" in card and "sliding-window attention" in card
    assert "| `swa_window_size` | `3` |" in card
    assert (
        "Jingying Ma, Feng Wu, Qika Lin, Yucheng Xing, Chenyu Liu, Ziyu Jia, Mengling Feng" in card
    )
    assert "ICLR 2026" in card and "2506.09110" in card
    # A card of the user's is never replaced.
    (tmp_path / "README.md").write_text("my notes")
    m.save_pretrained(tmp_path)
    assert (tmp_path / "README.md").read_text() == "my notes"


def test_save_pretrained_refuses_a_file_and_config_argument(tmp_path):
    m, _ = _model()
    f = tmp_path / "f"
    f.write_text("data")
    with pytest.raises(NotADirectoryError, match="not a folder"):
        m.save_pretrained(f)
    assert f.read_text() == "data"
    with pytest.raises(TypeError, match="config= is not supported"):
        m.save_pretrained(tmp_path / "m", config={"a": 1})
    assert not (tmp_path / "m").exists()


# ----------------------------------------------------- broken model folders (issue 14)
@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("[1, 2]", "holds a JSON array; expected a JSON object"),
        ("null", "holds a JSON null; expected a JSON object"),
        ("{oops", "is not valid JSON"),
        ("", "is empty"),
    ],
)
def test_broken_config_is_named(tmp_path, content, match):
    m, _ = _model()
    m.save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(content)
    with pytest.raises(ValueError, match=match) as err:
        CodeBrain.from_pretrained(tmp_path)
    assert str(tmp_path / "config.json") in str(err.value)


@pytest.mark.parametrize(
    ("key", "value", "exc", "match"),
    [
        ("n_chans", "nineteen", TypeError, "n_chans must be an int, got str 'nineteen'"),
        ("n_times", 1e12, TypeError, "n_times must be an int, got float"),
        ("n_times", 10**12, ValueError, "MAX_PARAMETERS"),
        ("res_channels", 10**9, ValueError, "MAX_PARAMETERS"),
        ("res_channels", 1e9, TypeError, "res_channels must be an int"),
        ("res_channels", 15, ValueError, "res_channels must be even"),
    ],
)
def test_bad_config_values_are_named(tmp_path, key, value, exc, match):
    m, _ = _model()
    m.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg[key] = value
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(exc, match=match) as err:
        CodeBrain.from_pretrained(tmp_path)
    assert str(tmp_path / "config.json") in str(err.value)


@pytest.mark.parametrize("size", [0, 100])
def test_truncated_or_empty_weights_are_named(tmp_path, size):
    m, _ = _model()
    m.save_pretrained(tmp_path)
    w = tmp_path / "model.safetensors"
    w.write_bytes(w.read_bytes()[:size])
    with pytest.raises(ValueError, match="empty|truncated") as err:
        CodeBrain.from_pretrained(tmp_path)
    assert str(w) in str(err.value)


def test_torch_jit_script_is_refused_with_a_clear_message():
    m, x = _model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(
            RuntimeError, match="cannot be compiled with torch.jit.script.*torch.export"
        ):
            torch.jit.script(m)
    exported = torch.export.export(m, (x,), strict=False)
    torch.testing.assert_close(exported.module()(x), m(x))
