"""Plumbing shared by the resumable training loops (tokenizer training and pretraining).

- :class:`ResumableDistributedSampler`: a ``DistributedSampler`` that can start mid-epoch (the
  data position of a resumed run).
- :func:`as_window`: one dataset item -> a float32 window ``(C, T)``;
  :class:`IndexedWindows` wraps a dataset as ``i -> (i, window)``.
- :func:`warn_if_dataset_changed`, :func:`resume_position`: resume over a different dataset is
  allowed, but said, and never starts past the end of an epoch.
- :class:`MetricLog`: CSV + JSON-lines (+ optional TensorBoard) metric rows of a run folder,
  with the rows a killed run wrote after its last checkpoint dropped on resume.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler

from codebrain.utils.check import check_int, check_value
from codebrain.utils.io import atomic_open

logger = logging.getLogger(__name__)


class ResumableDistributedSampler(DistributedSampler):
    """A :class:`~torch.utils.data.DistributedSampler` that can start mid-epoch.

    ``set_start(k)`` skips this rank's first ``k`` indices of the current epoch's shard (the
    data position of a resumed run). Rank ``r`` draws positions ``r, r + W, r + 2W ...`` of the
    epoch permutation, so skipping ``k`` per rank skips the first ``k * W`` global positions.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.start = 0

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` indices of this rank's shard in the current epoch."""
        check_int("start", start, minimum=0, allow_numpy=True)
        check_value("start", start, start <= self.num_samples, f"in [0, {self.num_samples}]")
        self.start = int(start)

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(super().__iter__(), self.start, None)

    def __len__(self) -> int:
        return self.num_samples - self.start


def warn_if_dataset_changed(saved: int | None, current: int) -> None:
    """Warn when a run resumes over a dataset of another size than its checkpoint saw.

    The data position (epoch permutation + offset) only continues the interrupted run exactly
    over the same windows; over a grown or shrunk dataset (e.g. a corpus extended with new
    recordings, which also renumbers windows) training goes on, but not as the same run.
    ``saved`` is ``None`` for checkpoints that did not record the size.
    """
    if saved is not None and int(saved) != current:
        logger.warning(
            "Resuming over a dataset of %d windows, but the checkpoint was written over %d: "
            "the data order differs from an uninterrupted run from here on.",
            current,
            int(saved),
        )


def resume_position(epoch: int, steps_done: int, steps_per_epoch: int) -> tuple[int, int]:
    """``(epoch, steps into it)`` to resume at.

    Moved to the next epoch's start when the saved position lies at or past the end of the
    current epoch (the dataset shrank, or the batch size or process count changed); that case
    is logged as a warning.
    """
    if steps_done < steps_per_epoch:
        return epoch, steps_done
    logger.warning(
        "The checkpoint's data position (%d steps into epoch %d) is past this epoch's %d steps "
        "(a smaller dataset, or another batch size or process count): resuming at the start "
        "of epoch %d.",
        steps_done,
        epoch,
        steps_per_epoch,
        epoch + 1,
    )
    return epoch + 1, 0


def as_window(item: Any, index: int) -> torch.Tensor:
    """One dataset item as a float32 window.

    Parameters
    ----------
    item : torch.Tensor, numpy.ndarray, or tuple/list whose first element is one
        A window ``(C, T)`` (a labelled ``(x, y)`` item gives its ``x``).
    index : int
        The item's index (for error messages).

    Returns
    -------
    torch.Tensor, float32, shape (C, T)
    """
    if isinstance(item, (tuple, list)):
        if not item:
            raise ValueError(f"dataset item {index} is an empty {type(item).__name__}.")
        item = item[0]
    if isinstance(item, np.ndarray):
        item = torch.from_numpy(np.ascontiguousarray(item))
    if not isinstance(item, torch.Tensor):
        raise TypeError(
            f"dataset item {index} is a {type(item).__name__}; expected a float tensor "
            "(n_chans, n_times) or a tuple whose first element is one."
        )
    if item.ndim != 2:
        raise ValueError(
            f"dataset item {index} must be a (n_chans, n_times) window, got shape "
            f"{tuple(item.shape)}."
        )
    return item.to(torch.float32)


class IndexedWindows(Dataset):
    """``ds[i] -> (i, x)`` with ``x`` a float32 tensor ``(C, T)``.

    Items of ``ds`` may be a tensor/array or a tuple/list whose first element is one.
    """

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds

    def __len__(self) -> int:
        return len(self.ds)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor]:
        return i, as_window(self.ds[i], i)


class MetricLog:
    """Metric rows of a run folder: ``{stem}.csv`` and ``{stem}.jsonl`` (+ TensorBoard).

    Parameters
    ----------
    out_dir : Path
        Run folder (must exist when ``enabled``).
    fields : sequence of str
        CSV columns (first must be ``"step"``); JSON lines hold the whole row.
    enabled : bool
        Write files (rank 0); other ranks only keep the rows in memory.
    resume_step : int
        Step of the checkpoint the run resumed from: rows logged after it (by a killed run)
        are dropped and the kept rows are loaded into :attr:`history`. 0 starts fresh
        (existing logs are replaced).
    stem : str
        File name stem.
    tensorboard : bool
        Also write ``out_dir/tensorboard`` (skipped with a log message if TensorBoard is not
        installed); numeric ``tb_keys`` of each row go under ``{row['split']}/{key}``.
    tb_keys : sequence of str
        Row keys sent to TensorBoard.

    Attributes
    ----------
    rows : list of dict
        Rows written by this invocation.
    history : list of dict
        Kept rows of the runs this one resumed, then :attr:`rows`.
    """

    def __init__(
        self,
        out_dir: Path,
        fields: Sequence[str],
        *,
        enabled: bool,
        resume_step: int,
        stem: str = "metrics",
        tensorboard: bool = False,
        tb_keys: Sequence[str] = (),
    ) -> None:
        self.enabled = enabled
        self.fields = tuple(fields)
        self.csv_path = out_dir / f"{stem}.csv"
        self.jsonl_path = out_dir / f"{stem}.jsonl"
        self.tb_keys = tuple(tb_keys)
        self.rows: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        self.tb = None
        if not enabled:
            return
        if resume_step > 0 and self.jsonl_path.is_file():
            with open(self.jsonl_path) as f:
                for line in f:
                    if line.strip():
                        row = json.loads(line)
                        if int(row.get("step", 0)) <= resume_step:
                            self.history.append(row)
        self._rewrite()
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as err:
                logger.info("TensorBoard logging skipped (%s); CSV/JSON logs are written.", err)
            else:
                self.tb = SummaryWriter(log_dir=str(out_dir / "tensorboard"))

    def _csv_row(self, row: dict[str, Any]) -> dict[str, Any]:
        return {k: row.get(k, "") for k in self.fields}

    def _rewrite(self) -> None:
        """Both files hold exactly :attr:`history` (atomic replace)."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.fields)
        writer.writeheader()
        writer.writerows(self._csv_row(r) for r in self.history)
        with atomic_open(self.csv_path, "w") as f:
            f.write(buf.getvalue())
        with atomic_open(self.jsonl_path, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in self.history)

    def write(self, row: dict[str, Any]) -> None:
        """Append one row (files only when enabled)."""
        self.rows.append(row)
        self.history.append(row)
        if not self.enabled:
            return
        with open(self.csv_path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.fields).writerow(self._csv_row(row))
        with open(self.jsonl_path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self.tb is not None:
            for k in self.tb_keys:
                if isinstance(row.get(k), (int, float)):
                    self.tb.add_scalar(f"{row.get('split', 'train')}/{k}", row[k], row["step"])

    def close(self) -> None:
        """Flush and close TensorBoard (files are written row by row)."""
        if self.tb is not None:
            self.tb.close()
