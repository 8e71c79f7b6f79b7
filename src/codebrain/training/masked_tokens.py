"""The masked-token objective of Stage 2 (CodeBrain, arXiv 2506.09110 §3.3).

Targets are the frozen Stage 1 tokenizer's temporal and frequency token ids of the *unmasked*
window; the backbone sees the masked window and predicts both ids at the masked positions with
``lm_head_t`` / ``lm_head_f`` (cross-entropy, summed over the two heads). This module holds the
objective and its evaluation; :mod:`codebrain.training.pretrain` is the training loop.

Shape legend: B = batch, C = EEG channels, T = samples, P = patches per channel,
K_t / K_f = temporal / frequency codebook sizes, N = masked positions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from codebrain.training._distributed import all_reduce_sum, rank, world_size
from codebrain.training._loop import IndexedWindows
from codebrain.training._steps import autocast_for
from codebrain.training.masking import DEFAULT_MASK_RATIO, sample_keyed_masks

__all__ = ["Tokenizer", "compute_token_targets", "evaluate_masked_tokens"]

_VAL_SEED_OFFSET = 0x5EED  # validation masks use their own stream, fixed across the run


@runtime_checkable
class Tokenizer(Protocol):
    """What pretraining needs from a Stage 1 tokenizer.

    ``tokenize(x)`` maps windows ``(B, C, T)`` to temporal and frequency token ids, each a long
    tensor ``(B, C, P)``. :class:`codebrain.models.tokenizer.TFDualTokenizer` implements it.
    """

    def tokenize(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids ``(ids_t, ids_f)``, each ``(B, C, P)`` long."""
        ...


class _ShardIndices(torch.utils.data.Sampler):
    """Exact, unpadded shard ``range(rank, n, world)`` (validation: no duplicated windows)."""

    def __init__(self, n: int, rank: int, world: int) -> None:
        self.indices = list(range(rank, n, world))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


