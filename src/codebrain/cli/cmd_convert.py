"""``codebrain convert``: the authors' checkpoints → ``save_pretrained`` folders.

``CodeBrain.pth`` (Stage 2 backbone) becomes a :class:`~codebrain.CodeBrain` folder;
``CodeBrain_Tokenizer.pth`` (Stage 1, recognised by its key names) becomes a
:class:`~codebrain.TFDualTokenizer` folder, its sizes read from the tensor shapes.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from codebrain.cli._arch_args import add_architecture_arguments, architecture_from_args

__all__ = ["register", "convert_checkpoint"]

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``convert`` subcommand."""
    p = subparsers.add_parser(
        "convert",
        help="convert the authors' .pth checkpoint into a save_pretrained folder",
        description=(
            "Read an upstream CodeBrain checkpoint (DataParallel state dict, .pth) or any "
            "codebrain/braindecode state dict, remap its keys, check them against the model "
            "built from --n-chans/--n-times/--n-outputs, and write config.json + "
            "model.safetensors. Missing or differently-shaped classification-head weights are "
            "allowed (the head is freshly initialised). The authors' tokenizer "
            "(CodeBrain_Tokenizer.pth) is recognised by its key names and written as a "
            "TFDualTokenizer folder (--n-chans/--n-times/--n-outputs do not apply)."
        ),
    )
    p.add_argument("checkpoint", help="input .pth / .pt / .bin / .safetensors file")
    p.add_argument("out", help="output folder (must not exist unless --force)")
    p.add_argument("--n-chans", type=int, default=19, help="EEG channels (default 19)")
    p.add_argument("--n-times", type=int, default=6000, help="samples per window (default 6000)")
    p.add_argument("--n-outputs", type=int, default=2, help="classes of the head (default 2)")
    p.add_argument("--sfreq", type=float, default=None, help="sampling frequency to record")
    add_architecture_arguments(
        p.add_argument_group("architecture of the checkpoint (default: the released model's)")
    )
    p.add_argument(
        "--tokenizer-heads",
        type=int,
        default=10,
        help="attention heads of a converted tokenizer (not visible in shapes; default 10)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    p.set_defaults(func=run)


def convert_checkpoint(
    checkpoint: str | Path,
    *,
    n_chans: int,
    n_times: int,
    n_outputs: int,
    sfreq: float | None = None,
    **arch: int,
) -> tuple[object, list[str]]:
    """Build a :class:`~codebrain.CodeBrain` and load ``checkpoint`` into it.

    ``arch`` holds further constructor arguments (``res_channels``, ``num_res_layers``, ...).

    Returns
    -------
    model : CodeBrain
    reset : list of str
        Head keys that were absent or of another shape (freshly initialised).

    Raises
    ------
    ValueError
        Backbone keys are missing or unexpected, or shapes disagree (named in the message).
    """
    from codebrain import CodeBrain, load_checkpoint_file

    state = load_checkpoint_file(checkpoint)
    kwargs = dict(n_chans=n_chans, n_times=n_times, n_outputs=n_outputs, **arch)
    if sfreq is not None:
        kwargs["sfreq"] = sfreq
    model = CodeBrain(**kwargs)
    try:
        reset = model.load_pretrained_weights(state, source=str(checkpoint))
    except ValueError as err:
        raise ValueError(
            f"{checkpoint} does not fit CodeBrain(n_chans={n_chans}, n_times={n_times}): {err}"
        ) from err
    return model, reset


def run(args: argparse.Namespace) -> int:
    """Run ``codebrain convert``."""
    from codebrain.cli import CLIError
    from codebrain.cli._outputs import check_output, folder_kind
    from codebrain.utils.io import atomic_replace_dir

    ckpt = Path(args.checkpoint)
    if ckpt.is_dir():
        found = folder_kind(ckpt)
        raise CLIError(
            f"checkpoint {ckpt} is {found or 'a folder'}, not a checkpoint file; convert takes "
            "a .pth / .pt / .bin / .safetensors file"
            + (
                " (a model folder needs no conversion: use it directly, e.g. "
                "CodeBrain.from_pretrained or 'finetune --model')."
                if found and "model" in found
                else "."
            )
        )
    if not ckpt.exists():
        raise CLIError(f"checkpoint {ckpt} does not exist.")
    out = check_output(
        args.out,
        kind="dir",
        force=args.force,
        inputs=[ckpt],
        replaceable=("a model folder (save_pretrained)",),
    )
    from codebrain import load_checkpoint_file
    from codebrain.models.checkpoints import is_upstream_tokenizer_state_dict

    state = load_checkpoint_file(args.checkpoint)
    if is_upstream_tokenizer_state_dict(state):
        from codebrain import TFDualTokenizer

        try:
            tok = TFDualTokenizer.from_upstream(state, num_heads=args.tokenizer_heads)
        except ValueError as err:
            raise CLIError(
                f"{args.checkpoint} is not a loadable CodeBrain tokenizer: {err}"
            ) from err
        with atomic_replace_dir(out) as tmp:
            tok.save_pretrained(tmp)
        n = sum(p.numel() for p in tok.parameters())
        print(f"Converted tokenizer {args.checkpoint} -> {out} ({n:,} parameters)")
        return 0
    model, reset = convert_checkpoint(
        args.checkpoint,
        n_chans=args.n_chans,
        n_times=args.n_times,
        n_outputs=args.n_outputs,
        sfreq=args.sfreq,
        **architecture_from_args(args),
    )
    if reset:
        logger.warning(
            "Classification head not in the checkpoint (or of another shape): %d tensors "
            "initialised afresh; fine-tune before predicting.",
            len(reset),
        )
    with atomic_replace_dir(out) as tmp:
        model.save_pretrained(tmp)
    n = sum(p.numel() for p in model.parameters())
    print(f"Converted {args.checkpoint} -> {out} ({n:,} parameters; head reset: {bool(reset)})")
    return 0
