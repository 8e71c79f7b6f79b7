"""Probe-headed CodeBrain models: feature pooling, :class:`LinearProbe`, :class:`ProbedCodeBrain`.

A linear probe is one ``Linear`` on pooled backbone features; :class:`ProbedCodeBrain` pairs it
with a frozen :class:`~codebrain.CodeBrain` and saves/loads as a ``save_pretrained`` folder of the
backbone plus ``linear_probe.safetensors`` and ``linear_probe.json``. :func:`load_finetuned`
loads either kind of fine-tuned folder. Trained by :func:`codebrain.training.finetune.finetune`
(``mode="linear"``).

Shape legend: B = batch, C = channels, P = patches, D = feature width.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from codebrain.models.codebrain import CodeBrain
from codebrain.utils.check import check_option
from codebrain.utils.io import atomic_path, atomic_write_json
from codebrain.utils.run_layout import run_final_dir

__all__ = [
    "PROBE_CONFIG",
    "PROBE_WEIGHTS",
    "LinearProbe",
    "Pooling",
    "ProbedCodeBrain",
    "load_finetuned",
    "pool_features",
    "pooled_dim",
]

Pooling = Literal["mean_patches", "mean", "flatten"]
PROBE_WEIGHTS = "linear_probe.safetensors"
PROBE_CONFIG = "linear_probe.json"


def pool_features(features: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    """Pool per-patch features for a linear probe.

    Parameters
    ----------
    features : torch.Tensor, shape (B, C, P, D)
    pooling : {"mean_patches", "mean", "flatten"}

    Returns
    -------
    torch.Tensor
        ``(B, C·D)``, ``(B, D)`` or ``(B, C·P·D)``.
    """
    if features.ndim != 4:
        raise ValueError(f"features must have shape (B, C, P, D), got {tuple(features.shape)}.")
    if pooling == "mean_patches":
        return features.mean(dim=2).flatten(1)
    if pooling == "mean":
        return features.mean(dim=(1, 2))
    check_option("pooling", pooling, ("mean_patches", "mean", "flatten"))
    return features.flatten(1)


def pooled_dim(model: CodeBrain, pooling: Pooling) -> int:
    """Length of the feature vector that :func:`pool_features` gives for ``model``.

    Parameters
    ----------
    model : CodeBrain
    pooling : {"mean_patches", "mean", "flatten"}

    Returns
    -------
    int
        ``C·D``, ``D`` or ``C·P·D``.
    """
    c, p, d = model.n_chans, model.n_patches, model.out_channels
    return {"mean_patches": c * d, "mean": d, "flatten": c * p * d}[pooling]


class LinearProbe(nn.Module):
    """One ``Linear`` on pooled CodeBrain features.

    Parameters
    ----------
    in_features : int
        Size of the pooled feature vector (see :func:`pool_features`).
    n_outputs : int
    pooling : {"mean_patches", "mean", "flatten"}
    """

    def __init__(self, in_features: int, n_outputs: int, pooling: Pooling = "mean_patches"):
        super().__init__()
        check_option("pooling", pooling, ("mean_patches", "mean", "flatten"))
        self.pooling = pooling
        self.linear = nn.Linear(in_features, n_outputs)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """``(B, in_features) -> (B, n_outputs)`` on already pooled features."""
        return self.linear(pooled)

    def config(self) -> dict[str, Any]:
        """JSON-able constructor arguments."""
        return {
            "in_features": self.linear.in_features,
            "n_outputs": self.linear.out_features,
            "pooling": self.pooling,
        }


class ProbedCodeBrain(nn.Module):
    """A CodeBrain backbone with a :class:`LinearProbe` as its classifier.

    ``classify``/``forward`` ignore ``backbone.final_layer``. Saved as a ``save_pretrained``
    folder of the backbone plus ``linear_probe.safetensors`` and ``linear_probe.json``.

    Parameters
    ----------
    backbone : CodeBrain
    probe : LinearProbe
    """

    def __init__(self, backbone: CodeBrain, probe: LinearProbe) -> None:
        super().__init__()
        self.backbone = backbone
        self.probe = probe

    n_chans = property(lambda self: self.backbone.n_chans)
    n_times = property(lambda self: self.backbone.n_times)
    n_outputs = property(lambda self: self.probe.linear.out_features)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T) -> (B, C, P, D)`` backbone features."""
        return self.backbone.encode(x)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T) -> (B, n_outputs)``."""
        return self.probe(pool_features(self.backbone.encode(x), self.probe.pooling))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`classify`."""
        return self.classify(x)

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write the probe files, then the backbone's ``config.json`` + weights."""
        from safetensors.torch import save_file

        save_directory = Path(save_directory)
        save_directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.probe.state_dict().items()}
        with atomic_path(save_directory / PROBE_WEIGHTS) as tmp:
            save_file(state, tmp)
        atomic_write_json(save_directory / PROBE_CONFIG, self.probe.config())
        return self.backbone.save_pretrained(save_directory)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike) -> ProbedCodeBrain:
        """Load a folder written by :meth:`save_pretrained`."""
        from safetensors.torch import load_file

        path = Path(path)
        try:
            cfg = json.loads((path / PROBE_CONFIG).read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path / PROBE_CONFIG} is not valid JSON: {err}") from err
        probe = LinearProbe(**cfg)
        probe.load_state_dict(load_file(path / PROBE_WEIGHTS))
        return cls(CodeBrain.from_pretrained(path), probe)


def load_finetuned(path: str | os.PathLike) -> CodeBrain | ProbedCodeBrain:
    """Load a fine-tuned model folder.

    A :class:`ProbedCodeBrain` if it holds a linear probe, else a :class:`~codebrain.CodeBrain`.
    ``path`` may be a run folder (``codebrain finetune -o OUT``, :func:`finetune` with
    ``out_dir``): its ``final/`` is loaded.

    Raises
    ------
    FileNotFoundError
        ``path`` is not a folder with a ``config.json``, or a run folder whose run has not
        finished.
    """
    path = Path(path)
    if path.is_dir():
        path = run_final_dir(path) or path  # a run folder (``codebrain finetune -o``): final/
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"{str(path)!r} is not a model folder (no config.json); expected the output of "
            "'codebrain finetune' or save_pretrained()."
        )
    if (path / PROBE_CONFIG).is_file():
        return ProbedCodeBrain.from_pretrained(path)
    return CodeBrain.from_pretrained(path)
