"""Tests of the Stage 1 TFDual-Tokenizer (codebrain.models.tokenizer)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from _fixtures import TINY_TOKENIZER, TensorWindows, tiny_tokenizer_config
from codebrain.models.tokenizer import TFDualTokenizer, TokenizerConfig

# The shared tiny tokenizer's sizes: samples per patch, channels, patches per window, codes.
S, C, P = TINY_TOKENIZER["patch_size"], TINY_TOKENIZER["max_chans"], TINY_TOKENIZER["max_patches"]
K = TINY_TOKENIZER["codebook_size_t"]
assert (S, C, P, K) == (64, 4, 4, 64) and TINY_TOKENIZER["codebook_size_f"] == K

# Two sinusoids per class, in cycles per patch (exact DFT bins of a patch).
CLASS_FREQS = np.array([[3, 7], [5, 11], [9, 17], [13, 23]])


def synthetic_windows(n: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """Windows (n, C, P*S) of two sinusoids whose frequencies depend on a class label, with
    random amplitude and phase per channel, plus white noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(CLASS_FREQS), n)
    t = np.arange(P * S) / S
    amp = rng.uniform(0.5, 1.5, (n, C, 2, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, C, 2, 1))
    freqs = CLASS_FREQS[y][:, None, :, None]
    x = (amp * np.sin(2 * np.pi * freqs * t + phase)).sum(2)
    x += 0.3 * rng.standard_normal((n, C, P * S))
    return torch.from_numpy(x.astype(np.float32)), y


def _token_histograms(model: TFDualTokenizer, x: torch.Tensor) -> np.ndarray:
    ids_t, ids_f = model.tokenize(x)
    cfg = model.config
    h_t = torch.zeros(len(x), cfg.codebook_size_t)
    h_f = torch.zeros(len(x), cfg.codebook_size_f)
    h_t.scatter_add_(1, ids_t.flatten(1), torch.ones(ids_t.flatten(1).shape))
    h_f.scatter_add_(1, ids_f.flatten(1), torch.ones(ids_f.flatten(1).shape))
    return torch.cat([h_t, h_f], dim=1).numpy()


# ---------------------------------------------------------------------------- shapes/API
def test_shapes_and_patch_input() -> None:
    model = TFDualTokenizer(tiny_tokenizer_config()).eval()
    x = torch.randn(3, C, P * S)
    ids_t, ids_f = model.tokenize(x)
    assert ids_t.shape == ids_f.shape == (3, C, P)
    assert ids_t.dtype == ids_f.dtype == torch.int64
    assert int(ids_t.max()) < K and int(ids_f.min()) >= 0
    # Patches (B, C, P, S) give the same tokens as windows (B, C, T).
    ids_t2, ids_f2 = model.tokenize(x.reshape(3, C, P, S))
    assert torch.equal(ids_t, ids_t2) and torch.equal(ids_f, ids_f2)
    # Fewer channels and patches than the maxima are fine.
    assert model.tokenize(torch.randn(2, 2, 2 * S))[0].shape == (2, 2, 2)

    with torch.no_grad():
        out = model(x)
    f = S  # full DFT bins (the authors' targets)
    assert torch.equal(out.ids_t, ids_t) and torch.equal(out.ids_f, ids_f)
    assert out.recon_time.shape == out.targets.time.shape == (3, C, P, S)
    assert out.recon_amp.shape == out.targets.amp.shape == (3, C, P, f)
    assert out.recon_phase.shape == out.targets.phase.shape == (3, C, P, f)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert set(out.losses.as_dict()) == {
        "time",
        "amp",
        "phase",
        "commit_t",
        "commit_f",
        "contrastive",
    }
    assert float(out.losses.contrastive) == 0.0  # only computed when gradients are on
    assert out.counts_t.shape == (K,) and float(out.counts_t.sum()) == 3 * C * P
    assert model.encode(x).shape == (3, C, P, 32)
    rt, ra, rp = model.decode(ids_t, ids_f)
    assert rt.shape == (3, C, P, S) and ra.shape == rp.shape == (3, C, P, f)
    assert torch.allclose(rt, out.recon_time) and torch.allclose(rp, out.recon_phase)


