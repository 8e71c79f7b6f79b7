"""``codebrain finetune``: fine-tune or probe CodeBrain on labelled windows.

Input: a windows ``.npz`` from ``codebrain prepare`` or EEG files/folders (prepared on the fly
with the preprocessing flags). The validation (and optional test) split is by subject (or
recording): windows of one subject never appear in two splits. Output: the run folder of
every training command: ``config.json``, ``metrics.csv`` (one row per epoch),
``checkpoints/`` (``--resume`` continues a killed run), ``final/`` (the selected model,
``save_pretrained`` layout, plus ``linear_probe.*`` in linear mode, ``preprocess.json`` and
``finetune.json``: config, history, classes, split, metrics), ``result.json`` (the same
summary), ``learning_curves.png`` and ``confusion_matrix.png``. ``final/`` and
``result.json`` appear only when the run is complete; ``evaluate``, ``predict``, ``embed``
and ``--model`` take the run folder (or its ``final/``). With ``--folds K`` it runs
subject-wise K-fold cross-validation and writes ``cv.json`` instead (one folder, written
atomically).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from codebrain.cli._arch_args import add_architecture_arguments, architecture_from_args, n_tokens
from codebrain.cli._config_args import (
    add_config_arguments,
    add_config_file_argument,
    config_from_args,
    config_overrides,
    resume_arg_kwargs,
)
from codebrain.training.finetune import FinetuneConfig

__all__ = ["register", "infer_task", "build_model"]

logger = logging.getLogger(__name__)

#: where a run's ``config.json``, ``result.json`` / ``final/finetune.json`` (or ``cv.json``)
#: keeps the config
_SECTIONS = ("finetune", "config", "finetune_config")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``finetune`` subcommand."""
    from codebrain.cli._data_args import add_preprocess_args

    p = subparsers.add_parser(
        "finetune",
        help="fine-tune / linear-probe CodeBrain on labelled windows",
        description=__doc__.split("\n\n", 1)[1].replace("``", "'"),
    )
    p.add_argument("data", nargs="+", help="windows .npz from 'prepare', or EEG files/folders")
    p.add_argument("-o", "--out", required=True, help="output model folder")
    p.add_argument("--model", help="pretrained model folder / Hub id (default: train from scratch)")
    p.add_argument("--task", choices=("auto", "classification", "regression"), default="auto",
                   help="auto: classification for integer labels, regression for floats "
                   "(default: auto, or the --config file's task)")  # fmt: skip
    p.add_argument("--val", help="separate validation windows .npz (else split from data)")
    p.add_argument("--val-fraction", type=float, default=0.2, help="share of subjects")
    p.add_argument("--test-fraction", type=float, default=0.0, help="held-out test subjects")
    p.add_argument("--split-by", choices=("subject", "recording"), default="subject")
    p.add_argument("--folds", type=int, help="K-fold cross-validation by subject (writes cv.json)")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    add_config_file_argument(p, FinetuneConfig)
    t = p.add_argument_group("fine-tuning (defaults: FinetuneConfig)")
    add_config_arguments(
        t,
        FinetuneConfig,
        exclude=("task",),
        arg_kwargs={
            "resume": resume_arg_kwargs(FinetuneConfig),
            "grad_clip": dict(type=_grad_clip, metavar="X"),
            "class_weight": dict(type=_class_weight, metavar="{none,balanced,W1,W2,...}"),
        },
        help={
            "resume": "continue the run in --out from its newest checkpoint ('--resume' "
            "alone), or from the checkpoint file CKPT (same data and settings)",
            "lr": "peak learning rate of the head (the linear probe or 'final_layer')",
            "grad_clip": "max gradient norm; 0 or 'none' disables clipping",
            "class_weight": "per-class loss weights: none, balanced (n / (n_classes x "
            "count)) or comma-separated weights",
            "device": "cpu, cuda, cuda:1 ... or auto (CUDA when available)",
        },
    )
    arch = p.add_argument_group("architecture from scratch (ignored with --model)")
    add_architecture_arguments(arch, defaults={"s4_lmax": "the tokens of a window"})
    add_preprocess_args(p)
    p.set_defaults(func=run)


def infer_task(ds: Any, task: str) -> str:
    """``"classification"`` for integer labels, ``"regression"`` for floats (unless forced)."""
    if task != "auto":
        return task
    return "regression" if ds.labels.dtype.kind == "f" else "classification"


