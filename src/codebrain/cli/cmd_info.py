"""``codebrain info``: architecture summary, parameter counts and FLOPs per window."""

from __future__ import annotations

import argparse
import json
import logging
from typing import Any

from codebrain.cli._arch_args import (
    add_architecture_arguments,
    architecture_from_args,
    default_patch_size,
)

__all__ = ["register", "model_info"]

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``info`` subcommand."""
    p = subparsers.add_parser(
        "info",
        help="architecture summary, parameters per module, FLOPs per window",
        description=(
            "Describe a CodeBrain model: a saved folder (MODEL), or the paper's configuration "
            "(19 channels x 30 s at 200 Hz) when MODEL is omitted; --n-chans/--n-times/"
            "--n-outputs and the architecture flags (--res-channels, --num-res-layers, ...) "
            "override it."
        ),
    )
    p.add_argument("model", nargs="?", help="folder written by save_pretrained / finetune")
    p.add_argument("--n-chans", type=int, help="EEG channels (default 19)")
    p.add_argument("--n-times", type=int, help="samples per window (default 6000)")
    p.add_argument("--n-outputs", type=int, help="classes (default 2)")
    p.add_argument("--no-flops", action="store_true", help="skip the FLOP count (a forward pass)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_architecture_arguments(
        p.add_argument_group("architecture (default: MODEL's, else CodeBrain's)")
    )
    p.set_defaults(func=run)


def model_info(model: Any, *, flops: bool = True) -> dict[str, Any]:
    """Summary of a CodeBrain(-like) model for one window.

    Parameters
    ----------
    model : CodeBrain or ProbedCodeBrain
    flops : bool
        Count FLOPs of one ``(1, n_chans, n_times)`` forward with
        :class:`torch.utils.flop_counter.FlopCounterMode` (FFTs are not counted by torch).

    Returns
    -------
    dict
        ``config``, ``parameters`` (total, trainable, per top-level module), ``flops_per_window``
        and ``flops_by_op`` (when counted).
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    backbone = getattr(model, "backbone", model)
    per_module = {
        name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()
    }
    out: dict[str, Any] = {
        "class": type(model).__name__,
        "config": backbone.get_config(),
        "input_shape": [1, backbone.n_chans, backbone.n_times],
        "n_patches": backbone.n_patches,
        "n_tokens": backbone.n_chans * backbone.n_patches,
        "parameters": {
            "total": sum(p.numel() for p in model.parameters()),
            "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "per_module": per_module,
        },
    }
    if flops:
        model.eval()
        x = torch.zeros(1, backbone.n_chans, backbone.n_times)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model.classify(x)
        out["flops_per_window"] = int(counter.get_total_flops())
        glob = counter.get_flop_counts().get("Global", {})
        out["flops_by_op"] = {str(k): int(v) for k, v in glob.items()}
    return out


def _fmt(n: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return str(int(n))


def run(args: argparse.Namespace) -> int:
    """Run ``codebrain info``."""
    from codebrain.cli import CLIError
    from codebrain.models.codebrain import CodeBrain
    from codebrain.models.probe import load_finetuned

    overrides = {
        k: v
        for k, v in {
            "n_chans": args.n_chans,
            "n_times": args.n_times,
            "n_outputs": args.n_outputs,
        }.items()
        if v is not None
    }
    overrides.update(architecture_from_args(args))
    if args.model:
        if overrides:
            model = CodeBrain.from_pretrained(args.model, **overrides)
        else:
            model = load_finetuned(args.model)
    else:
        cfg: dict[str, Any] = {"n_chans": 19, "n_times": 6000, "n_outputs": 2}
        cfg.update(overrides)
        patch = cfg.get("patch_size", default_patch_size())
        if cfg["n_times"] < patch:
            raise CLIError(f"--n-times must be >= the patch size {patch}, got {cfg['n_times']}.")
        model = CodeBrain(**cfg)
    info = model_info(model, flops=not args.no_flops)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    c = info["config"]
    lines = [
        f"{info['class']}: {c['n_chans']} channels x {c['n_times']} samples -> "
        f"{info['n_patches']} patches/channel, {info['n_tokens']} tokens; n_outputs={c['n_outputs']}",
        f"  width {c['res_channels']} (skip {c['skip_channels']}, out {c['out_channels']}), "
        f"{c['num_res_layers']} residual blocks, window attention {c['swa_window_size']}, "
        f"codebooks {c['codebook_size_t']}+{c['codebook_size_f']}",
        f"parameters: {info['parameters']['total']:,} "
        f"(trainable {info['parameters']['trainable']:,})",
    ]
    for name, n in info["parameters"]["per_module"].items():
        lines.append(f"  {name:<18} {n:>14,}")
    if "flops_per_window" in info:
        lines.append(
            f"FLOPs per window: {_fmt(info['flops_per_window'])} (torch FlopCounterMode; FFTs not counted)"
        )
    print("\n".join(lines))
    return 0
