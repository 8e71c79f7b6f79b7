"""Contrastive loss between two views of a batch (NT-Xent, as the CodeBrain authors wrote it)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["nt_xent"]


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """The authors' NT-Xent loss between two views (cosine similarity, float32).

    Row ``i`` of ``z1`` and row ``i`` of ``z2`` are a positive pair; every other row of
    either view is a negative. For each of the ``2B`` anchors the logits are the positive's
    similarity followed by the similarities to all ``2B - 1`` other rows, scaled by
    ``1 / temperature``, and the loss is the mean cross-entropy of the first logit.

    Notes
    -----
    The ``2B - 1`` "others" include the positive itself, so it enters the softmax
    denominator twice. That is what the authors' ``NTXentLoss`` computes (its mask of
    negatives is built with ``torch.roll`` by ``+B`` and ``-B``, which coincide on ``2B``
    columns, and ``1 - 2 = -1`` casts to ``True``); it is reproduced so that the released
    training objective is the one optimised here.

    Parameters
    ----------
    z1, z2 : torch.Tensor, shape (B, ...)
        Flattened per sample.
    temperature : float

    Returns
    -------
    torch.Tensor, scalar
    """
    b = z1.shape[0]
    with torch.autocast(device_type=z1.device.type, enabled=False):
        reps = F.normalize(torch.cat([z2.reshape(b, -1), z1.reshape(b, -1)]).float(), dim=-1)
        sim = reps @ reps.t() / temperature  # (2B, 2B)
        n = 2 * b
        partner = (torch.arange(n, device=sim.device) + b) % n
        positive = sim[torch.arange(n, device=sim.device), partner]  # (2B,)
        others = sim.masked_fill(torch.eye(n, dtype=torch.bool, device=sim.device), float("-inf"))
        logits = torch.cat([positive[:, None], others], dim=1)  # (2B, 1 + 2B)
        return F.cross_entropy(logits, torch.zeros(n, dtype=torch.long, device=sim.device))
