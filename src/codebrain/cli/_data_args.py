"""Reading windows for the CLI: the preprocessing flags, ``data`` arguments and tokenizer corpora.

:func:`add_preprocess_args` adds the preprocessing / windowing flags and
:func:`preprocess_config_from_args` turns them into a ``PreprocessConfig``;
:func:`load_data_arg` reads one windows ``.npz`` or EEG files/folders; :func:`load_windows`
opens a corpus for the tokenizer commands. Heavy modules (numpy, torch, mne) are imported inside
the functions, so building the parser stays cheap.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codebrain.cli import CLIError

if TYPE_CHECKING:
    from torch.utils.data import Dataset

__all__ = [
    "add_preprocess_args",
    "preprocess_config_from_args",
    "split_list",
    "prepare_windows",
    "load_data_arg",
    "labelled_subset",
    "load_windows",
]

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------------ windows


def _positive_float(text: str) -> float:
    """A finite number > 0 (argparse type): ``inf``, ``nan``, 0 and negatives are refused."""
    import math

    try:
        value = float(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from err
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def _finite_float(text: str) -> float:
    """A finite number (argparse type)."""
    import math

    try:
        value = float(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from err
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _float_or_none(text: str) -> float | None:
    """A finite frequency > 0 in Hz, or ``none``/``off``/``no`` (argparse type)."""
    if text.lower() in ("none", "off", "no"):
        return None
    try:
        return _positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected a frequency > 0 in Hz or 'none', got {text!r}"
        ) from None


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
    g.add_argument(
        "--channel-map",
        help="rename recording channels before picking the targets: 'old=new,old2=new2' or a "
        '.json ({"old": "new"}) / .csv (old,new) file, for files not named by 10-20 labels',
    )
    g.add_argument("--window-seconds", type=_positive_float, help="window length in s (default 30)")
    g.add_argument("--stride-seconds", type=_positive_float, help="step between fixed windows in s")
    g.add_argument("--sfreq", type=_positive_float, help="output sampling rate in Hz (default 200)")
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
    g.add_argument(
        "--reject-uv", type=_positive_float, help="drop windows above this peak-to-peak (µV)"
    )
    g.add_argument(
        "--reject-abs-uv", type=_positive_float, help="drop windows whose max |x| reaches this (µV)"
    )
    g.add_argument(
        "--on-nonfinite",
        choices=("raise", "drop"),
        help="a recording with NaN/Inf samples: error (default), or filter its finite stretches "
        "separately and drop the windows that overlap the bad samples",
    )
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
    g.add_argument(
        "--tmin", type=_finite_float, default=0.0, help="event window start after onset (s)"
    )
    g.add_argument("--labels", help="label table CSV (recording, onset, duration, label)")
    g.add_argument(
        "--subject-pattern",
        help="regex whose group 'subject' (or first group) is the subject id, searched in the "
        "file name then the path; or a preset: eegbci (SxxxRyy), eegmat (SubjectNN_K), tuh "
        "(aaaaaaaa_s001_t000), bids (sub-). Default: BIDS sub-, those presets, the file's "
        "patient id, else one subject per file",
    )
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
    if getattr(args, "channel_map", None):
        from codebrain.data.montage import parse_channel_map

        try:
            cfg["channel_map"] = parse_channel_map(args.channel_map)
        except ValueError as err:
            raise CLIError(f"--channel-map: {err}") from err
    mapping = {
        "window_seconds": args.window_seconds,
        "stride_seconds": args.stride_seconds,
        "sfreq": args.sfreq,
        "on_missing": args.on_missing,
        "reject_peak_to_peak_uv": args.reject_uv,
        "reject_abs_uv": getattr(args, "reject_abs_uv", None),
        "on_nonfinite": getattr(args, "on_nonfinite", None),
    }
    cfg.update({k: v for k, v in mapping.items() if v is not None})
    # None is meaningful for the filter edges: only override when the flag was given.
    for flag, key in (("l_freq", "l_freq"), ("h_freq", "h_freq"), ("notch", "notch_freq")):
        if hasattr(args, flag):
            cfg[key] = getattr(args, flag)
    if "channels" in cfg:
        cfg["channels"] = tuple(cfg["channels"])
    try:
        return PreprocessConfig(**cfg)
    except (TypeError, ValueError) as err:
        raise CLIError(_name_the_flag(str(err), args)) from err


#: PreprocessConfig fields set by a preprocessing flag (argparse dest, flag).
_PREPROCESS_FLAGS = {
    "window_seconds": ("window_seconds", "--window-seconds"),
    "stride_seconds": ("stride_seconds", "--stride-seconds"),
    "sfreq": ("sfreq", "--sfreq"),
    "l_freq": ("l_freq", "--l-freq"),
    "h_freq": ("h_freq", "--h-freq"),
    "notch_freq": ("notch", "--notch"),
    "reject_peak_to_peak_uv": ("reject_uv", "--reject-uv"),
    "reject_abs_uv": ("reject_abs_uv", "--reject-abs-uv"),
    "channels": ("channels", "--channels"),
}


def _name_the_flag(message: str, args: argparse.Namespace) -> str:
    """``message`` of a PreprocessConfig check, with the field it names spelt as the flag given."""
    field = message.split(" ", 1)[0].split("[", 1)[0]
    dest, flag = _PREPROCESS_FLAGS.get(field, (None, None))
    if dest is None or getattr(args, dest, None) is None:
        return message  # a stored setting, not a flag: keep the field's name
    rest = message[len(field) :].removeprefix(" (or None)")
    return f"{flag}{rest}"


def split_list(text: str | None) -> list[str] | None:
    """The stripped, non-empty items of comma-separated ``text``; ``None`` if there are none."""
    if not text:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    return items or None


def prepare_windows(
    paths: list[str | os.PathLike],
    config: Any,
    *,
    windows: str = "fixed",
    events: list[str] | None = None,
    tmin: float = 0.0,
    labels: str | None = None,
    on_error: str = "raise",
    subject_pattern: str | None = None,
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
        subject_pattern=subject_pattern,
        verbose="error",
    )


def load_data_arg(
    data: list[str], args: argparse.Namespace | None = None, base: dict[str, Any] | None = None
):
    """Windows from one ``.npz`` or from EEG files/folders (preprocessed with ``args``/``base``).

    Returns
    -------
    ds : WindowDataset
    preprocess : dict or None
    """
    if not data:
        raise CLIError("no input given.")
    for p in data:
        if not Path(p).exists():
            raise CLIError(f"{p} does not exist.")
    if len(data) == 1 and str(data[0]).endswith(".npz"):
        from codebrain.data.windows import load_windows_npz

        ds, pre = load_windows_npz(data[0])
        pattern = getattr(args, "subject_pattern", None) if args is not None else None
        if pattern:
            ds.subject_ids = _subjects_from_recordings(ds.recording_ids, pattern)
        return ds, pre
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
            events=split_list(args.events),
            tmin=args.tmin,
            labels=args.labels,
            on_error=args.on_error,
            subject_pattern=getattr(args, "subject_pattern", None),
        )
    ds = prepare_windows(list(data), config, **kw)
    if len(ds) == 0:
        raise CLIError(f"no windows could be cut from {', '.join(map(str, data))}.")
    return ds, config.to_dict()


def _subjects_from_recordings(recording_ids: Any, pattern: str) -> Any:
    """Subject ids re-derived from stored recording ids with ``--subject-pattern``."""
    import numpy as np

    from codebrain.data.io import subject_id

    try:
        return np.asarray([subject_id(r, pattern=pattern) for r in recording_ids], dtype=str)
    except ValueError as err:
        raise CLIError(f"--subject-pattern: {err}") from err


# ------------------------------------------------------------------------------- labels


def labelled_subset(ds: Any) -> Any:
    """Drop unlabelled windows (label -1); log how many."""
    if ds.labels.dtype.kind in "iu":
        keep = ds.labels >= 0
        if not keep.all():
            logger.warning("Ignoring %d unlabelled window(s).", int((~keep).sum()))
            return ds.subset(keep)
    return ds


# -------------------------------------------------------------------- tokenizer corpora


def load_windows(path: str | os.PathLike) -> Dataset:
    """Open a corpus for the tokenizer commands.

    Parameters
    ----------
    path : path-like
        A folder written by ``codebrain.data.build_corpus`` (has ``manifest.json``), a folder of
        ``.npy`` arrays ``(n_windows, n_chans, n_times)``, or one such ``.npy`` file.

    Returns
    -------
    torch.utils.data.Dataset
        Items are float32 tensors ``(n_chans, n_times)``.

    Raises
    ------
    CLIError
        Missing path, or a folder with neither a manifest nor ``.npy`` files.
    """
    from codebrain.data.windows import NpyWindows

    path = Path(path)
    if not path.exists():
        raise CLIError(f"corpus {str(path)!r} does not exist.")
    if path.is_file():
        if path.suffix != ".npy":
            raise CLIError(f"corpus file {str(path)!r} is not a .npy array.")
        return NpyWindows([path])
    if (path / "manifest.json").is_file():
        try:
            from codebrain.data import CorpusDataset
        except ImportError as err:
            raise CLIError(
                f"{path} is a built corpus but codebrain.data.CorpusDataset is unavailable ({err})."
            ) from err
        return CorpusDataset(path)
    files = sorted(path.glob("*.npy"))
    if not files:
        raise CLIError(
            f"corpus folder {str(path)!r} has neither a manifest.json (built corpus) nor .npy "
            "arrays shaped (n_windows, n_chans, n_times)."
        )
    return NpyWindows(files)
