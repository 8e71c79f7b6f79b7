"""Models and checkpoint conversion.

CodeBrain (Stage 2 EEGSSM), its linear-probe variant, the TFDual-Tokenizer (Stage 1), and the
conversion of the authors' checkpoints.
"""

from codebrain.models.checkpoints import (
    UPSTREAM_TOKENIZER_FILE,
    ConversionReport,
    convert_upstream_state_dict,
    convert_upstream_tokenizer_state_dict,
    load_checkpoint_file,
    to_upstream_state_dict,
    to_upstream_tokenizer_state_dict,
)
from codebrain.models.codebrain import CodeBrain
from codebrain.models.probe import LinearProbe, ProbedCodeBrain, load_finetuned
from codebrain.models.tokenizer import (
    TFDualTokenizer,
    TokenizerConfig,
    TokenizerLosses,
    TokenizerOutput,
    TokenizerTargets,
)

__all__ = [
    "CodeBrain",
    "ConversionReport",
    "LinearProbe",
    "ProbedCodeBrain",
    "TFDualTokenizer",
    "TokenizerConfig",
    "TokenizerLosses",
    "TokenizerOutput",
    "TokenizerTargets",
    "UPSTREAM_TOKENIZER_FILE",
    "convert_upstream_state_dict",
    "convert_upstream_tokenizer_state_dict",
    "load_checkpoint_file",
    "load_finetuned",
    "to_upstream_state_dict",
    "to_upstream_tokenizer_state_dict",
]
