"""Bipolar montages: the TUH "temporal central parasagittal" (TCP) double banana.

TUAB, TUEV (CBraMod/CodeBrain preprocessing) and CHB-MIT are used in 16 bipolar derivations,
four chains of four (left temporal, right temporal, left parasagittal, right parasagittal)::

    FP1-F7  F7-T3  T3-T5  T5-O1    FP2-F8  F8-T4  T4-T6  T6-O2
    FP1-F3  F3-C3  C3-P3  P3-O1    FP2-F4  F4-C4  C4-P4  P4-O2

TUH recordings are monopolar (``EEG FP1-REF`` or ``EEG FP1-LE``), so each derivation is the
difference of two channels. CHB-MIT recordings are stored already as bipolar derivations with
10-10 names (``F7-T7``, ``T7-P7``, ``P7-O1`` ...; a repeated label such as ``T8-P8`` comes
back from MNE as ``T8-P8-0`` and ``T8-P8-1``). :func:`bipolar_derivations` accepts both: a
derivation present in the recording is taken as it is, otherwise it is built from its two
monopolar electrodes. Names are compared after :func:`~codebrain.data.montage.
normalize_channel_name` (reference suffixes ``-REF``/``-LE`` removed, T7/T8/P7/P8 read as
T3/T4/T5/T6).

Shape legend: ``n_chans`` channels, ``n_times`` samples, ``n_derivations`` bipolar channels.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Literal

import mne
import numpy as np

from codebrain.data.montage import CHANNEL_ALIASES, normalize_channel_name
from codebrain.utils.check import check_option, check_value

__all__ = [
    "TCP_BIPOLAR_PAIRS",
    "TCP_BIPOLAR_CHANNELS",
    "TCP_BIPOLAR_CHANNELS_1010",
    "tcp_bipolar_names",
    "bipolar_derivations",
    "bipolar_raw",
]

logger = logging.getLogger(__name__)

#: The 16 TCP derivations as (anode, cathode) in canonical 10-20 names, in CBraMod's order.
TCP_BIPOLAR_PAIRS: tuple[tuple[str, str], ...] = (
    ("FP1", "F7"),
    ("F7", "T3"),
    ("T3", "T5"),
    ("T5", "O1"),
    ("FP2", "F8"),
    ("F8", "T4"),
    ("T4", "T6"),
    ("T6", "O2"),
    ("FP1", "F3"),
    ("F3", "C3"),
    ("C3", "P3"),
    ("P3", "O1"),
    ("FP2", "F4"),
    ("F4", "C4"),
    ("C4", "P4"),
    ("P4", "O2"),
)

_TO_1010 = {v: k for k, v in CHANNEL_ALIASES.items()}  # T3 -> T7, T5 -> P7, ...

#: TUH names of the 16 derivations (``FP1-F7`` ... ``P4-O2``, old temporal names).
TCP_BIPOLAR_CHANNELS: tuple[str, ...] = tuple(f"{a}-{b}" for a, b in TCP_BIPOLAR_PAIRS)

#: The same 16 derivations with 10-10 names, as CHB-MIT spells them (``F7-T7``, ``T7-P7`` ...).
TCP_BIPOLAR_CHANNELS_1010: tuple[str, ...] = tuple(
    f"{_TO_1010.get(a, a)}-{_TO_1010.get(b, b)}" for a, b in TCP_BIPOLAR_PAIRS
)

_DUPLICATE_RE = re.compile(r"^(.+)-(\d+)$")
_ELECTRODE_RE = re.compile(r"^[A-Z][A-Z0-9]*$")


def tcp_bipolar_names(style: Literal["1020", "1010"] = "1020") -> tuple[str, ...]:
    """Names of the 16 TCP derivations.

    Parameters
    ----------
    style : {"1020", "1010"}
        ``"1020"``: TUH spelling with T3/T4/T5/T6 (``F7-T3``); ``"1010"``: CHB-MIT spelling
        with T7/T8/P7/P8 (``F7-T7``).

    Returns
    -------
    tuple of str
        16 names in the montage's order.
    """
    check_option("style", style, ("1020", "1010"))
    return TCP_BIPOLAR_CHANNELS if style == "1020" else TCP_BIPOLAR_CHANNELS_1010


def _canonical(electrode: str) -> str:
    """One electrode name in canonical 10-20 spelling (T7 → T3 ...)."""
    out = electrode.strip().rstrip(".").upper()
    return CHANNEL_ALIASES.get(out, out)


def _parse_label(name: str) -> tuple[str, str | None, int] | None:
    """``(anode, cathode or None, duplicate index)`` for a channel label, None if not EEG-like.

    ``"EEG FP1-REF"`` → ``("FP1", None, 0)``; ``"T7-P7"`` → ``("T3", "T5", 0)``;
    ``"T8-P8-1"`` (MNE's second copy of a repeated label) → ``("T4", "T6", 1)``.
    """
    label = normalize_channel_name(name)
    dup = 0
    match = _DUPLICATE_RE.match(label)
    if match and "-" in match.group(1):
        label, dup = match.group(1), int(match.group(2))
    parts = label.split("-")
    if len(parts) == 1:
        return (_canonical(parts[0]), None, dup) if _ELECTRODE_RE.match(parts[0]) else None
    if len(parts) == 2 and all(_ELECTRODE_RE.match(p) for p in parts):
        return _canonical(parts[0]), _canonical(parts[1]), dup
    return None


def _index_channels(
    ch_names: Sequence[str],
) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """Monopolar and bipolar channel indices by canonical name (first copy wins)."""
    mono: dict[str, tuple[int, int]] = {}
    bip: dict[tuple[str, str], tuple[int, int]] = {}
    for idx, name in enumerate(ch_names):
        parsed = _parse_label(name)
        if parsed is None:
            continue
        anode, cathode, dup = parsed
        target = mono if cathode is None else bip
        key = anode if cathode is None else (anode, cathode)
        if key not in target or dup < target[key][0]:  # type: ignore[operator]
            target[key] = (dup, idx)  # type: ignore[index]
    return {k: v[1] for k, v in mono.items()}, {k: v[1] for k, v in bip.items()}


def bipolar_derivations(
    data: np.ndarray,
    ch_names: Sequence[str],
    pairs: Sequence[tuple[str, str]] = TCP_BIPOLAR_PAIRS,
    *,
    on_missing: Literal["raise", "zeros"] = "raise",
) -> np.ndarray:
    """Build bipolar derivations (anode − cathode) from a recording's channels.

    Parameters
    ----------
    data : np.ndarray, shape (n_chans, n_times)
        The recording, in any unit (the output has the same unit).
    ch_names : sequence of str
        Labels of the rows of ``data`` as stored in the file: monopolar (``EEG FP1-REF``,
        ``EEG T3-LE``, ``Fp1``) or already bipolar (``FP1-F7``, ``T7-P7``, ``T8-P8-0``).
    pairs : sequence of (str, str)
        Derivations to build, in order (default: the 16 TCP derivations).
    on_missing : {"raise", "zeros"}
        A derivation that is neither in the recording nor computable from two monopolar
        channels raises a ``ValueError`` naming it, or is filled with zeros (what CBraMod's
        CHB-MIT preprocessing does with a channel a file lacks; logged as a warning).

    Returns
    -------
    np.ndarray, shape (n_derivations, n_times)
        Row ``k`` is ``pairs[k][0] - pairs[k][1]``; a derivation stored in the recording is
        copied, not recomputed. Same dtype as ``data`` (float64 for integer input).
    """
    check_option("on_missing", on_missing, ("raise", "zeros"))
    data = np.asarray(data)
    if data.ndim != 2:
        raise ValueError(f"data must be 2-D (n_chans, n_times), got shape {data.shape}.")
    if data.shape[0] != len(ch_names):
        raise ValueError(
            f"data has {data.shape[0]} channels but {len(ch_names)} channel names were given."
        )
    check_value("pairs", pairs, len(pairs) > 0, "a list of at least one derivation")
    mono, bip = _index_channels(ch_names)
    dtype = data.dtype if np.issubdtype(data.dtype, np.floating) else np.float64
    out = np.zeros((len(pairs), data.shape[1]), dtype=dtype)
    missing = []
    for k, (anode, cathode) in enumerate(pairs):
        key = (_canonical(anode), _canonical(cathode))
        if key in bip:
            out[k] = data[bip[key]]
        elif key[0] in mono and key[1] in mono:
            out[k] = data[mono[key[0]]] - data[mono[key[1]]]
        else:
            missing.append(f"{anode}-{cathode}")
    if missing:
        if on_missing == "raise":
            raise ValueError(
                f"Cannot build bipolar derivations {missing}: neither the derivation nor both "
                f"of its electrodes are in the recording. Channels found: {list(ch_names)}."
            )
        logger.warning("Bipolar derivations %s are missing; filled with zeros.", missing)
    return out


def bipolar_raw(
    raw: mne.io.BaseRaw,
    pairs: Sequence[tuple[str, str]] = TCP_BIPOLAR_PAIRS,
    *,
    style: Literal["1020", "1010"] = "1020",
    on_missing: Literal["raise", "zeros"] = "raise",
) -> mne.io.RawArray:
    """A new Raw holding the bipolar derivations of ``raw`` (see :func:`bipolar_derivations`).

    Parameters
    ----------
    raw : mne.io.BaseRaw
        Preloaded recording (volts, as MNE stores EEG).
    pairs : sequence of (str, str)
        Derivations, in order (default: the 16 TCP derivations).
    style : {"1020", "1010"}
        Spelling of the output channel names (``F7-T3`` or ``F7-T7``).
    on_missing : {"raise", "zeros"}
        See :func:`bipolar_derivations`.

    Returns
    -------
    mne.io.RawArray
        ``len(pairs)`` EEG channels named ``"<anode>-<cathode>"``, same sampling rate,
        measurement date and annotations as ``raw``.
    """
    check_option("style", style, ("1020", "1010"))
    data = bipolar_derivations(raw.get_data(), raw.ch_names, pairs, on_missing=on_missing)
    rename = (
        (lambda e: _TO_1010.get(_canonical(e), _canonical(e))) if style == "1010" else _canonical
    )
    names = [f"{rename(a)}-{rename(b)}" for a, b in pairs]
    info = mne.create_info(names, raw.info["sfreq"], ch_types="eeg")
    out = mne.io.RawArray(data, info, verbose=False)
    if raw.info["meas_date"] is not None:
        out.set_meas_date(raw.info["meas_date"])
    out.set_annotations(raw.annotations)
    return out
