"""Run the ``codebrain`` command in-process, as a test would run it in a shell.

:func:`run_cli` calls :func:`codebrain.cli.main` with ``sys.stdout``/``sys.stderr``
redirected, turns argparse's ``SystemExit`` into an exit code, and restores the
``codebrain`` logger that ``main`` reconfigures, so tests see what a user would (exit code,
printed output, one-line errors) without starting a Python process per command.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass

from codebrain.cli import main


@dataclass
class CLIResult:
    """Exit code and captured output of one ``codebrain`` call."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(*argv: str) -> CLIResult:
    """``codebrain ARGV`` in this process."""
    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger("codebrain")
    saved = (root.handlers[:], root.level, root.propagate)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in argv])
            except SystemExit as exc:  # argparse: --help (0) or a bad flag value (2)
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    finally:
        root.handlers[:], root.level, root.propagate = saved
    return CLIResult(code, out.getvalue(), err.getvalue())
