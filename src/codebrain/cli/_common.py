"""Helpers shared by several CLI commands.

Reading windows (:func:`load_data_arg`, the preprocessing flags of
:func:`add_preprocess_args`), loading a model folder with its windows
(:func:`load_model_and_windows`), opening a tokenizer corpus (:func:`load_windows`) and
:func:`sigterm_as_exit`. Not a command: only ``cmd_*`` modules are discovered. Heavy modules
(numpy, torch, mne) are imported inside the functions, so importing this module while
``codebrain --help`` builds the parser stays cheap.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
from collections.abc import Iterator
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
    "add_common_args",
    "load_model_and_windows",
    "labelled_subset",
    "sigterm_as_exit",
    "load_windows",
    "check_output",
    "folder_kind",
    "check_run_folder",
    "check_device_arg",
    "check_model_finite",
    "check_outputs_finite",
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
        ``finetune.json`` of the model folder (``{}`` if absent).
    """
    from codebrain.models.probe import load_finetuned

    model_dir = Path(args.model)
    if not model_dir.is_dir():
        raise CLIError(f"model folder {model_dir} not found.")
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


# --------------------------------------------------------------- labels and run control


def labelled_subset(ds: Any) -> Any:
    """Drop unlabelled windows (label -1); log how many."""
    if ds.labels.dtype.kind in "iu":
        keep = ds.labels >= 0
        if not keep.all():
            logger.warning("Ignoring %d unlabelled window(s).", int((~keep).sum()))
            return ds.subset(keep)
    return ds


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


# ------------------------------------------------------------------------------ outputs


def folder_kind(path: str | os.PathLike) -> str | None:
    """What wrote the folder ``path``, in words (``None``: empty, absent or not recognised).

    Recognises the folders codebrain writes: a corpus (``manifest.json``), a tokenizer-train
    or pretrain run folder (:func:`codebrain.training.run.run_kind`), a fine-tuned model (``finetune.json``), a tokenizer report, a demo output, and a
    model folder (``config.json`` + ``model.safetensors``).
    """
    path = Path(path)
    if not path.is_dir():
        return None
    if (path / "manifest.json").is_file():
        return "a corpus folder (written by 'prepare --corpus')"
    from codebrain.training.run import run_kind

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
    parent = out.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise CLIError(f"{flag} {out}: {parent} is a file, not a folder.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CLIError(f"{flag} {out}: no permission to write in {parent}.")
    return out


def check_run_folder(
    path: str | os.PathLike, *, command: str, own_kind: str, flag: str = "--out"
) -> Path:
    """Validate the run folder of a resumable command (``pretrain``, ``tokenizer-train``).

    A run folder is continued, never replaced, so an existing folder is fine when it is empty
    or was written by ``command``; a folder of another command (a corpus, the other stage's
    run, a model) is refused with a message saying whose it is.
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise CLIError(f"{flag} {out} is an existing file, not a run folder.")
    found = folder_kind(out)
    if found is not None and found != own_kind:
        raise CLIError(
            f"{flag} {out} is {found}, not a {command} run; choose an empty or new folder."
        )
    parent = out.absolute()
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise CLIError(f"{flag} {out}: {parent} is a file, not a folder.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CLIError(f"{flag} {out}: no permission to write in {parent}.")
    return out


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
