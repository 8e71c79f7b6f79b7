"""The state of a fine-tuning run: model selection, and its checkpoints in a run folder.

:class:`_Best` keeps the best epoch on the validation set; :class:`_State` is what a
per-epoch checkpoint restores (with the optimizer, the schedule, every RNG and the batch
order), so that :func:`codebrain.training.finetune.finetune` resumed from it ends as the
uninterrupted run would. :func:`_fingerprint` is what a resumed run must share with its
checkpoint.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import DataLoader, Dataset

from codebrain.models.codebrain import CodeBrain
from codebrain.training.finetune_config import FinetuneConfig
from codebrain.training.run import RunFolder, model_config

logger = logging.getLogger("codebrain.training.finetune")

#: validation quantities where lower is better
_MINIMISE = ("loss", "rmse")


def _improved(value: float | None, best: float | None, key: str) -> bool:
    if value is None:
        return False
    if best is None:
        return True
    return value < best if key in _MINIMISE else value > best


@dataclass
class _Best:
    """Model selection on the validation set: the best epoch so far and its weights."""

    key: str
    epoch: int
    score: float | None = None
    state: dict[str, torch.Tensor] | None = None
    metrics: dict[str, Any] | None = None
    bad_epochs: int = 0

    def update(self, epoch: int, score: float | None, metrics: dict, trained: nn.Module) -> None:
        """Keep ``trained``'s weights when ``score`` improves on the best; else count a bad epoch."""
        if _improved(score, self.score, self.key):
            self.score, self.epoch, self.bad_epochs = score, epoch, 0
            self.state = copy.deepcopy(trained.state_dict())
            self.metrics = metrics
        else:
            self.bad_epochs += 1

    def to_state(self) -> dict[str, Any]:
        """Checkpoint entry (plain containers and tensors)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> _Best:
        """Inverse of :meth:`to_state`."""
        return cls(**state)


@dataclass
class _State:
    """Where a run stands after an epoch: what a checkpoint restores."""

    best: _Best
    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped: bool = False
    seconds: float = 0.0


#: settings that may change when a run is resumed (the rest must match the checkpoint)
_RESUMABLE_CHANGES = ("resume", "device", "num_workers", "progress", "keep_checkpoints")
#: settings added after the first run folders, with their defaults: left out of the
#: fingerprint at that default, so that checkpoints written before them still resume
_ADDED_FIELDS: dict[str, Any] = {"ema_decay": 0.0, "augment": False}
_NO_DEFAULT = object()


def _fingerprint(
    model: CodeBrain, train_ds: Dataset, val_ds: Dataset | None, cfg: FinetuneConfig
) -> dict[str, Any]:
    """What a resumed run must share with the checkpoint: settings, data sizes, model."""
    settings = {
        k: v
        for k, v in cfg.to_dict().items()
        if k not in _RESUMABLE_CHANGES and _ADDED_FIELDS.get(k, _NO_DEFAULT) != v
    }
    found = {
        "config": json.dumps(settings, sort_keys=True),
        "n_train": len(train_ds),
        "n_val": None if val_ds is None else len(val_ds),  # type: ignore[arg-type]
        "model": json.dumps(model_config(model), sort_keys=True),
    }
    if cfg.mode != "full":  # the frozen backbone is not in the checkpoint: it must be the same
        digest = hashlib.sha256()
        for name, t in model.state_dict().items():
            if not name.startswith("final_layer."):
                digest.update(name.encode())
                digest.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
        found["backbone weights"] = digest.hexdigest()
    return found


def _generators(loader: DataLoader) -> list[torch.Generator]:
    """The RNGs that order the batches (the loader's, and a balanced sampler's)."""
    gens = [loader.generator]
    sampler_gen = getattr(loader.sampler, "generator", None)
    if isinstance(sampler_gen, torch.Generator) and sampler_gen is not loader.generator:
        gens.append(sampler_gen)
    return [g for g in gens if g is not None]


def _write_checkpoint(
    run: RunFolder,
    state: _State,
    trained: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    loader: DataLoader,
    cfg: FinetuneConfig,
    fingerprint: dict[str, Any],
    ema: AveragedModel | None = None,
) -> None:
    extra = {
        "ema": None if ema is None else ema.state_dict(),
        "epoch": state.epoch,
        "history": state.history,
        "stopped": state.stopped,
        "seconds": state.seconds,
        "best": state.best.to_state(),
        "data_rng": [g.get_state() for g in _generators(loader)],
        "fingerprint": fingerprint,
    }
    run.write_checkpoint(
        state.epoch,
        keep=cfg.keep_checkpoints,
        model=trained,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=None,
        extra=extra,
    )


def _resume(
    path: Path,
    trained: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    loader: DataLoader,
    fingerprint: dict[str, Any],
    ema: AveragedModel | None = None,
) -> _State:
    """Restore a checkpoint of :func:`_write_checkpoint` (and ``ema``); refuse one of another run."""
    from codebrain.training.checkpointing import load_checkpoint

    extra = load_checkpoint(path, restore_rng=False)
    saved = extra.get("fingerprint")
    if not isinstance(saved, dict) or "best" not in extra:
        raise ValueError(f"{path} is not a checkpoint of codebrain finetune.")
    changed = [k for k, v in fingerprint.items() if saved.get(k) != v]
    if changed:
        raise ValueError(
            f"cannot resume from {path}: its run had other {', '.join(changed)} (the settings "
            "other than device/progress/workers, the data and the model must be the same); "
            "start a new run in another folder."
        )
    load_checkpoint(path, model=trained, optimizer=optimizer, scheduler=scheduler)
    for gen, saved_state in zip(_generators(loader), extra["data_rng"], strict=True):
        gen.set_state(saved_state)
    if ema is not None:  # the fingerprint (ema_decay in the settings) guarantees it was saved
        ema.load_state_dict(extra["ema"])
    logger.info("Resumed from %s (epoch %d).", path, extra["epoch"])
    return _State(
        best=_Best.from_state(extra["best"]),
        epoch=int(extra["epoch"]),
        history=list(extra["history"]),
        stopped=bool(extra["stopped"]),
        seconds=float(extra["seconds"]),
    )


def _metric_fields(cfg: FinetuneConfig) -> tuple[str, ...]:
    """CSV columns of ``metrics.csv`` (``metrics.jsonl`` holds every validation metric)."""
    val = ["val_loss", f"val_{cfg.monitor_key}"] if cfg.monitor_key != "loss" else ["val_loss"]
    return ("step", "epoch", "lr", "train_loss", *val)
