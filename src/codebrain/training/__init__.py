"""Training: Stage 1 tokenizer training, Stage 2 masked-token pretraining, fine-tuning, metrics.

Names are imported lazily (PEP 562) so that low-level modules (e.g. the codebook's
distributed helpers) can import ``codebrain.training._distributed`` without pulling in the
trainers, and ``import codebrain`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FinetuneConfig": "finetune",
    "FinetuneResult": "finetune",
    "encode_dataset": "finetune",
    "evaluate": "finetune",
    "finetune": "finetune",
    "load_finetuned": "finetune",
    "predict": "finetune",
    "compute_token_targets": "masked_tokens",
    "evaluate_masked_tokens": "masked_tokens",
    "DEFAULT_MASK_RATIO": "masking",
    "random_patch_mask": "masking",
    "classification_metrics": "metrics",
    "compute_metrics": "metrics",
    "regression_metrics": "metrics",
    "PretrainConfig": "pretrain",
    "PretrainResult": "pretrain",
    "pretrain": "pretrain",
    "TokenizerTrainConfig": "tokenizer_trainer",
    "TokenizerTrainResult": "tokenizer_trainer",
    "train_tokenizer": "tokenizer_trainer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