def _n_outputs(ds: Any, task: str) -> int:
    if task == "regression":
        return 1
    if ds.classes:
        return len(ds.classes)
    return int(ds.labels.max()) + 1


def build_model(args: argparse.Namespace, ds: Any, n_outputs: int):
    """A CodeBrain for ``ds``: from ``--model`` (head rebuilt for ``n_outputs``) or from scratch."""
    from codebrain.cli import CLIError
    from codebrain.models.codebrain import CodeBrain

    if args.model:
        if architecture_from_args(args):
            logger.warning("Architecture flags are ignored with --model (its own is used).")
        model = CodeBrain.from_pretrained(args.model, n_outputs=n_outputs, n_times=ds.n_times)
        if model.n_chans != ds.n_chans:
            raise CLIError(
                f"the model takes {model.n_chans} channels but the data has {ds.n_chans}; "
                "prepare the data with the model's channels (--channels)."
            )
        return model
    arch = architecture_from_args(args)
    # SGConv design length = token count, as in the paper (570 = 19 channels x 30 patches).
    arch.setdefault("s4_lmax", n_tokens(ds.n_chans, ds.n_times, arch.get("patch_size")))
    return CodeBrain(
        n_outputs=n_outputs,
        chs_info=[{"ch_name": c} for c in ds.ch_names],
        n_times=ds.n_times,
        sfreq=ds.sfreq,
        **arch,
    )


def _grad_clip(text: str) -> float | None:
    """``--grad-clip``: a number > 0, or 0 / ``none`` for no clipping.

    No clipping is ``FinetuneConfig``'s ``None`` while its field was ``float | None``, then
    ``0.0``.
    """
    if text.lower() in ("none", "off") or text.strip() in ("0", "0.0"):
        hint = typing.get_type_hints(FinetuneConfig).get("grad_clip")
        return None if type(None) in typing.get_args(hint) else 0.0
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'none', got {text!r}") from None


