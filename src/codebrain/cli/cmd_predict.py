"""``codebrain predict``: per-window class probabilities (or regression outputs) to CSV.

Also holds :func:`load_model_and_windows`, shared with ``evaluate`` and ``embed``: a model
folder (from ``finetune``, ``demo`` or ``convert``) and windows from an ``.npz`` or from EEG
files prepared with the settings stored next to the model (``preprocess.json``), which the
preprocessing flags override.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
from pathlib import Path
from typing import Any

__all__ = ["register", "load_model_and_windows", "add_common_args"]

logger = logging.getLogger(__name__)


def add_common_args(p: argparse.ArgumentParser) -> None:
    """``model``, ``data`` and the preprocessing flags."""
    from codebrain.cli.cmd_prepare import add_preprocess_args

    p.add_argument("model", help="model folder (finetune / demo / convert output)")
    p.add_argument("data", nargs="+", help="windows .npz from 'prepare', or EEG files/folders")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu", help="cpu, cuda, auto")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_preprocess_args(p, defaults_from_model=True)


def load_model_and_windows(args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any]]:
    """Load ``args.model`` and ``args.data``; check they fit each other.

    Returns
    -------
    model : CodeBrain or ProbedCodeBrain
    ds : WindowDataset
    meta : dict
        ``finetune.json`` of the model folder (``{}`` if absent).
    """
    from codebrain.cli import CLIError
    from codebrain.cli.cmd_prepare import load_data_arg
    from codebrain.training.finetune import load_finetuned

    model_dir = Path(args.model)
    if not model_dir.is_dir():
        raise CLIError(f"model folder {model_dir} not found.")
    model = load_finetuned(model_dir)
    base = None
    if (model_dir / "preprocess.json").is_file():
        base = json.loads((model_dir / "preprocess.json").read_text(encoding="utf-8"))
    meta: dict[str, Any] = {}
    if (model_dir / "finetune.json").is_file():
        meta = json.loads((model_dir / "finetune.json").read_text(encoding="utf-8"))
    ds, _ = load_data_arg(args.data, args, base)
    if ds.n_chans != model.n_chans:
        raise CLIError(f"the model takes {model.n_chans} channels but the data has {ds.n_chans}.")
    if ds.n_times != model.n_times:
        raise CLIError(
            f"the model takes windows of {model.n_times} samples but the data has {ds.n_times}."
        )
    return model, ds, meta


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``predict`` subcommand."""
    p = subparsers.add_parser(
        "predict",
        help="per-window probabilities (or regression outputs) to CSV",
        description=(
            "Run a fine-tuned model on windows and write one CSV row per window: subject, "
            "recording, onset, true label (if any), prediction and class probabilities."
        ),
    )
    add_common_args(p)
    p.add_argument("-o", "--out", required=True, help="output CSV file")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``codebrain predict``."""
    from codebrain.cli import CLIError
    from codebrain.training.finetune import predict
    from codebrain.training.metrics import softmax
    from codebrain.utils.io import atomic_open

    out = Path(args.out)
    if out.exists() and not args.force:
        raise CLIError(f"{out} exists; pass --force to overwrite it.")
    model, ds, meta = load_model_and_windows(args)
    outputs, labels = predict(
        model, ds, batch_size=args.batch_size, device=args.device, progress=not args.no_progress
    )
    task = meta.get("task") or ("regression" if model.n_outputs == 1 else "classification")
    classes = meta.get("classes") or ds.classes or [str(i) for i in range(model.n_outputs)]
    if task == "classification" and len(classes) != model.n_outputs:
        classes = [str(i) for i in range(model.n_outputs)]
    has_labels = ds.labels.dtype.kind == "f" or bool((ds.labels >= 0).any())
    with atomic_open(out, "w") as f:
        w = csv.writer(f)
        if task == "classification":
            probs = softmax(outputs)
            w.writerow(
                ["index", "subject", "recording", "onset_s"]
                + (["true"] if has_labels else [])
                + ["predicted"]
                + [f"p_{c}" for c in classes]
            )
            for i in range(len(ds)):
                true = []
                if has_labels:
                    lab = int(labels[i])
                    true = [classes[lab] if 0 <= lab < len(classes) else ""]
                w.writerow(
                    [i, ds.subject_ids[i], ds.recording_ids[i], f"{ds.onsets[i]:.3f}"]
                    + true
                    + [classes[int(probs[i].argmax())]]
                    + [f"{p:.6f}" for p in probs[i]]
                )
        else:
            w.writerow(["index", "subject", "recording", "onset_s", "true", "predicted"])
            for i in range(len(ds)):
                w.writerow(
                    [
                        i,
                        ds.subject_ids[i],
                        ds.recording_ids[i],
                        f"{ds.onsets[i]:.3f}",
                        f"{float(labels[i]):.6g}",
                        f"{float(outputs[i, 0]):.6g}",
                    ]
                )
    print(f"Wrote {out}: {len(ds)} windows, {model.n_outputs} outputs ({task}).")
    return 0
