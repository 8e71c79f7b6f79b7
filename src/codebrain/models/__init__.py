"""Models: CodeBrain (Stage 2 EEGSSM) and checkpoint conversion."""

from codebrain.models.checkpoints import (
    ConversionReport,
    convert_upstream_state_dict,
    load_checkpoint_file,
    to_upstream_state_dict,
)
from codebrain.models.codebrain import CodeBrain

__all__ = [
    "CodeBrain",
    "ConversionReport",
    "convert_upstream_state_dict",
    "load_checkpoint_file",
    "to_upstream_state_dict",
]
