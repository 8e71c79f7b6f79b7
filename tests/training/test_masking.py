"""Patch masking: counts, structure, determinism, per-sample keying."""

from __future__ import annotations

import pytest
import torch

from codebrain.training.masking import (
    DEFAULT_MASK_RATIO,
    n_masked_per_sample,
    random_patch_mask,
    sample_keyed_masks,
)


def test_default_ratio_is_half():
    assert DEFAULT_MASK_RATIO == 0.5


@pytest.mark.parametrize("ratio", [0.01, 0.3, 0.5, 0.75, 1.0])
def test_random_mask_has_exact_count_and_at_least_one(ratio):
    g = torch.Generator().manual_seed(0)
    m = random_patch_mask(8, 3, 5, ratio, generator=g)
    assert m.shape == (8, 3, 5) and m.dtype == torch.bool
    expected = max(1, round(ratio * 15))
    assert (m.flatten(1).sum(1) == expected).all()
    assert expected == n_masked_per_sample(3, 5, ratio)


def test_random_mask_varies_between_samples_and_is_uniform():
    g = torch.Generator().manual_seed(1)
    m = random_patch_mask(4000, 4, 5, 0.5, generator=g)
    assert len({tuple(x.flatten().tolist()) for x in m[:50]}) > 40
    freq = m.float().mean(0)  # every position masked about half of the time
    assert (freq - 0.5).abs().max() < 0.05


def test_generator_determinism():
    a = random_patch_mask(6, 3, 7, generator=torch.Generator().manual_seed(5))
    b = random_patch_mask(6, 3, 7, generator=torch.Generator().manual_seed(5))
    c = random_patch_mask(6, 3, 7, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_channel_block_masks_whole_channels():
    m = random_patch_mask(10, 6, 4, 0.5, strategy="channel_block", generator=torch.Generator())
    per_chan = m.sum(-1)  # (B, C): 0 or P
    assert ((per_chan == 0) | (per_chan == 4)).all()
    assert ((per_chan == 4).sum(-1) == 3).all()
    assert n_masked_per_sample(6, 4, 0.5, "channel_block") == 12


@pytest.mark.parametrize("block_size", [1, 2, 3, 10])
def test_time_block_masks_columns_across_channels(block_size):
    g = torch.Generator().manual_seed(2)
    m = random_patch_mask(20, 3, 9, 0.5, strategy="time_block", block_size=block_size, generator=g)
    cols = m.all(1)  # (B, P)
    assert torch.equal(m, cols.unsqueeze(1).expand_as(m))  # whole columns only
    assert (cols.sum(-1) == round(0.5 * 9)).all()  # exact coverage
    if block_size == 3:  # runs are contiguous: fewer boundaries than scattered columns
        starts = (cols[:, 1:] & ~cols[:, :-1]).sum(-1) + cols[:, 0]
        assert starts.float().mean() <= 2.5


def test_tiny_ratio_still_masks_one_patch():
    for strategy in ("random", "channel_block", "time_block"):
        m = random_patch_mask(5, 2, 2, 0.01, strategy=strategy, generator=torch.Generator())
        assert (m.flatten(1).sum(1) >= 1).all()


def test_sample_keyed_masks_depend_only_on_seed_epoch_index():
    full = sample_keyed_masks(list(range(8)), 3, 4, seed=1, epoch=2)
    # Any split / order of the indices gives each sample the same mask.
    part = sample_keyed_masks(torch.tensor([5, 0, 3]), 3, 4, seed=1, epoch=2)
    assert torch.equal(part, full[[5, 0, 3]])
    assert not torch.equal(sample_keyed_masks(range(8), 3, 4, seed=1, epoch=3), full)
    assert not torch.equal(sample_keyed_masks(range(8), 3, 4, seed=2, epoch=2), full)
    assert len({tuple(x.flatten().tolist()) for x in full}) > 4  # samples differ
    assert sample_keyed_masks([], 3, 4).shape == (0, 3, 4)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(mask_ratio=0.0), "mask_ratio"),
        (dict(mask_ratio=1.5), "mask_ratio"),
        (dict(strategy="blocks"), "strategy"),
        (dict(n_chans=0), "n_chans"),
        (dict(block_size=0), "block_size"),
    ],
)
def test_invalid_arguments(kwargs, match):
    args = dict(batch_size=2, n_chans=3, n_patches=4, mask_ratio=0.5)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        random_patch_mask(**args)
