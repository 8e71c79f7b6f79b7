"""Masked-token pretraining loop: objective, logging, outputs, configuration and errors."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from _pretrain_helpers import _FixedTargetTokenizer, params_of
from torch import nn

from _fixtures import TINY_BACKBONE, make_tiny_backbone, make_tiny_backbone_tokenizer, sine_windows
from codebrain import CodeBrain
from codebrain.training.pretrain import (
    PretrainConfig,
    build_param_groups,
    compute_token_targets,
    evaluate_masked_tokens,
    pretrain,
)

FAST = dict(batch_size=4, lr=3e-3, warmup_steps=2, progress=False, checkpoint_every=0)


# ----------------------------------------------------------------------------- config
def test_config_json_round_trip():
    cfg = PretrainConfig(steps=7, betas=(0.8, 0.9), precision="bf16", resume="auto")
    d = json.loads(json.dumps(cfg.to_dict()))
    assert PretrainConfig.from_dict(d) == cfg
    with pytest.raises(ValueError, match="Unknown PretrainConfig fields"):
        PretrainConfig.from_dict({**d, "stepz": 3})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(steps=0), "steps"),
        (dict(batch_size=-1), "batch_size"),
        (dict(precision="fp8"), "precision"),
        (dict(mask_ratio=0.0), "mask_ratio"),
        (dict(mask_strategy="x"), "mask_strategy"),
        (dict(lr=1e-3, min_lr=1e-2), "min_lr"),
        (dict(betas=(0.9, 1.0)), "betas"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PretrainConfig(**kwargs)


# ------------------------------------------------------------------------ components
def test_param_groups_exclude_sgconv_norms_biases():
    model = make_tiny_backbone()
    decay, no_decay = build_param_groups(model, 0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    nd, d = set(no_decay["names"]), set(decay["names"])
    assert not nd & d
    assert any("sgconv.kernel_list.0" in n for n in nd)
    assert any(n.endswith("sgconv.skip_weight") for n in nd)
    assert any("rms_norm.scale" in n for n in nd)
    assert "norm.weight" in nd and "norm.bias" in nd
    assert all(not n.endswith("bias") for n in d)
    assert any(n.endswith("sgconv.output_linear.weight") for n in d)
    assert any(n.endswith("attention.in_proj_weight") for n in d)
    assert "lm_head_t.weight" in d
    # Frozen parameters (the mask encoding) are left out; everything else is in one group.
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert nd | d == trainable
    assert "patch_embedding.mask_encoding" not in nd | d


class _RecordingTokenizer(nn.Module):
    """Test double recording the mode it is called in (an nn.Module around the fixed double)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.inner = _FixedTargetTokenizer()
        self.seen_training: list[bool] = []
        self.seen_grad: list[bool] = []

    def tokenize(self, x):
        self.seen_training.append(self.training)
        self.seen_grad.append(torch.is_grad_enabled())
        return self.inner.tokenize(x * self.scale)


def test_targets_are_computed_frozen_in_eval_mode():
    tok = _RecordingTokenizer().train()
    x = sine_windows(2).x
    ids_t, ids_f = compute_token_targets(tok, x, n_patches=3)
    assert ids_t.shape == ids_f.shape == (2, 3, 3) and ids_t.dtype == torch.long
    assert tok.seen_training == [False] and tok.seen_grad == [False]
    assert tok.training  # mode restored
    with pytest.raises(ValueError, match="same patch_size"):
        compute_token_targets(tok, x, n_patches=4)


