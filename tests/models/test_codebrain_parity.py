"""Weights and outputs interchangeable with braindecode 1.8.1's CodeBrain (the test oracle)."""

from __future__ import annotations

import warnings

import pytest
import torch

from _fixtures import tiny_codebrain_config
from codebrain import CodeBrain

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    bd_models = pytest.importorskip("braindecode.models")
BDCodeBrain = bd_models.CodeBrain

CONFIGS = [
    tiny_codebrain_config(),
    tiny_codebrain_config(n_chans=5, n_times=650),  # length not a multiple of patch_size
    tiny_codebrain_config(s4_bidirectional=False),
    tiny_codebrain_config(s4_layernorm=True),
    tiny_codebrain_config(swa_window_size=3),
    tiny_codebrain_config(swa_window_size=7, n_chans=2, n_times=1000),
    tiny_codebrain_config(res_channels=8, skip_channels=8, out_channels=4, num_res_layers=1),
    tiny_codebrain_config(activation=torch.nn.GELU, mlp_hidden_multiplier=2),
    tiny_codebrain_config(
        s4_lmax=60, n_times=1800, n_chans=2
    ),  # sequence longer than the SGConv kernel
    tiny_codebrain_config(patch_size=100, n_times=500),
    tiny_codebrain_config(
        conv_out_chans=10, conv_groups=2, proj_kernel_size=25, proj_padding=12, pos_kernel=(3, 3)
    ),
]


def _pair(cfg, seed=0):
    torch.manual_seed(seed)
    ref = BDCodeBrain(**cfg)
    ours = CodeBrain(**cfg)
    return ref, ours


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


@pytest.mark.parametrize(
    "cfg", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items() if k != "activation")
)
def test_state_dict_keys_and_shapes_match(cfg):
    ref, ours = _pair(cfg)
    sr, so = ref.state_dict(), ours.state_dict()
    assert list(sr) == list(so)
    assert {k: tuple(v.shape) for k, v in sr.items()} == {k: tuple(v.shape) for k, v in so.items()}


@pytest.mark.parametrize(
    "cfg", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items() if k != "activation")
)
def test_outputs_match_for_same_weights(cfg):
    ref, ours = _pair(cfg)
    ref.eval()
    ours.eval()
    x = torch.randn(2, cfg["n_chans"], cfg["n_times"])
    with torch.no_grad():
        logits_ref = ref(x)  # first call also initialises the reference's kernel norms
        ours.load_state_dict(ref.state_dict())
        logits = ours(x)
        feats_ref = ref(x, return_features=True)["features"]
        feats = ours(x, return_features=True)["features"]
    assert logits.shape == logits_ref.shape == (2, cfg["n_outputs"])
    assert _rel(logits, logits_ref) <= 1e-5
    assert _rel(feats, feats_ref) <= 1e-5


@pytest.mark.parametrize("cfg", CONFIGS[:6], ids=str)
def test_pretrain_outputs_match(cfg):
    ref, ours = _pair(cfg)
    ref.eval()
    ours.eval()
    ref.pretrain_mode = ours.pretrain_mode = True
    n_patches = cfg["n_times"] // cfg.get("patch_size", 200)
    x = torch.randn(2, cfg["n_chans"], cfg["n_times"])
    mask = torch.rand(2, cfg["n_chans"], n_patches) < 0.5
    mask[0, 0, 0] = True
    with torch.no_grad():
        ref(x)
        ours.load_state_dict(ref.state_dict())
        for m in (None, mask, mask.long()):
            t_ref, f_ref = ref(x, mask=m)
            t, f = ours(x, mask=m)
            assert t.shape == t_ref.shape and f.shape == f_ref.shape
            assert _rel(t, t_ref) <= 1e-5 and _rel(f, f_ref) <= 1e-5


def test_fresh_reference_state_dict_gives_same_outputs():
    """A never-run reference model has unset kernel norms; ours computes them on load."""
    cfg = tiny_codebrain_config()
    ref, ours = _pair(cfg)
    sd = {k: v.clone() for k, v in ref.state_dict().items()}
    assert not any(bool(v) for k, v in sd.items() if k.endswith("kernel_norm_initialized"))
    ours.load_state_dict(sd)
    ref.eval()
    ours.eval()
    x = torch.randn(2, cfg["n_chans"], cfg["n_times"])
    with torch.no_grad():
        assert _rel(ours(x), ref(x)) <= 1e-5


def test_weights_move_from_ours_to_reference():
    cfg = tiny_codebrain_config(swa_window_size=3)
    ref, ours = _pair(cfg, seed=3)
    ref.load_state_dict(ours.state_dict())
    ref.eval()
    ours.eval()
    x = torch.randn(3, cfg["n_chans"], cfg["n_times"])
    with torch.no_grad():
        assert _rel(ours(x), ref(x)) <= 1e-5


@pytest.mark.parametrize("window", [1, 5])
def test_gradients_match_in_train_mode_without_dropout(window):
    cfg = tiny_codebrain_config(drop_prob=0.0, spectral_dropout=0.0, swa_window_size=window)
    ref, ours = _pair(cfg, seed=1)
    ours.load_state_dict(ref.state_dict())
    ref.train()
    ours.train()
    x = torch.randn(2, cfg["n_chans"], cfg["n_times"])
    target = torch.tensor([0, 2])
    for m in (ref, ours):
        torch.nn.functional.cross_entropy(m(x), target).backward()
    grads_ref = {n: p.grad for n, p in ref.named_parameters() if p.grad is not None}
    grads = {n: p.grad for n, p in ours.named_parameters() if p.grad is not None}
    assert set(grads) == set(grads_ref)
    for name, g in grads.items():
        scale = grads_ref[name].abs().max().clamp_min(1e-8)
        assert ((g - grads_ref[name]).abs().max() / scale).item() <= 1e-4, name
