"""codebrain: the CodeBrain EEG foundation model.

J. Ma, F. Wu, Q. Lin, Y. Xing, C. Liu, Z. Jia, M. Feng, "CodeBrain: Bridging Decoupled
Tokenizer and Multi-Scale Architecture for EEG Foundation Model", ICLR 2026, arXiv 2506.09110.

Stage 1 (:class:`TFDualTokenizer`), Stage 2 (:class:`CodeBrain`, the EEGSSM backbone,
weight-compatible with braindecode's ``CodeBrain``), a data pipeline from EEG files
(:mod:`codebrain.data`), tokenizer training, masked-token pretraining and fine-tuning
(:mod:`codebrain.training`) and the ``codebrain`` command.
"""

from __future__ import annotations

from codebrain._version import __version__
from codebrain.models import (
    CodeBrain,
    ConversionReport,
    TFDualTokenizer,
    TokenizerConfig,
    TokenizerOutput,
    convert_upstream_state_dict,
    convert_upstream_tokenizer_state_dict,
    load_checkpoint_file,
    to_upstream_state_dict,
)

__all__ = [
    "CodeBrain",
    "ConversionReport",
    "TFDualTokenizer",
    "TokenizerConfig",
    "TokenizerOutput",
    "__version__",
    "convert_upstream_state_dict",
    "convert_upstream_tokenizer_state_dict",
    "load_checkpoint_file",
    "to_upstream_state_dict",
]
