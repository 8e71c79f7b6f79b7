"""Shared pieces of the pretraining tests: tiny configs, data, a deterministic tokenizer double."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from codebrain import CodeBrain

TINY_BACKBONE = dict(
    n_outputs=2,
    n_chans=3,
    n_times=600,
    res_channels=16,
    skip_channels=12,
    out_channels=8,
    num_res_layers=1,
    codebook_size_t=16,
    codebook_size_f=24,
)


def tiny_backbone(seed: int = 0, dropout: bool = False, **overrides) -> CodeBrain:
    """A tiny CodeBrain with fixed initial weights (dropout off unless asked)."""
    cfg = dict(TINY_BACKBONE)
    if not dropout:
        cfg.update(drop_prob=0.0, spectral_dropout=0.0)
    cfg.update(overrides)
    torch.manual_seed(seed)
    return CodeBrain(**cfg)


class WindowsDataset(Dataset):
    """Map-style windows ``(C, T)`` with structure the tokenizer double can see.

    ``with_labels`` makes items ``(x, y)`` tuples like ``WindowDataset``.
    """

    def __init__(
        self,
        n: int = 24,
        n_chans: int = 3,
        n_times: int = 600,
        seed: int = 0,
        with_labels: bool = False,
    ) -> None:
        g = torch.Generator().manual_seed(seed)
        t = torch.arange(n_times, dtype=torch.float32) / 200.0
        freqs = torch.randint(2, 30, (n, n_chans, 1), generator=g).float()
        amps = torch.rand(n, n_chans, 1, generator=g) * 2 + 0.2
        self.x = amps * torch.sin(2 * torch.pi * freqs * t) + 0.3 * torch.randn(
            n, n_chans, n_times, generator=g
        )
        self.y = (freqs[:, 0, 0] > 15).long()
        self.with_labels = with_labels

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return (self.x[i], self.y[i]) if self.with_labels else self.x[i]


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


def tiny_tokenizer(seed: int = 0, n_chans: int = 3, n_patches: int = 3):
    """A tiny, randomly initialised real TFDual-Tokenizer matching :data:`TINY_BACKBONE`."""
    from codebrain.models.tokenizer import TFDualTokenizer, TokenizerConfig

    torch.manual_seed(seed)
    cfg = TokenizerConfig(
        max_chans=n_chans,
        max_patches=n_patches,
        embed_dim=50,  # TFConv width for 200-sample patches and 2 conv channels
        conv_channels=2,
        depth=1,
        num_heads=2,
        decoder_depth=1,
        codebook_size_t=TINY_BACKBONE["codebook_size_t"],
        codebook_size_f=TINY_BACKBONE["codebook_size_f"],
        code_dim=8,
    )
    return TFDualTokenizer(cfg).eval()


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
    model = tiny_backbone(seed=0)
    result = pretrain(
        model,
        _FixedTargetTokenizer(),
        WindowsDataset(n),
        WindowsDataset(6, seed=1),
        PretrainConfig.from_dict(cfg_dict),
        out_dir,
    )
    torch.save(
        {"state": params_of(model), "val": result.val_metrics, "train": result.train_metrics},
        os.path.join(out_dir, f"rank{rank}.pt"),
    )
