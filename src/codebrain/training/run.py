"""The run folder of a training command: one layout, resume, checkpoints, metrics, progress.

Every training loop (``tokenizer-train``, ``pretrain``, ``finetune``) writes the same layout
(the names live in :mod:`codebrain.utils.run_layout`)::

    OUT/
      config.json        {"<kind>": loop settings, "model": architecture, "world_size": W}
      metrics.csv        one row per log interval / epoch (and validation), also as metrics.jsonl
      metrics.jsonl
      checkpoints/       ckpt_<step:08d>.pt, atomic, the newest ``keep_checkpoints`` kept
      final/             the trained model (``save_pretrained``)
      result.json        what the run returned

:class:`RunFolder` owns it: which command wrote a folder (:func:`run_kind`), where the newest
checkpoint is and whether a fresh start may overwrite it, atomic checkpointing with pruning,
the metric log, the final model and the result. Folders written by earlier versions of the
tokenizer trainer (``train_config.json``, ``log.csv``, ``log.jsonl``, ``tokenizer/``,
``summary.json``) are recognised and resumed; those old names are still written for
tokenizer runs (links to the new files, and ``train_config.json`` with the old field names)
so that scripts reading them keep working; they are deprecated.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch.distributed as dist
from tqdm.auto import tqdm

from codebrain.training._distributed import elastic_restart_count
from codebrain.training._loop import MetricLog
from codebrain.training.checkpointing import (
    capture_rng_state,
    checkpoint_path,
    latest_checkpoint,
    prune_checkpoints,
    save_checkpoint,
)
from codebrain.utils.check import check_option
from codebrain.utils.distributed import barrier, is_dist, world_size
from codebrain.utils.io import atomic_replace_dir, atomic_write_json
from codebrain.utils.run_layout import (
    LAYOUT,
    LEGACY_LAYOUTS,
    RUN_KINDS,
    Layout,
    final_dir,
    read_json,
    run_kind,
)

__all__ = [
    "LAYOUT",
    "RUN_KINDS",
    "Layout",
    "RunFolder",
    "model_config",
    "progress_bar",
    "resume_after_relaunch",
    "run_kind",
]

logger = logging.getLogger(__name__)

C = TypeVar("C")


class RunFolder:
    """The run folder of one training command (see the module docstring for the layout).

    Parameters
    ----------
    path : path-like
        The folder (created by :meth:`prepare`).
    kind : {"tokenizer-train", "pretrain"}
        The command writing it.
    main : bool
        This process writes the files (rank 0); the others only read and synchronise.
    """

    def __init__(self, path: str | os.PathLike, kind: str, *, main: bool = True) -> None:
        check_option("kind", kind, RUN_KINDS)
        self.path = Path(path)
        self.kind = kind
        self.main = main
        self._legacy = LEGACY_LAYOUTS.get(kind)

    # ---------------------------------------------------------------------------- paths
    @property
    def config_path(self) -> Path:
        """``config.json``."""
        return self.path / LAYOUT.config

    @property
    def checkpoints_dir(self) -> Path:
        """``checkpoints/``."""
        return self.path / LAYOUT.checkpoints

    @property
    def final_dir(self) -> Path:
        """``final/``: where the trained model is written."""
        return self.path / LAYOUT.final

    @property
    def result_path(self) -> Path:
        """``result.json``."""
        return self.path / LAYOUT.result

    def find_final(self) -> Path | None:
        """The trained model's folder (``final/``, or an earlier version's name), if any."""
        return final_dir(self.path, self.kind)

    def read_config(self) -> dict[str, Any] | None:
        """The saved settings ``{"<kind>": ..., "model": ..., ...}`` (``None``: none saved).

        An earlier version's config file is returned under the same keys (its field names
        are the deprecated ones, which the config classes still read).
        """
        config = read_json(self.config_path)
        if isinstance(config, dict) and self.kind in config:
            return config
        if self._legacy is not None:
            legacy, section = self._legacy
            old = read_json(self.path / legacy.config)
            if isinstance(old, dict) and section in old:
                return {self.kind: old.pop(section), **old}
        return None

    # --------------------------------------------------------------------------- resume
    def check_kind(self) -> None:
        """Raise ``ValueError`` when the folder holds a run of another command."""
        found = run_kind(self.path)
        if found is not None and found != self.kind:
            raise ValueError(
                f"{self.path} is a {found} run folder, not a {self.kind} one; choose an empty "
                "or new folder."
            )

    def resume_checkpoint(self, resume: bool | str, *, refuse_existing: bool) -> Path | None:
        """The checkpoint to resume from.

        Parameters
        ----------
        resume : bool or str
            ``True``: the newest readable checkpoint (``None`` when there is none); ``False``:
            none; a path: that file (``FileNotFoundError`` when absent).
        refuse_existing : bool
            With ``resume=False``, raise ``ValueError`` when the folder already holds
            checkpoints (a fresh start would mix two runs).

        Returns
        -------
        Path or None
        """
        self.check_kind()
        if resume is True:
            found = latest_checkpoint(self.checkpoints_dir)
            if found is None:
                logger.info("No checkpoint in %s: starting from scratch.", self.checkpoints_dir)
            return found
        if resume:
            path = Path(resume)
            if not path.is_file():
                raise FileNotFoundError(f"resume checkpoint {str(path)!r} does not exist.")
            return path
        if refuse_existing and latest_checkpoint(self.checkpoints_dir) is not None:
            raise ValueError(
                f"{self.checkpoints_dir} already holds checkpoints; pass resume=True to continue "
                "that run or choose another out_dir."
            )
        return None

    # ---------------------------------------------------------------------------- write
    def prepare(self, config: Any, **extra: Any) -> None:
        """Create the folder and write ``config.json`` (main process; all wait).

        Parameters
        ----------
        config : LoopConfig
            The loop settings, saved under the kind's key.
        **extra
            Other top-level entries (``model=...``, ``world_size=...``).
        """
        if self.main:
            self.check_kind()
            self.path.mkdir(parents=True, exist_ok=True)
            self._migrate_legacy()
            atomic_write_json(self.config_path, {self.kind: config.to_dict(), **extra})
            if self._legacy is not None:
                legacy, section = self._legacy
                atomic_write_json(
                    self.path / legacy.config, {section: config.to_legacy_dict(), **extra}
                )
        barrier()

    def metric_log(
        self,
        fields: Sequence[str],
        *,
        resume_step: int,
        tensorboard: bool = False,
        tb_keys: Sequence[str] = (),
    ) -> MetricLog:
        """The run's :class:`~codebrain.training._loop.MetricLog` (``metrics.csv/.jsonl``).

        Rows logged after ``resume_step`` (by a run killed after its last checkpoint) are
        dropped; 0 starts a fresh log.
        """
        log = MetricLog(
            self.path,
            fields,
            enabled=self.main,
            resume_step=resume_step,
            stem=LAYOUT.metrics,
            tensorboard=tensorboard,
            tb_keys=tb_keys,
        )
        if self.main and self._legacy is not None:
            for suffix in (".csv", ".jsonl"):
                self._alias(LAYOUT.metrics + suffix, self._legacy[0].metrics + suffix)
        return log

    def write_checkpoint(
        self,
        step: int,
        *,
        keep: int,
        model: Any,
        optimizer: Any,
        scheduler: Any,
        scaler: Any,
        extra: dict[str, Any],
    ) -> Path:
        """Save ``checkpoints/ckpt_<step>.pt`` atomically and keep the newest ``keep``.

        Called on every rank: the RNG states of all ranks are gathered into the file (the main
        process writes it), and all ranks wait for it.
        """
        rng: Any = capture_rng_state()
        world = world_size()
        if is_dist() and world > 1:
            gathered: list[Any] = [None] * world
            dist.all_gather_object(gathered, rng)
            rng = gathered
        else:
            rng = [rng]
        path = checkpoint_path(self.checkpoints_dir, step)
        if self.main:
            save_checkpoint(
                path,
                model=model,
                optimizer=optimizer,
                scheduler=scheduler,
                scaler=scaler,
                rng_state=rng,
                extra=extra,
            )
            prune_checkpoints(self.checkpoints_dir, keep)
        barrier()
        return path

    def save_final(self, model: Any, files: Mapping[str, Any] | None = None) -> Path:
        """Write ``final/`` (main process): ``model.save_pretrained`` and ``files``.

        The folder is built under a temporary name and moved into place complete, so a
        ``final/`` is never half-written. ``files`` maps file names to JSON-able values
        written beside the model (``{"preprocess.json": {...}}``). Returns ``final/``.
        """
        if self.main:
            with atomic_replace_dir(self.final_dir) as tmp:
                model.save_pretrained(tmp)
                for name, value in (files or {}).items():
                    atomic_write_json(tmp / name, value)
            if self._legacy is not None:
                self._alias(LAYOUT.final, self._legacy[0].final)
            logger.info("Saved the trained model to %s", self.final_dir)
        return self.final_dir

    def alias(self, name: str, old_name: str) -> None:
        """Make ``old_name`` (a deprecated file name) point at ``name`` (main process)."""
        if self.main:
            self._alias(name, old_name)

    def write_result(self, result: dict[str, Any]) -> None:
        """Write ``result.json`` (main process)."""
        if self.main:
            atomic_write_json(self.result_path, result)
            if self._legacy is not None:
                self._alias(LAYOUT.result, self._legacy[0].result)

    # --------------------------------------------------------------------------- legacy
    def _migrate_legacy(self) -> None:
        """Rename the files of an earlier version's folder to the current names."""
        if self._legacy is None:
            return
        legacy = self._legacy[0]
        pairs = [(legacy.final, LAYOUT.final), (legacy.result, LAYOUT.result)]
        pairs += [(legacy.metrics + s, LAYOUT.metrics + s) for s in (".csv", ".jsonl")]
        for old, new in pairs:
            src, dst = self.path / old, self.path / new
            if src.exists() and not src.is_symlink() and not dst.exists():
                src.rename(dst)
                self._alias(new, old)
                logger.info("Renamed %s to %s (the current run-folder layout).", src, dst)

    def _alias(self, name: str, old_name: str) -> None:
        """Make the deprecated ``old_name`` point at ``name`` (a relative link)."""
        link = self.path / old_name
        if link.is_symlink() or not link.exists():
            link.unlink(missing_ok=True)
            try:
                link.symlink_to(name, target_is_directory=(self.path / name).is_dir())
            except OSError as err:  # no symlinks on this filesystem: copy finished files
                target = self.path / name
                if target.is_dir():
                    shutil.copytree(target, link)
                elif target.suffix == ".json":
                    shutil.copyfile(target, link)
                else:
                    logger.info("Old name %s not written (%s).", link, err)
        elif link.is_dir() and (self.path / name).is_dir():  # an old copy: refresh it
            shutil.rmtree(link)
            shutil.copytree(self.path / name, link)


