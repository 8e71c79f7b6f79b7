"""``codebrain prepare``: EEG files → a windows ``.npz`` (read → channels → filter → windows).

Also holds the helpers the other commands share to read windows: :func:`save_windows_npz`,
:func:`load_windows_npz` and :func:`load_data_arg` (an ``.npz`` from ``prepare``, or EEG files
and folders preprocessed on the fly).

The ``.npz`` holds ``data`` (float32, ``(n_windows, n_chans, n_times)``, units of 100 µV),
``labels``, ``recording_ids``, ``subject_ids``, ``onsets``, ``ch_names``, ``sfreq``,
``classes`` and ``preprocess`` (the :class:`~codebrain.data.preprocess.PreprocessConfig` as
JSON); it loads with ``allow_pickle=False``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "register",
    "add_preprocess_args",
    "preprocess_config_from_args",
    "save_windows_npz",
    "load_windows_npz",
    "load_data_arg",
    "prepare_windows",
]

logger = logging.getLogger(__name__)


def _float_or_none(text: str) -> float | None:
    if text.lower() in ("none", "off", "no"):
        return None
    try:
        return float(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a number or 'none', got {text!r}") from err


def add_preprocess_args(p: argparse.ArgumentParser, *, defaults_from_model: bool = False) -> None:
    """Add the preprocessing / windowing flags (``--channels``, ``--window-seconds``, ...)."""
    g = p.add_argument_group(
        "preprocessing"
        + (
            " (default: the settings stored with the model, else the paper's)"
            if defaults_from_model
            else ""
        )
    )
    g.add_argument(
        "--channels",
        help="comma-separated target channels, in order (default: the released model's 19)",
    )
    g.add_argument("--window-seconds", type=float, help="window length in s (default 30)")
    g.add_argument("--stride-seconds", type=float, help="step between fixed windows in s")
    g.add_argument("--sfreq", type=float, help="output sampling rate in Hz (default 200)")
    g.add_argument(
        "--l-freq",
        type=_float_or_none,
        default=argparse.SUPPRESS,
        help="high-pass edge in Hz or 'none' (0.3)",
    )
    g.add_argument(
        "--h-freq",
        type=_float_or_none,
        default=argparse.SUPPRESS,
        help="low-pass edge in Hz or 'none' (75)",
    )
    g.add_argument(
        "--notch",
        type=_float_or_none,
        default=argparse.SUPPRESS,
        help="mains frequency in Hz or 'none' (60)",
    )
    g.add_argument(
        "--on-missing",
        choices=("raise", "interpolate"),
        help="a target channel absent from a recording: error (default) or interpolate",
    )
    g.add_argument("--reject-uv", type=float, help="drop windows above this peak-to-peak (µV)")
    g.add_argument(
        "--windows",
        choices=("fixed", "events"),
        default="fixed",
        help="fixed-length windows (labelled by the annotation covering their centre) or one "
        "window per event annotation (default fixed)",
    )
    g.add_argument(
        "--events",
        help="comma-separated annotation descriptions used as classes, in label order "
        "(default with --windows events: every description, sorted)",
    )
    g.add_argument("--tmin", type=float, default=0.0, help="event window start after onset (s)")
    g.add_argument("--labels", help="label table CSV (recording, onset, duration, label)")
    g.add_argument(
        "--on-error",
        choices=("raise", "skip"),
        default="raise",
        help="a recording that cannot be read: stop (default) or skip it",
    )


def preprocess_config_from_args(args: argparse.Namespace, base: dict[str, Any] | None = None):
    """A :class:`~codebrain.data.preprocess.PreprocessConfig` from CLI flags over ``base``."""
    from codebrain.data.preprocess import PreprocessConfig

    cfg: dict[str, Any] = dict(base or {})
    if args.channels:
        chans = [c.strip() for c in args.channels.split(",") if c.strip()]
        if not chans:
            raise ValueError("--channels is empty; give comma-separated channel names.")
        cfg["channels"] = tuple(chans)
    mapping = {
        "window_seconds": args.window_seconds,
        "stride_seconds": args.stride_seconds,
        "sfreq": args.sfreq,
        "on_missing": args.on_missing,
        "reject_peak_to_peak_uv": args.reject_uv,
    }
    cfg.update({k: v for k, v in mapping.items() if v is not None})
    # None is meaningful for the filter edges: only override when the flag was given.
    for flag, key in (("l_freq", "l_freq"), ("h_freq", "h_freq"), ("notch", "notch_freq")):
        if hasattr(args, flag):
            cfg[key] = getattr(args, flag)
    if "channels" in cfg:
        cfg["channels"] = tuple(cfg["channels"])
    return PreprocessConfig(**cfg)


def prepare_windows(
    paths: list[str | os.PathLike],
    config: Any,
    *,
    windows: str = "fixed",
    events: list[str] | None = None,
    tmin: float = 0.0,
    labels: str | None = None,
    on_error: str = "raise",
):
    """Run :func:`codebrain.data.windows.load_windows` with CLI-style arguments.

    Returns
    -------
    WindowDataset
    """
    from codebrain.data.windows import load_windows

    for p in paths:
        if not Path(p).exists():
            raise FileNotFoundError(f"{p} does not exist.")
    event_id = {name: i for i, name in enumerate(events)} if events else None
    return load_windows(
        [Path(p) for p in paths],
        config,
        mode=windows,
        event_id=event_id,
        tmin=tmin,
        labels=labels,
        on_error=on_error,
        verbose="error",
    )


def save_windows_npz(ds: Any, path: str | os.PathLike, preprocess: Any | None = None) -> Path:
    """Write a :class:`~codebrain.data.windows.WindowDataset` to ``path`` atomically."""
    from codebrain.utils.io import atomic_open

    path = Path(path)
    arrays = {
        "data": np.asarray(ds.data, dtype=np.float32),
        "labels": np.asarray(ds.labels),
        "recording_ids": np.asarray(ds.recording_ids, dtype=str),
        "subject_ids": np.asarray(ds.subject_ids, dtype=str),
        "onsets": np.asarray(ds.onsets, dtype=np.float64),
        "ch_names": np.asarray(ds.ch_names, dtype=str),
        "sfreq": np.asarray(ds.sfreq, dtype=np.float64),
        "classes": np.asarray(ds.classes if ds.classes is not None else [], dtype=str),
        "has_classes": np.asarray(ds.classes is not None),
        "preprocess": np.asarray(preprocess.to_json() if preprocess is not None else ""),
    }
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def load_windows_npz(path: str | os.PathLike):
    """Read a windows ``.npz`` written by :func:`save_windows_npz`.

    Returns
    -------
    ds : WindowDataset
    preprocess : dict or None
        The stored preprocessing settings.
    """
    from codebrain.data.windows import WindowDataset

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"windows file {path} not found.")
    try:
        with np.load(path, allow_pickle=False) as z:
            fields = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"{path} is not a readable windows .npz: {err}") from err
    needed = {"data", "labels", "recording_ids", "subject_ids", "onsets", "ch_names", "sfreq"}
    missing = sorted(needed - set(fields))
    if missing:
        raise ValueError(
            f"{path} lacks {missing}; expected a windows file written by 'codebrain prepare'."
        )
    has_classes = bool(fields.get("has_classes", np.asarray(False)))
    classes = [str(c) for c in fields["classes"]] if has_classes else None
    ds = WindowDataset(
        fields["data"],
        fields["labels"],
        fields["recording_ids"],
        fields["subject_ids"],
        fields["onsets"],
        [str(c) for c in fields["ch_names"]],
        float(fields["sfreq"]),
        classes,
    )
    pre = str(fields.get("preprocess", np.asarray("")))
    return ds, (json.loads(pre) if pre else None)


def load_data_arg(
    data: list[str], args: argparse.Namespace | None = None, base: dict[str, Any] | None = None
):
    """Windows from one ``.npz`` or from EEG files/folders (preprocessed with ``args``/``base``).

    Returns
    -------
    ds : WindowDataset
    preprocess : dict or None
    """
    from codebrain.cli import CLIError

    if not data:
        raise CLIError("no input given.")
    for p in data:
        if not Path(p).exists():
            raise CLIError(f"{p} does not exist.")
    if len(data) == 1 and str(data[0]).endswith(".npz"):
        return load_windows_npz(data[0])
    if any(str(p).endswith(".npz") for p in data):
        raise CLIError("give either one windows .npz or EEG files/folders, not both.")
    if args is None:
        from codebrain.data.preprocess import PreprocessConfig

        config = PreprocessConfig(**(base or {}))
        kw: dict[str, Any] = {}
    else:
        config = preprocess_config_from_args(args, base)
        kw = dict(
            windows=args.windows,
            events=_split_list(args.events),
            tmin=args.tmin,
            labels=args.labels,
            on_error=args.on_error,
        )
    ds = prepare_windows(list(data), config, **kw)
    if len(ds) == 0:
        raise CLIError(f"no windows could be cut from {', '.join(map(str, data))}.")
    return ds, config.to_dict()


def _split_list(text: str | None) -> list[str] | None:
    if not text:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    return items or None


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``prepare`` subcommand."""
    p = subparsers.add_parser(
        "prepare",
        help="EEG files/folders -> windows .npz (channels, filters, resampling, windows)",
        description=(
            "Read EEG recordings (EDF/BDF/GDF/FIF/BrainVision/EEGLAB files, folders, BIDS), map "
            "channels to the target montage, band-pass/notch filter, resample, scale to units "
            "of 100 µV and cut labelled windows; write them to one .npz."
        ),
    )
    p.add_argument("inputs", nargs="+", help="EEG files and/or folders")
    dest = p.add_mutually_exclusive_group(required=True)
    dest.add_argument("-o", "--out", help="output windows file (.npz, in memory, labelled)")
    dest.add_argument(
        "--corpus",
        help="output corpus folder instead: sharded, resumable, memory-mapped fixed-length "
        "windows for pretraining (codebrain.data.build_corpus)",
    )
    p.add_argument("--n-jobs", type=int, default=1, help="worker processes (--corpus)")
    p.add_argument(
        "--dtype", choices=("float16", "float32"), default="float16", help="corpus storage type"
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    add_preprocess_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``codebrain prepare``."""
    from codebrain.cli import CLIError

    if args.corpus:
        return _run_corpus(args)
    out = Path(args.out)
    if out.suffix != ".npz":
        raise CLIError(f"--out must end with .npz, got {out}.")
    if out.exists() and not args.force:
        raise CLIError(f"{out} exists; pass --force to overwrite it.")
    for p in args.inputs:
        if not Path(p).exists():
            raise CLIError(f"{p} does not exist.")
    config = preprocess_config_from_args(args)
    ds = prepare_windows(
        args.inputs,
        config,
        windows=args.windows,
        events=_split_list(args.events),
        tmin=args.tmin,
        labels=args.labels,
        on_error=args.on_error,
    )
    if len(ds) == 0:
        raise CLIError("no windows were cut (recordings too short or no matching events).")
    save_windows_npz(ds, out, config)
    labelled = ds.labels[ds.labels >= 0] if ds.labels.dtype.kind == "i" else ds.labels
    print(
        f"Wrote {out}: {len(ds)} windows x {ds.n_chans} channels x {ds.n_times} samples "
        f"({ds.sfreq:g} Hz), {len(set(ds.recording_ids.tolist()))} recordings, "
        f"{len(set(ds.subject_ids.tolist()))} subjects, classes {ds.classes}, "
        f"{labelled.size} labelled."
    )
    return 0


def _run_corpus(args: argparse.Namespace) -> int:
    """``prepare --corpus``: build or resume a sharded corpus (fixed-length windows)."""
    from codebrain.cli import CLIError
    from codebrain.data.store import build_corpus

    if args.windows != "fixed" or args.events or args.labels:
        raise CLIError(
            "--corpus stores unlabelled fixed-length windows; drop --windows/--events/--labels."
        )
    for p in args.inputs:
        if not Path(p).exists():
            raise CLIError(f"{p} does not exist.")
    config = preprocess_config_from_args(args)
    summary = build_corpus(
        [Path(p) for p in args.inputs], args.corpus, config, n_jobs=args.n_jobs, dtype=args.dtype
    )
    if summary.n_windows == 0:
        raise CLIError(
            f"no windows in corpus {args.corpus}: {dict(summary.failed) or 'recordings too short'}."
        )
    print(str(summary))
    return 0