def test_loss_is_weighted_sum_of_terms() -> None:
    cfg = tiny_tokenizer_config(
        time_weight=0.5,
        amp_weight=2.0,
        phase_weight=0.3,
        commitment_weight=0.7,
        contrastive_weight=0.2,
    )
    model = TFDualTokenizer(cfg).eval()
    out = model(torch.randn(3, C, P * S))  # gradients on: all six terms
    t = out.losses
    assert float(t.contrastive.detach()) > 0
    expected = (
        0.5 * t.time
        + 2.0 * t.amp
        + 0.3 * t.phase
        + 0.7 * (t.commit_t + t.commit_f)
        + 0.2 * t.contrastive
    )
    assert torch.allclose(out.loss, expected)


def test_targets_are_the_raw_patch_and_per_sample_zscored_spectrum() -> None:
    """Time target = the input itself; amplitude and phase of the full DFT z-scored per
    sample over C x P x S (unbiased std), written out independently here."""
    model = TFDualTokenizer(tiny_tokenizer_config())
    n = torch.arange(S, dtype=torch.float64)
    # Positive DC and Nyquist terms: the phases of those two real bins are 0, not +-pi.
    patches = (torch.randn(2, C, P, S) + 5 + 5 * torch.cos(math.pi * n)).float()
    tg = model.make_targets(patches)
    assert torch.equal(tg.time, patches)
    dft = torch.exp(-2j * math.pi * n[:, None] * n[None, :] / S)  # (S, S) DFT matrix
    spec = patches.double().to(torch.complex128) @ dft.T
    for got, raw in ((tg.amp, spec.abs()), (tg.phase, torch.atan2(spec.imag, spec.real))):
        flat = raw.reshape(2, -1)
        ref = (flat - flat.mean(1, keepdim=True)) / flat.std(1, keepdim=True)
        assert got.shape == (2, C, P, S)
        assert torch.allclose(got.double().reshape(2, -1), ref, atol=1e-4)


def test_nt_xent_matches_the_written_out_formula() -> None:
    """The authors' NT-Xent: logits = [positive, every other row] / T, positive first; the
    positive also sits among the 'other rows' (their negative mask keeps it)."""
    from codebrain.models.tokenizer import nt_xent

    torch.manual_seed(0)
    z1, z2 = torch.randn(5, 3, 4), torch.randn(5, 3, 4)
    a = torch.nn.functional.normalize(z1.reshape(5, -1), dim=-1)
    b = torch.nn.functional.normalize(z2.reshape(5, -1), dim=-1)
    reps = torch.cat([b, a])  # (10, 12)
    total = 0.0
    for i in range(10):
        sims = [float(reps[i] @ reps[j]) / 0.1 for j in range(10)]
        pos = sims[(i + 5) % 10]
        others = [sims[j] for j in range(10) if j != i]
        total += -pos + math.log(math.exp(pos) + sum(math.exp(v) for v in others))
    assert float(nt_xent(z1, z2, 0.1)) == pytest.approx(total / 10, rel=1e-5)
    assert float(nt_xent(z1[:1], z2[:1])) == pytest.approx(math.log(2), rel=1e-6)


def test_bf16_autocast_forward() -> None:
    model = TFDualTokenizer(tiny_tokenizer_config()).train()
    x = torch.randn(2, C, P * S)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
    assert out.loss.dtype == torch.float32 and torch.isfinite(out.loss)
    out.loss.backward()
    assert all(
        p.grad is not None and torch.isfinite(p.grad).all()
        for n, p in model.named_parameters()
        if p.requires_grad
    )


def test_default_config_is_the_released_size() -> None:
    cfg = TokenizerConfig()
    assert (cfg.patch_size, cfg.codebook_size_t, cfg.codebook_size_f, cfg.code_dim) == (
        200,
        4096,
        4096,
        32,
    )
    assert (cfg.max_chans + 1, cfg.max_patches, cfg.embed_dim, cfg.depth, cfg.num_heads) == (
        129,
        60,
        200,
        12,
        10,
    )
    assert (cfg.decoder_depth, cfg.ema_decay, cfg.kmeans_init, cfg.dead_code_threshold) == (
        3,
        0.99,
        False,
        0.0,
    )
    assert (cfg.conv_channels, cfg.conv_dropout, cfg.contrastive_temperature) == (8, 0.3, 0.1)
    model = TFDualTokenizer(cfg).eval()
    assert model.tfconv.out_dim == 200
    ids_t, ids_f = model.tokenize(torch.randn(1, 19, 400))
    assert ids_t.shape == (1, 19, 2) and int(ids_t.max()) < 4096


