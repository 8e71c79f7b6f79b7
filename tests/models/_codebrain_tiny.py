"""Tiny CodeBrain configurations shared by the model tests."""

from __future__ import annotations

TINY = dict(
    n_outputs=3,
    n_chans=3,
    n_times=400,
    res_channels=16,
    skip_channels=12,
    out_channels=8,
    num_res_layers=2,
    codebook_size_t=16,
    codebook_size_f=24,
)


def tiny(**overrides):
    """TINY with overrides applied."""
    cfg = dict(TINY)
    cfg.update(overrides)
    return cfg
