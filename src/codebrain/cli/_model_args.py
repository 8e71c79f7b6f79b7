"""Loading a model folder for the CLI, with the checks every model-using command makes.

:func:`add_common_args` and :func:`load_model_and_windows` serve ``predict``, ``evaluate`` and
``embed``; :func:`check_device_arg`, :func:`check_model_finite` and
:func:`check_outputs_finite` refuse an unusable device, model or output with a one-line error.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from codebrain.cli import CLIError
from codebrain.cli._data_args import add_preprocess_args, load_data_arg

__all__ = [
    "add_common_args",
    "load_model_and_windows",
    "check_device_arg",
    "check_model_finite",
    "check_outputs_finite",
]


# -------------------------------------------------------------------- model and windows


def add_common_args(p: argparse.ArgumentParser) -> None:
    """``model``, ``data`` and the preprocessing flags."""
    p.add_argument("model", help="model folder (finetune / demo / convert output)")
    p.add_argument("data", nargs="+", help="windows .npz from 'prepare', or EEG files/folders")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu", help="cpu, cuda, auto")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_preprocess_args(p, defaults_from_model=True)


def load_model_and_windows(args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any]]:
    """Load ``args.model`` and ``args.data``; check they fit each other.

    Returns
    -------
    model : CodeBrain or ProbedCodeBrain
    ds : WindowDataset
    meta : dict
        ``finetune.json`` of the model folder (``{}`` if absent). A run folder's model and
        files are those of its ``final/``.
    """
    from codebrain.models.probe import load_finetuned
    from codebrain.utils.run_layout import run_final_dir

    model_dir = Path(args.model)
    if not model_dir.is_dir():
        raise CLIError(f"model folder {model_dir} not found.")
    try:  # a run folder (``codebrain finetune -o``): its final model, with its settings
        model_dir = run_final_dir(model_dir) or model_dir
    except FileNotFoundError as err:
        raise CLIError(str(err)) from None
    model = load_finetuned(model_dir)
    check_model_finite(model, model_dir)
    base = None
    if (model_dir / "preprocess.json").is_file():
        base = json.loads((model_dir / "preprocess.json").read_text(encoding="utf-8"))
    meta: dict[str, Any] = {}
    if (model_dir / "finetune.json").is_file():
        meta = json.loads((model_dir / "finetune.json").read_text(encoding="utf-8"))
    ds, _ = load_data_arg(args.data, args, base)
    if ds.n_chans != model.n_chans:
        raise CLIError(f"the model takes {model.n_chans} channels but the data has {ds.n_chans}.")
    if ds.n_times != model.n_times:
        raise CLIError(
            f"the model takes windows of {model.n_times} samples but the data has {ds.n_times}."
        )
    return model, ds, meta


# ------------------------------------------------------------------------ device, model


def check_device_arg(device: Any, flag: str = "--device") -> None:
    """Raise :class:`CLIError` when ``device`` cannot be used here (no CUDA, bad name, ...)."""
    if device is None:
        return
    from codebrain.utils.device import resolve_device

    try:
        resolve_device(device, local_rank=int(os.environ.get("LOCAL_RANK", "0")), name=flag)
    except ValueError as err:
        raise CLIError(str(err)) from None


def check_model_finite(model: Any, source: str | os.PathLike) -> None:
    """Refuse a model whose weights hold NaN or Inf (a corrupt or diverged checkpoint)."""
    import torch

    bad = [
        name
        for name, t in list(model.named_parameters()) + list(model.named_buffers())
        if t.is_floating_point() and not bool(torch.isfinite(t).all())
    ]
    if bad:
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise CLIError(
            f"the model in {source} has NaN/Inf weights ({shown}); it is corrupt or its "
            "training diverged: re-train or re-download it."
        )


def check_outputs_finite(outputs: Any, source: str | os.PathLike) -> None:
    """Refuse non-finite model outputs (finite inputs went in), naming the model."""
    import numpy as np

    arr = np.asarray(outputs)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        n = int((~np.isfinite(arr.reshape(len(arr), -1))).any(axis=1).sum()) if arr.ndim else 1
        raise CLIError(
            f"the model in {source} gave NaN/Inf outputs for {n} of {len(arr)} window(s) "
            "although the windows are finite; the model is unusable on this data."
        )
