"""``codebrain tokenizer-train``: train the Stage 1 TFDual-Tokenizer on a corpus.

Examples
--------
On a corpus built by ``codebrain prepare`` (a folder with ``manifest.json``)::

    codebrain tokenizer-train --corpus corpus/ --out runs/tok --steps 20000

(without ``--steps`` the run is ``TokenizerTrainConfig``'s 100 000 steps)

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
import dataclasses
import logging
import os
import typing
from pathlib import Path
from typing import Any

from codebrain.cli import CLIError
from codebrain.cli._config_args import (
    add_config_arguments,
    add_config_file_argument,
    add_precision_short_forms,
    build_config,
    config_file_error,
    config_from_args,
    config_overrides,
    resume_arg_kwargs,
)
from codebrain.models.tokenizer import TokenizerConfig
from codebrain.training.tokenizer_trainer import TokenizerTrainConfig

__all__ = ["register", "run"]

logger = logging.getLogger(__name__)

#: where a run folder's saved config keeps the training settings (``config.json``'s
#: ``"tokenizer-train"``; ``"train"`` in the earlier ``train_config.json``)
_SECTIONS = ("tokenizer-train", "train")


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
    io.add_argument("--out", required=True, help="run folder (checkpoints, logs, final/ tokenizer)")

    add_config_file_argument(io, TokenizerTrainConfig)

    m = p.add_argument_group("architecture (defaults: TokenizerConfig, the released one)")
    add_config_arguments(
        m,
        TokenizerConfig,
        exclude=("codebook_size_t", "codebook_size_f", "max_chans", "max_patches"),
        rename={"num_heads": "heads"},
        aliases={"num_heads": ["--num-heads"]},
    )
    m.add_argument(
        "--codebook-size",
        type=int,
        default=argparse.SUPPRESS,
        metavar="K",
        help=f"K of each codebook (default: {TokenizerConfig.codebook_size_t})",
    )
    m.add_argument(
        "--max-chans",
        type=int,
        metavar="N",
        help=f"channel-embedding size (default: the data's channels, at least "
        f"{TokenizerConfig.max_chans})",
    )
    m.add_argument(
        "--max-patches",
        type=int,
        metavar="N",
        help=f"patch-embedding size (default: the data's patches, at least "
        f"{TokenizerConfig.max_patches})",
    )

    t = p.add_argument_group("training (defaults: TokenizerTrainConfig)")
    t.add_argument(
        "--recipe",
        choices=["codebrain", "paper"],
        default="codebrain",
        help=(
            "codebrain: the defaults below; paper: the authors' settings (20 epochs, batch 256, "
            "lr 1e-4 x total batch/128, wd 1e-4 on all parameters, cosine to 1e-5, no "
            "clipping, fp16 on GPU, seed 42). --config and flags set explicitly override "
            "the recipe"
        ),
    )
    steps = "steps" if _has_field(TokenizerTrainConfig, "steps") else "max_steps"
    add_config_arguments(
        t,
        TokenizerTrainConfig,
        # before the shared vocabulary the field was max_steps; --steps is its flag either way
        rename={"max_steps": "steps"} if steps == "max_steps" else None,
        hidden_aliases={"max_steps": ["--max-steps"]} if steps == "max_steps" else None,
        arg_kwargs={"resume": resume_arg_kwargs(TokenizerTrainConfig)},
        help={
            "resume": "continue from the newest checkpoint in --out when there is one"
            + (", or from the checkpoint file CKPT" if _takes_a_path("resume") else "")
            + " (--no-resume: refuse to run over checkpoints)",
            "device": "cpu, cuda, cuda:1 ... (default: GPU if available)",
        },
    )
    add_precision_short_forms(t)
    p.set_defaults(func=run)


def _takes_a_path(name: str) -> bool:
    """Whether TokenizerTrainConfig's field ``name`` also takes a string (``bool | str``)."""
    return str in typing.get_args(typing.get_type_hints(TokenizerTrainConfig).get(name))


def _has_field(cls: type, name: str) -> bool:
    return any(f.name == name for f in dataclasses.fields(cls))


#: stand-in corpus size of ``--recipe paper`` before the corpus is read: the recipe's settings
#: (and the file and flags over them) are checked with it, and rebuilt from the real size
#: afterwards (only ``steps`` depends on it)
_PAPER_CHECK_WINDOWS = 256 * 1024


