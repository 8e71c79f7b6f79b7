"""Shared pieces of the pretraining tests: a deterministic tokenizer double, DDP plumbing.

The tiny backbone, tokenizer and windows come from :mod:`_fixtures` (``make_tiny_backbone``,
``make_tiny_backbone_tokenizer``, ``sine_windows``).
"""

from __future__ import annotations

import torch

from _fixtures import make_tiny_backbone, sine_windows


class _FixedTargetTokenizer:
    """Deterministic test double for the Stage 1 tokenizer (loop-mechanics tests only).

    Temporal id: the patch's standard deviation bucketed into ``k_t`` bins; frequency id: the
    index of the patch's dominant rFFT bin modulo ``k_f``. Not a model of EEG: it only gives
    targets that depend on the unmasked signal, so the loop has something learnable.
    """

    def __init__(self, k_t: int = 16, k_f: int = 24, patch_size: int = 200) -> None:
        self.k_t, self.k_f, self.patch_size = k_t, k_f, patch_size

    def tokenize(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, t = x.shape
        p = t // self.patch_size
        patches = x[:, :, : p * self.patch_size].reshape(b, c, p, self.patch_size)
        std = patches.std(-1)
        ids_t = torch.clamp((std * self.k_t / 2.5).long(), 0, self.k_t - 1)
        spec = torch.fft.rfft(patches, dim=-1).abs()[..., 1:]
        ids_f = spec.argmax(-1) % self.k_f
        return ids_t, ids_f


def params_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def free_port() -> int:
    """An unused TCP port on localhost for a gloo rendezvous."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_worker(rank: int, world: int, port: int, out_dir: str, cfg_dict: dict, n: int) -> None:
    """One gloo rank of the DDP-equivalence test (run through ``torch.multiprocessing.spawn``).

    The process group is created by :func:`pretrain` from the torchrun-style environment.
    """
    import os

    from codebrain.training.pretrain import PretrainConfig, pretrain

    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    model = make_tiny_backbone(seed=0)
    result = pretrain(
        model,
        _FixedTargetTokenizer(),
        sine_windows(n),
        sine_windows(6, seed=1),
        PretrainConfig.from_dict(cfg_dict),
        out_dir,
    )
    torch.save(
        {"state": params_of(model), "val": result.val_metrics, "train": result.train_metrics},
        os.path.join(out_dir, f"rank{rank}.pt"),
    )
