"""Run a benchmark: one task, several models, several seeds, one split, one budget.

:func:`run_benchmark` finds the recordings of a local copy of the dataset (the recipe's
``find``), resolves the split (the authors' when their subjects are all present, else a
deterministic subject-wise fallback), loads the windows of the split's subjects (the recipe's
``load``), then trains every model on every seed on the same windows and epoch budget,
selects the epoch on validation (the recipe's selection metric) and scores the test subjects
at that epoch. :func:`write_results` writes ``results.json``, ``results.md`` and
``results.png``.

Shape legend: ``n`` windows, ``C`` channels, ``T`` samples.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from codebrain.benchmark.hooks import Recording, TaskWindows
from codebrain.benchmark.models import (
    MODEL_NAMES,
    PEERS,
    SCRATCH_INPUT_GAIN,
    SequenceModel,
    build_codebrain,
    build_peer,
    codebrain_training_settings,
    count_parameters,
    peer_settings,
    settings_from_finetune_config,
)
from codebrain.benchmark.pretrain_on_train import PretrainOnTrain, _pretrain_on_train
from codebrain.benchmark.recipe import TaskRecipe
from codebrain.benchmark.registry import get_recipe
from codebrain.benchmark.split import Split, resolve_split
from codebrain.benchmark.train import (
    FitResult,
    epoch_windows,
    fit_codebrain,
    fit_logbandpower,
    fit_torch,
)
from codebrain.training.augment import WindowAugment
from codebrain.utils.check import check_int, check_type

__all__ = [
    "DEFAULT_MODELS",
    "PretrainOnTrain",
    "load_split_windows",
    "run_benchmark",
    "parse_models",
    "parse_seeds",
]

logger = logging.getLogger(__name__)

#: ``--models`` default.
DEFAULT_MODELS: tuple[str, ...] = ("codebrain", "eegnet", "logbandpower")

_TITLES = {
    "codebrain": "CodeBrain",
    "codebrain_pt": "CodeBrain (pretrain-on-train)",
    "logbandpower": "log band power + LR",
    **{k: v.title for k, v in PEERS.items()},
}


def parse_models(text: str | Sequence[str]) -> list[str]:
    """``"codebrain,eegnet"`` → validated model names (order kept, duplicates dropped)."""
    items = text.split(",") if isinstance(text, str) else list(text)
    names: list[str] = []
    for raw in items:
        name = re.sub(r"[\s\-]+", "_", raw.strip().lower())
        if not name:
            continue
        if name not in MODEL_NAMES:
            raise ValueError(
                f"Unknown model {raw.strip()!r}; choose from {', '.join(MODEL_NAMES)}."
            )
        if name not in names:
            names.append(name)
    if not names:
        raise ValueError(f"No model given; choose from {', '.join(MODEL_NAMES)}.")
    return names


def parse_seeds(text: str | Sequence[int]) -> list[int]:
    """``"0,1,2"`` → ``[0, 1, 2]`` (non-negative ints, distinct)."""
    items = text.split(",") if isinstance(text, str) else list(text)
    seeds: list[int] = []
    for raw in items:
        s = str(raw).strip()
        if not s:
            continue
        if not re.fullmatch(r"\d+", s):
            raise ValueError(f"Seeds must be non-negative integers separated by commas, got {s!r}.")
        if int(s) in seeds:
            raise ValueError(f"Seed {s} is listed twice.")
        seeds.append(int(s))
    if not seeds:
        raise ValueError("No seed given (e.g. --seeds 0,1,2).")
    return seeds


def _progress(iterable: Any, **kwargs: Any) -> Any:
    from tqdm.auto import tqdm

    return tqdm(iterable, dynamic_ncols=True, **kwargs)


def load_split_windows(
    recipe: TaskRecipe,
    recordings: Sequence[Recording],
    split: Split,
    *,
    progress: bool = False,
) -> dict[str, TaskWindows]:
    """Windows of the recordings the split uses, as ``{"train", "val", "test"}``.

    Raises
    ------
    ValueError
        A part of the split ends up without windows, or labels outside the recipe's classes.
    """
    from tqdm.contrib.logging import logging_redirect_tqdm

    wanted = []
    for r in recordings:
        unit_id = r.id if split.unit == "recording" else r.subject
        if split.unit == "trial" or split.part_of(unit_id) is not None:
            wanted.append(r)
    parts = []
    with logging_redirect_tqdm(loggers=[logging.getLogger("codebrain")]):
        for r in _progress(wanted, desc=f"loading {recipe.name}", unit="rec", disable=not progress):
            w = recipe.load(recipe, r)
            need = (recipe.n_chans, recipe.n_times * recipe.sequence_length)
            if w.x.shape[1:] != need:
                raise ValueError(
                    f"{recipe.title}: {r.path} gave windows of shape {w.x.shape[1:]}, the recipe "
                    f"needs {need}."
                )
            if recipe.sequence_length > 1 and w.y.shape[1:] != (recipe.sequence_length,):
                raise ValueError(
                    f"{recipe.title}: {r.path} gave labels of shape {w.y.shape}, a sequence "
                    f"task needs (n, {recipe.sequence_length})."
                )
            if len(w) == 0:
                logger.warning("%s: %s gave no windows (too short?).", recipe.title, r.path)
            parts.append(w)
    windows = TaskWindows.concat(parts)
    if len(windows) and (windows.y.min() < 0 or windows.y.max() >= recipe.n_classes):
        raise ValueError(
            f"{recipe.title}: labels outside 0..{recipe.n_classes - 1} ({recipe.classes})."
        )
    ids = windows.ids_for(split.unit)
    out = {}
    for part in ("train", "val", "test"):
        mask = np.isin(ids, list(getattr(split, part)))
        if not mask.any():
            raise ValueError(f"{recipe.title}: the {part} split has no windows.")
        out[part] = windows.select(mask)
    for part, w in out.items():
        present = np.unique(w.y)
        if len(present) < 2:
            logger.warning(
                "%s: the %s split holds a single class (%s); its metrics are degenerate.",
                recipe.title,
                part,
                recipe.classes[int(present[0])],
            )
    return out


def _mean_std(rows: list[dict[str, Any]], metrics: Sequence[str]) -> tuple[dict, dict]:
    mean, std = {}, {}
    for m in metrics:
        vals = [r[m] for r in rows if r.get(m) is not None]
        mean[m] = float(np.mean(vals)) if vals else None
        std[m] = float(np.std(vals)) if vals else None
    return mean, std


def _scaled(windows: TaskWindows, gain: float) -> TaskWindows:
    """``windows`` with ``x`` multiplied by ``gain`` (labels and ids shared)."""
    return dataclasses.replace(windows, x=(windows.x * np.float32(gain)).astype(np.float32))


def _fit_one(
    name: str,
    recipe: TaskRecipe,
    data: dict[str, TaskWindows],
    seed: int,
    *,
    epochs: int | None,
    device: str,
    width: int | None,
    layers: int | None,
    pretrained: str | os.PathLike | None,
    pretrain_budget: PretrainOnTrain,
    work_dir: Path,
    progress: bool,
    augment: WindowAugment | None = None,
) -> tuple[FitResult, int, float]:
    """Train model ``name`` on one seed.

    Returns the result, its parameter count and the seconds spent before fine-tuning
    (pretraining).
    """
    train, val, test = data["train"], data["val"], data["test"]
    if name == "logbandpower":
        res = fit_logbandpower(recipe, train, val, test, seed=seed)
        return res, recipe.n_chans * 5 * recipe.n_outputs + recipe.n_outputs, 0.0
    if name in ("codebrain", "codebrain_pt"):
        arch, config = codebrain_training_settings(
            recipe,
            epochs=epochs,
            seed=seed,
            device=device,
            width=width,
            layers=layers,
            progress=progress,
        )
        extra = 0.0
        if name == "codebrain_pt":
            arch = dict(
                arch,
                codebook_size_t=pretrain_budget.codebook_size,
                codebook_size_f=pretrain_budget.codebook_size,
            )
            model = build_codebrain(recipe, arch, seed=seed)
            backbone = model.backbone if isinstance(model, SequenceModel) else model
            info = _pretrain_on_train(
                backbone,
                recipe,
                epoch_windows(train, recipe),
                pretrain_budget,
                seed,
                device,
                work_dir / f"{name}_{seed}",
            )
            extra = info["tokenizer_seconds"] + info["pretrain_seconds"]
        else:
            model = build_codebrain(recipe, arch, pretrained=pretrained, seed=seed)
            if pretrained is None:  # to µV: see SCRATCH_INPUT_GAIN
                gain = SCRATCH_INPUT_GAIN * 0.01 / recipe.amplitude_scale
                train, val, test = (_scaled(w, gain) for w in (train, val, test))
        if isinstance(model, SequenceModel):  # 2-D labels: the generic loop, same settings
            settings = settings_from_finetune_config(config)
            res = fit_torch(model, recipe, train, val, test, settings, augment)
        else:
            res = fit_codebrain(model, recipe, train, val, test, config, augment)
        return res, count_parameters(model), extra
    model = build_peer(name, recipe, seed=seed)
    settings = peer_settings(
        name, recipe, epochs=epochs, seed=seed, device=device, progress=progress
    )
    res = fit_torch(model, recipe, train, val, test, settings, augment)
    return res, count_parameters(model), 0.0


def _warn_one_class(name: str, seed: int, counts: dict[str, int]) -> None:
    """Say so when every test window got one class (balanced accuracy is then 1 / K)."""
    winners = [c for c, n in counts.items() if n > 0]
    if len(winners) == 1:
        logger.warning(
            "%s seed %d: every test window was predicted %r at the selected epoch, so its "
            "balanced accuracy is 1/%d whatever the ranking (AUROC) says.",
            name,
            seed,
            winners[0],
            len(counts),
        )


def run_benchmark(
    task: str | TaskRecipe,
    data: str | os.PathLike,
    *,
    models: str | Sequence[str] = DEFAULT_MODELS,
    seeds: str | Sequence[int] = (0, 1, 2),
    epochs: int | None = None,
    width: int | None = None,
    layers: int | None = None,
    pretrained: str | os.PathLike | None = None,
    pretrain_on_train: bool = False,
    pretrain_budget: PretrainOnTrain | None = None,
    device: str = "cpu",
    augment: bool | None = None,
    download: bool = False,
    max_subjects: int | None = None,
    fold: int = 0,
    work_dir: str | os.PathLike | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Benchmark ``models`` on ``task`` with the data in ``data``.

    Parameters
    ----------
    task : str | TaskRecipe
        Task name (``codebrain benchmark --list``) or a recipe.
    data : path-like
        Local copy of the dataset, in the layout the recipe describes.
    models : str | sequence of str
        From :data:`~codebrain.benchmark.models.MODEL_NAMES` (``"codebrain,eegnet"``).
    seeds : str | sequence of int
        One training run per model and seed.
    epochs : int | None
        Epoch budget of every trained model (default: the recipe's, 50).
    width, layers : int | None
        CodeBrain from scratch: width and residual blocks.
    pretrained : path-like | None
        CodeBrain weights (model folder or the authors' ``.pth``) for ``codebrain``.
    pretrain_on_train : bool
        Add ``codebrain_pt`` (tokenizer + masked-token pretraining on the training subjects'
        windows, then fine-tuning).
    pretrain_budget : PretrainOnTrain | None
        Its budget (default :class:`PretrainOnTrain()`).
    device : str
        Torch device.
    augment : bool | None
        Augment the training windows of every trained deep model alike
        (:class:`~codebrain.training.augment.WindowAugment`: circular time shift, gain σ 0.1,
        frequency shift up to ±1.5 Hz); validation and test windows are never augmented.
        None: the recipe's default (:attr:`TaskRecipe.augment`).
    download : bool
        Fetch the dataset into ``data`` first with the recipe's downloader.
    max_subjects : int | None
        Use only the first N subjects (natural order) of the copy: a quick run, always on a
        fallback split.
    fold : int
        Fold of recipes with several (ISRUC-S3).
    work_dir : path-like | None
        Scratch folder for pretraining runs (default: a temporary folder).
    progress : bool
        Progress bars.

    Returns
    -------
    dict
        The ``results.json`` content (see :func:`write_results`). Per model, beside the
        metrics: ``best_epoch`` (per seed, the epoch chosen on validation), ``test_predicted``
        (test windows per class at that epoch) and ``history`` (per seed, one row per epoch:
        ``train_loss`` and the validation selection metric, ``val_<metric>``; for the
        band-power baseline one row per ``C``).
    """
    import tempfile

    import torch

    recipe = get_recipe(task)
    names = parse_models(models)
    if pretrain_on_train and "codebrain_pt" not in names:
        names.append("codebrain_pt")
    seed_list = parse_seeds(seeds)
    if epochs is not None:
        check_int("epochs", epochs)
    check_type("augment", augment, (bool, type(None)), "True, False or None")
    if augment is None:
        augment = recipe.augment
    if pretrained is not None and "codebrain" not in names:
        raise ValueError("--pretrained is for the 'codebrain' model, which --models does not list.")
    if pretrained is not None and (width is not None or layers is not None):
        raise ValueError(
            "--width/--layers build CodeBrain from scratch; drop them with --pretrained."
        )
    budget = pretrain_budget or PretrainOnTrain()
    root = Path(data)
    if download:
        if recipe.download is None:
            raise ValueError(
                f"{recipe.title} has no public downloader; obtain it from {recipe.source} and "
                f"lay it out as: {recipe.layout}"
            )
        recipe.download(recipe, root)
    recordings = recipe.find_recordings(root)
    if max_subjects is not None:
        keep = list(dict.fromkeys(r.subject for r in recordings))[:max_subjects]
        recordings = [r for r in recordings if r.subject in keep]
    split, protocol = resolve_split(recipe, recordings, fold=fold)
    augmentation = WindowAugment(sfreq=recipe.sfreq) if augment else None
    t0 = time.perf_counter()
    windows = load_split_windows(recipe, recordings, split, progress=progress)
    load_seconds = time.perf_counter() - t0
    logger.info(
        "%s: %s split, windows train/val/test = %d/%d/%d (loaded in %.1f s).",
        recipe.title,
        protocol,
        len(windows["train"]),
        len(windows["val"]),
        len(windows["test"]),
        load_seconds,
    )
    results: dict[str, Any] = {
        "task": recipe.name,
        "title": recipe.title,
        "split_protocol": protocol,
        "split_unit": split.unit,
        "split": split.as_dict(),
        "n_windows": {k: int(len(v)) for k, v in windows.items()},
        "selection_metric": recipe.selection_metric,
        "metrics": list(recipe.metrics),
        "auprc_definition": "auprc = sklearn.metrics.auc(recall, precision) (the authors'); "
        "average_precision = sklearn average_precision_score",
        "threshold_definition": "balanced_accuracy: threshold 0.5 on the positive-class "
        "probability (the authors'); balanced_accuracy_val_threshold: the threshold that "
        "maximises balanced accuracy on the validation windows at the selected epoch",
        "epochs": recipe.finetune.epochs if epochs is None else epochs,
        "seed_list": seed_list,
        "device": device,
        "augment": None if augmentation is None else augmentation.to_dict(),
        "host": {
            "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
        },
        "data_load_seconds": load_seconds,
        "models": {},
    }
    from tqdm.contrib.logging import logging_redirect_tqdm

    with tempfile.TemporaryDirectory(prefix="codebrain-bench-") as tmp:
        scratch = Path(work_dir) if work_dir is not None else Path(tmp)
        for name in names:
            seeds_out: dict[str, dict[str, Any]] = {}
            best_epochs, counts, histories, seconds, pre_seconds, params = {}, {}, {}, [], [], 0
            for seed in seed_list:
                logger.info("%s: training %s, seed %d.", recipe.title, name, seed)
                with logging_redirect_tqdm(loggers=[logging.getLogger("codebrain")]):
                    res, params, extra = _fit_one(
                        name,
                        recipe,
                        windows,
                        seed,
                        epochs=epochs,
                        device=device,
                        width=width,
                        layers=layers,
                        pretrained=pretrained if name == "codebrain" else None,
                        pretrain_budget=budget,
                        work_dir=scratch,
                        progress=progress,
                        augment=augmentation,
                    )
                seeds_out[str(seed)] = {m: res.test.get(m) for m in recipe.metrics}
                best_epochs[str(seed)] = res.best_epoch
                histories[str(seed)] = res.history  # JSON numbers, as the trainers build them
                if res.test_counts:
                    counts[str(seed)] = dict(zip(recipe.classes, res.test_counts, strict=True))
                    _warn_one_class(name, seed, counts[str(seed)])
                seconds.append(res.seconds + extra)
                pre_seconds.append(extra)
                logger.info(
                    "%s seed %d: %s (selected epoch %d, %.1f s).",
                    name,
                    seed,
                    ", ".join(f"{m}={_fmt(v)}" for m, v in seeds_out[str(seed)].items()),
                    res.best_epoch,
                    res.seconds + extra,
                )
            mean, std = _mean_std(list(seeds_out.values()), recipe.metrics)
            entry: dict[str, Any] = {
                "title": _TITLES.get(name, name),
                "seeds": seeds_out,
                "mean": mean,
                "std": std,
                "params": int(params),
                "train_seconds": float(np.mean(seconds)),
                "train_seconds_total": float(np.sum(seconds)),
                "best_epoch": best_epochs,
                "test_predicted": counts,
                "history": histories,
            }
            if name == "codebrain_pt":
                entry["pretrain_seconds"] = float(np.mean(pre_seconds))
            if name == "codebrain" and pretrained is not None:
                entry["pretrained"] = str(pretrained)
            results["models"][name] = entry
    return results


def _fmt(v: Any) -> str:
    return "n/a" if v is None else f"{v:.3f}"
