"""Output paths and run control for the CLI: every command checks its outputs before any work.

:func:`check_output` validates a file or folder output (suffix, inputs, kind, ``--force``,
permissions), :func:`check_run_folder` the run folder of a resumable command, and
:func:`folder_kind` says which command wrote a folder. :func:`sigterm_as_exit` lets atomic
writers clean up when the process is terminated.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from codebrain.cli import CLIError
from codebrain.utils.run_layout import LAYOUT

__all__ = ["check_output", "check_run_folder", "folder_kind", "sigterm_as_exit"]


# ------------------------------------------------------------------------------ outputs


def folder_kind(path: str | os.PathLike) -> str | None:
    """What wrote the folder ``path``, in words (``None``: empty, absent or not recognised).

    Recognises the folders codebrain writes: a corpus (``manifest.json``), a tokenizer-train,
    pretrain or finetune run folder (:func:`codebrain.utils.run_layout.run_kind`), a
    fine-tuned model of earlier versions (``finetune.json``) or a cross-validation
    (``cv.json``), a tokenizer report, a demo output, and a model folder (``config.json`` +
    ``model.safetensors``).
    """
    path = Path(path)
    if not path.is_dir():
        return None
    if (path / "manifest.json").is_file():
        return "a corpus folder (written by 'prepare --corpus')"
    from codebrain.utils.run_layout import run_kind

    kind = run_kind(path)
    if kind is not None:
        return f"a {kind} run folder"
    config = path / "config.json"
    if (path / "finetune.json").is_file() or (path / "cv.json").is_file():
        return "a finetune output folder"
    if (path / "report.json").is_file() and (path / "usage.png").is_file():
        return "a tokenizer-report folder"
    if (path / "report.json").is_file() and (path / "metrics.json").is_file():
        return "a demo output folder"
    if config.is_file() and (path / "model.safetensors").is_file():
        return "a model folder (save_pretrained)"
    return None


def _same_or_inside(a: Path, b: Path) -> bool:
    """Whether ``a`` is ``b`` or lies inside ``b`` (after resolving links)."""
    with contextlib.suppress(OSError):
        if a.exists() and b.exists() and os.path.samefile(a, b):
            return True
    ra, rb = a.resolve(), b.resolve()
    return ra == rb or rb in ra.parents


def check_output(
    path: str | os.PathLike,
    *,
    flag: str = "--out",
    kind: str = "file",
    suffixes: tuple[str, ...] = (),
    force: bool = False,
    inputs: tuple[str | os.PathLike | None, ...] | list[str | os.PathLike | None] = (),
    replaceable: tuple[str, ...] = (),
) -> Path:
    """Validate an output path before any work: every command calls this for its outputs.

    Checks, in order: the suffix; that the output is none of the command's inputs and holds
    none of them (refused even with ``--force``); that an existing output is of the right
    kind (a file for a file, a folder for a folder: refused even with ``--force``, nothing is
    moved aside); that an existing output is only replaced with ``--force`` (folders that
    this command wrote, ``replaceable``, and empty folders excepted); and that the nearest
    existing parent is a writable folder.

    Parameters
    ----------
    path : path-like
        The output.
    flag : str
        The option naming it, for messages (``"--out"``, ``"--confusion-png"``).
    kind : {"file", "dir"}
        A file written whole, or a folder replaced whole.
    suffixes : tuple of str
        Allowed suffixes of a file output (``(".csv",)``); empty: any.
    force : bool
        ``--force`` was given.
    inputs : sequence of path-like or None
        The command's inputs (``None`` entries are ignored).
    replaceable : tuple of str
        :func:`folder_kind` values of folders this command itself writes, which it may
        replace without ``--force``.

    Returns
    -------
    Path

    Raises
    ------
    CLIError
        Naming the flag, the path and what was expected.
    """
    if kind not in ("file", "dir"):
        raise ValueError(f"kind must be 'file' or 'dir', got {kind!r}.")
    out = Path(path)
    if str(path) == "" or out.name in ("", ".", ".."):
        raise CLIError(
            f"{flag} {str(path)!r} is not a usable {'file' if kind == 'file' else 'folder'} name."
        )
    if suffixes and out.suffix.lower() not in suffixes:
        raise CLIError(f"{flag} must end with {' or '.join(suffixes)}, got {out.name!r}.")
    for inp in inputs:
        if inp is None:
            continue
        src = Path(inp)
        if _same_or_inside(src, out):
            what = "is" if _same_or_inside(out, src) else "contains"
            raise CLIError(
                f"{flag} {out} {what} the input {src}; writing there would destroy it "
                "(refused even with --force): choose another output path."
            )
    if out.exists() or out.is_symlink():
        if kind == "dir" and not out.is_dir():
            raise CLIError(
                f"{flag} {out} is an existing file, not a folder; remove it or choose another "
                "path (not replaced, even with --force)."
            )
        if kind == "file" and out.is_dir():
            raise CLIError(
                f"{flag} {out} is an existing folder, not a file; remove it or choose another "
                "path (not replaced, even with --force)."
            )
        if not force:
            if kind == "dir":
                empty = not any(out.iterdir())
                found = folder_kind(out)
                if not empty and (found is None or found not in replaceable):
                    raise CLIError(
                        f"{flag} {out} exists and is {found or 'a folder this command did not write'}; "
                        "pass --force to replace it."
                    )
            else:
                raise CLIError(f"{flag} {out} exists; pass --force to overwrite it.")
    _check_writable(out, out.absolute().parent, flag)
    return out


#: what a run writes at the top of its folder, besides ``checkpoints/`` (whose files a
#: resume checks against the run)
_RUN_FILES = (
    LAYOUT.config,
    f"{LAYOUT.metrics}.csv",
    f"{LAYOUT.metrics}.jsonl",
    LAYOUT.result,
    LAYOUT.final,
    "tensorboard",
    "learning_curves.png",
    "confusion_matrix.png",
)


def check_run_folder(
    path: str | os.PathLike, *, command: str, own_kind: str, flag: str = "--out"
) -> Path:
    """Validate the run folder of a resumable command (``pretrain``, ``tokenizer-train``).

    A run folder is continued, never replaced, so an existing folder is fine when it is empty
    or was written by ``command``; a folder of another command (a corpus, the other stage's
    run, a model) is refused with a message saying whose it is, and so is a folder where a
    file no codebrain command wrote has a name the run writes (``config.json``,
    ``metrics.csv``, ...): the run would replace it. Other files (a log the shell or the
    scheduler opened there, copied ``checkpoints/`` to resume from) stay beside the run.
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise CLIError(f"{flag} {out} is an existing file, not a run folder.")
    found = folder_kind(out)
    if found is not None and found != own_kind:
        raise CLIError(
            f"{flag} {out} is {found}, not a {command} run; choose an empty or new folder."
        )
    clashes = [n for n in _RUN_FILES if (out / n).exists()] if found is None else []
    if clashes:
        raise CLIError(
            f"{flag} {out} holds {clashes[0]!r}, which no codebrain command wrote (the folder "
            f"is not a {command} run) and the run would replace; choose an empty or new folder."
        )
    _check_writable(out, out.absolute(), flag)
    return out


def _check_writable(out: Path, start: Path, flag: str) -> None:
    """The nearest existing folder at or above ``start`` must be a writable folder."""
    parent = start
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise CLIError(f"{flag} {out}: {parent} is a file, not a folder.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CLIError(f"{flag} {out}: no permission to write in {parent}.")


# ------------------------------------------------------------------------ run control


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """Turn SIGTERM into ``SystemExit`` so atomic writers remove their temporaries.

    Without it a terminated process dies without unwinding and leaves the hidden
    ``.<name>.*.tmp`` folder of :func:`codebrain.utils.io.atomic_replace_dir` behind.
    """

    def _raise(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, _raise)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
