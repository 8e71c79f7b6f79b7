"""The authors' training recipes (``paper``) for Stage 1 and Stage 2, and Bernoulli masking."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from _pretrain_helpers import _FixedTargetTokenizer

from _fixtures import make_tiny_backbone, sine_windows
from codebrain.training._schedule import warmup_cosine_factor
from codebrain.training.masking import (
    n_masked_per_sample,
    random_patch_mask,
    sample_keyed_masks,
)
from codebrain.training.pretrain import PretrainConfig, pretrain
from codebrain.training.tokenizer_trainer import TokenizerTrainConfig, train_tokenizer


# -------------------------------------------------------------------------------- Stage 1
def test_tokenizer_paper_recipe_is_the_authors_settings() -> None:
    # Their run: batch 256 on 3 GPUs -> lr 1e-4 * 768 / 128 = 6e-4.
    cfg = TokenizerTrainConfig.paper(n_windows=7680, world_size=3)
    assert cfg.max_steps == 20 * (7680 // 768)
    assert cfg.batch_size == 256 and cfg.lr == pytest.approx(6e-4)
    assert cfg.lr * cfg.min_lr_ratio == pytest.approx(1e-5)
    assert (cfg.weight_decay, cfg.decay_all_params, cfg.betas) == (1e-4, True, (0.9, 0.999))
    assert (cfg.grad_clip, cfg.precision, cfg.seed, cfg.warmup_steps) == (0.0, "fp16", 42, 1)
    one_gpu = TokenizerTrainConfig.paper(n_windows=1000)
    assert one_gpu.lr == pytest.approx(2e-4) and one_gpu.max_steps == 20 * 3
    assert TokenizerTrainConfig.paper(1000, precision="fp32").precision == "fp32"
    with pytest.raises(ValueError, match="batch is 256"):
        TokenizerTrainConfig.paper(n_windows=100)
    # The defaults stay codebrain's.
    assert TokenizerTrainConfig().lr == 5e-4 and TokenizerTrainConfig().grad_clip == 3.0


def test_tokenizer_fp16_needs_cuda(tmp_path) -> None:
    ds = sine_windows(8)
    with pytest.raises(ValueError, match="fp16' needs a CUDA device"):
        train_tokenizer(
            ds,
            TokenizerTrainConfig(max_steps=1, batch_size=4, precision="fp16", device="cpu"),
            tmp_path,
        )


def test_cli_tokenizer_paper_recipe(tmp_path) -> None:
    """Explicit flags override the recipe; the rest is the authors' (fp32 on the CPU)."""
    from codebrain.cli import main

    folder = tmp_path / "windows"
    folder.mkdir()
    rng = np.random.default_rng(0)
    np.save(folder / "a.npy", rng.standard_normal((16, 3, 64)).astype(np.float32))
    tiny = ["--patch-size", "32", "--embed-dim", "16", "--depth", "1", "--heads", "2",
            "--decoder-depth", "1", "--conv-channels", "4", "--codebook-size", "16",
            "--code-dim", "4"]  # fmt: skip
    rc = main(
        ["-q", "tokenizer-train", "--corpus", str(folder), "--out", str(tmp_path / "run"),
         *tiny, "--recipe", "paper", "--batch-size", "8", "--steps", "2", "--no-progress",
         "--device", "cpu"]
    )  # fmt: skip
    assert rc == 0
    train = json.loads((tmp_path / "run" / "train_config.json").read_text())["train"]
    assert train["batch_size"] == 8 and train["max_steps"] == 2  # explicit flags
    assert train["lr"] == pytest.approx(1e-4 * 8 / 128)  # the recipe's rule: batch / 128
    assert train["betas"] == [0.9, 0.999] and train["grad_clip"] == 0.0
    assert train["decay_all_params"] and train["seed"] == 42 and train["precision"] == "fp32"


