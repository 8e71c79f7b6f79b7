"""``codebrain bench``: speed and memory of CodeBrain against braindecode's implementation.

Runs ``benchmarks/bench_model.py`` of a source checkout (it is not part of the installed
package): eval forward at batch 1 and 16, a training step, peak memory and a length sweep,
written as JSON and a PNG plot.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from codebrain.cli import CLIError

__all__ = ["register", "run", "find_benchmark"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bench`` subcommand."""
    p = subparsers.add_parser(
        "bench",
        help="benchmark against braindecode's CodeBrain (speed, memory, length sweep)",
        description=(
            "Compare codebrain's CodeBrain with braindecode's (same weights): eval forward "
            "time at batch 1 and 16, a training step, peak memory, and a length sweep. "
            "Needs a source checkout (benchmarks/bench_model.py) and braindecode installed."
        ),
    )
    p.add_argument("--quick", action="store_true", help="smoke run (about 2 minutes)")
    p.add_argument("--out", default=None, help="results folder (default benchmarks/results)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    p.add_argument("--script", default=None, help="path to bench_model.py (default: found)")
    p.set_defaults(func=run)


def find_benchmark(script: str | None = None) -> Path:
    """Locate ``benchmarks/bench_model.py`` (next to ``src/`` in a checkout, or the cwd)."""
    if script is not None:
        path = Path(script)
        if not path.is_file():
            raise CLIError(f"--script {path} does not exist.")
        return path
    here = Path(__file__).resolve()
    candidates = [here.parents[3] / "benchmarks" / "bench_model.py"]
    candidates.append(Path.cwd() / "benchmarks" / "bench_model.py")
    for path in candidates:
        if path.is_file():
            return path
    raise CLIError(
        "benchmarks/bench_model.py not found: run from a source checkout or pass --script."
    )


def run(args: argparse.Namespace) -> int:
    """Load the benchmark script as a module and run its ``main``."""
    if args.threads is not None and args.threads < 1:
        raise CLIError(f"--threads must be a positive number of threads, got {args.threads}.")
    if importlib.util.find_spec("braindecode") is None:
        raise CLIError("braindecode is not installed; the benchmark compares against it.")
    path = find_benchmark(args.script)
    spec = importlib.util.spec_from_file_location("codebrain_bench_model", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    argv: list[str] = []
    if args.quick:
        argv.append("--quick")
    if args.out is not None:
        argv += ["--out", str(args.out)]
    if args.threads is not None:
        argv += ["--threads", str(args.threads)]
    return int(module.main(argv))