@torch.no_grad()
def compute_token_targets(
    tokenizer: Tokenizer, x: torch.Tensor, n_patches: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stage 1 token ids of unmasked windows, from the frozen tokenizer.

    Runs under ``no_grad`` with autocast disabled (float32), with an ``nn.Module`` tokenizer in
    eval mode (its previous mode is restored).

    Parameters
    ----------
    tokenizer : Tokenizer
        Anything with ``tokenize(x) -> (ids_t, ids_f)``.
    x : torch.Tensor, shape (B, C, T)
        The *unmasked* windows.
    n_patches : int, optional
        Expected ``P``; a mismatch raises ``ValueError``.

    Returns
    -------
    ids_t, ids_f : torch.Tensor of int64, shape (B, C, P)
    """
    was_training = isinstance(tokenizer, nn.Module) and tokenizer.training
    if isinstance(tokenizer, nn.Module):
        tokenizer.eval()
    try:
        with torch.autocast(device_type=x.device.type, enabled=False):
            ids_t, ids_f = tokenizer.tokenize(x.float())
    finally:
        if was_training:
            tokenizer.train()
    b, c = x.shape[:2]
    for name, ids in (("ids_t", ids_t), ("ids_f", ids_f)):
        if ids.ndim != 3 or tuple(ids.shape[:2]) != (b, c):
            raise ValueError(
                f"tokenizer returned {name} of shape {tuple(ids.shape)}; expected (B, C, P) "
                f"with B={b}, C={c}."
            )
        if n_patches is not None and ids.shape[2] != n_patches:
            raise ValueError(
                f"tokenizer gives {ids.shape[2]} patches per channel but the model cuts "
                f"{n_patches}; the two must use the same patch_size."
            )
    return ids_t.long(), ids_f.long()


class MaskedTokenModule(nn.Module):
    """Training view of a :class:`~codebrain.CodeBrain`: masked windows -> masked-position logits.

    Wrapping (instead of calling ``CodeBrain.forward``) gives DDP one forward with one return
    type, independent of the model's ``pretrain_mode`` flag.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, C, T), (B, C, P) -> (N, K_t), (N, K_f)``."""
        feats = self.model.encode(x, mask=mask)  # (B, C, P, D)
        sel = feats[mask]  # (N, D)
        return self.model.lm_head_t(sel), self.model.lm_head_f(sel)


def head_sums(
    logits_t: torch.Tensor, logits_f: torch.Tensor, tgt_t: torch.Tensor, tgt_f: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Summed cross-entropies and correct counts of both heads (float32)."""
    ce_t = F.cross_entropy(logits_t.float(), tgt_t, reduction="sum")
    ce_f = F.cross_entropy(logits_f.float(), tgt_f, reduction="sum")
    hit_t = (logits_t.argmax(-1) == tgt_t).sum()
    hit_f = (logits_f.argmax(-1) == tgt_f).sum()
    return ce_t, ce_f, hit_t, hit_f


def metrics_from_sums(s: torch.Tensor) -> dict[str, float]:
    """``[ce_t, ce_f, hit_t, hit_f, n]`` sums -> mean losses and accuracies."""
    ce_t, ce_f, hit_t, hit_f, n = (float(v) for v in s.tolist())
    n = max(n, 1.0)
    return {
        "loss": (ce_t + ce_f) / n,
        "loss_t": ce_t / n,
        "loss_f": ce_f / n,
        "acc_t": hit_t / n,
        "acc_f": hit_f / n,
        "n_masked": int(s[4].item()),
    }


@torch.no_grad()
def evaluate_masked_tokens(
    model: nn.Module,
    tokenizer: Tokenizer,
    dataset: Dataset,
    *,
    batch_size: int = 32,
    mask_ratio: float = DEFAULT_MASK_RATIO,
    mask_strategy: str = "random",
    mask_block_size: int = 1,
    seed: int = 0,
    max_batches: int | None = None,
    precision: str = "fp32",
    device: torch.device | str | None = None,
    num_workers: int = 0,
) -> dict[str, float]:
    """Masked-token loss and accuracy of both heads on a held-out set.

    Masks are keyed by ``(seed + offset, epoch 0, index)``, so repeated evaluations see the
    same masks. Under an initialised process group each rank evaluates its exact shard
    ``range(rank, N, world)`` and the sums are all-reduced (every rank gets the same numbers).

    Parameters
    ----------
    model : CodeBrain
        Backbone with ``encode`` and ``lm_head_t``/``lm_head_f`` (DDP-wrapped is fine).
    tokenizer : Tokenizer
    dataset : Dataset
        Items: tensor ``(C, T)`` or tuple whose first element is one.
    batch_size, mask_ratio, mask_strategy, mask_block_size, seed, max_batches, precision
        See :class:`PretrainConfig`.
    device : torch.device or str, optional
        Default: the model's device.
    num_workers : int
        DataLoader workers.

    Returns
    -------
    dict
        ``loss`` (sum of both heads' mean CE), ``loss_t``, ``loss_f``, ``acc_t``, ``acc_f``,
        ``n_masked``.
    """
    from codebrain.training.checkpointing import unwrap_model

    net = unwrap_model(model)
    dev = torch.device(device) if device is not None else next(net.parameters()).device
    ctx_rank, ctx_world = rank(), world_size()
    loader = DataLoader(
        IndexedWindows(dataset),
        batch_size=batch_size,
        sampler=_ShardIndices(len(dataset), ctx_rank, ctx_world),  # type: ignore[arg-type]
        num_workers=num_workers,
    )
    was_training = net.training
    net.eval()
    sums = torch.zeros(5, dtype=torch.float64, device=dev)
    try:
        for bi, (idx, x) in enumerate(loader):
            if max_batches is not None and bi >= max_batches:
                break
            x = x.to(dev)
            p = x.shape[-1] // net.patch_size
            mask = sample_keyed_masks(
                idx,
                x.shape[1],
                p,
                mask_ratio,
                seed=seed + _VAL_SEED_OFFSET,
                epoch=0,
                strategy=mask_strategy,  # type: ignore[arg-type]
                block_size=mask_block_size,
                device=dev,
            )
            ids_t, ids_f = compute_token_targets(tokenizer, x, p)
            with autocast_for(dev, precision):
                lt, lf = MaskedTokenModule(net)(x, mask)
            ce_t, ce_f, ht, hf = head_sums(lt, lf, ids_t[mask], ids_f[mask])
            sums += torch.stack([ce_t, ce_f, ht, hf, mask.sum()]).to(sums)
    finally:
        net.train(was_training)
    all_reduce_sum(sums)
    return metrics_from_sums(sums)


def check_vocab(targets: list[tuple[torch.Tensor, torch.Tensor]], model: nn.Module) -> None:
    """Token ids must index the model's heads (checked once; it syncs the device)."""
    for head, k, pos in (
        ("temporal", model.lm_head_t.out_features, 0),
        ("frequency", model.lm_head_f.out_features, 1),
    ):
        hi = max(int(t[pos].max()) for t in targets)
        lo = min(int(t[pos].min()) for t in targets)
        if lo < 0 or hi >= k:
            raise ValueError(
                f"The tokenizer's {head} ids span [{lo}, {hi}] but the model's {head} head has "
                f"{k} classes; build the model with codebook_size_{'t' if pos == 0 else 'f'} "
                f"equal to the tokenizer's codebook size."
            )
