r"""``codebrain pretrain``: Stage 2 masked-token pretraining on a corpus (one CPU to many GPUs).

Examples
--------
One process::

    codebrain pretrain --corpus corpus/ --tokenizer tok/ --out runs/pt --steps 2000

Two processes on one machine (CPU: gloo; GPUs: NCCL, one per process)::

    torchrun --nproc_per_node=2 -m codebrain.cli pretrain --corpus corpus/ --tokenizer tok/ \
        --out runs/pt --batch-size 32

Two machines with 8 GPUs each (run on both; standard torchrun rendezvous)::

    torchrun --nnodes=2 --nproc_per_node=8 --rdzv_backend=c10d \
        --rdzv_endpoint=HOST:29500 --rdzv_id=pt1 -m codebrain.cli pretrain ... --resume

``--resume`` (no value) continues from the newest checkpoint in ``OUT/checkpoints`` if any;
``--resume PATH`` from a given checkpoint. The backbone is written to ``OUT/final`` and loads
for fine-tuning with ``CodeBrain.from_pretrained(OUT/final, n_outputs=K)``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

from codebrain.cli import CLIError
from codebrain.cli._arch_args import add_architecture_arguments, architecture_from_args, n_tokens
from codebrain.cli._config_args import (
    add_config_arguments,
    add_config_file_argument,
    add_precision_short_forms,
    config_from_args,
    config_overrides,
    resume_arg_kwargs,
)
from codebrain.training.masking import MASK_STRATEGIES
from codebrain.training.pretrain import PretrainConfig

__all__ = ["register", "run"]

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``pretrain`` subcommand."""
    p = subparsers.add_parser(
        "pretrain",
        help="Stage 2 masked-token pretraining of the backbone (torchrun-ready)",
        description=(
            "Pretrain the EEGSSM backbone to predict the frozen TFDual-Tokenizer's temporal and "
            "frequency token ids of masked patches. Runs as one process or under torchrun "
            "(DistributedDataParallel; NCCL on GPUs, gloo on CPUs)."
        ),
        epilog="example: torchrun --nproc_per_node=2 -m codebrain.cli pretrain --corpus C "
        "--tokenizer T --out O",
    )
    io = p.add_argument_group("inputs and outputs")
    io.add_argument("--corpus", required=True, help="corpus folder written by build_corpus")
    io.add_argument("--tokenizer", required=True, help="TFDual-Tokenizer folder (Stage 1)")
    io.add_argument("--out", required=True, help="run folder (logs, checkpoints, final/)")
    io.add_argument(
        "--init", help="start from a saved CodeBrain folder instead of a fresh backbone"
    )
    io.add_argument(
        "--val-fraction",
        type=float,
        default=0.05,
        help="fraction of the corpus recordings held out for validation (0 disables; 0.05)",
    )
    add_config_file_argument(io, PretrainConfig)
    io.add_argument(
        "--recipe",
        choices=["codebrain", "paper"],
        default="codebrain",
        help=(
            "codebrain: PretrainConfig defaults; paper: the authors' settings (10 epochs, "
            "batch 256, AdamW lr 1e-4 wd 5e-3, cosine over 40 epochs, clip 5, Bernoulli(0.5) "
            "masks, seed 42); --config and flags override either"
        ),
    )

    arch = p.add_argument_group("fresh backbone (ignored with --init)")
    add_architecture_arguments(
        arch,
        exclude=("codebook_size_t", "codebook_size_f"),  # the tokenizer's codebooks
        defaults={"s4_lmax": "the tokens of a window"},
    )

    t = p.add_argument_group("training (defaults: PretrainConfig)")
    add_config_arguments(
        t,
        PretrainConfig,
        aliases={"accum_steps": ["--accum"]},
        arg_kwargs={
            "resume": resume_arg_kwargs(PretrainConfig),
            "mask_strategy": dict(choices=list(MASK_STRATEGIES)),
        },
        help={
            "resume": "continue the run in --out from its newest checkpoint ('--resume' "
            "alone), or from the checkpoint file CKPT",
            "device": "cpu, cuda, cuda:1 ... (default: this rank's GPU, else CPU)",
        },
    )
    add_precision_short_forms(t)
    p.set_defaults(func=run)


#: stand-in training-set size of ``--recipe paper`` before the corpus is opened: the recipe's
#: settings (and the file and flags over them) are checked with it, and rebuilt from the real
#: size afterwards (only ``steps`` and ``schedule_steps`` depend on it)
_PAPER_CHECK_WINDOWS = 256 * 1024


