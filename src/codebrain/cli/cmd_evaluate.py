"""``codebrain evaluate``: metrics of a fine-tuned model on labelled windows."""

from __future__ import annotations

import argparse
import logging

__all__ = ["register"]

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` subcommand."""
    from codebrain.cli._model_args import add_common_args

    p = subparsers.add_parser(
        "evaluate",
        help="metrics (balanced accuracy, kappa, F1, AUROC, AUPRC / RMSE, R²) on labelled windows",
        description=(
            "Evaluate a fine-tuned model on labelled windows: balanced accuracy, Cohen's kappa, "
            "weighted F1 (and AUROC/AUPRC for two classes), or RMSE/R²/Pearson for regression. "
            "Prints a summary; --out writes the metrics as JSON, --confusion-png a figure."
        ),
    )
    add_common_args(p)
    p.add_argument("-o", "--out", help="metrics JSON file")
    p.add_argument("--confusion-png", help="confusion-matrix PNG file (classification)")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``codebrain evaluate``."""
    from codebrain.cli import CLIError
    from codebrain.cli._data_args import labelled_subset
    from codebrain.cli._model_args import check_outputs_finite, load_model_and_windows
    from codebrain.cli._outputs import check_output
    from codebrain.training.inference import predict
    from codebrain.training.metrics import compute_metrics
    from codebrain.training.plots import plot_confusion_matrix
    from codebrain.utils.io import atomic_write_json

    inputs = [args.model, *args.data, args.labels]
    if args.out:
        check_output(args.out, suffixes=(".json",), force=args.force, inputs=inputs)
    if args.confusion_png:
        check_output(
            args.confusion_png,
            flag="--confusion-png",
            suffixes=(".png",),
            force=args.force,
            inputs=[*inputs, args.out],
        )
    model, ds, meta = load_model_and_windows(args)
    ds = labelled_subset(ds)
    if len(ds) == 0:
        raise CLIError("no labelled windows to evaluate.")
    task = meta.get("task") or ("regression" if model.n_outputs == 1 else "classification")
    if task == "classification":
        labels = ds.labels
        if labels.dtype.kind == "f" or labels.max() >= model.n_outputs:
            raise CLIError(
                f"labels must be class indices below the model's {model.n_outputs} outputs."
            )
    outputs, labels = predict(
        model, ds, batch_size=args.batch_size, device=args.device, progress=not args.no_progress
    )
    check_outputs_finite(outputs, args.model)
    metrics = compute_metrics(labels, outputs, task)
    classes = meta.get("classes") or ds.classes
    result = {"task": task, "n_windows": len(ds), "classes": classes, "metrics": metrics}
    if args.confusion_png and task == "classification":
        names = classes if classes and len(classes) == model.n_outputs else None
        plot_confusion_matrix(metrics["confusion_matrix"], args.confusion_png, class_names=names)
    if args.out:
        atomic_write_json(args.out, result)
    shown = {k: v for k, v in metrics.items() if isinstance(v, float)}
    print(
        f"{len(ds)} windows ({task}): "
        + ", ".join(f"{k} {v:.4f}" for k, v in shown.items())
        + (f"; wrote {args.out}" if args.out else "")
    )
    return 0
