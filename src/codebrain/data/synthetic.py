"""Seeded synthetic motor-imagery EEG, written as real EDF+ files with annotations.

The built-in default data set: it lets every step of the pipeline (reading clinical EDF
labels, channel normalisation, filtering, resampling, windows, fine-tuning) run without
downloads, and carries a known, physiologically shaped effect to learn.

Model of one recording (all amplitudes in µV, positions from MNE's template 10-20 montage):

- **Background**: 1/f^β noise (β ≈ 1.7) per source, mixed across channels with a spatial
  covariance ``exp(-distance / 8 cm)``, so neighbouring electrodes correlate (volume
  conduction); about 12 µV RMS, plus 1 µV white sensor noise.
- **Posterior alpha**: a narrow-band rhythm at the subject's individual alpha frequency
  (IAF, 8.5-12 Hz), waxing and waning, strongest over O1/O2/PZ.
- **Sensorimotor mu (IAF + 0.5 Hz) and beta (18-26 Hz)** from two lateral sources centred on
  C3 (left hemisphere) and C4 (right hemisphere), and a midline source at CZ.
- **Motor imagery**: each trial is a 4 s imagery period (annotated ``left_hand``,
  ``right_hand`` and optionally ``feet``/``rest``) followed by 2-3 s rest. Imagining the left
  hand desynchronises (ERD) the mu/beta of the right-hemisphere source (over C4) by the
  subject's ERD depth (55-70 % amplitude reduction); the right hand the left-hemisphere
  source (over C3); the feet the midline source (CZ); rest nothing. A small (3 µV)
  contralateral negative slow potential accompanies the imagery.
- **Eye blinks** on frontal channels (80-150 µV at FP1/FP2, about one every 4 s).
- **Mains interference** at 50 or 60 Hz (a few µV, channel-dependent).

Channels are named as in a TUH clinical EDF (``EEG FP1-REF``, old T3/T4/T5/T6 names, with
the A1/A2 ear electrodes) and the files are written at 250 Hz so the name normalisation and
resampling paths of the pipeline are exercised.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import mne
import numpy as np

from codebrain.data.montage import _montage_positions
from codebrain.utils.check import check_int
from codebrain.utils.io import atomic_path

__all__ = [
    "SYNTHETIC_CHANNELS",
    "MI_CLASSES",
    "make_synthetic_recording",
    "write_synthetic_dataset",
]

logger = logging.getLogger(__name__)

_BASE_CHANNELS = (
    "FP1", "FP2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2", "F7", "F8",
    "T3", "T4", "T5", "T6", "A1", "A2", "FZ", "CZ", "PZ",
)  # fmt: skip
#: Channel labels of the synthetic files (TUH clinical EDF style).
SYNTHETIC_CHANNELS: tuple[str, ...] = tuple(f"EEG {c}-REF" for c in _BASE_CHANNELS)
#: Motor-imagery classes that can be simulated.
MI_CLASSES: tuple[str, ...] = ("left_hand", "right_hand", "feet", "rest")

# Spatial weights (channel → gain) of the sources.
_ALPHA_W = {"O1": 1.0, "O2": 1.0, "PZ": 0.7, "P3": 0.6, "P4": 0.6, "T5": 0.5, "T6": 0.5}
_LEFT_MOTOR_W = {"C3": 1.0, "F3": 0.3, "P3": 0.3, "T3": 0.25, "CZ": 0.2}
_RIGHT_MOTOR_W = {"C4": 1.0, "F4": 0.3, "P4": 0.3, "T4": 0.25, "CZ": 0.2}
_MID_MOTOR_W = {"CZ": 1.0, "FZ": 0.3, "PZ": 0.3, "C3": 0.2, "C4": 0.2}
_BLINK_W = {"FP1": 1.0, "FP2": 1.0, "F7": 0.35, "F8": 0.35, "F3": 0.3, "F4": 0.3, "FZ": 0.35}
# Which motor source each class desynchronises.
_ERD_SOURCE = {"left_hand": "right", "right_hand": "left", "feet": "mid", "rest": None}


def _weights(spec: dict[str, float], floor: float = 0.0) -> np.ndarray:
    """Channel gain vector ``(n_chans,)`` from a name → gain dict."""
    return np.array([spec.get(c, floor) for c in _BASE_CHANNELS])


def _pink(
    rng: np.random.Generator, n_series: int, n_times: int, sfreq: float, beta: float
) -> np.ndarray:
    """Unit-variance 1/f^beta noise, shape ``(n_series, n_times)`` (spectral shaping)."""
    spec = np.fft.rfft(rng.standard_normal((n_series, n_times)), axis=-1)
    freqs = np.fft.rfftfreq(n_times, 1.0 / sfreq)
    gain = np.maximum(freqs, 0.5) ** (-beta / 2.0)
    gain[0] = 0.0
    out = np.fft.irfft(spec * gain, n=n_times, axis=-1)
    return out / out.std(axis=-1, keepdims=True)


def _narrowband(
    rng: np.random.Generator, n_times: int, sfreq: float, freq: float, width: float
) -> np.ndarray:
    """Unit-variance rhythm ``(n_times,)`` with a Gaussian spectral peak at ``freq`` Hz."""
    spec = np.fft.rfft(rng.standard_normal(n_times))
    freqs = np.fft.rfftfreq(n_times, 1.0 / sfreq)
    out = np.fft.irfft(spec * np.exp(-0.5 * ((freqs - freq) / width) ** 2), n=n_times)
    return out / out.std()


def _slow_envelope(
    rng: np.random.Generator, n_times: int, sfreq: float, depth: float
) -> np.ndarray:
    """Positive waxing/waning amplitude envelope ``(n_times,)`` around 1 (< 0.5 Hz)."""
    spec = np.fft.rfft(rng.standard_normal(n_times))
    freqs = np.fft.rfftfreq(n_times, 1.0 / sfreq)
    env = np.fft.irfft(spec * (freqs < 0.5) * (freqs > 0), n=n_times)
    env = env / (env.std() + 1e-12)
    return np.clip(1.0 + depth * env, 0.2, None)


def _trial_shape(
    n_times: int, sfreq: float, onsets: np.ndarray, duration: float
) -> list[np.ndarray]:
    """Per-trial smooth boxcars ``(n_times,)`` in [0, 1]: 0.5 s ramps inside each trial."""
    t = np.arange(n_times) / sfreq
    shapes = []
    for onset in onsets:
        rise = np.clip((t - onset - 0.2) / 0.5, 0.0, 1.0)
        fall = np.clip((onset + duration - t) / 0.5, 0.0, 1.0)
        shapes.append(np.minimum(rise, fall))
    return shapes


def make_synthetic_recording(
    subject: int,
    seed: int = 0,
    *,
    n_trials: int = 40,
    classes: Sequence[str] = ("left_hand", "right_hand"),
    sfreq: float = 250.0,
    mains_freq: float = 60.0,
    trial_seconds: float = 4.0,
    rest_seconds: tuple[float, float] = (2.0, 3.0),
    erd_depth: float | None = None,
) -> mne.io.RawArray:
    """Simulate one subject's motor-imagery recording (see the module docstring).

    Parameters
    ----------
    subject : int
        Subject number (≥ 0); sets the subject's traits (IAF, ERD depth, gains) together with
        ``seed``.
    seed : int
        Seed; the same ``(subject, seed, ...)`` gives the same recording bit for bit.
    n_trials : int
        Number of imagery trials, split evenly between ``classes`` (must be a multiple of
        ``len(classes)``), in a seeded random order.
    classes : sequence of str
        Subset of :data:`MI_CLASSES`.
    sfreq : float
        Sampling rate in Hz.
    mains_freq : float
        Mains interference frequency (50 or 60 Hz).
    trial_seconds : float
        Imagery period per trial (annotation duration).
    rest_seconds : (float, float)
        Uniform range of the rest between trials.
    erd_depth : float | None
        Fractional mu/beta amplitude reduction during imagery (None: the subject's own value
        drawn in [0.55, 0.70]).

    Returns
    -------
    mne.io.RawArray
        21 channels (:data:`SYNTHETIC_CHANNELS`), data in volts, annotations ``onset`` = cue,
        ``duration`` = ``trial_seconds``, ``description`` = class name; ``subject_info``
        ``his_id`` = ``"sub-XX"``.
    """
    unknown = [c for c in classes if c not in MI_CLASSES]
    if unknown or not classes:
        raise ValueError(
            f"classes must be a non-empty subset of {MI_CLASSES}, got {list(classes)}."
        )
    if n_trials < len(classes) or n_trials % len(classes):
        raise ValueError(
            f"n_trials ({n_trials}) must be a positive multiple of the number of classes "
            f"({len(classes)}) so labels are balanced."
        )
    check_int("subject", subject, minimum=0, allow_numpy=True)
    rng = np.random.default_rng([seed, subject])

    # Subject traits.
    iaf = float(np.clip(rng.normal(10.0, 0.8), 8.5, 12.0))
    beta_freq = float(rng.uniform(18.0, 24.0))
    depth = float(rng.uniform(0.55, 0.70)) if erd_depth is None else float(erd_depth)
    alpha_uv, mu_uv, beta_uv = rng.uniform(7, 11), rng.uniform(6, 8), rng.uniform(2.5, 3.5)
    background_uv = rng.uniform(10, 14)

    # Trial timing.
    labels = np.repeat(np.asarray(classes), n_trials // len(classes))
    rng.shuffle(labels)
    gaps = rng.uniform(*rest_seconds, size=n_trials)
    onsets = 3.0 + np.concatenate([[0.0], np.cumsum(trial_seconds + gaps)[:-1]])
    duration = float(np.ceil(onsets[-1] + trial_seconds + 3.0))
    n_times = int(round(duration * sfreq))
    n_chans = len(_BASE_CHANNELS)
    t = np.arange(n_times) / sfreq

    # Spatially correlated 1/f background.
    pos = _montage_positions(_BASE_CHANNELS)
    xyz = np.stack([pos[c] for c in _BASE_CHANNELS])  # (n_chans, 3), metres
    dist = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1)
    mixing = np.linalg.cholesky(np.exp(-dist / 0.08))
    data = background_uv * (mixing @ _pink(rng, n_chans, n_times, sfreq, beta=1.7))
    data += rng.standard_normal((n_chans, n_times))

    # Posterior alpha.
    alpha = _narrowband(rng, n_times, sfreq, iaf, 0.6) * _slow_envelope(rng, n_times, sfreq, 0.4)
    data += alpha_uv * np.outer(_weights(_ALPHA_W, 0.05), alpha)

    # Sensorimotor sources with event-related desynchronisation.
    shapes = _trial_shape(n_times, sfreq, onsets, trial_seconds)
    weights = {"left": _LEFT_MOTOR_W, "right": _RIGHT_MOTOR_W, "mid": _MID_MOTOR_W}
    for name, spec in weights.items():
        scale = 0.6 if name == "mid" else 1.0
        rhythm = mu_uv * _narrowband(rng, n_times, sfreq, iaf + 0.5, 0.7)
        rhythm += beta_uv * _narrowband(rng, n_times, sfreq, beta_freq, 1.5)
        rhythm *= _slow_envelope(rng, n_times, sfreq, 0.25)
        gain = np.ones(n_times)
        slow = np.zeros(n_times)
        for label, shape in zip(labels, shapes, strict=True):
            if _ERD_SOURCE[str(label)] == name:
                gain -= depth * shape
                slow -= 3.0 * shape
        data += np.outer(_weights(spec), scale * gain * rhythm + slow)

    # Eye blinks: Poisson times, Gaussian-shaped deflections on frontal channels.
    n_blinks = rng.poisson(duration / 4.0)
    blinks = np.zeros(n_times)
    for when, amp in zip(
        rng.uniform(0, duration, n_blinks), rng.uniform(80, 150, n_blinks), strict=True
    ):
        blinks += amp * np.exp(-0.5 * ((t - when) / 0.07) ** 2)
    data += np.outer(_weights(_BLINK_W, 0.02), blinks)

    # Mains interference.
    mains_gain = rng.uniform(2.0, 6.0, size=(n_chans, 1))
    data += mains_gain * np.sin(2 * np.pi * mains_freq * t + rng.uniform(0, 2 * np.pi))

    info = mne.create_info(list(SYNTHETIC_CHANNELS), sfreq, ch_types="eeg")
    raw = mne.io.RawArray(data * 1e-6, info, verbose=False)  # µV → V
    meas_date = dt.datetime(2020, 1, 1, 9, 0, tzinfo=dt.timezone.utc) + dt.timedelta(days=subject)
    raw.set_meas_date(meas_date)
    raw.info["subject_info"] = {"his_id": f"sub-{subject:02d}"}
    raw.set_annotations(
        mne.Annotations(onsets, trial_seconds, labels.tolist(), orig_time=meas_date)
    )
    logger.debug(
        "Synthetic subject %d: IAF %.2f Hz, beta %.1f Hz, ERD depth %.2f, %d trials, %.0f s.",
        subject,
        iaf,
        beta_freq,
        depth,
        n_trials,
        duration,
    )
    return raw


def write_synthetic_dataset(
    out_dir: str | os.PathLike,
    n_subjects: int = 8,
    n_trials: int = 40,
    seed: int = 0,
    *,
    classes: Sequence[str] = ("left_hand", "right_hand"),
    sfreq: float = 250.0,
    mains_freq: float = 60.0,
    overwrite: bool = False,
) -> list[Path]:
    """Write one EDF+ file per subject with :func:`make_synthetic_recording`.

    Parameters
    ----------
    out_dir : path-like
        Folder to write into (created if needed).
    n_subjects : int
        Number of subjects (files ``sub-XX_task-motorimagery_eeg.edf``).
    n_trials : int
        Trials per subject (multiple of ``len(classes)``).
    seed : int
        Data set seed.
    classes, sfreq, mains_freq
        See :func:`make_synthetic_recording`.
    overwrite : bool
        Rewrite files that already exist (otherwise they are kept as they are).

    Returns
    -------
    list of Path
        The EDF files, one per subject, in subject order.
    """
    check_int("n_subjects", n_subjects, allow_numpy=True)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for subject in range(1, n_subjects + 1):
        path = out_dir / f"sub-{subject:02d}_task-motorimagery_eeg.edf"
        if overwrite or not path.exists():
            raw = make_synthetic_recording(
                subject,
                seed,
                n_trials=n_trials,
                classes=classes,
                sfreq=sfreq,
                mains_freq=mains_freq,
            )
            with atomic_path(path) as tmp:
                mne.export.export_raw(tmp, raw, fmt="edf", overwrite=True, verbose=False)
        paths.append(path)
    logger.info("Synthetic data set: %d EDF file(s) in %s.", len(paths), out_dir)
    return paths