# ------------------------------------------------------------------------- end to end
def test_pretrain_learns_and_writes_a_loadable_backbone(tmp_path):
    model = make_tiny_backbone(seed=0)
    head_before = {k: v.clone() for k, v in model.final_layer.state_dict().items()}
    tok = make_tiny_backbone_tokenizer(seed=0).train()  # pretrain must switch it to eval, freeze it
    tok_before = {k: v.clone() for k, v in tok.state_dict().items()}
    train = sine_windows(32, seed=0, labelled=True)  # (x, y) items are accepted
    val = sine_windows(16, seed=1)
    before = evaluate_masked_tokens(model, tok, val, batch_size=8, seed=0)
    cfg = PretrainConfig(steps=40, log_every=10, val_every=20, **FAST)
    result = pretrain(model, tok, train, val, cfg, tmp_path / "run")

    # Learning: validation masked-token loss drops clearly.
    after = result.val_metrics
    assert after["loss"] < before["loss"] - 0.3, (before, after)
    again = evaluate_masked_tokens(model, tok, val, batch_size=8, seed=0)
    assert again["loss"] == pytest.approx(after["loss"], rel=1e-5)
    # The tokenizer stayed frozen (eval, no grad, weights and codebooks unchanged); the
    # classification head was not trained.
    assert not tok.training and not any(p.requires_grad for p in tok.parameters())
    for k, v in tok.state_dict().items():
        assert torch.equal(v, tok_before[k]), k
    for k, v in model.final_layer.state_dict().items():
        assert torch.equal(v, head_before[k])
    assert all(p.requires_grad for p in model.final_layer.parameters())  # flags restored

    # Logs: CSV + JSON lines with per-head metrics for train and val rows.
    out = tmp_path / "run"
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["split"]) for r in rows] == [
        (10, "train"),
        (20, "train"),
        (20, "val"),
        (30, "train"),
        (40, "train"),
        (40, "val"),
    ]
    for key in ("loss_t", "loss_f", "acc_t", "acc_f", "lr", "grad_norm"):
        assert key in rows[0]
    assert rows[0]["loss"] == pytest.approx(rows[0]["loss_t"] + rows[0]["loss_f"])
    header = (out / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"loss_t", "loss_f", "acc_t", "acc_f"} <= set(header)
    saved = json.loads((out / "result.json").read_text())
    assert saved["step"] == 40 and saved["windows_per_second"] > 0
    assert json.loads((out / "config.json").read_text())["pretrain"]["steps"] == 40

    # The backbone loads for fine-tuning with a new head and identical backbone weights.
    ft = CodeBrain.from_pretrained(result.final_dir, n_outputs=5)
    assert ft.n_outputs == 5
    trained = params_of(model)
    for k, v in ft.state_dict().items():
        if not k.startswith("final_layer"):
            assert torch.equal(v, trained[k]), k
    assert ft(torch.randn(2, 3, 600)).shape == (2, 5)


def test_bf16_autocast_on_cpu(tmp_path):
    result = pretrain(
        make_tiny_backbone(),
        _FixedTargetTokenizer(),
        sine_windows(8),
        None,
        PretrainConfig(steps=2, log_every=1, precision="bf16", **FAST),
        tmp_path,
    )
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in result.history)


def test_block_masking_and_accumulation_run(tmp_path):
    result = pretrain(
        make_tiny_backbone(),
        _FixedTargetTokenizer(),
        sine_windows(8),
        None,
        PretrainConfig(
            steps=2,
            log_every=1,
            accum_steps=2,
            mask_strategy="time_block",
            **{**FAST, "batch_size": 2},
        ),
        tmp_path,
    )
    # time_block at 0.5 over P=3 masks round(1.5)=2 columns x 3 channels per window.
    assert result.history[0]["n_masked"] == 4 * 2 * 3


def test_tensorboard_is_optional(tmp_path, caplog):
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        has_tb = False
    else:
        has_tb = True
    with caplog.at_level(logging.INFO, logger="codebrain.training"):
        pretrain(
            make_tiny_backbone(),
            _FixedTargetTokenizer(),
            sine_windows(8),
            None,
            PretrainConfig(steps=1, tensorboard=True, **FAST),
            tmp_path,
        )
    if has_tb:
        assert (tmp_path / "tensorboard").is_dir()
    else:
        assert "TensorBoard logging skipped" in caplog.text


