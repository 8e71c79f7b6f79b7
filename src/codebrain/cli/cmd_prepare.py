"""``codebrain prepare``: EEG files → a windows ``.npz`` (read → channels → filter → windows).

:func:`codebrain.data.save_windows_npz` writes the file; the other commands read it back with
:func:`codebrain.data.load_windows_npz` through
:func:`codebrain.cli._data_args.load_data_arg` (an ``.npz`` from ``prepare``, or EEG files and
folders preprocessed on the fly).

The ``.npz`` holds ``data`` (float32, ``(n_windows, n_chans, n_times)``, units of 100 µV),
``labels``, ``recording_ids``, ``subject_ids``, ``onsets``, ``ch_names``, ``sfreq``,
``classes`` and ``preprocess`` (the :class:`~codebrain.data.preprocess.PreprocessConfig` as
JSON); it loads with ``allow_pickle=False``.

``--corpus DIR`` builds a sharded pretraining corpus instead (:func:`codebrain.data.build_corpus`:
locked, resumable, marked incomplete until finished); ``--recipe tueg`` is the authors' TUEG
corpus recipe (:mod:`codebrain.data.tueg`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

__all__ = ["register"]

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``prepare`` subcommand."""
    from codebrain.cli._data_args import add_preprocess_args

    p = subparsers.add_parser(
        "prepare",
        help="EEG files/folders -> windows .npz (channels, filters, resampling, windows)",
        description=(
            "Read EEG recordings (every raw format MNE reads: EDF/BDF/GDF/FIF/BrainVision/EEGLAB, "
            "Nihon Kohden, Persyst, Neuroscan/ANT .cnt, EGI .mff, ...; files, folders, BIDS), map "
            "channels to the target montage (--channel-map renames them first), band-pass/notch filter, resample, scale to units "
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
    p.add_argument(
        "--on-overflow",
        choices=("raise", "clip"),
        default="raise",
        help="--corpus: values beyond the storage type's range (float16: ±6.55e6 µV) fail the "
        "recording (default) or are clipped with a warning",
    )
    p.add_argument(
        "--recipe",
        choices=("tueg",),
        help="--corpus: the authors' TUEG pretraining corpus recipe (01_tcp_ar/02_tcp_le/"
        "03_tcp_ar_a montages, all 19 channels, resample to 200 Hz then 0.3-75 Hz then a 60 Hz "
        "notch, recordings of 300 s or more, 60 s trimmed at each end, 30 s windows, max "
        "|x| < 100 µV); fixes the preprocessing flags",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    add_preprocess_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``codebrain prepare``."""
    from codebrain.cli import CLIError
    from codebrain.cli._data_args import prepare_windows, preprocess_config_from_args, split_list
    from codebrain.cli._outputs import check_output

    if args.corpus:
        return _run_corpus(args)
    if args.recipe:
        raise CLIError("--recipe builds a pretraining corpus; use it with --corpus, not --out.")
    out = check_output(
        args.out, suffixes=(".npz",), force=args.force, inputs=[*args.inputs, args.labels]
    )
    for p in args.inputs:
        if not Path(p).exists():
            raise CLIError(f"{p} does not exist.")
    config = preprocess_config_from_args(args)
    ds = prepare_windows(
        args.inputs,
        config,
        windows=args.windows,
        events=split_list(args.events),
        tmin=args.tmin,
        labels=args.labels,
        on_error=args.on_error,
        subject_pattern=args.subject_pattern,
    )
    if len(ds) == 0:
        raise CLIError("no windows were cut (recordings too short or no matching events).")
    from codebrain.data.windows import save_windows_npz

    save_windows_npz(ds, out, config)
    labelled = ds.labels[ds.labels >= 0] if ds.labels.dtype.kind == "i" else ds.labels
    print(
        f"Wrote {out}: {len(ds)} windows x {ds.n_chans} channels x {ds.n_times} samples "
        f"({ds.sfreq:g} Hz), {len(set(ds.recording_ids.tolist()))} recordings, "
        f"{len(set(ds.subject_ids.tolist()))} subjects, classes {ds.classes}, "
        f"{labelled.size} labelled."
    )
    return 0


_RECIPE_FIXED = {
    "channels": "--channels",
    "window_seconds": "--window-seconds",
    "stride_seconds": "--stride-seconds",
    "sfreq": "--sfreq",
    "on_missing": "--on-missing",
    "reject_uv": "--reject-uv",
    "reject_abs_uv": "--reject-abs-uv",
    "l_freq": "--l-freq",
    "h_freq": "--h-freq",
    "notch": "--notch",
}


def _run_corpus(args: argparse.Namespace) -> int:
    """``prepare --corpus``: build or resume a sharded corpus (fixed-length windows)."""
    from codebrain.cli import CLIError
    from codebrain.cli._data_args import preprocess_config_from_args
    from codebrain.data.store import build_corpus

    if args.windows != "fixed" or args.events or args.labels:
        raise CLIError(
            "--corpus stores unlabelled fixed-length windows; drop --windows/--events/--labels."
        )
    for p in args.inputs:
        if not Path(p).exists():
            raise CLIError(f"{p} does not exist.")
    inputs = [Path(p) for p in args.inputs]
    if args.recipe == "tueg":
        from codebrain.data.tueg import tueg_config, tueg_recordings

        # The filter edges default to "not given" (SUPPRESS); the others to None.
        given = [
            flag
            for key, flag in _RECIPE_FIXED.items()
            if (
                hasattr(args, key)
                if key in ("l_freq", "h_freq", "notch")
                else getattr(args, key) is not None
            )
        ]
        if given:
            raise CLIError(f"--recipe tueg fixes the preprocessing; drop {', '.join(given)}.")
        config = tueg_config(**({"on_nonfinite": args.on_nonfinite} if args.on_nonfinite else {}))
        inputs = tueg_recordings(inputs)
    else:
        config = preprocess_config_from_args(args)
    summary = build_corpus(
        inputs,
        args.corpus,
        config,
        n_jobs=args.n_jobs,
        dtype=args.dtype,
        on_overflow=args.on_overflow,
        subject_pattern=args.subject_pattern,
    )
    print(str(summary))
    return 0
