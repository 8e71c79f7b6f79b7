"""``codebrain export``: write a saved CodeBrain model as an ONNX file (checked with onnxruntime)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from codebrain.cli import CLIError

__all__ = ["register", "run"]

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand."""
    p = subparsers.add_parser(
        "export",
        help="export a saved model to ONNX",
        description=(
            "Load a model folder written by save_pretrained (CodeBrain.from_pretrained) and "
            "export it, in eval mode with a fixed input shape, to an ONNX file; the result is "
            "compared against PyTorch with onnxruntime unless --no-check is given."
        ),
    )
    p.add_argument("--model", required=True, help="model folder (save_pretrained output)")
    p.add_argument("--out", required=True, help="destination .onnx file")
    p.add_argument("--batch-size", type=int, default=1, help="batch size of the graph (default 1)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 20, minimum 20)")
    p.add_argument(
        "--output",
        choices=("logits", "features", "token_logits"),
        default="logits",
        help="what the graph returns (default: class logits)",
    )
    p.add_argument("--dynamic-batch", action="store_true", help="symbolic batch dimension")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export; returns 0 on success."""
    import torch

    from codebrain import CodeBrain
    from codebrain.export import DEFAULT_OPSET, check_onnx, export_onnx

    model_dir = Path(args.model)
    if not model_dir.is_dir():
        raise CLIError(f"--model {model_dir} is not a folder (expected save_pretrained output).")
    if args.batch_size < 1:
        raise CLIError(f"--batch-size must be >= 1, got {args.batch_size}.")
    opset = DEFAULT_OPSET if args.opset is None else args.opset
    if opset < 20:
        raise CLIError(f"--opset must be >= 20 (ONNX DFT), got {opset}.")
    from codebrain.cli._outputs import check_output

    out = check_output(args.out, suffixes=(".onnx",), force=args.force, inputs=[model_dir])
    try:
        model = CodeBrain.from_pretrained(model_dir)
    except (OSError, ValueError, KeyError) as err:
        raise CLIError(f"cannot load a CodeBrain model from {model_dir}: {err}") from err
    model.eval()
    export_onnx(
        model,
        out,
        batch_size=args.batch_size,
        opset=opset,
        output=args.output,
        dynamic_batch=args.dynamic_batch,
    )
    if not args.no_check:
        torch.manual_seed(0)
        x = torch.randn(args.batch_size, model.n_chans, model.n_times)
        err = check_onnx(model, out, x, output=args.output)
        logger.info("onnxruntime vs PyTorch: max relative difference %.2e", err)
        if err > 1e-4:
            raise CLIError(f"onnxruntime output differs from PyTorch by {err:.2e} (> 1e-4).")
    print(out)
    return 0
