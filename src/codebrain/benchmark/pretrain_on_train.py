"""CodeBrain pretrained on the benchmark's own training windows (the ``codebrain_pt`` model).

:class:`PretrainOnTrain` is the budget of ``codebrain_pt``; :func:`_pretrain_on_train` runs
Stage 1 (tokenizer training) and Stage 2 (masked-token pretraining) on the unlabelled windows
of the TRAINING subjects only, before :func:`codebrain.benchmark.runner.run_benchmark`
fine-tunes the model as usual. No validation or test window is seen before fine-tuning.

Shape legend: ``n`` windows, ``C`` channels, ``T`` samples.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from codebrain.benchmark.hooks import TaskWindows
from codebrain.benchmark.recipe import PATCH_SIZE, TaskRecipe
from codebrain.utils.check import check_int

__all__ = ["PretrainOnTrain"]


@dataclass(frozen=True)
class PretrainOnTrain:
    """Budget of ``codebrain_pt``: pretraining on the training subjects, then fine-tuning.

    Stage 1 tokenizer and Stage 2 masked-token pretraining run on the unlabelled windows of the
    TRAINING subjects only, then the usual fine-tuning.

    Parameters
    ----------
    tokenizer_steps, pretrain_steps : int
        Optimizer steps of each stage.
    batch_size : int
    tokenizer_lr, pretrain_lr : float
    codebook_size : int
        Entries of each tokenizer codebook (the backbone's token heads get the same size).
    tokenizer_conv_channels, tokenizer_depth, tokenizer_heads : int
        First-convolution channels of the tokenizer's TFConv (its width is then
        ``tfconv_out_dim(patch_size, tokenizer_conv_channels)``: 50 for 2 channels at 200-sample
        patches), encoder depth and attention heads (must divide the width).
    tokenizer_kmeans : bool
        k-means codebook init and dead-code restarts (threshold 0.5): with a few hundred steps
        the release's random init leaves most codes unused (``benchmarks/results/tokenizer_designs.json``).
    """

    tokenizer_steps: int = 400
    pretrain_steps: int = 800
    batch_size: int = 32
    tokenizer_lr: float = 2e-3
    pretrain_lr: float = 5e-4
    codebook_size: int = 256
    tokenizer_conv_channels: int = 2
    tokenizer_depth: int = 2
    tokenizer_heads: int = 5
    tokenizer_kmeans: bool = True

    def __post_init__(self) -> None:
        for name in (
            "tokenizer_steps",
            "pretrain_steps",
            "batch_size",
            "codebook_size",
            "tokenizer_conv_channels",
            "tokenizer_depth",
            "tokenizer_heads",
        ):
            check_int(f"PretrainOnTrain.{name}", getattr(self, name))


def _pretrain_on_train(
    model: Any,
    recipe: TaskRecipe,
    train: TaskWindows,
    budget: PretrainOnTrain,
    seed: int,
    device: str,
    work_dir: Path,
) -> dict[str, Any]:
    """Stage 1 + Stage 2 on the training windows (labels unused); returns timing info."""
    import torch

    from codebrain.layers.tfconv import tfconv_out_dim
    from codebrain.models.tokenizer import TokenizerConfig
    from codebrain.training.pretrain import PretrainConfig, pretrain
    from codebrain.training.tokenizer_trainer import TokenizerTrainConfig, train_tokenizer

    class _Unlabelled(torch.utils.data.Dataset):
        def __init__(self, x: np.ndarray) -> None:
            self.x = torch.from_numpy(np.ascontiguousarray(x))

        def __len__(self) -> int:
            return len(self.x)

        def __getitem__(self, i: int) -> torch.Tensor:
            return self.x[i]

    ds = _Unlabelled(train.x)
    batch = min(budget.batch_size, len(ds))
    t0 = time.perf_counter()
    width = tfconv_out_dim(PATCH_SIZE, budget.tokenizer_conv_channels)
    tok_cfg = TokenizerConfig(
        patch_size=PATCH_SIZE,
        max_chans=recipe.n_chans,
        max_patches=recipe.n_patches,
        embed_dim=width,
        conv_channels=budget.tokenizer_conv_channels,
        depth=budget.tokenizer_depth,
        num_heads=budget.tokenizer_heads,
        decoder_depth=1,
        codebook_size_t=budget.codebook_size,
        codebook_size_f=budget.codebook_size,
        code_dim=16,
        ema_decay=0.8,  # short runs: a slow EMA leaves the codebooks collapsed
        kmeans_init=budget.tokenizer_kmeans,
        dead_code_threshold=0.5 if budget.tokenizer_kmeans else 0.0,
    )
    loop = TokenizerTrainConfig(
        steps=budget.tokenizer_steps,
        batch_size=batch,
        lr=budget.tokenizer_lr,
        warmup_steps=max(1, budget.tokenizer_steps // 10),
        min_lr=0.05 * budget.tokenizer_lr,
        grad_clip=1.0,
        checkpoint_every=budget.tokenizer_steps,
        keep_checkpoints=1,
        log_every=max(1, budget.tokenizer_steps // 10),
        seed=seed,
        device=device,
        resume=False,
        progress=False,
    )
    tok = train_tokenizer(ds, loop, work_dir / "tokenizer", model_config=tok_cfg).model.eval()
    t_tok = time.perf_counter() - t0
    cfg = PretrainConfig(
        steps=budget.pretrain_steps,
        batch_size=batch,
        lr=budget.pretrain_lr,
        min_lr=budget.pretrain_lr / 20,
        warmup_steps=max(1, budget.pretrain_steps // 10),
        log_every=max(1, budget.pretrain_steps // 10),
        val_every=0,
        checkpoint_every=0,
        seed=seed,
        device=device,
        progress=False,
    )
    pretrain(model, tok, ds, None, cfg, work_dir / "pretrain")
    return {"tokenizer_seconds": t_tok, "pretrain_seconds": time.perf_counter() - t0 - t_tok}
