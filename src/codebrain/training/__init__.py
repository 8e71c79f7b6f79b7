"""Training: Stage 1 tokenizer training, Stage 2 masked-token pretraining, fine-tuning, metrics.

Imports point down only (``training`` -> ``models``, ``data``, ``layers``, ``utils``): the
codebooks' distributed helpers live in :mod:`codebrain.utils.distributed`, so nothing below
imports this package and its names are imported plainly.
"""

from __future__ import annotations

from codebrain.models.probe import load_finetuned
from codebrain.training.finetune import FinetuneConfig, FinetuneResult, finetune
from codebrain.training.inference import encode_dataset, evaluate, predict
from codebrain.training.loop_config import LoopConfig, StepLoopConfig
from codebrain.training.masked_tokens import compute_token_targets, evaluate_masked_tokens
from codebrain.training.masking import DEFAULT_MASK_RATIO, random_patch_mask
from codebrain.training.metrics import classification_metrics, compute_metrics, regression_metrics
from codebrain.training.pretrain import PretrainConfig, PretrainResult, pretrain
from codebrain.training.run import RunFolder
from codebrain.training.tokenizer_trainer import (
    TokenizerTrainConfig,
    TokenizerTrainResult,
    train_tokenizer,
)

__all__ = [
    "DEFAULT_MASK_RATIO",
    "FinetuneConfig",
    "FinetuneResult",
    "LoopConfig",
    "PretrainConfig",
    "PretrainResult",
    "RunFolder",
    "StepLoopConfig",
    "TokenizerTrainConfig",
    "TokenizerTrainResult",
    "classification_metrics",
    "compute_metrics",
    "compute_token_targets",
    "encode_dataset",
    "evaluate",
    "evaluate_masked_tokens",
    "finetune",
    "load_finetuned",
    "predict",
    "pretrain",
    "random_patch_mask",
    "regression_metrics",
    "train_tokenizer",
]
