"""``codebrain embed``: CodeBrain features of every window to ``.npy`` / ``.npz``."""

from __future__ import annotations

import argparse
import logging

import numpy as np

__all__ = ["register"]

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``embed`` subcommand."""
    from codebrain.cli._model_args import add_common_args

    p = subparsers.add_parser(
        "embed",
        help="backbone features of every window to .npy / .npz",
        description=(
            "Encode windows with the backbone. --pooling none keeps (n_windows, n_chans, "
            "n_patches, dim); mean_patches gives (n_windows, n_chans*dim); mean (n_windows, "
            "dim); flatten (n_windows, n_chans*n_patches*dim). A .npz output also holds labels, "
            "subject_ids, recording_ids and onsets; a .npy only the features."
        ),
    )
    add_common_args(p)
    p.add_argument("-o", "--out", required=True, help="output .npy or .npz file")
    p.add_argument(
        "--pooling", choices=("none", "mean_patches", "mean", "flatten"), default="mean_patches"
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``codebrain embed``."""
    from codebrain.cli._model_args import check_outputs_finite, load_model_and_windows
    from codebrain.cli._outputs import check_output
    from codebrain.training.inference import encode_dataset
    from codebrain.utils.io import atomic_open

    out = check_output(
        args.out,
        suffixes=(".npy", ".npz"),
        force=args.force,
        inputs=[args.model, *args.data, args.labels],
    )
    model, ds, _ = load_model_and_windows(args)
    feats, labels = encode_dataset(
        model,
        ds,
        pooling=None if args.pooling == "none" else args.pooling,
        batch_size=args.batch_size,
        device=args.device,
        progress=not args.no_progress,
    )
    check_outputs_finite(feats, args.model)
    with atomic_open(out, "wb") as f:
        if out.suffix == ".npy":
            np.save(f, feats)
        else:
            np.savez(
                f,
                features=feats,
                labels=labels,
                subject_ids=np.asarray(ds.subject_ids, dtype=str),
                recording_ids=np.asarray(ds.recording_ids, dtype=str),
                onsets=np.asarray(ds.onsets),
            )
    print(f"Wrote {out}: features {tuple(feats.shape)} ({args.pooling}).")
    return 0
