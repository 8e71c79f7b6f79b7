"""Worker of the torchrun tests: tiny pretraining with the default ``resume=None``.

Run as ``torchrun ... _torchrun_worker.py OUT STEPS BATCH CHECKPOINT_EVERY``; rank 0 saves the
final weights to ``OUT/weights.pt``. A group that torchrun relaunched (``--max-restarts``,
``TORCHELASTIC_RESTART_COUNT > 0``) continues from the newest checkpoint by itself.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests root: _fixtures
sys.path.insert(0, str(Path(__file__).resolve().parent))  # _pretrain_helpers

from _pretrain_helpers import _FixedTargetTokenizer, params_of

from _fixtures import make_tiny_backbone, sine_windows
from codebrain.training.pretrain import PretrainConfig, pretrain

BASE = dict(lr=3e-3, warmup_steps=2, log_every=1, progress=False, seed=3, val_every=0)


def main(out: str, steps: int, batch_size: int, checkpoint_every: int) -> None:
    torch.set_num_threads(1)
    model = make_tiny_backbone(seed=0)
    cfg = PretrainConfig(
        **BASE,
        steps=steps,
        batch_size=batch_size,
        checkpoint_every=checkpoint_every,
    )
    pretrain(model, _FixedTargetTokenizer(), sine_windows(16), None, cfg, out)
    if int(os.environ.get("RANK", "0")) == 0:
        torch.save(params_of(model), Path(out) / "weights.pt")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