# -------------------------------------------------------------------------------- Stage 2
def test_pretrain_paper_recipe_is_the_authors_settings() -> None:
    cfg = PretrainConfig.paper(n_windows=2560)
    per_epoch = 2560 // 256
    assert (cfg.steps, cfg.schedule_steps, cfg.batch_size) == (10 * per_epoch, 40 * per_epoch, 256)
    assert (cfg.lr, cfg.min_lr, cfg.warmup_steps, cfg.weight_decay) == (1e-4, 1e-5, 0, 5e-3)
    assert cfg.decay_all_params and cfg.betas == (0.9, 0.999) and cfg.grad_clip == 5.0
    assert (cfg.precision, cfg.mask_strategy, cfg.mask_ratio, cfg.seed) == (
        "fp32",
        "bernoulli",
        0.5,
        42,
    )
    assert PretrainConfig.paper(2560, world_size=4).batch_size == 64
    # Their CosineAnnealingLR(T_max = 40 epochs): lr after 10 epochs is still ~0.86e-4.
    ratio = cfg.min_lr / cfg.lr
    f_end = warmup_cosine_factor(
        cfg.steps, warmup_steps=0, total_steps=cfg.schedule_steps, min_lr_ratio=ratio
    )
    expected = 1e-5 + 0.5 * (1e-4 - 1e-5) * (1 + math.cos(math.pi * cfg.steps / (40 * per_epoch)))
    assert cfg.lr * f_end == pytest.approx(expected) and 0.85e-4 < expected < 0.87e-4
    with pytest.raises(ValueError, match="must divide"):
        PretrainConfig.paper(2560, world_size=3)
    assert PretrainConfig().lr == 5e-4 and PretrainConfig().mask_strategy == "random"


def test_bernoulli_masks_are_independent_per_position() -> None:
    g = torch.Generator().manual_seed(0)
    m = random_patch_mask(4000, 3, 5, 0.5, strategy="bernoulli", generator=g)
    assert m.dtype == torch.bool and m.shape == (4000, 3, 5)
    assert float(m.float().mean()) == pytest.approx(0.5, abs=0.01)
    counts = m.flatten(1).sum(1)
    # Binomial(15, 0.5) counts: variable, zero allowed (P = 2^-15 each: rare, not forbidden).
    assert counts.min() < 4 and counts.max() > 11
    assert float(counts.float().var()) == pytest.approx(15 * 0.25, rel=0.1)
    # Positions are uncorrelated.
    flat = m.flatten(1).float()
    corr = torch.corrcoef(flat.T)
    assert float((corr - torch.eye(15)).abs().max()) < 0.06
    a = sample_keyed_masks([3, 7], 3, 5, 0.5, seed=1, epoch=2, strategy="bernoulli")
    b = sample_keyed_masks([7], 3, 5, 0.5, seed=1, epoch=2, strategy="bernoulli")
    assert torch.equal(a[1], b[0])  # keyed by sample, not by batch position
    with pytest.raises(ValueError, match="no fixed count"):
        n_masked_per_sample(3, 5, 0.5, strategy="bernoulli")


def test_pretrain_runs_with_bernoulli_masks_and_steps_without_masked_positions(tmp_path) -> None:
    """A mask ratio so small that most steps mask nothing: the loss is 0 there, not NaN."""
    cfg = PretrainConfig(
        steps=3,
        batch_size=2,
        log_every=1,
        mask_strategy="bernoulli",
        mask_ratio=0.01,
        decay_all_params=True,
        schedule_steps=12,
        warmup_steps=0,
        progress=False,
        checkpoint_every=0,
    )
    result = pretrain(
        make_tiny_backbone(), _FixedTargetTokenizer(), sine_windows(8), None, cfg, tmp_path
    )
    assert result.step == 3
    # Intervals without masked positions write no row; the others are finite.
    losses = [r["loss"] for r in result.history]
    assert len(losses) < 3 and all(math.isfinite(v) for v in losses)


@pytest.mark.parametrize("cls", [PretrainConfig, TokenizerTrainConfig])
def test_paper_recipes_check_their_sizes_before_dividing(cls) -> None:
    """A zero batch or corpus is one clear error naming it, not a ZeroDivisionError."""
    for kwargs, error, match in (
        (dict(batch_size=0), ValueError, "^batch_size must be a positive int, got 0"),
        (dict(batch_size=0, steps=5), ValueError, "^batch_size must be a positive int"),
        (dict(batch_size=-8), ValueError, "^batch_size must be a positive int"),
        (dict(batch_size=None), TypeError, "^batch_size must be an int, got NoneType"),
        (dict(batch_size="8"), TypeError, "^batch_size must be an int, got str"),
    ):
        with pytest.raises(error, match=match):
            cls.paper(512, **kwargs)
    with pytest.raises(ValueError, match="^n_windows must be a positive int, got 0"):
        cls.paper(0)
    with pytest.raises(ValueError, match="^n_windows must be a positive int, got 0"):
        cls.paper(0, batch_size=0)  # the corpus size is checked first
    with pytest.raises(ValueError, match="^world_size must be a positive int, got 0"):
        cls.paper(512, 0)
    assert cls.paper(512, batch_size=8, steps=3).batch_size == 8
