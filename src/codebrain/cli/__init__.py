"""The ``codebrain`` command-line tool.

Each subcommand lives in its own module ``codebrain.cli.cmd_<name>`` that defines
``register(subparsers) -> None``; the parser adds a ``func(args) -> int`` default. Modules are
discovered automatically, so adding a command never edits this file. Only ``cmd_*`` modules are
commands: helpers shared by several commands live in private modules (``_data_args``,
``_model_args``, ``_outputs``, the config-flag generator ``_config_args``), which
``codebrain.cli._common`` gathers.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

__all__ = ["main", "build_parser", "CLIError"]

logger = logging.getLogger("codebrain")


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    """Build the ``codebrain`` argument parser with every discovered subcommand."""
    parser = argparse.ArgumentParser(
        prog="codebrain",
        description="CodeBrain EEG foundation model: prepare data, train, evaluate, export.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    pkg = importlib.import_module(__name__)
    for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if mod.name.startswith("cmd_"):
            importlib.import_module(f"{__name__}.{mod.name}").register(sub)
    return parser


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 0 else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("codebrain")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``codebrain`` command; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose, args.quiet)
    from tqdm.contrib.logging import logging_redirect_tqdm

    try:
        if getattr(args, "device", None) is not None:
            from codebrain.cli._model_args import check_device_arg

            check_device_arg(args.device)
        # Log lines go through tqdm.write while a command runs, so they never print into (or
        # get overwritten by) a progress bar.
        with logging_redirect_tqdm(loggers=[logger]):
            return int(args.func(args) or 0)
    except CLIError as err:
        print(f"codebrain {args.command}: error: {err}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError, TypeError, OSError) as err:
        print(f"codebrain {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"codebrain {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
