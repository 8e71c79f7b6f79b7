"""``codebrain tokenizer-train``: train the Stage 1 TFDual-Tokenizer on a corpus.

Examples
--------
On a corpus built by ``codebrain prepare`` (a folder with ``manifest.json``)::

    codebrain tokenizer-train --corpus corpus/ --out runs/tok --steps 20000

On a folder of ``.npy`` arrays shaped ``(n_windows, n_chans, n_times)``::

    codebrain tokenizer-train --corpus windows/ --out runs/tok --steps 2000 --bf16

With the authors' training settings (20 epochs of batch 256, lr 1e-4 x batch/128, weight
decay 1e-4, cosine to 1e-5, no clipping, fp16 on a GPU)::

    codebrain tokenizer-train --corpus corpus/ --out runs/tok --recipe paper

Re-running the same command continues from the newest checkpoint in ``OUT/checkpoints``
(``--no-resume`` starts over in a fresh folder only). The trained tokenizer is written to
``OUT/tokenizer`` and loads with ``TFDualTokenizer.from_pretrained(OUT/tokenizer)``; Stage 2
uses it through ``codebrain pretrain --tokenizer OUT/tokenizer``.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from codebrain.cli import CLIError

__all__ = ["register", "run"]

logger = logging.getLogger(__name__)

#: training flags -> their parser defaults (a flag left at its default takes the recipe's value)
_TRAIN_DEFAULTS: dict[str, Any] = {}
# flag dest -> TokenizerTrainConfig field
_TRAIN_FIELDS = {
    "steps": "max_steps",
    "batch_size": "batch_size",
    "lr": "lr",
    "warmup_steps": "warmup_steps",
    "min_lr_ratio": "min_lr_ratio",
    "weight_decay": "weight_decay",
    "grad_clip": "grad_clip",
    "seed": "seed",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``tokenizer-train`` subcommand."""
    p = subparsers.add_parser(
        "tokenizer-train",
        help="train the Stage 1 TFDual-Tokenizer (VQ-VAE, temporal + frequency codebooks)",
        description=(
            "Train the TFDual-Tokenizer that maps each 1 s EEG patch to a temporal and a "
            "frequency token. Checkpoints, CSV/JSON logs and the final tokenizer go to --out; "
            "re-running continues from the newest checkpoint."
        ),
        epilog="example: codebrain tokenizer-train --corpus corpus/ --out runs/tok --steps 2000",
    )
    io = p.add_argument_group("inputs and outputs")
    io.add_argument(
        "--corpus",
        required=True,
        help="built corpus folder (manifest.json) or folder of .npy (n_windows, n_chans, n_times)",
    )
    io.add_argument("--out", required=True, help="run folder (checkpoints, logs, tokenizer/)")

    m = p.add_argument_group("architecture (defaults: the released configuration)")
    m.add_argument("--patch-size", type=int, default=200, help="samples per patch (200)")
    m.add_argument("--embed-dim", type=int, default=200)
    m.add_argument("--depth", type=int, default=12, help="encoder Transformer layers")
    m.add_argument("--heads", type=int, default=10, help="attention heads")
    m.add_argument("--decoder-depth", type=int, default=3)
    m.add_argument("--conv-channels", type=int, default=8)
    m.add_argument("--codebook-size", type=int, default=4096, help="K of each codebook")
    m.add_argument("--code-dim", type=int, default=32)
    m.add_argument("--dropout", type=float, default=0.0)
    m.add_argument("--ema-decay", type=float, default=0.99)
    m.add_argument(
        "--dead-code-threshold",
        type=float,
        default=0.0,
        help="restart codes whose EMA usage per step falls below this (0, the release: never)",
    )
    m.add_argument(
        "--kmeans-init",
        action="store_true",
        help="k-means initialisation of the codebooks (off in the release; helps small runs)",
    )
    m.add_argument("--max-chans", type=int, help="channel-embedding size (default: fit data)")
    m.add_argument("--max-patches", type=int, help="patch-embedding size (default: fit data)")

    t = p.add_argument_group("training")
    t.add_argument(
        "--recipe",
        choices=["codebrain", "paper"],
        default="codebrain",
        help=(
            "codebrain: the defaults below; paper: the authors' settings (20 epochs, batch 256, "
            "lr 1e-4 x total batch/128, wd 1e-4 on all parameters, cosine to 1e-5, no "
            "clipping, fp16 on GPU, seed 42). Flags set explicitly override the recipe"
        ),
    )
    t.add_argument("--steps", type=int, default=20000)
    t.add_argument("--batch-size", type=int, default=64, help="windows per step per process")
    t.add_argument("--lr", type=float, default=5e-4)
    t.add_argument("--warmup-steps", type=int, default=1000)
    t.add_argument("--min-lr-ratio", type=float, default=0.01)
    t.add_argument("--weight-decay", type=float, default=1e-4)
    t.add_argument("--grad-clip", type=float, default=3.0, help="0 disables")
    t.add_argument("--bf16", action="store_true", help="bf16 autocast (CPU and GPU)")
    t.add_argument("--fp16", action="store_true", help="fp16 autocast + grad scaler (GPU)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--num-workers", type=int, default=0)
    t.add_argument("--log-every", type=int, default=50)
    t.add_argument("--checkpoint-every", type=int, default=1000)
    t.add_argument("--keep-checkpoints", type=int, default=3)
    t.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: GPU if available)")
    t.add_argument("--no-resume", action="store_true", help="ignore existing checkpoints")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    _TRAIN_DEFAULTS.update({a.dest: a.default for a in t._group_actions})
    p.set_defaults(func=run)