def _model_config(
    args: argparse.Namespace,
    n_chans: int | None = None,
    n_times: int | None = None,
    given: dict[str, Any] | None = None,
) -> Any:
    """TokenizerConfig: the defaults < the flags; slot sizes fitted to the data.

    Without ``n_chans``/``n_times`` (the corpus not read yet) the flags are checked with the
    default slot sizes. ``given`` is ``config_overrides(TokenizerConfig, args)`` when already
    read.
    """
    given = dict(config_overrides(TokenizerConfig, args) if given is None else given)
    if "codebook_size" in vars(args):
        given.setdefault("codebook_size_t", args.codebook_size)
        given.setdefault("codebook_size_f", args.codebook_size)
    patch = given.get("patch_size", TokenizerConfig.patch_size)
    if n_times is not None and (patch < 1 or n_times % patch):
        raise CLIError(f"windows have {n_times} samples, not a multiple of --patch-size {patch}.")
    given["max_chans"] = (
        args.max_chans
        if args.max_chans is not None
        else max(TokenizerConfig.max_chans, n_chans or 0)
    )
    given["max_patches"] = (
        args.max_patches
        if args.max_patches is not None
        else max(TokenizerConfig.max_patches, n_times // patch if n_times is not None else 0)
    )
    return build_config(TokenizerConfig, given)


def _train_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The TokenizerTrainConfig fields of ``--config FILE`` and the flags given (flags win).

    Invalid JSON/YAML, unknown keys and values of the wrong type raise
    :class:`~codebrain.cli.CLIError` naming the file. With ``--recipe paper`` and no
    precision given, the precision is the recipe's fp16 on a GPU and fp32 on the CPU.
    """
    explicit = config_overrides(TokenizerTrainConfig, args, args.config, sections=_SECTIONS)
    if args.recipe == "paper" and "precision" not in explicit:
        import torch

        device = explicit.get("device")
        on_gpu = (device or ("cuda" if torch.cuda.is_available() else "cpu")) != "cpu"
        explicit["precision"] = "fp16" if on_gpu else "fp32"
        if not on_gpu:
            logger.warning("--recipe paper on the CPU: fp32 instead of the authors' fp16.")
    return explicit


def _train_config(
    args: argparse.Namespace, explicit: dict[str, Any], n_windows: int | None = None
) -> Any:
    """TokenizerTrainConfig: its defaults (or ``--recipe paper``'s) < ``--config FILE`` < flags.

    ``explicit`` is :func:`_train_overrides`. ``--recipe paper`` without ``n_windows`` (the
    corpus not read yet) uses a stand-in size, to check the settings.
    """
    if args.recipe != "paper":
        return config_from_args(
            TokenizerTrainConfig, args, args.config, sections=_SECTIONS, overrides=explicit
        )
    world = int(os.environ.get("WORLD_SIZE", "1"))
    n = _PAPER_CHECK_WINDOWS * world if n_windows is None else n_windows

    def paper(given: dict[str, Any]) -> Any:
        return TokenizerTrainConfig.paper(n, world, **given)

    try:
        return paper(explicit)
    except (TypeError, ValueError) as err:
        blamed = config_file_error(err, explicit, paper)  # a value of --config FILE: name it
        raise (blamed or CLIError(f"--recipe paper: {err}")) from err


def _configs(
    args: argparse.Namespace, n_chans: int, n_times: int, n_windows: int = 0
) -> tuple[Any, Any]:
    """The model and training configs for a corpus of ``n_windows`` windows."""
    model_cfg = _model_config(args, n_chans, n_times)
    return model_cfg, _train_config(args, _train_overrides(args), n_windows)


def run(args: argparse.Namespace) -> int:
    """Run ``tokenizer-train``; returns the exit code."""
    from codebrain.cli._data_args import load_windows
    from codebrain.cli._outputs import check_run_folder
    from codebrain.training._distributed import elastic_restart_count
    from codebrain.training.checkpointing import latest_checkpoint, load_checkpoint
    from codebrain.training.run import LAYOUT, RunFolder
    from codebrain.training.tokenizer_trainer import train_tokenizer

    # The config file and every flag first: a bad config fails before the corpus is read.
    explicit = _train_overrides(args)
    model_given = config_overrides(TokenizerConfig, args)
    _model_config(args, given=model_given)
    train_cfg = _train_config(args, explicit)
    check_run_folder(args.out, command="tokenizer-train", own_kind="a tokenizer-train run folder")
    dataset = load_windows(args.corpus)
    if len(dataset) == 0:  # type: ignore[arg-type]
        raise CLIError(f"corpus {args.corpus!r} holds no windows.")
    first = dataset[0]
    first = first[0] if isinstance(first, (tuple, list)) else first
    n_chans, n_times = (int(v) for v in first.shape)
    model_cfg = _model_config(args, n_chans, n_times, model_given)
    if args.recipe == "paper":  # epochs -> steps need the corpus size
        train_cfg = _train_config(args, explicit, len(dataset))  # type: ignore[arg-type]
    out = Path(args.out)
    # a group that torchrun relaunched (--max-restarts) resumes without --resume
    no_resume = train_cfg.resume is False and elastic_restart_count() == 0
    checkpoints = RunFolder(out, "tokenizer-train").checkpoints_dir
    if no_resume and checkpoints.is_dir() and any(checkpoints.iterdir()):
        raise CLIError(
            f"--no-resume but {checkpoints} already holds checkpoints; choose a new --out folder."
        )
    last = None if no_resume else latest_checkpoint(checkpoints)
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
        f"f={last.get('used_f', float('nan')):.2f}; tokenizer in {out / LAYOUT.final}"
    )
    return 0
