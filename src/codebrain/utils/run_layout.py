"""The file names of a run folder, and which command wrote one (no training imports).

Every training command (``tokenizer-train``, ``pretrain``, ``finetune``) writes the same
layout::

    OUT/
      config.json        {"<kind>": loop settings, "model": architecture, ...}
      metrics.csv        one row per log interval / epoch, also as metrics.jsonl
      metrics.jsonl
      checkpoints/       ckpt_<step:08d>.pt
      final/             the trained model (``save_pretrained``)
      result.json        what the run returned

This module only names the files and recognises the folders, so that the model loaders
(``from_pretrained``) can open a run folder's ``final/`` without importing the trainers;
:class:`codebrain.training.run.RunFolder` writes them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "LAYOUT",
    "LEGACY_LAYOUTS",
    "RUN_KINDS",
    "Layout",
    "read_json",
    "run_final_dir",
    "run_kind",
]

#: the commands that write run folders (also the section key of their ``config.json``)
RUN_KINDS = ("tokenizer-train", "pretrain", "finetune")


@dataclass(frozen=True)
class Layout:
    """File names of a run folder.

    Attributes
    ----------
    config : str
        Settings of the run (JSON).
    metrics : str
        Stem of the metric log (``.csv`` and ``.jsonl``).
    checkpoints : str
        Folder of the checkpoints.
    final : str
        Folder of the trained model.
    result : str
        What the run returned (JSON).
    """

    config: str = "config.json"
    metrics: str = "metrics"
    checkpoints: str = "checkpoints"
    final: str = "final"
    result: str = "result.json"


LAYOUT = Layout()
#: names written by earlier versions, per kind, and the section key of their config file
LEGACY_LAYOUTS: dict[str, tuple[Layout, str]] = {
    "tokenizer-train": (
        Layout("train_config.json", "log", "checkpoints", "tokenizer", "summary.json"),
        "train",
    ),
}


def read_json(path: Path) -> Any:
    """The JSON value in ``path``; ``None`` when it is absent or unreadable."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def run_kind(path: str | os.PathLike) -> str | None:
    """The command (one of :data:`RUN_KINDS`) whose run folder ``path`` is, else ``None``.

    Read from the section key of ``config.json``; a folder of an earlier tokenizer trainer is
    known by its ``train_config.json`` or ``tokenizer/``.
    """
    path = Path(path)
    if not path.is_dir():
        return None
    config = read_json(path / LAYOUT.config)
    if isinstance(config, dict):
        for kind in RUN_KINDS:
            if kind in config:
                return kind
    for kind, (legacy, _) in LEGACY_LAYOUTS.items():
        if (path / legacy.config).is_file() or (path / legacy.final).is_dir():
            return kind
    return None


def final_dir(path: str | os.PathLike, kind: str) -> Path | None:
    """The trained model's folder in the ``kind`` run folder ``path``; ``None``: none yet.

    ``final/``, or the name an earlier version of the command gave it.
    """
    names = [LAYOUT.final]
    if kind in LEGACY_LAYOUTS:
        names.append(LEGACY_LAYOUTS[kind][0].final)
    for name in names:
        if (Path(path) / name).is_dir():
            return Path(path) / name
    return None


def run_final_dir(path: str | os.PathLike) -> Path | None:
    """The trained model of the run folder ``path`` (``final/``); ``None``: not a run folder.

    Raises
    ------
    FileNotFoundError
        ``path`` is a run folder without a final model (the run has not finished).
    """
    path = Path(path)
    kind = run_kind(path)
    if kind is None:
        return None
    found = final_dir(path, kind)
    if found is not None:
        return found
    raise FileNotFoundError(
        f"{str(path)!r} is a {kind} run folder without a trained model ({LAYOUT.final}/ is "
        f"missing): the run has not finished; continue it with 'codebrain {kind} ... --resume'."
    )
