"""Patch masking for masked-token pretraining (CodeBrain Stage 2, arXiv 2506.09110 §3.3).

CodeBrain trains the EEGSSM backbone BEiT/LaBraM-style: a subset of the ``(channel, patch)``
positions is replaced by the model's mask encoding and the model predicts, at those positions,
the temporal and frequency token ids the frozen TFDual-Tokenizer assigns to the *unmasked*
signal. The ratio 0.5 (``DEFAULT_MASK_RATIO``) is the default of the authors'
``Pretrain/pretrain_EEGSSM.py``. Their ``generate_mask`` masks each (channel, patch) position
independently with probability 0.5 (strategy ``"bernoulli"``, the ``paper`` recipe), so the
number of masked positions varies between samples and can be zero; codebrain's default
``"random"`` masks a fixed count per sample instead.

Four strategies are offered:

``"bernoulli"``
    Each position is masked independently with probability ``ratio`` (the authors').

``"random"``
    Each sample masks exactly ``max(1, round(ratio * C * P))`` positions chosen uniformly
    (a fixed count per sample, as in BEiT/LaBraM, so every sample has the same weight).
``"channel_block"``
    Whole channels: ``max(1, round(ratio * C))`` channels are masked at every patch.
``"time_block"``
    Whole time spans across all channels: contiguous runs of ``block_size`` patches are masked
    until ``max(1, round(ratio * P))`` patch columns are covered.

Every sample gets at least one masked position, except under ``"bernoulli"``. All randomness comes from an explicit
:class:`torch.Generator`; :func:`sample_keyed_masks` derives one generator per *global sample
index* (and epoch and seed), so the masks do not depend on the batch size, on how a batch is
split across gradient-accumulation steps, or on the number of distributed processes.

Shape legend: B = batch, C = EEG channels, P = patches per channel.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from codebrain.utils.check import check_int, check_number, check_option

__all__ = [
    "DEFAULT_MASK_RATIO",
    "MASK_STRATEGIES",
    "MaskStrategy",
    "n_masked_per_sample",
    "random_patch_mask",
    "sample_keyed_masks",
]

logger = logging.getLogger(__name__)

MaskStrategy = Literal["random", "channel_block", "time_block", "bernoulli"]
MASK_STRATEGIES: tuple[str, ...] = ("random", "channel_block", "time_block", "bernoulli")

DEFAULT_MASK_RATIO: float = 0.5
"""Fraction of patches masked per sample (the default of the authors' pretraining script)."""


def _check_mask_args(
    n_chans: int, n_patches: int, mask_ratio: float, strategy: str, block_size: int
) -> None:
    for name, v in (("n_chans", n_chans), ("n_patches", n_patches), ("block_size", block_size)):
        check_int(name, v, allow_numpy=True)
    check_number("mask_ratio", mask_ratio, greater=0, maximum=1)
    check_option("strategy", strategy, MASK_STRATEGIES)


def n_masked_per_sample(
    n_chans: int,
    n_patches: int,
    mask_ratio: float = DEFAULT_MASK_RATIO,
    strategy: MaskStrategy = "random",
) -> int:
    """Number of masked ``(channel, patch)`` positions in each sample.

    Parameters
    ----------
    n_chans, n_patches : int
        Sample layout ``(C, P)``.
    mask_ratio : float
        Fraction in ``(0, 1]``.
    strategy : {"random", "channel_block", "time_block"}

    Returns
    -------
    int
        ``round(ratio * C * P)``, ``round(ratio * C) * P`` or ``C * round(ratio * P)``
        (each count at least one unit).
    """
    _check_mask_args(n_chans, n_patches, mask_ratio, strategy, 1)
    if strategy == "bernoulli":
        raise ValueError(
            "strategy 'bernoulli' masks a random number of positions per sample (expected "
            f"{mask_ratio * n_chans * n_patches:g}); there is no fixed count."
        )
    if strategy == "random":
        return max(1, round(mask_ratio * n_chans * n_patches))
    if strategy == "channel_block":
        return max(1, round(mask_ratio * n_chans)) * n_patches
    return n_chans * max(1, round(mask_ratio * n_patches))


def _one_mask(
    n_chans: int,
    n_patches: int,
    mask_ratio: float,
    strategy: str,
    block_size: int,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """One sample's mask ``(C, P)`` on the CPU."""
    if strategy == "bernoulli":
        draw = torch.rand(n_chans, n_patches, generator=generator)
        return draw < mask_ratio
    if strategy == "random":
        n = max(1, round(mask_ratio * n_chans * n_patches))
        order = torch.randperm(n_chans * n_patches, generator=generator)
        flat = torch.zeros(n_chans * n_patches, dtype=torch.bool)
        flat[order[:n]] = True
        return flat.view(n_chans, n_patches)
    mask = torch.zeros(n_chans, n_patches, dtype=torch.bool)
    if strategy == "channel_block":
        n = max(1, round(mask_ratio * n_chans))
        mask[torch.randperm(n_chans, generator=generator)[:n]] = True
        return mask
    # time_block: contiguous runs of ``block_size`` patch columns, all channels.
    target = max(1, round(mask_ratio * n_patches))
    cols = torch.zeros(n_patches, dtype=torch.bool)
    size = min(block_size, n_patches)
    n_starts = n_patches - size + 1
    # Visit block starts in random order; stop as soon as the target coverage is reached and
    # trim the last block so the count is exact.
    for start in torch.randperm(n_starts, generator=generator).tolist():
        free = (~cols[start : start + size]).nonzero().flatten() + start
        need = target - int(cols.sum())
        cols[free[:need]] = True
        if int(cols.sum()) >= target:
            break
    if int(cols.sum()) < target:  # blocks overlapped: fill the rest at random positions
        free = (~cols).nonzero().flatten()
        pick = free[torch.randperm(len(free), generator=generator)[: target - int(cols.sum())]]
        cols[pick] = True
    mask[:, cols] = True
    return mask


def random_patch_mask(
    batch_size: int,
    n_chans: int,
    n_patches: int,
    mask_ratio: float = DEFAULT_MASK_RATIO,
    *,
    strategy: MaskStrategy = "random",
    block_size: int = 1,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Sample a boolean patch mask for a batch.

    Parameters
    ----------
    batch_size, n_chans, n_patches : int
        Output shape ``(B, C, P)``.
    mask_ratio : float
        Fraction of positions (``"random"``), channels (``"channel_block"``) or patch columns
        (``"time_block"``) to mask, in ``(0, 1]``; default 0.5.
    strategy : {"random", "channel_block", "time_block"}
        See the module docstring.
    block_size : int
        Length in patches of each run for ``"time_block"`` (ignored otherwise).
    generator : torch.Generator, optional
        CPU generator; the same generator state gives the same mask.
    device : torch.device or str, optional
        Device of the returned tensor (the mask is drawn on the CPU).

    Returns
    -------
    torch.Tensor of bool, shape (B, C, P)
        ``True`` marks a masked patch; every sample has at least one.
    """
    _check_mask_args(n_chans, n_patches, mask_ratio, strategy, block_size)
    check_int("batch_size", batch_size, minimum=0)
    masks = [
        _one_mask(n_chans, n_patches, float(mask_ratio), strategy, block_size, generator)
        for _ in range(batch_size)
    ]
    out = torch.stack(masks) if masks else torch.zeros(0, n_chans, n_patches, dtype=torch.bool)
    return out.to(device) if device is not None else out


def _sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed mixing ``(seed, epoch, index)`` (NumPy's SeedSequence hashing)."""
    words = np.random.SeedSequence([int(seed), int(epoch), int(index)]).generate_state(2)
    return int((int(words[0]) << 32 | int(words[1])) & 0x7FFF_FFFF_FFFF_FFFF)


def sample_keyed_masks(
    indices: Sequence[int] | torch.Tensor,
    n_chans: int,
    n_patches: int,
    mask_ratio: float = DEFAULT_MASK_RATIO,
    *,
    seed: int = 0,
    epoch: int = 0,
    strategy: MaskStrategy = "random",
    block_size: int = 1,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Masks defined per global sample: sample ``i`` in ``epoch`` always gets the same mask.

    This is what makes pretraining reproducible across batch sizes, gradient accumulation and
    any number of distributed processes: a sample's mask depends only on
    ``(seed, epoch, index)``, never on which rank or micro-batch it lands in.

    Parameters
    ----------
    indices : sequence of int or torch.Tensor, shape (B,)
        Global dataset indices of the samples in the batch.
    n_chans, n_patches : int
        Sample layout ``(C, P)``.
    mask_ratio, strategy, block_size
        As in :func:`random_patch_mask`.
    seed : int
        Run seed.
    epoch : int
        Epoch number (a sample is masked differently in every epoch).
    device : torch.device or str, optional
        Device of the returned tensor.

    Returns
    -------
    torch.Tensor of bool, shape (B, C, P)
    """
    _check_mask_args(n_chans, n_patches, mask_ratio, strategy, block_size)
    if isinstance(indices, torch.Tensor):
        indices = indices.tolist()
    gen = torch.Generator()
    masks = []
    for idx in indices:
        gen.manual_seed(_sample_seed(seed, epoch, idx))
        masks.append(_one_mask(n_chans, n_patches, float(mask_ratio), strategy, block_size, gen))
    out = torch.stack(masks) if masks else torch.zeros(0, n_chans, n_patches, dtype=torch.bool)
    return out.to(device) if device is not None else out
