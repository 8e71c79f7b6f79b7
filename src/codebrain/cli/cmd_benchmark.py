"""``codebrain benchmark``: the paper's downstream tasks under the authors' protocol.

Finds the recordings of a local copy of the dataset (``--data``, in the layout the task
describes; ``--download`` fetches it where a public downloader exists), uses the authors'
subject split when all its subjects are present (else a deterministic subject-wise fallback,
marked so), trains every model of ``--models`` on every seed on the same windows and epoch
budget, picks the epoch on validation (kappa for multi-class, AUROC for binary tasks) and
reports the test subjects at that epoch. Writes results.json, results.md and results.png to
``--out`` and prints the table. ``--list`` lists the tasks.
"""

from __future__ import annotations

import argparse
import logging

from codebrain.benchmark.pretrain_on_train import PretrainOnTrain
from codebrain.cli._arch_args import add_architecture_arguments, architecture_from_args
from codebrain.cli._config_args import add_config_arguments, build_config, config_overrides
from codebrain.training.finetune import FinetuneConfig

__all__ = ["register"]

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``benchmark`` subcommand."""
    p = subparsers.add_parser(
        "benchmark",
        help="downstream benchmark of CodeBrain and its peers on a paper task",
        description=__doc__.split("\n\n", 1)[1].replace("``", "'"),
    )
    p.add_argument("task", nargs="?", help="task name (see --list)")
    p.add_argument("--list", action="store_true", help="list the tasks and their protocols")
    p.add_argument("--data", help="local copy of the dataset")
    p.add_argument("--download", action="store_true", help="fetch the dataset into --data first")
    p.add_argument(
        "--models",
        default="codebrain,eegnet,logbandpower",
        help="comma-separated: codebrain, codebrain_pt, logbandpower, eegnet, shallow, cbramod, "
        "labram, biot (peers need the [benchmarks] extra)",
    )
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    add_config_arguments(
        p,
        FinetuneConfig,
        include=("epochs",),
        help={"epochs": "epoch budget of every model (default: the recipe's, 50)"},
    )
    # The runner builds CodeBrain from the recipe; only its width and depth are flags.
    add_architecture_arguments(
        p.add_argument_group("CodeBrain from scratch (not with --pretrained)"), include=()
    )
    p.add_argument("--pretrained", help="CodeBrain model folder or the authors' CodeBrain.pth")
    p.add_argument(
        "--pretrain-on-train",
        action="store_true",
        help="add codebrain_pt: tokenizer + masked-token pretraining on the training subjects' "
        "windows only, then fine-tuning",
    )
    add_config_arguments(
        p,
        PretrainOnTrain,
        include=("tokenizer_steps", "pretrain_steps"),
        help={
            "tokenizer_steps": "tokenizer optimizer steps, with --pretrain-on-train",
            "pretrain_steps": "masked-token pretraining steps, with --pretrain-on-train",
        },
    )
    p.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="augment the training windows of every deep model alike: circular time shift, "
        "gain (sigma 0.1), frequency shift up to +-1.5 Hz (default: the task's; "
        "mental_arithmetic augments, the other tasks do not)",
    )
    p.add_argument("--max-subjects", type=int, help="use only the first N subjects (quick run)")
    p.add_argument("--fold", type=int, default=0, help="fold of tasks with several (ISRUC-S3)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ...")
    p.add_argument("--out", help="output folder (default: benchmark_<task>)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the ``benchmark`` command."""
    from codebrain.benchmark import get_recipe, list_recipes
    from codebrain.benchmark.report import results_table, write_results
    from codebrain.benchmark.runner import (
        parse_models,
        parse_seeds,
        run_benchmark,
    )
    from codebrain.cli import CLIError
    from codebrain.cli._outputs import check_output

    if args.list:
        for recipe in list_recipes():
            print(recipe.describe())
            print()
        return 0
    if not args.task:
        raise CLIError("name a TASK (codebrain benchmark --list shows them)")
    try:
        recipe = get_recipe(args.task)
    except KeyError as err:
        raise CLIError(str(err.args[0])) from err
    if not args.data:
        raise CLIError(
            f"--data DIR is required: the local copy of {recipe.title} ({recipe.layout})"
        )
    epochs = config_overrides(FinetuneConfig, args).get("epochs")
    budget = config_overrides(PretrainOnTrain, args)
    arch = architecture_from_args(args)  # --width / --layers; refuses sizes below 1
    width, layers = arch.get("res_channels"), arch.get("num_res_layers")
    for flag, v in (
        ("epochs", epochs),
        ("max_subjects", args.max_subjects),
        ("tokenizer_steps", budget.get("tokenizer_steps")),
        ("pretrain_steps", budget.get("pretrain_steps")),
    ):
        if v is not None and v < 1:
            raise CLIError(f"--{flag.replace('_', '-')} must be a positive integer, got {v}")
    try:
        models = parse_models(args.models)
        seeds = parse_seeds(args.seeds)
    except ValueError as err:
        raise CLIError(f"{'--models' if 'model' in str(err) else '--seeds'}: {err}") from err
    # --device is checked for every command in codebrain.cli.main (check_device_arg). The
    # output folder is checked before the (long) run; write_results adds files to it.
    out = check_output(args.out or f"benchmark_{recipe.name}", kind="dir", force=True)
    results = run_benchmark(
        recipe,
        args.data,
        models=models,
        seeds=seeds,
        epochs=epochs,
        width=width,
        layers=layers,
        pretrained=args.pretrained,
        pretrain_on_train=args.pretrain_on_train,
        pretrain_budget=build_config(PretrainOnTrain, budget),
        device=args.device,
        augment=args.augment,
        download=args.download,
        max_subjects=args.max_subjects,
        fold=args.fold,
        progress=not args.no_progress,
    )
    paths = write_results(results, out)
    print(f"{results['title']} ({results['split_protocol']} split)")
    print(results_table(results))
    print(f"Wrote {paths['json']}, {paths['md']}, {paths['png']}")
    return 0
