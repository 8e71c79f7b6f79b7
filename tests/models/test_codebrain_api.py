"""CodeBrain's public contract: signal parameters, forward modes, errors, reference defects."""

from __future__ import annotations

import json
import logging

import mne
import numpy as np
import pytest
import torch

from _fixtures import tiny_codebrain_config
from codebrain import CodeBrain


def _x(cfg, batch=2):
    return torch.randn(batch, cfg["n_chans"], cfg["n_times"])


# ------------------------------------------------------------------ signal parameters
def test_n_times_inferred_from_window_seconds_and_sfreq():
    cfg = tiny_codebrain_config()
    del cfg["n_times"]
    m = CodeBrain(**cfg, input_window_seconds=2.0, sfreq=200.0)
    assert m.n_times == 400 and m.n_patches == 2
    assert m.input_window_seconds == 2.0 and m.sfreq == 200.0


def test_sfreq_and_seconds_inferred_from_each_other():
    m = CodeBrain(**tiny_codebrain_config(), sfreq=100.0)
    assert m.input_window_seconds == 4.0
    m = CodeBrain(**tiny_codebrain_config(), input_window_seconds=4.0)
    assert m.sfreq == 100.0


def test_n_chans_inferred_from_chs_info():
    info = mne.create_info(["Fp1", "Cz", "O2", "Pz"], 200.0, "eeg")
    cfg = tiny_codebrain_config()
    del cfg["n_chans"]
    m = CodeBrain(**cfg, chs_info=info["chs"])
    assert m.n_chans == 4
    assert m.classify(torch.randn(1, 4, 400)).shape == (1, 3)
    # chs_info survives the JSON config round trip
    cfg2 = json.loads(json.dumps(m.get_config()))
    m2 = CodeBrain.from_config(cfg2)
    assert [c["ch_name"] for c in m2.chs_info] == ["Fp1", "Cz", "O2", "Pz"]
    assert isinstance(m2.chs_info[0]["loc"], np.ndarray)


@pytest.mark.parametrize(
    ("drop", "extra", "match"),
    [
        ("n_times", {}, "n_times"),
        ("n_chans", {}, "n_chans"),
        ("n_outputs", {}, "n_outputs"),
    ],
)
def test_missing_signal_parameter_is_named(drop, extra, match):
    cfg = tiny_codebrain_config(**extra)
    del cfg[drop]
    with pytest.raises(ValueError, match=match):
        CodeBrain(**cfg)


def test_contradictory_signal_parameters():
    with pytest.raises(ValueError, match="n_times=400 different from"):
        CodeBrain(**tiny_codebrain_config(), input_window_seconds=3.0, sfreq=200.0)
    info = mne.create_info(["Fp1", "Cz"], 200.0, "eeg")
    with pytest.raises(ValueError, match="n_chans=3 different from len\\(chs_info\\)=2"):
        CodeBrain(**tiny_codebrain_config(), chs_info=info["chs"])


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"swa_window_size": 4}, ValueError, "odd"),
        ({"swa_window_size": 0}, ValueError, "odd"),
        ({"swa_window_size": 3.0}, TypeError, "int"),
        ({"n_times": 150}, ValueError, "shorter than one patch"),
        ({"drop_prob": 1.0}, ValueError, "drop_prob"),
        ({"num_res_layers": 0}, ValueError, "num_res_layers"),
        ({"conv_out_chans": 12, "conv_groups": 5}, ValueError, "divisible"),
        ({"activation": "os.system"}, ValueError, "not an allowed activation"),
        ({"activation": 3}, TypeError, "nn.Module class"),
        ({"activation": "torch.nn.modules.module.Module"}, ValueError, "not an allowed"),
        ({"activation": torch.nn.Module}, TypeError, "base class"),
    ],
)
def test_bad_hyperparameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        CodeBrain(**tiny_codebrain_config(**kwargs))