def _class_weight(text: str) -> str | list[float] | None:
    """``--class-weight``: none, balanced or comma-separated weights."""
    if text.lower() == "none":
        return None
    if text == "balanced":
        return text
    try:
        return [float(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected none, balanced or comma-separated weights, got {text!r}"
        ) from None


def _config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The FinetuneConfig fields of ``--config FILE`` and the flags given (flags win).

    The file is read and checked here (invalid JSON/YAML, unknown keys, values of the wrong
    type raise :class:`~codebrain.cli.CLIError` naming the file).
    """
    return config_overrides(
        FinetuneConfig, args, args.config, sections=_SECTIONS, ignore_file_keys=("resume",)
    )


def _task_hint(args: argparse.Namespace, given: dict[str, Any] | None = None) -> str:
    """``--task``, else the ``--config`` file's task, else ``"auto"``.

    ``given`` is :func:`_config_overrides` when already read; its ``task`` can only come from
    the file (the field has no generated flag).
    """
    if args.task != "auto" or not args.config:
        return args.task
    return (_config_overrides(args) if given is None else given).get("task", "auto")


def _finetune_config(args: argparse.Namespace, task: str, given: dict[str, Any] | None = None):
    """FinetuneConfig: its defaults < ``--config FILE`` < flags; ``task`` last.

    ``given`` is :func:`_config_overrides` when already read.
    """
    return config_from_args(
        FinetuneConfig, args, args.config, sections=_SECTIONS, extra={"task": task}, overrides=given
    )


def _groups(ds: Any, split_by: str) -> np.ndarray:
    if split_by == "subject":
        from codebrain.training._splits import warn_if_subjects_are_recordings

        warn_if_subjects_are_recordings(ds.subject_ids, ds.recording_ids)
        return ds.subject_ids
    return ds.recording_ids


def run(args: argparse.Namespace) -> int:
    """Run ``codebrain finetune``."""
    import torch

    from codebrain.cli import CLIError
    from codebrain.cli._data_args import labelled_subset, load_data_arg
    from codebrain.cli._outputs import sigterm_as_exit
    from codebrain.data.windows import load_windows_npz
    from codebrain.training._splits import group_kfold, group_train_val_split
    from codebrain.training.finetune import finetune
    from codebrain.training.inference import evaluate
    from codebrain.utils.io import atomic_replace_dir, atomic_write_json

    # The config file and every flag first: a bad config fails before any data is read. The
    # task is the data's unless --task / the file says it; "auto" is checked as classification
    # (the task every setting allows) and the config rebuilt once the data has decided.
    given = _config_overrides(args)
    hint = _task_hint(args, given)
    config = _finetune_config(args, "classification" if hint == "auto" else hint, given)
    out, replacing = _check_out(args, config)
    for name in ("val_fraction", "test_fraction"):
        v = getattr(args, name)
        if not 0.0 <= v < 1.0:
            raise CLIError(f"--{name.replace('_', '-')} must be in [0, 1), got {v}.")
    ds, pre = load_data_arg(args.data, args)
    ds = labelled_subset(ds)
    if len(ds) == 0:
        raise CLIError("no labelled windows in the data.")
    task = infer_task(ds, hint)
    if task == "classification" and ds.labels.dtype.kind == "f":
        raise CLIError("--task classification needs integer class labels; the data holds floats.")
    n_outputs = _n_outputs(ds, task)
    if task == "classification" and np.unique(ds.labels).size < 2:
        raise CLIError(
            f"the labels hold a single class ({ds.labels[0]}); classification needs at least two."
        )
    if config.task != task:
        config = _finetune_config(args, task, given)
    groups = _groups(ds, args.split_by)
    y_strat = ds.labels if task == "classification" else np.zeros(len(ds), dtype=np.int64)

    def split_val(train_ds: Any) -> tuple[Any, Any]:
        if args.val:
            val_ds, _ = load_windows_npz(args.val)
            return train_ds, labelled_subset(val_ds)
        if args.val_fraction == 0:
            return train_ds, None
        g = _groups(train_ds, args.split_by)
        if np.unique(g).size < 2:
            raise CLIError(
                f"a validation split needs at least 2 {args.split_by}s, found "
                f"{np.unique(g).size}; pass --val-fraction 0 or --val."
            )
        ys = train_ds.labels if task == "classification" else np.zeros(len(train_ds), np.int64)
        tr, va = group_train_val_split(ys, g, val_fraction=args.val_fraction, seed=config.seed)
        return train_ds.subset(tr), train_ds.subset(va)

    summary: dict[str, Any] = {"task": task, "classes": ds.classes, "split_by": args.split_by}
    if args.folds:
        with sigterm_as_exit(), atomic_replace_dir(out) as tmp:
            folds = group_kfold(y_strat, groups, n_splits=args.folds, seed=config.seed)
            fold_rows = []
            for k, (tr_idx, te_idx) in enumerate(folds):
                logger.info("Fold %d/%d", k + 1, len(folds))
                train_ds, val_ds = split_val(ds.subset(tr_idx))
                torch.manual_seed(config.seed)
                model = build_model(args, ds, n_outputs)
                res = finetune(model, train_ds, val_ds, config)
                metrics = evaluate(res.model, ds.subset(te_idx), task=task)
                fold_rows.append(
                    {
                        "fold": k,
                        "test_groups": sorted(set(groups[te_idx].tolist())),
                        "best_epoch": res.best_epoch,
                        "test_metrics": metrics,
                    }
                )
            keys = [
                k
                for k, v in fold_rows[0]["test_metrics"].items()
                if isinstance(v, float)
                and all(r["test_metrics"].get(k) is not None for r in fold_rows)
            ]
            summary["cv"] = {
                "folds": fold_rows,
                "mean": {
                    k: float(np.mean([r["test_metrics"][k] for r in fold_rows])) for k in keys
                },
                "std": {k: float(np.std([r["test_metrics"][k] for r in fold_rows])) for k in keys},
            }
            summary["finetune_config"] = config.to_dict()
            atomic_write_json(tmp / "cv.json", summary)
            main = _primary(task)
            print(
                f"{args.folds}-fold cross-validation by {args.split_by}: {main} "
                f"{summary['cv']['mean'].get(main, float('nan')):.3f} ± "
                f"{summary['cv']['std'].get(main, float('nan')):.3f}; wrote {out}/cv.json"
            )
            return 0

    test_ds = None
    work = ds
    if args.test_fraction > 0:
        tr, te = group_train_val_split(
            y_strat, groups, val_fraction=args.test_fraction, seed=config.seed + 1
        )
        work, test_ds = ds.subset(tr), ds.subset(te)
        summary["test_groups"] = sorted(set(groups[te].tolist()))
    train_ds, val_ds = split_val(work)
    summary["train_groups"] = sorted(set(_groups(train_ds, args.split_by).tolist()))
    if val_ds is not None:
        summary["val_groups"] = sorted(set(_groups(val_ds, args.split_by).tolist()))
    torch.manual_seed(config.seed)
    model = build_model(args, ds, n_outputs)
    with sigterm_as_exit(), _run_folder(out, replacing) as folder:
        files = {"finetune.json": summary, **({"preprocess.json": pre} if pre is not None else {})}
        result = finetune(model, train_ds, val_ds, config, out_dir=folder, final_files=files)
        summary.update(result.to_dict())
        if test_ds is not None:
            summary["test_metrics"] = evaluate(result.model, test_ds, task=task)
        _write_summary(folder, summary, result, test_ds is not None, ds.classes)
    main = _primary(task)
    parts = [
        f"Fine-tuned ({config.mode}) on {len(train_ds)} windows; best epoch {result.best_epoch}"
    ]
    if result.val_metrics is not None:
        parts.append(f"validation {main} {result.val_metrics.get(main)}")
    if "test_metrics" in summary:
        parts.append(f"test {main} {summary['test_metrics'].get(main)}")
    print("; ".join(parts) + f"; saved to {out}")
    return 0


def _check_out(args: argparse.Namespace, config: FinetuneConfig) -> tuple[Path, bool]:
    """Check ``--out`` before any work; ``(path, an existing folder is replaced)``.

    ``--resume`` continues the run folder in place (it must be empty or a finetune run). A
    fresh run writes an absent or empty folder in place; over an existing output (only with
    ``--force``) it is built under a temporary name and replaces it once complete, so a
    failed run leaves the old folder as it was. A fresh start over a finetune run that has
    checkpoints needs ``--resume`` or ``--force``.
    """
    from codebrain.cli import CLIError
    from codebrain.cli._outputs import check_output, check_run_folder
    from codebrain.utils.run_layout import LAYOUT, run_kind

    model_path = args.model if args.model and Path(args.model).exists() else None
    inputs = [*args.data, args.val, model_path, args.labels]
    if config.resume is not False and args.folds:
        raise CLIError("--resume continues one run; it does not apply to --folds.")
    if config.resume is not False:
        check_output(args.out, kind="dir", force=True, inputs=inputs)  # inputs, kind, access
        out = check_run_folder(args.out, command="finetune", own_kind="a finetune run folder")
        if isinstance(config.resume, str) and not Path(config.resume).is_file():
            raise CLIError(f"--resume {config.resume!r}: no such checkpoint file.")
        return out, False
    checkpoints = Path(args.out) / LAYOUT.checkpoints
    if (
        not args.force
        and run_kind(args.out) == "finetune"
        and checkpoints.is_dir()
        and any(checkpoints.iterdir())
    ):
        raise CLIError(
            f"--out {args.out} holds the checkpoints of a finetune run; pass --resume to "
            "continue it or --force to replace it."
        )
    out = check_output(args.out, kind="dir", force=args.force, inputs=inputs)
    return out, out.is_dir() and any(out.iterdir())


@contextlib.contextmanager
def _run_folder(out: Path, replacing: bool) -> Iterator[Path]:
    """The folder to train in: ``out`` itself, or a temporary one replacing it when complete."""
    from codebrain.utils.io import atomic_replace_dir

    if not replacing:
        yield out
        return
    with atomic_replace_dir(out) as tmp:
        yield tmp


def _write_summary(
    folder: Path, summary: dict[str, Any], result: Any, tested: bool, classes: Any
) -> None:
    """The run's plots, ``result.json`` and ``final/finetune.json`` (with the test metrics)."""
    from codebrain.training.plots import plot_confusion_matrix, plot_learning_curves
    from codebrain.utils.io import atomic_write_json
    from codebrain.utils.run_layout import LAYOUT

    task = summary["task"]
    metric = "balanced_accuracy" if task == "classification" else "r2"
    plot_learning_curves(
        result.history, folder / "learning_curves.png", metric=metric, best_epoch=result.best_epoch
    )
    shown = summary.get("test_metrics") or result.val_metrics
    if task == "classification" and shown is not None:
        plot_confusion_matrix(
            shown["confusion_matrix"],
            folder / "confusion_matrix.png",
            class_names=classes,
            title="Test subjects" if tested else "Validation subjects",
        )
    atomic_write_json(folder / LAYOUT.final / "finetune.json", summary)
    atomic_write_json(folder / LAYOUT.result, summary)


def _primary(task: str) -> str:
    """Headline metric of a task."""
    from codebrain.training.metrics import PRIMARY_METRIC

    return PRIMARY_METRIC[task]
