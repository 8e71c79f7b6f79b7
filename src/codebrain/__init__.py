"""codebrain: the CodeBrain EEG foundation model (Ding/Ma et al., arXiv 2506.09110).

Stage 1 (TFDual-Tokenizer), Stage 2 (EEGSSM backbone, weight-compatible with braindecode's
``CodeBrain``), a data pipeline from EEG files, pretraining, fine-tuning and a CLI.
"""

from __future__ import annotations

from codebrain.models import (
    CodeBrain,
    ConversionReport,
    convert_upstream_state_dict,
    load_checkpoint_file,
    to_upstream_state_dict,
)

__version__ = "0.1.0"

__all__ = [
    "CodeBrain",
    "ConversionReport",
    "__version__",
    "convert_upstream_state_dict",
    "load_checkpoint_file",
    "to_upstream_state_dict",
]