# ------------------------------------------------------------------------------ errors
def test_bad_inputs() -> None:
    model = TFDualTokenizer(tiny_tokenizer_config())
    with pytest.raises(ValueError, match="multiple of patch_size"):
        model.tokenize(torch.randn(1, C, P * S + 5))
    with pytest.raises(ValueError, match="S = patch_size"):
        model.tokenize(torch.randn(1, C, P, S - 1))
    with pytest.raises(ValueError, match="max_chans"):
        model.tokenize(torch.randn(1, C + 1, S))
    with pytest.raises(ValueError, match="max_patches"):
        model.tokenize(torch.randn(1, C, (P + 1) * S))
    with pytest.raises(ValueError, match=r"\(B, C, T\)"):
        model.tokenize(torch.randn(C, S))
    with pytest.raises(TypeError, match="floating"):
        model.tokenize(torch.ones(1, C, S, dtype=torch.long))
    with pytest.raises(TypeError, match="torch.Tensor"):
        model.tokenize(np.zeros((1, C, S), dtype=np.float32))
    with pytest.raises(ValueError, match="ids_t and ids_f"):
        model.decode(torch.zeros(1, C, P, dtype=torch.long), torch.zeros(1, C, dtype=torch.long))


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="divisible by num_heads"):
        tiny_tokenizer_config(num_heads=3)
    with pytest.raises(ValueError, match="target_norm"):
        tiny_tokenizer_config(target_norm="zscore")
    with pytest.raises(ValueError, match="earlier tokenizer design"):
        tiny_tokenizer_config(target_norm="patch")  # a config.json of the removed design
    with pytest.raises(ValueError, match="TFConv width"):
        tiny_tokenizer_config(embed_dim=48, num_heads=2)
    with pytest.raises(ValueError, match="conv_channels must be even"):
        tiny_tokenizer_config(conv_channels=3)
    with pytest.raises(TypeError, match="must be an int"):
        tiny_tokenizer_config(depth=2.0)
    with pytest.raises(ValueError, match="codebook_size_f"):
        tiny_tokenizer_config(codebook_size_f=1)
    with pytest.raises(ValueError, match="Unknown TokenizerConfig fields"):
        TokenizerConfig.from_dict({"patch_size": 200, "bogus": 1})
    with pytest.raises(TypeError, match="TokenizerConfig"):
        TFDualTokenizer({"patch_size": 200})  # type: ignore[arg-type]
    assert TokenizerConfig.from_dict(tiny_tokenizer_config().to_dict()) == tiny_tokenizer_config()


# ---------------------------------------------------------------------------- persistence
def test_save_load_round_trip(tmp_path) -> None:
    model = TFDualTokenizer(tiny_tokenizer_config()).train()
    model(torch.randn(8, C, P * S))  # initialises the codebooks (k-means) and moves the EMAs
    assert bool(model.codebook_t.initted)
    model.eval()
    folder = model.save_pretrained(tmp_path / "tok")
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    assert "TFDual-Tokenizer" in (folder / "README.md").read_text()
    assert json.loads((folder / "config.json").read_text())["codebook_size_t"] == K
    loaded = TFDualTokenizer.from_pretrained(folder)
    assert not loaded.training
    assert loaded.config == model.config
    for (k, a), (k2, b) in zip(
        model.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert k == k2 and torch.equal(a, b), k
    assert bool(loaded.codebook_f.initted)
    x = torch.randn(2, C, P * S)
    assert all(
        torch.equal(a, b) for a, b in zip(model.tokenize(x), loaded.tokenize(x), strict=True)
    )
    # Saving again over an existing folder rewrites its two files atomically (no temporary
    # files left) and keeps the user's other files.
    (folder / "README.md").write_text("notes")
    model.save_pretrained(tmp_path / "tok")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tok"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    # Overrides that keep weight shapes.
    assert TFDualTokenizer.from_pretrained(folder, dropout=0.1).config.dropout == 0.1


def test_push_to_hub_uploads_a_loadable_folder(monkeypatch, tmp_path) -> None:
    import shutil

    import huggingface_hub

    calls = {}

    def create_repo(self, repo_id, **kwargs):
        calls["create"] = (repo_id, kwargs)
        return huggingface_hub.RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        calls["upload"] = (repo_id, kwargs)
        shutil.copytree(folder_path, tmp_path / "uploaded")
        return "commit-info"

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    model = TFDualTokenizer(tiny_tokenizer_config()).eval()
    assert model.push_to_hub("me/tok", private=True, branch="v1") == "commit-info"
    assert calls["create"] == ("me/tok", {"private": True, "exist_ok": True})
    assert calls["upload"][0] == "me/tok" and calls["upload"][1]["revision"] == "v1"
    loaded = TFDualTokenizer.from_pretrained(tmp_path / "uploaded")
    x = torch.randn(2, C, P * S)
    assert all(
        torch.equal(a, b) for a, b in zip(model.tokenize(x), loaded.tokenize(x), strict=True)
    )


def test_from_pretrained_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        TFDualTokenizer.from_pretrained(tmp_path / "does" / "not" / "exist")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        TFDualTokenizer.from_pretrained(tmp_path / "empty")
    folder = TFDualTokenizer(tiny_tokenizer_config()).save_pretrained(tmp_path / "other")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["model_type"] = "something-else"
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="something-else"):
        TFDualTokenizer.from_pretrained(folder)