# ------------------------------------------------------------------------ forward modes
def test_forward_modes_and_typed_methods():
    cfg = tiny_codebrain_config()
    m = CodeBrain(**cfg).eval()
    x = _x(cfg)
    with torch.no_grad():
        logits = m(x)
        out = m(x, return_features=True)
        assert logits.shape == (2, 3)
        assert set(out) == {"features", "cls_token"} and out["cls_token"] is None
        assert out["features"].shape == (2, 3, 2, 8)
        torch.testing.assert_close(m.encode(x), out["features"])
        torch.testing.assert_close(m.classify(x), logits)
        lt, lf = m.token_logits(x)
        assert lt.shape == (2, 3, 2, 16) and lf.shape == (2, 3, 2, 24)
        m.pretrain_mode = True
        t_all, f_all = m(x)
        torch.testing.assert_close(t_all, lt)
        mask = torch.zeros(2, 3, 2, dtype=torch.bool)
        mask[0, 1, 0] = mask[1, 2, 1] = True
        t_m, f_m = m(x, mask=mask)
        assert t_m.shape == (2, 16) and f_m.shape == (2, 24)
        lt_masked, _ = m.token_logits(x, mask=mask)
        torch.testing.assert_close(t_m, lt_masked[mask])


def test_features_for_other_lengths_but_head_needs_its_length():
    cfg = tiny_codebrain_config()
    m = CodeBrain(**cfg).eval()
    x = torch.randn(1, 3, 1000)
    assert m.encode(x).shape == (1, 3, 5, 8)
    with pytest.raises(ValueError, match="built for 2 patches per channel"):
        m(x)


def test_trailing_samples_are_dropped_and_logged_once(caplog):
    cfg = tiny_codebrain_config()
    m = CodeBrain(**cfg).eval()
    x = torch.randn(1, 3, 450)
    with caplog.at_level(logging.WARNING, logger="codebrain"):
        y1 = m(x)
        m(x)
    assert sum("last 50 samples are dropped" in r.message for r in caplog.records) == 1
    torch.testing.assert_close(y1, m(x[..., :400]))


@pytest.mark.parametrize(
    ("make", "exc", "match"),
    [
        (lambda: torch.randn(3, 400), ValueError, "got 2 dimensions"),
        (
            lambda: torch.randn(1, 4, 400),
            ValueError,
            "4 channels but the model was built for n_chans=3",
        ),
        (lambda: torch.randn(1, 3, 199), ValueError, "fewer than one patch"),
        (lambda: torch.full((1, 3, 400), float("nan")), ValueError, "NaN or Inf"),
        (lambda: torch.ones(1, 3, 400, dtype=torch.long), TypeError, "floating-point"),
        (lambda: np.zeros((1, 3, 400)), TypeError, "torch.Tensor"),
    ],
)
def test_bad_inputs(make, exc, match):
    m = CodeBrain(**tiny_codebrain_config()).eval()
    with pytest.raises(exc, match=match):
        m(make())


def test_bad_masks():
    m = CodeBrain(**tiny_codebrain_config()).eval()
    x = torch.randn(2, 3, 400)
    with pytest.raises(
        ValueError, match=r"mask must have shape \(batch, n_chans, n_patches\) = \(2, 3, 2\)"
    ):
        m(x, mask=torch.zeros(2, 3, 3, dtype=torch.bool), return_features=True)
    with pytest.raises(ValueError, match="only 0 and 1"):
        m(x, mask=torch.full((2, 3, 2), 2), return_features=True)


def test_reset_head():
    cfg = tiny_codebrain_config()
    m = CodeBrain(**cfg).eval()
    x = _x(cfg)
    feats = m.encode(x)
    hidden_before = m.final_layer[1].weight.clone()
    m.reset_head(7)
    assert m.n_outputs == 7 and m.classify(x).shape == (2, 7)
    torch.testing.assert_close(m.final_layer[1].weight, hidden_before)
    torch.testing.assert_close(m.encode(x), feats)
    assert m.get_config()["n_outputs"] == 7
    with pytest.raises(ValueError, match="positive int"):
        m.reset_head(0)


