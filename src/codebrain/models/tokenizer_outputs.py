"""What the TFDual-Tokenizer returns: targets, loss terms and the forward output."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch

__all__ = ["TokenizerLosses", "TokenizerOutput", "TokenizerTargets"]


@dataclass
class TokenizerTargets:
    """Reconstruction targets.

    Attributes
    ----------
    time : torch.Tensor, shape (B, C, P, S)
        The input patches (float32).
    amp : torch.Tensor, shape (B, C, P, S)
        ``|fft(patch)|``, z-scored per sample over C × P × S.
    phase : torch.Tensor, shape (B, C, P, S)
        ``angle(fft(patch))``, z-scored per sample over C × P × S.
    """

    time: torch.Tensor
    amp: torch.Tensor
    phase: torch.Tensor


@dataclass
class TokenizerLosses:
    """Every term of the tokenizer loss (unweighted scalars).

    Attributes
    ----------
    time, amp, phase : torch.Tensor
        MSE of the temporal, amplitude and phase reconstructions.
    commit_t, commit_f : torch.Tensor
        Commitment losses of the two codebooks.
    contrastive : torch.Tensor
        NT-Xent between the two halves of each window (0 without gradients or with P < 2).
    """

    time: torch.Tensor
    amp: torch.Tensor
    phase: torch.Tensor
    commit_t: torch.Tensor
    commit_f: torch.Tensor
    contrastive: torch.Tensor

    def as_dict(self) -> dict[str, torch.Tensor]:
        """``{name: scalar tensor}``."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class TokenizerOutput:
    """Result of :meth:`codebrain.models.tokenizer.TFDualTokenizer.forward`.

    Attributes
    ----------
    ids_t, ids_f : torch.Tensor of int64, shape (B, C, P)
        Temporal and frequency token ids.
    recon_time : torch.Tensor, shape (B, C, P, S)
    recon_amp : torch.Tensor, shape (B, C, P, S)
    recon_phase : torch.Tensor, shape (B, C, P, S)
        Predictions in the units of the targets (amplitude and phase z-scored).
    targets : TokenizerTargets
    loss : torch.Tensor, scalar
        Weighted total.
    losses : TokenizerLosses
        Every unweighted term.
    counts_t, counts_f : torch.Tensor, shape (K,)
        Code usage counts of this batch.
    """

    ids_t: torch.Tensor
    ids_f: torch.Tensor
    recon_time: torch.Tensor
    recon_amp: torch.Tensor
    recon_phase: torch.Tensor
    targets: TokenizerTargets
    loss: torch.Tensor
    losses: TokenizerLosses
    counts_t: torch.Tensor = field(repr=False)
    counts_f: torch.Tensor = field(repr=False)