def model_config(model: Any) -> dict[str, Any]:
    """``model.get_config()`` as plain JSON (``{}`` when the model has none or it is not JSON)."""
    get = getattr(model, "get_config", None)
    if get is None:
        return {}
    try:
        return json.loads(json.dumps(get()))
    except (TypeError, ValueError):
        return {}


def progress_bar(*, total: int, initial: int, desc: str, enabled: bool) -> tqdm:
    """The loops' tqdm bar (steps); disabled unless ``enabled`` (rank 0 with progress on)."""
    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit="step",
        disable=not enabled,
        dynamic_ncols=True,
    )


def resume_after_relaunch(config: C, checkpoints_dir: Path) -> C:
    """``config`` with ``resume=True`` when ``torchrun`` relaunched the group after a failure.

    A relaunched group (``--max-restarts``, ``TORCHELASTIC_RESTART_COUNT > 0``) continues the
    run it replaces: ``resume=False`` then means ``True`` (the newest checkpoint of the run
    folder; said in a warning). Any other ``resume`` value, or a first launch, keeps ``config``.

    Parameters
    ----------
    config : StepLoopConfig
        The loop settings (a dataclass with a ``resume`` field).
    checkpoints_dir : Path
        The run folder's ``checkpoints/`` (named in the warning).

    Returns
    -------
    StepLoopConfig
        ``config`` itself, or a copy with ``resume=True``.

    Raises
    ------
    ValueError
        ``TORCHELASTIC_RESTART_COUNT`` is not a whole number.
    """
    if config.resume is not False:  # type: ignore[attr-defined]
        return config
    restarts = elastic_restart_count()
    if restarts == 0:
        return config
    logger.warning(
        "torchrun relaunched the group (restart %d): resuming from the newest checkpoint in %s.",
        restarts,
        checkpoints_dir,
    )
    return dataclasses.replace(config, resume=True)  # type: ignore[type-var]