# ---------------------------------------------------------------------------- errors
def test_input_errors(tmp_path):
    tok = _FixedTargetTokenizer()
    cfg = PretrainConfig(steps=1, **FAST)
    with pytest.raises(ValueError, match="channels"):
        pretrain(make_tiny_backbone(), tok, sine_windows(8, n_chans=4), None, cfg, tmp_path / "a")
    with pytest.raises(ValueError, match="fewer than one global batch"):
        pretrain(make_tiny_backbone(), tok, sine_windows(3), None, cfg, tmp_path / "b")
    small = make_tiny_backbone(codebook_size_t=4)
    flags = {n: p.requires_grad for n, p in small.named_parameters()}
    with pytest.raises(ValueError, match="codebook_size_t"):
        pretrain(small, tok, sine_windows(8), None, cfg, tmp_path / "c")
    # The error came after parameters outside the objective were frozen: flags are restored.
    assert {n: p.requires_grad for n, p in small.named_parameters()} == flags
    assert not all(flags.values())  # (the frozen mask encoding stays frozen)
    with pytest.raises(TypeError, match="tokenize"):
        pretrain(make_tiny_backbone(), object(), sine_windows(8), None, cfg, tmp_path / "d")
    with pytest.raises(ValueError, match="CUDA"):
        pretrain(
            make_tiny_backbone(),
            tok,
            sine_windows(8),
            None,
            PretrainConfig(steps=1, precision="fp16", device="cpu", **FAST),
            tmp_path / "e",
        )
    assert TINY_BACKBONE["n_chans"] == 3


# ------------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def corpus_and_tokenizer(tmp_path_factory):
    from codebrain.data import PreprocessConfig, build_corpus, write_synthetic_dataset

    root = tmp_path_factory.mktemp("cli")
    edf = write_synthetic_dataset(root / "edf", n_subjects=3, n_trials=8, seed=0)
    build_corpus(
        edf, root / "corpus", PreprocessConfig(channels=("C3", "CZ", "C4"), window_seconds=3.0)
    )
    make_tiny_backbone_tokenizer().save_pretrained(root / "tok")
    return root / "corpus", root / "tok"


def _cli(*argv: str) -> int:
    """Run ``codebrain`` in-process; restore the logger the CLI reconfigures."""
    from codebrain.cli import main

    root = logging.getLogger("codebrain")
    saved = (root.handlers[:], root.level, root.propagate)
    try:
        return main(list(argv))
    finally:
        root.handlers[:], root.level, root.propagate = saved


def test_cli_pretrain_then_resume(corpus_and_tokenizer, tmp_path, capsys):
    corpus, tok = corpus_and_tokenizer
    out = tmp_path / "run"
    common = [
        "pretrain", "--corpus", str(corpus), "--tokenizer", str(tok), "--out", str(out),
        "--batch-size", "4", "--res-channels", "16", "--skip-channels", "12",
        "--out-channels", "8", "--num-res-layers", "1", "--warmup-steps", "1",
        "--checkpoint-every", "2", "--no-progress", "--val-fraction", "0.34",
    ]  # fmt: skip
    assert _cli(*common, "--steps", "2") == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["step"] == 2 and summary["val"]["loss"] is not None
    assert _cli(*common, "--steps", "4", "--resume") == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["step"] == 4
    saved = json.loads((out / "result.json").read_text())
    assert saved["resumed_from"].endswith("ckpt_00000002.pt")
    model = CodeBrain.from_pretrained(out / "final", n_outputs=3)
    assert model.n_chans == 3 and model.lm_head_f.out_features == TINY_BACKBONE["codebook_size_f"]
    # One held-out recording of three: validation never sees training recordings.
    assert json.loads((out / "config.json").read_text())["world_size"] == 1


def test_cli_errors(corpus_and_tokenizer, tmp_path, capsys):
    corpus, tok = corpus_and_tokenizer
    base = ["pretrain", "--out", str(tmp_path / "o"), "--no-progress"]
    assert _cli(*base, "--corpus", str(tmp_path / "missing"), "--tokenizer", str(tok)) == 2
    assert "cannot open corpus" in capsys.readouterr().err
    assert _cli(*base, "--corpus", str(corpus), "--tokenizer", str(tmp_path)) == 2
    capsys.readouterr()
    assert _cli(*base, "--corpus", str(corpus), "--tokenizer", str(tok), "--mask-ratio", "2") == 2
    assert "mask_ratio" in capsys.readouterr().err