def test_get_config_round_trip():
    m = CodeBrain(
        **tiny_codebrain_config(activation=torch.nn.ELU, swa_window_size=3, pos_kernel=(3, 5))
    )
    cfg = m.get_config()
    assert json.loads(json.dumps(cfg)) == cfg
    assert cfg["activation"] == "torch.nn.modules.activation.ELU"
    assert cfg["pos_kernel"] == [3, 5]
    m2 = CodeBrain.from_config(cfg)
    assert m2.get_config() == cfg
    assert m2.activation is torch.nn.ELU
    assert [tuple(v.shape) for v in m2.state_dict().values()] == [
        tuple(v.shape) for v in m.state_dict().values()
    ]
    with pytest.raises(TypeError, match="Unknown CodeBrain config key"):
        CodeBrain.from_config({**cfg, "hidden_size": 3})


# ------------------------------------------------------- defects of the reference (fixed)
def test_inference_mode_forward_before_training_does_not_break_training():
    cfg = tiny_codebrain_config()
    m = CodeBrain(**cfg)
    assert m.get_output_shape() == (1, 3)
    with torch.inference_mode():
        m(_x(cfg))
    m.train()
    loss = m(_x(cfg)).sum()
    loss.backward()
    sg = m.residual_layer.residual_blocks[0].sgconv
    assert all(p.grad is not None for p in sg.parameters())
    assert all(p.grad is not None for p in m.patch_embedding.proj_in.parameters())


def test_kernel_norm_is_not_mutated_by_forward():
    m = CodeBrain(**tiny_codebrain_config())
    before = {k: v.clone() for k, v in m.state_dict().items() if "kernel_norm" in k}
    m(_x(tiny_codebrain_config()))
    for k, v in m.state_dict().items():
        if "kernel_norm" in k:
            torch.testing.assert_close(v, before[k])


@pytest.mark.parametrize("patch_size", [128, 100, 64])
def test_masking_works_for_any_patch_size(patch_size):
    cfg = tiny_codebrain_config(patch_size=patch_size, n_times=patch_size * 3)
    m = CodeBrain(**cfg, pretrain_mode=True).eval()
    x = _x(cfg)
    mask = torch.zeros(2, 3, 3, dtype=torch.bool)
    mask[:, 0, 1] = True
    t, f = m(x, mask=mask)
    assert t.shape == (2, 16) and f.shape == (2, 24)
    # the masked patch's content no longer matters
    x2 = x.clone()
    x2[:, 0, patch_size : 2 * patch_size] = torch.randn(2, patch_size) * 10
    t2, _ = m(x2, mask=mask)
    torch.testing.assert_close(t, t2)


def test_double_precision():
    cfg = tiny_codebrain_config()
    m = CodeBrain(**cfg).eval()
    x = _x(cfg)
    y32 = m(x)
    m64 = m.double()
    y64 = m64(x.double())
    assert y64.dtype == torch.float64
    torch.testing.assert_close(y64.float(), y32, rtol=1e-4, atol=1e-5)


def test_bfloat16_model():
    cfg = tiny_codebrain_config()
    m = CodeBrain(**cfg).eval()
    x = _x(cfg)
    y32 = m(x)
    y16 = m.to(torch.bfloat16)(x.bfloat16())
    assert y16.dtype == torch.bfloat16 and torch.isfinite(y16).all()
    assert ((y16.float() - y32).abs().max() / y32.abs().max()).item() < 0.1


def test_torch_export():
    cfg = tiny_codebrain_config()
    m = CodeBrain(**cfg).eval()
    x = _x(cfg)
    ep = torch.export.export(m, (x,))
    torch.testing.assert_close(ep.module()(x), m(x))