def _config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The PretrainConfig fields of ``--config FILE`` and the flags given (flags win).

    A run's ``config.json`` holds the config under ``"pretrain"``; its ``resume`` is not
    reused. Invalid JSON/YAML, unknown keys and values of the wrong type raise
    :class:`~codebrain.cli.CLIError` naming the file.
    """
    return config_overrides(
        PretrainConfig, args, args.config, sections=("pretrain",), ignore_file_keys=("resume",)
    )


def _config_from_args(
    args: argparse.Namespace,
    n_train: int | None = None,
    given: dict[str, Any] | None = None,
) -> Any:
    """PretrainConfig: its defaults < ``--recipe paper`` < ``--config FILE`` < flags.

    ``given`` is :func:`_config_overrides` when already read. ``--recipe paper`` without
    ``n_train`` (the corpus not opened yet) uses a stand-in size, to check the settings.
    """
    base: dict[str, Any] = {}
    if getattr(args, "recipe", "codebrain") == "paper":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        try:
            n = _PAPER_CHECK_WINDOWS * world if n_train is None else n_train
            base = PretrainConfig.paper(n, world).to_dict()
        except ValueError as err:
            raise CLIError(f"--recipe paper: {err}") from err
    if given is None:
        given = _config_overrides(args)
    return config_from_args(PretrainConfig, args, args.config, base=base, overrides=given)


def _load_tokenizer(path: str) -> Any:
    """A tokenizer folder, or the trained tokenizer of a ``tokenizer-train`` run folder."""
    from codebrain.training.run import RunFolder, run_kind

    if not Path(path).is_dir():
        raise CLIError(f"--tokenizer {path!r} is not a folder.")
    if run_kind(path) == "tokenizer-train":
        final = RunFolder(path, "tokenizer-train").find_final()
        if final is None:
            raise CLIError(
                f"--tokenizer {path!r} is a tokenizer-train run that has not finished (no "
                "final/ tokenizer yet)."
            )
        path = str(final)
    try:
        from codebrain.models.tokenizer import TFDualTokenizer
    except ImportError as err:
        raise CLIError(f"the TFDual-Tokenizer is not available: {err}") from err
    return TFDualTokenizer.from_pretrained(path)


def _codebook_sizes(tokenizer: Any) -> tuple[int, int]:
    """Temporal and frequency codebook sizes of a tokenizer (for the backbone's heads)."""
    cfg = getattr(tokenizer, "config", None)
    if hasattr(cfg, "codebook_size_t") and hasattr(cfg, "codebook_size_f"):
        return int(cfg.codebook_size_t), int(cfg.codebook_size_f)
    for t_name, f_name in (
        ("codebook_size_t", "codebook_size_f"),
        ("n_codes_t", "n_codes_f"),
    ):
        if hasattr(tokenizer, t_name) and hasattr(tokenizer, f_name):
            return int(getattr(tokenizer, t_name)), int(getattr(tokenizer, f_name))
    cfg = tokenizer.get_config() if hasattr(tokenizer, "get_config") else {}
    if "codebook_size_t" in cfg and "codebook_size_f" in cfg:
        return int(cfg["codebook_size_t"]), int(cfg["codebook_size_f"])
    raise CLIError("cannot read the tokenizer's codebook sizes (codebook_size_t/_f).")


def _check_val_fraction(val_fraction: float) -> None:
    if not 0.0 <= val_fraction < 1.0:
        raise CLIError(f"--val-fraction must be in [0, 1), got {val_fraction}.")


def _split(corpus: Any, val_fraction: float, seed: int) -> tuple[Any, Any]:
    """Hold out whole recordings (never windows of a training recording) for validation."""
    import numpy as np
    from torch.utils.data import Subset

    _check_val_fraction(val_fraction)
    recs = list(corpus.recordings)
    n_val = int(round(val_fraction * len(recs)))
    if val_fraction > 0 and n_val == 0 and len(recs) > 1:
        n_val = 1
    if n_val == 0:
        return corpus, None
    if n_val >= len(recs):
        raise CLIError(f"--val-fraction {val_fraction} leaves no training recording.")
    rng = np.random.default_rng(seed)
    val_recs = sorted(rng.choice(recs, size=n_val, replace=False).tolist())
    val_idx = corpus.indices_for(val_recs)
    train_mask = np.ones(len(corpus), dtype=bool)
    train_mask[val_idx] = False
    logger.info(
        "Validation: %d of %d recordings (%d windows) held out.", n_val, len(recs), len(val_idx)
    )
    return Subset(corpus, np.flatnonzero(train_mask).tolist()), Subset(corpus, val_idx.tolist())


def _check_resume(cfg: Any, out: Path) -> None:
    """Refuse a fresh start over checkpoints, and a ``--resume`` file that does not exist.

    A group that torchrun relaunched (``--max-restarts``) resumes without ``--resume``.
    """
    from codebrain.training._distributed import elastic_restart_count
    from codebrain.training.checkpointing import latest_checkpoint
    from codebrain.training.run import RunFolder

    relaunched = elastic_restart_count() > 0
    checkpoints = RunFolder(out, "pretrain").checkpoints_dir
    fresh = cfg.resume is None or cfg.resume is False
    if fresh and not relaunched and latest_checkpoint(checkpoints) is not None:
        raise CLIError(
            f"{checkpoints} already holds checkpoints; pass --resume to continue that "
            "run or choose another --out."
        )
    if isinstance(cfg.resume, str) and cfg.resume != "auto" and not Path(cfg.resume).is_file():
        raise CLIError(f"--resume {cfg.resume!r}: no such checkpoint file.")


def run(args: argparse.Namespace) -> int:
    """Run ``codebrain pretrain``; returns the exit code."""
    import torch

    from codebrain import CodeBrain
    from codebrain.cli._outputs import check_run_folder
    from codebrain.data import CorpusDataset, CorpusError
    from codebrain.training.pretrain import pretrain

    if int(os.environ.get("RANK", "0")) != 0:
        logging.getLogger("codebrain").setLevel(logging.WARNING)  # one voice under torchrun
    # The config file and every flag first: a bad config fails before the corpus is opened.
    given = _config_overrides(args)
    cfg = _config_from_args(args, given=given)
    out = check_run_folder(args.out, command="pretrain", own_kind="a pretrain run folder")
    _check_resume(cfg, out)
    _check_val_fraction(args.val_fraction)
    try:
        corpus = CorpusDataset(args.corpus)
    except (CorpusError, FileNotFoundError) as err:
        raise CLIError(f"cannot open corpus {args.corpus!r}: {err}") from err
    if len(corpus) == 0:
        raise CLIError(f"corpus {args.corpus!r} holds no windows.")
    if args.recipe == "paper":  # epochs -> steps need the training-set size
        cfg = _config_from_args(args, len(_split(corpus, args.val_fraction, 0)[0]), given)
    tokenizer = _load_tokenizer(args.tokenizer)
    k_t, k_f = _codebook_sizes(tokenizer)
    n_chans, n_times = corpus[0].shape
    if args.init:
        model = CodeBrain.from_pretrained(args.init)
        heads = (model.lm_head_t.out_features, model.lm_head_f.out_features)
        if heads != (k_t, k_f):
            raise CLIError(
                f"--init model predicts {heads[0]} temporal / {heads[1]} frequency tokens but "
                f"the tokenizer has codebooks of {k_t} / {k_f}."
            )
        if model.n_chans != n_chans:
            raise CLIError(
                f"--init model expects {model.n_chans} channels; the corpus has {n_chans}."
            )
    else:
        # A fresh backbone starts from the same weights for the same --seed, so a run killed
        # and resumed equals an uninterrupted one (and two runs with one seed agree).
        torch.manual_seed(cfg.seed)
        arch = architecture_from_args(args)
        arch.setdefault("s4_lmax", n_tokens(n_chans, n_times, arch.get("patch_size")))
        model = CodeBrain(
            n_outputs=1,
            n_chans=n_chans,
            n_times=n_times,
            sfreq=corpus.sfreq,
            codebook_size_t=k_t,
            codebook_size_f=k_f,
            **arch,
        )
    train_ds, val_ds = _split(corpus, args.val_fraction, cfg.seed)
    result = pretrain(model, tokenizer, train_ds, val_ds, cfg, args.out)
    if int(os.environ.get("RANK", "0")) == 0:
        summary = {
            "final": str(result.final_dir),
            "step": result.step,
            "windows_per_second": round(result.windows_per_second, 2),
            "train": {k: result.train_metrics.get(k) for k in ("loss", "acc_t", "acc_f")},
            "val": {k: result.val_metrics.get(k) for k in ("loss", "acc_t", "acc_f")},
        }
        print(json.dumps(summary))
    return 0