# ------------------------------------------------------------------------------ learning
@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from intra-op threads, and on a loaded machine two threads
    waiting on each other make training many times slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_tokenizer_learns(tmp_path) -> None:
    """On windows whose spectra depend on a class label, training lowers the reconstruction
    error far below an untrained tokenizer's, keeps both codebooks in use, and yields tokens
    from which the label can be predicted on held-out windows."""
    from sklearn.linear_model import LogisticRegression

    from codebrain.layers.quantize import fraction_used
    from codebrain.training.tokenizer_trainer import TokenizerTrainConfig, train_tokenizer

    x_train, y_train = synthetic_windows(400, seed=0)
    x_test, y_test = synthetic_windows(200, seed=1)
    cfg = tiny_tokenizer_config()

    torch.manual_seed(0)
    untrained = TFDualTokenizer(cfg).eval()
    with torch.no_grad():
        before = untrained(x_test).losses

    result = train_tokenizer(
        TensorWindows(x_train, y_train),
        TokenizerTrainConfig(
            max_steps=200,
            batch_size=32,
            lr=1e-3,
            warmup_steps=20,
            min_lr_ratio=0.1,
            checkpoint_every=1000,
            log_every=50,
            progress=False,
        ),
        tmp_path / "run",
        model_config=cfg,
    )
    model = result.model
    with torch.no_grad():
        after = model(x_test).losses
    recon_before = float(before.time + before.amp + before.phase)
    recon_after = float(after.time + after.amp + after.phase)

    ids_t, ids_f = model.tokenize(x_test)
    used_t = fraction_used(torch.bincount(ids_t.flatten(), minlength=K).float())
    used_f = fraction_used(torch.bincount(ids_f.flatten(), minlength=K).float())

    h_train = _token_histograms(model, x_train)
    h_test = _token_histograms(model, x_test)
    clf = LogisticRegression(max_iter=2000).fit(h_train, y_train)
    acc = clf.score(h_test, y_test)
    chance = np.bincount(y_test).max() / len(y_test)
    print(
        f"\nrecon (time+amp+phase) untrained {recon_before:.3f} -> trained {recon_after:.3f}; "
        f"amp {float(before.amp):.3f} -> {float(after.amp):.3f}; "
        f"time {float(before.time):.3f} -> {float(after.time):.3f}; "
        f"codes used t={used_t:.2f} f={used_f:.2f}; token-histogram accuracy {acc:.3f} "
        f"(chance {chance:.3f})"
    )
    # The authors' targets: the raw waveform (white noise included) and the per-sample z-scored
    # phase of sinusoids of random phase carry much that no code can predict, so the total
    # falls less than the amplitude does (measured: amp 1.00 -> 0.60, total 3.17 -> 2.60).
    assert float(after.amp) < 0.7 * float(before.amp)
    assert recon_after < 0.9 * recon_before
    assert used_t >= 0.4 and used_f >= 0.4
    assert acc >= chance + 0.35
