"""Subject-wise cross-validation of the *benchmark's own* models on EEGMAT (issue 11 item 3).

``benchmarks/eegmat_recipe_study.py`` measured why a from-scratch CodeBrain sat at chance with
``codebrain finetune``'s recipe. This script measures changes to the recipe ``codebrain
benchmark`` actually runs — :func:`codebrain.benchmark.models.codebrain_training_settings`,
:func:`~codebrain.benchmark.models.build_codebrain` (the authors' head), the µV input of
:data:`~codebrain.benchmark.models.SCRATCH_INPUT_GAIN`, :func:`~codebrain.benchmark.train.fit_torch`
for the peers and :func:`~codebrain.benchmark.train.fit_logbandpower` — on the same 6 subject
folds as the study (24 subjects sorted, blocks of 4: fold ``k`` tests on block ``k``,
validates on block ``k + 1``, trains on the other 16). Windows come from the
``mental_arithmetic`` recipe (20 channels, 200 Hz, 5 s, µV / 100), cached in ``--cache``.

Each condition is the benchmark's recipe at ``--epochs`` (10, as in the README table) with one
change (``CONDITIONS``). Per run the JSON keeps test balanced accuracy / AUROC / AUPRC, the
selected epoch, the per-epoch training loss and validation AUROC, and the wall time.
Runs are fold-major (every condition on fold 0, then fold 1, ...), so an interrupted run
still holds paired comparisons; results merge into ``--out``. After a run the script prints
mean ± std over folds and, against ``--reference``, the mean paired difference (with how many
folds were better / worse); ``--table`` prints the markdown table of
``benchmarks/results/eegmat_bench_cv.md`` from ``--out``.

Usage (the commands behind ``benchmarks/results/eegmat_bench_cv.json`` are listed in
``eegmat_bench_cv.md`` and recorded in the JSON's ``commands``)::

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/eegmat_bench_cv.py \
        --conditions logbandpower,codebrain,codebrain_pool --folds all --threads 1
    python benchmarks/eegmat_bench_cv.py --table
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from codebrain.benchmark.models import (
    PEERS,
    SCRATCH_INPUT_GAIN,
    build_codebrain,
    codebrain_training_settings,
    count_parameters,
    peer_settings,
)
from codebrain.benchmark.recipe import TaskWindows, get_recipe
from codebrain.benchmark.runner import load_split_windows
from codebrain.benchmark.scoring import (
    VAL_THRESHOLD_METRIC,
    probabilities,
    task_metrics,
    validation_threshold,
)
from codebrain.benchmark.train import ArrayDataset, fit_logbandpower, fit_torch, predict_outputs
from codebrain.training.augment import AugmentedDataset, WindowAugment
from codebrain.utils.io import atomic_write_json

logger = logging.getLogger("eegmat_bench_cv")
RESULTS = Path(__file__).parent / "results" / "eegmat_bench_cv.json"
METRICS = ("balanced_accuracy", "auroc", "auprc", VAL_THRESHOLD_METRIC)


def _study() -> Any:
    """``eegmat_recipe_study`` (for its ``fold_split``: the same folds)."""
    path = Path(__file__).with_name("eegmat_recipe_study.py")
    spec = importlib.util.spec_from_file_location("eegmat_recipe_study", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


#: name -> {"model": "codebrain" | "logbandpower" | peer, "ft": FinetuneConfig changes,
#: "gain": multiplies the µV/100 windows (CodeBrain from scratch: SCRATCH_INPUT_GAIN),
#: "width" / "layers": CodeBrain's size (else --width / --layers), "recording_norm": every
#: recording's channels scaled to one RMS before any model sees them (every model alike),
#: "head": "authors" | "pool", "augment": None | "shift" | "shift_chgain" | "shift_freq" (the
#: library's WindowAugment, also for peers) | "shift_freq3", "peer": build_peer kwargs}
CONDITIONS: dict[str, dict[str, Any]] = {
    "logbandpower": {"model": "logbandpower"},
    "eegnet": {"model": "eegnet", "gain": 1.0},  # EEGNet on the recipe's µV / 100
    "eegnet_uv": {"model": "eegnet", "gain": 100.0},  # braindecode's usual µV
    "eegnet_bn01": {"model": "eegnet", "gain": 1.0, "bn_momentum": 0.1},
    # the benchmark's EEGNet (µV) with what ``codebrain benchmark --augment`` applies
    "eegnet_uv_freq": {"model": "eegnet", "gain": 100.0, "augment": "shift_freq"},
    # the same at the benchmark's default budget
    "eegnet_uv_ep50": {"model": "eegnet", "gain": 100.0, "epochs": 50},
    "eegnet_uv_ep50_freq": {
        "model": "eegnet",
        "gain": 100.0,
        "epochs": 50,
        "augment": "shift_freq",
    },
    "codebrain": {"model": "codebrain"},  # the benchmark's recipe
    "codebrain_lr3e4": {"model": "codebrain", "ft": {"lr": 3e-4, "backbone_lr": 3e-4}},
    "codebrain_lr1e3": {"model": "codebrain", "ft": {"lr": 1e-3, "backbone_lr": 1e-3}},
    "codebrain_bs32": {"model": "codebrain", "ft": {"batch_size": 32}},
    "codebrain_pool": {"model": "codebrain", "head": "pool"},
    "codebrain_pool_lr1e3": {
        "model": "codebrain",
        "head": "pool",
        "ft": {"lr": 1e-3, "backbone_lr": 1e-3},
    },
    "codebrain_shift": {"model": "codebrain", "augment": "shift"},
    "codebrain_chanz": {"model": "codebrain", "norm": "channel_z"},
    "codebrain_wd05": {"model": "codebrain", "ft": {"weight_decay": 0.05}},
    "codebrain_ep30": {"model": "codebrain", "epochs": 30},
    "codebrain_lr1e3_wu2": {
        "model": "codebrain",
        "ft": {"lr": 1e-3, "backbone_lr": 1e-3, "warmup_epochs": 2.0},
    },
    "codebrain_lr3e4_wu1": {
        "model": "codebrain",
        "ft": {"lr": 3e-4, "backbone_lr": 3e-4, "warmup_epochs": 1.0},
    },
    "codebrain_pool_lr1e3_shift": {
        "model": "codebrain",
        "head": "pool",
        "augment": "shift",
        "ft": {"lr": 1e-3, "backbone_lr": 1e-3},
    },
    "codebrain_pool_lr1e3_wd05": {
        "model": "codebrain",
        "head": "pool",
        "ft": {"lr": 1e-3, "backbone_lr": 1e-3, "weight_decay": 0.05},
    },
    "codebrain_ep50": {"model": "codebrain", "epochs": 50},  # the authors' epoch budget
    "codebrain_ep50_shift": {"model": "codebrain", "epochs": 50, "augment": "shift"},
    "codebrain_ep50_chgain": {"model": "codebrain", "epochs": 50, "augment": "shift_chgain"},
    # between-subject differences of the alpha peak: every frequency moved by up to ±1.5 Hz
    "codebrain_ep50_freq": {"model": "codebrain", "epochs": 50, "augment": "shift_freq"},
    "codebrain_ep50_freq3": {"model": "codebrain", "epochs": 50, "augment": "shift_freq3"},
    "codebrain_pool_ep50": {"model": "codebrain", "head": "pool", "epochs": 50},
    # a moving average of the weights (decay 0.98 per step, ~4 epochs of 12 steps) is what is
    # validated, selected and tested (FinetuneConfig.ema_decay), against the noisy selection
    "codebrain_ep50_ema": {"model": "codebrain", "epochs": 50, "ft": {"ema_decay": 0.98}},
    "codebrain_ep50_shift_ema": {
        "model": "codebrain",
        "epochs": 50,
        "augment": "shift",
        "ft": {"ema_decay": 0.98},
    },
    # the default recipe (frequency shift) with the moving average of the weights
    "codebrain_ep50_freq_ema": {
        "model": "codebrain",
        "epochs": 50,
        "augment": "shift_freq",
        "ft": {"ema_decay": 0.98},
    },
    # the default recipe with a faster start (2 warm-up epochs to a higher peak lr), against
    # the under-fit early epochs that validation AUROC sometimes selects (BA 0.5 at AUROC 0.8)
    "codebrain_ep50_freq_lr3e4_wu2": {
        "model": "codebrain",
        "epochs": 50,
        "augment": "shift_freq",
        "ft": {"lr": 3e-4, "backbone_lr": 3e-4, "warmup_epochs": 2.0},
    },
    "codebrain_ep50_freq_lr1e3_wu2": {
        "model": "codebrain",
        "epochs": 50,
        "augment": "shift_freq",
        "ft": {"lr": 1e-3, "backbone_lr": 1e-3, "warmup_epochs": 2.0},
    },
    # every recording's channels scaled to the same RMS (10 µV) from the recording's own windows,
    # for every model alike: between-subject level differences out, the spectral shape kept
    "logbandpower_recz": {"model": "logbandpower", "recording_norm": True},
    "codebrain_ep50_freq_recz": {
        "model": "codebrain",
        "epochs": 50,
        "augment": "shift_freq",
        "recording_norm": True,
    },
    "eegnet_uv_ep50_freq_recz": {
        "model": "eegnet",
        "gain": 100.0,
        "epochs": 50,
        "augment": "shift_freq",
        "recording_norm": True,
    },
    # the default recipe with CodeBrain twice as wide and deep (64 x 4, 7.39 M parameters)
    "codebrain_ep50_freq_64x4": {
        "model": "codebrain",
        "epochs": 50,
        "augment": "shift_freq",
        "width": 64,
        "layers": 4,
    },
    # stronger regularisation against the early over-fit of the 50-epoch runs (val AUROC peaks
    # at epochs 4-13 while the training loss falls to 0.01): head dropout 0.5, weight decay 0.05
    "codebrain_ep50_reg": {
        "model": "codebrain",
        "epochs": 50,
        "head_dropout": 0.5,
        "ft": {"weight_decay": 0.05},
    },
}


def load_windows(cache: Path, data: Path) -> TaskWindows:
    """All EEGMAT windows of the recipe (µV / 100), cached as an ``.npz``."""
    if cache.is_file():
        z = np.load(cache)
        return TaskWindows(z["x"], z["y"], z["subjects"], z["recordings"])
    recipe = get_recipe("mental_arithmetic")
    recs = recipe.find_recordings(data)
    subjects = sorted({r.subject for r in recs})
    from codebrain.benchmark.recipe import Split

    split = Split(tuple(subjects[:-2]), (subjects[-2],), (subjects[-1],))
    parts = load_split_windows(recipe, recs, split)
    w = TaskWindows.concat([parts["train"], parts["val"], parts["test"]])
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        cache,
        x=w.x,
        y=w.y,
        subjects=w.subjects.astype(str),
        recordings=w.recordings.astype(str),
    )
    return w


class PoolHead(nn.Module):
    """``(B, C, P, D) -> (B, 2)``: mean over patches, dropout, Linear(C·D -> 1), as ``[0, z]``."""

    def __init__(self, n_chans: int, d: int, dropout: float) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.linear = nn.Linear(n_chans * d, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.linear(self.drop(x.mean(2).flatten(1)))
        return torch.cat([torch.zeros_like(z), z], dim=1)


class ShiftDataset(ArrayDataset):
    """Training windows with a random circular time shift and a log-normal gain.

    ``channel_sigma`` 0: one gain per window (σ 0.1); else also one gain per channel (σ
    ``channel_sigma``), mimicking between-subject differences of electrode impedance. (The
    frequency-shift conditions use the library's :class:`~codebrain.training.augment.WindowAugment`
    instead, exactly as ``codebrain benchmark --augment`` applies it.)
    """

    def __init__(self, windows: TaskWindows, seed: int, channel_sigma: float = 0.0) -> None:
        super().__init__(windows)
        self.rng = np.random.default_rng(seed)
        self.channel_sigma = channel_sigma

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = super().__getitem__(i)
        shift = int(self.rng.integers(0, x.shape[-1]))
        gain = np.exp(
            self.rng.normal(0.0, 0.1)
            + self.rng.normal(0.0, 1.0, (x.shape[0], 1)) * self.channel_sigma
        )
        return torch.roll(x, shift, dims=-1) * torch.as_tensor(gain, dtype=x.dtype), y


#: "augment" conditions that are the library's WindowAugment, by its frequency shift in Hz
_FREQ_SHIFT = {"shift_freq": 1.5, "shift_freq3": 3.0}


def _window_augment(augment: str | None, sfreq: float) -> WindowAugment | None:
    """The library transform of a frequency-shift ``augment`` condition; None otherwise."""
    if augment not in _FREQ_SHIFT:
        return None
    return WindowAugment(freq_shift=_FREQ_SHIFT[augment], sfreq=sfreq)


def _scaled(w: TaskWindows, gain: float, norm: str = "none") -> TaskWindows:
    x = w.x * np.float32(gain)
    if norm == "channel_z":
        x = (x - x.mean(-1, keepdims=True)) / (x.std(-1, keepdims=True) + 1e-6)
    return dataclasses.replace(w, x=x.astype(np.float32))


#: RMS every channel of a recording is scaled to by ``recording_norm`` (µV / 100: 10 µV)
_RECORDING_RMS = 0.1


def _recording_standardised(w: TaskWindows) -> TaskWindows:
    """Every channel of every recording scaled to RMS :data:`_RECORDING_RMS` over its windows."""
    x = w.x.astype(np.float32, copy=True)  # (n_windows, n_chans, n_times)
    for rec in np.unique(w.recordings):
        m = w.recordings == rec
        xr = x[m]  # (n_windows, n_chans, n_times), a copy
        rms = np.sqrt((xr.astype(np.float64) ** 2).mean(axis=(0, 2)))  # (n_chans,)
        x[m] = xr * (_RECORDING_RMS / np.maximum(rms, 1e-8)).astype(np.float32)[None, :, None]
    return dataclasses.replace(w, x=x)


def run_one(
    cond: dict[str, Any],
    parts: dict[str, TaskWindows],
    seed: int,
    epochs: int,
    width: int,
    layers: int,
) -> dict[str, Any]:
    """Train and score one condition on one fold and seed."""
    recipe = get_recipe("mental_arithmetic")
    if "head_dropout" in cond:
        recipe = dataclasses.replace(recipe, head_dropout=cond["head_dropout"])
    kind = cond["model"]
    epochs = cond.get("epochs", epochs)
    if cond.get("recording_norm"):
        parts = {k: _recording_standardised(v) for k, v in parts.items()}
    if kind == "logbandpower":
        res = fit_logbandpower(recipe, parts["train"], parts["val"], parts["test"], seed=seed)
        return {"test": res.test, "best_epoch": res.best_epoch, "history": res.history}
    if kind != "codebrain":
        gain = cond.get("gain", 1.0)
        train, val, test = (_scaled(parts[k], gain) for k in ("train", "val", "test"))
        torch.manual_seed(seed)  # as build_peer, without its input unit: "gain" sets it here
        model = PEERS[kind].build(recipe)
        if "bn_momentum" in cond:
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
                    m.momentum = cond["bn_momentum"]
        settings = peer_settings(kind, recipe, epochs=epochs, seed=seed)
        if cond.get("augment") not in (None, "shift_freq"):
            raise SystemExit(f"peers take augment 'shift_freq' only, got {cond['augment']!r}")
        aug = _window_augment(cond.get("augment"), recipe.sfreq)
        res = fit_torch(model, recipe, train, val, test, settings, aug)
        return {
            "test": res.test,
            "best_epoch": res.best_epoch,
            "history": res.history,
            "params": count_parameters(model),
        }
    from codebrain.training.finetune import finetune

    arch, config = codebrain_training_settings(
        recipe,
        epochs=epochs,
        seed=seed,
        width=cond.get("width", width),
        layers=cond.get("layers", layers),
    )
    config = dataclasses.replace(config, **cond.get("ft", {}))
    model = build_codebrain(recipe, arch, seed=seed)
    if cond.get("head", "authors") == "pool":
        model.final_layer = PoolHead(model.n_chans, model.out_channels, recipe.head_dropout)
    gain = cond.get("gain", SCRATCH_INPUT_GAIN)
    norm = cond.get("norm", "none")
    train, val, test = (_scaled(parts[k], gain, norm) for k in ("train", "val", "test"))
    augment = cond.get("augment")
    library = _window_augment(augment, recipe.sfreq)  # shift_freq: what --augment applies
    if augment == "shift":
        train_ds: Dataset = ShiftDataset(train, seed)
    elif augment == "shift_chgain":
        train_ds = ShiftDataset(train, seed, channel_sigma=0.2)
    elif library is not None:
        train_ds = AugmentedDataset(ArrayDataset(train), library)
    else:
        train_ds = ArrayDataset(train)
    result = finetune(model, train_ds, ArrayDataset(val), config)
    cpu = torch.device("cpu")
    out = predict_outputs(result.model.classify, test, config.batch_size, cpu)
    out_val = predict_outputs(result.model.classify, val, config.batch_size, cpu)
    threshold = validation_threshold(val.y, probabilities(out_val, recipe.n_classes))
    key = f"val_{config.monitor_key}"
    return {
        "test": task_metrics(test.y, probabilities(out, recipe.n_classes), threshold),
        "best_epoch": result.best_epoch,
        "history": [
            {"epoch": r["epoch"], "train_loss": r["train_loss"], key: r.get(key)}
            for r in result.history
        ],
        "params": count_parameters(model),
    }


def summarise(results: dict[str, Any], reference: str) -> list[str]:
    """Lines: mean ± std over folds per condition, and paired differences to ``reference``."""
    lines = []
    ref = results["runs"].get(reference, {})
    for name, runs in results["runs"].items():
        row = f"{name:22s} n={len(runs):2d}"
        for m in ("balanced_accuracy", "auroc"):
            v = np.array([r["test"][m] for r in runs.values()], dtype=float)
            row += f"  {m[:5]} {v.mean():.3f} ± {v.std(ddof=1) if v.size > 1 else 0:.3f}"
        tuned = [r["test"].get(VAL_THRESHOLD_METRIC) for r in runs.values()]
        if all(v is not None for v in tuned):
            row += f"  BA@val-threshold {np.mean(tuned):.3f}"
        common = sorted(set(runs) & set(ref))
        if name != reference and common:
            for m in ("balanced_accuracy", "auroc"):
                d = np.array([runs[k]["test"][m] - ref[k]["test"][m] for k in common])
                row += f"  Δ{m[:3]} {d.mean():+.3f} (+{int((d > 0).sum())}/-{int((d < 0).sum())})"
        row += f"  {np.mean([r['seconds'] for r in runs.values()]):.0f} s/run"
        lines.append(row)
    return lines


def _by_seed(results: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    """Runs per table row ``(condition, seed)``, keyed ``fold<k>``."""
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for name, runs in results["runs"].items():
        for run in runs.values():
            rows.setdefault((name, run.get("seed", 0)), {})[f"fold{run['fold']}"] = run
    return rows


def markdown_table(results: dict[str, Any], reference: str) -> str:
    """Per-fold test BA / AUROC of every condition and seed, mean ± std over folds, and the
    mean paired difference to ``reference`` (same seed) on the folds both ran (markdown)."""
    folds = sorted({r["fold"] for runs in results["runs"].values() for r in runs.values()})
    head = "| condition | " + " | ".join(f"fold {f}" for f in folds)
    head += " | mean BA | mean AUROC | Δ BA / Δ AUROC vs " + reference + " (folds) | s / run |"
    lines = [head, "|" + "---|" * (len(folds) + 5)]
    rows = _by_seed(results)
    for (name, seed), runs in rows.items():
        ref = rows.get((reference, seed), {})
        cells = [
            f"{runs[f'fold{f}']['test']['balanced_accuracy']:.3f} / "
            f"{runs[f'fold{f}']['test']['auroc']:.3f}"
            if f"fold{f}" in runs
            else ""
            for f in folds
        ]
        stats = []
        for m in ("balanced_accuracy", "auroc"):
            v = np.array([r["test"][m] for r in runs.values()], dtype=float)
            stats.append(f"{v.mean():.3f} ± {v.std(ddof=1) if v.size > 1 else 0:.3f}")
        common = sorted(set(runs) & set(ref))
        if name != reference and common:
            d = [
                np.mean([runs[k]["test"][m] - ref[k]["test"][m] for k in common])
                for m in ("balanced_accuracy", "auroc")
            ]
            delta = f"{d[0]:+.3f} / {d[1]:+.3f} ({len(common)})"
        else:
            delta = ""
        secs = np.mean([r["seconds"] for r in runs.values()])
        label = name if seed == 0 else f"{name} (seed {seed})"
        lines.append(
            f"| {label} | " + " | ".join(cells) + f" | {stats[0]} | {stats[1]} | "
            f"{delta} | {secs:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data/eegmat"))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/eegmat_recipe_windows.npz"))
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--conditions", default="")
    ap.add_argument("--folds", default="all", help="comma list or 'all'")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reference", default="codebrain")
    ap.add_argument("--table", action="store_true", help="print a markdown table and exit")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("codebrain").setLevel(logging.WARNING)
    torch.set_num_threads(args.threads)

    if args.table:
        print(markdown_table(json.loads(args.out.read_text(encoding="utf-8")), args.reference))
        return 0
    names = [c for c in args.conditions.split(",") if c]
    unknown = [n for n in names if n not in CONDITIONS]
    if unknown:
        raise SystemExit(f"unknown conditions {unknown}; choose from {list(CONDITIONS)}")
    w = load_windows(args.cache, args.data)
    subj_num = np.array([int(s.removeprefix("Subject")) for s in w.subjects])
    results = (
        json.loads(args.out.read_text(encoding="utf-8"))
        if args.out.is_file()
        else {"protocol": __doc__.split("Usage")[0].strip(), "runs": {}, "commands": []}
    )
    results["commands"].append("python benchmarks/eegmat_bench_cv.py " + " ".join(sys.argv[1:]))
    fold_split = _study().fold_split
    n_folds = len(np.unique(subj_num)) // 4
    folds = list(range(n_folds)) if args.folds == "all" else [int(f) for f in args.folds.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    for name in names:
        results.setdefault("conditions", {})[name] = CONDITIONS[name]
    # fold-major: an interrupted run still holds paired (same-fold) comparisons
    for fold in folds:
        split = fold_split(subj_num, fold)
        parts = {k: w.select(np.isin(subj_num, v)) for k, v in split.items()}
        for name in names:
            for seed in seeds:
                t0 = time.perf_counter()
                run = run_one(CONDITIONS[name], parts, seed, args.epochs, args.width, args.layers)
                run["test"] = {m: run["test"].get(m) for m in METRICS}
                run.update(
                    fold=fold,
                    seed=seed,
                    epochs=CONDITIONS[name].get("epochs", args.epochs),
                    seconds=time.perf_counter() - t0,
                    test_subjects=split["test"],
                    n_windows={k: len(v) for k, v in parts.items()},
                )
                results["runs"].setdefault(name, {})[f"fold{fold}_seed{seed}"] = run
                logger.info(
                    "%s fold %d seed %d: %s (epoch %s, %.0f s)",
                    name,
                    fold,
                    seed,
                    {k: round(v, 3) for k, v in run["test"].items()},
                    run["best_epoch"],
                    run["seconds"],
                )
                args.out.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_json(args.out, results)
    for line in summarise(results, args.reference):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