def _configs(
    args: argparse.Namespace, n_chans: int, n_times: int, n_windows: int = 0
) -> tuple[Any, Any]:
    from codebrain.models.tokenizer import TokenizerConfig
    from codebrain.training.tokenizer_trainer import TokenizerTrainConfig

    if args.patch_size < 1 or n_times % args.patch_size:
        raise CLIError(
            f"windows have {n_times} samples, not a multiple of --patch-size {args.patch_size}."
        )
    model_cfg = TokenizerConfig(
        patch_size=args.patch_size,
        max_chans=args.max_chans if args.max_chans is not None else max(128, n_chans),
        max_patches=(
            args.max_patches
            if args.max_patches is not None
            else max(60, n_times // args.patch_size)
        ),
        embed_dim=args.embed_dim,
        conv_channels=args.conv_channels,
        depth=args.depth,
        num_heads=args.heads,
        decoder_depth=args.decoder_depth,
        codebook_size_t=args.codebook_size,
        codebook_size_f=args.codebook_size,
        code_dim=args.code_dim,
        dropout=args.dropout,
        ema_decay=args.ema_decay,
        dead_code_threshold=args.dead_code_threshold,
        kmeans_init=args.kmeans_init,
    )
    if args.bf16 and args.fp16:
        raise CLIError("--bf16 and --fp16 exclude each other.")
    flags = {field: getattr(args, dest) for dest, field in _TRAIN_FIELDS.items()}
    fixed = dict(
        num_workers=args.num_workers,
        log_every=args.log_every,
        checkpoint_every=args.checkpoint_every,
        keep_checkpoints=args.keep_checkpoints,
        device=args.device,
        resume=not args.no_resume,
        progress=not args.no_progress,
    )
    precision = "bf16" if args.bf16 else "fp16" if args.fp16 else None
    if args.recipe == "paper":
        import torch

        world = int(os.environ.get("WORLD_SIZE", "1"))
        explicit = {
            field: getattr(args, dest)
            for dest, field in _TRAIN_FIELDS.items()
            if getattr(args, dest) != _TRAIN_DEFAULTS.get(dest)
        }
        if precision is None:
            on_gpu = (args.device or ("cuda" if torch.cuda.is_available() else "cpu")) != "cpu"
            precision = "fp16" if on_gpu else "fp32"
            if not on_gpu:
                logger.warning("--recipe paper on the CPU: fp32 instead of the authors' fp16.")
        try:
            train_cfg = TokenizerTrainConfig.paper(
                n_windows, world, **explicit, **fixed, precision=precision
            )
        except ValueError as err:
            raise CLIError(f"--recipe paper: {err}") from err
    else:
        train_cfg = TokenizerTrainConfig(**flags, **fixed, precision=precision or "fp32")
    return model_cfg, train_cfg


def run(args: argparse.Namespace) -> int:
    """Run ``tokenizer-train``; returns the exit code."""
    from codebrain.cli._common import check_run_folder, load_windows
    from codebrain.training.checkpointing import latest_checkpoint, load_checkpoint
    from codebrain.training.tokenizer_trainer import train_tokenizer

    check_run_folder(args.out, command="tokenizer-train", own_kind="a tokenizer-train run folder")
    dataset = load_windows(args.corpus)
    if len(dataset) == 0:  # type: ignore[arg-type]
        raise CLIError(f"corpus {args.corpus!r} holds no windows.")
    first = dataset[0]
    first = first[0] if isinstance(first, (tuple, list)) else first
    n_chans, n_times = (int(v) for v in first.shape)
    model_cfg, train_cfg = _configs(args, n_chans, n_times, len(dataset))  # type: ignore[arg-type]
    out = Path(args.out)
    if args.no_resume and (out / "checkpoints").is_dir() and any((out / "checkpoints").iterdir()):
        raise CLIError(
            f"--no-resume but {out / 'checkpoints'} already holds checkpoints; choose a new "
            "--out folder."
        )
    last = None if args.no_resume else latest_checkpoint(out / "checkpoints")
    if last is not None:
        saved = load_checkpoint(last, restore_rng=False).get("model_config")
        if saved is not None and saved != model_cfg.to_dict():
            changed = sorted(k for k in saved if saved.get(k) != model_cfg.to_dict().get(k))
            raise CLIError(
                f"{last} was written for another tokenizer architecture ({', '.join(changed)} "
                "differ); give the run's architecture flags to continue it, or choose another "
                "--out."
            )
    logger.info(
        "Training the TFDual-Tokenizer on %d windows (%d channels x %d samples)",
        len(dataset),  # type: ignore[arg-type]
        n_chans,
        n_times,
    )
    result = train_tokenizer(dataset, train_cfg, out, model_config=model_cfg)
    last = result.history[-1] if result.history else {}
    print(
        f"tokenizer-train: {result.step} steps, loss {last.get('loss', float('nan')):.4f}, "
        f"codes used t={last.get('used_t', float('nan')):.2f} "
        f"f={last.get('used_f', float('nan')):.2f}; tokenizer in {out / 'tokenizer'}"
    )
    return 0
