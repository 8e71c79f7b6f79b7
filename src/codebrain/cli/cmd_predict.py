"""``codebrain predict``: per-window class probabilities (or regression outputs) to CSV.

The model folder (from ``finetune``, ``demo`` or ``convert``) and the windows (an ``.npz``, or
EEG files prepared with the settings stored next to the model, ``preprocess.json``, which the
preprocessing flags override) are loaded by
:func:`codebrain.cli._model_args.load_model_and_windows`, shared with ``evaluate`` and ``embed``.
"""

from __future__ import annotations

import argparse
import csv
import logging

__all__ = ["register"]

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``predict`` subcommand."""
    from codebrain.cli._model_args import add_common_args

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
    from codebrain.cli._model_args import check_outputs_finite, load_model_and_windows
    from codebrain.cli._outputs import check_output
    from codebrain.training.inference import predict
    from codebrain.training.metrics import softmax
    from codebrain.utils.io import atomic_open

    out = check_output(
        args.out,
        suffixes=(".csv",),
        force=args.force,
        inputs=[args.model, *args.data, args.labels],
    )
    model, ds, meta = load_model_and_windows(args)
    outputs, labels = predict(
        model, ds, batch_size=args.batch_size, device=args.device, progress=not args.no_progress
    )
    check_outputs_finite(outputs, args.model)
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
