"""Channel names and montages: normalise, pick and reorder to the model's 19 channels.

The released CodeBrain weights (arXiv 2506.09110, trained on TUEG with CBraMod-style
preprocessing) expect the 19 channels of the 10-20 system in :data:`DEFAULT_CHANNELS` order.
Clinical files spell these names in many ways (``EEG FP1-REF``, ``Fp1``, ``EEG T7-LE``,
``Fc5.``); :func:`normalize_channel_name` maps them onto one spelling, using the old 10-20
names T3/T4/T5/T6 for the positions the 10-10 system calls T7/T8/P7/P8.

Shape legend: ``n_chans`` channels, ``n_times`` samples.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import mne
import numpy as np

from codebrain.utils.check import check_option, check_type, check_value

__all__ = [
    "DEFAULT_CHANNELS",
    "CHANNEL_ALIASES",
    "normalize_channel_name",
    "standard_montage",
    "pick_target_channels",
    "parse_channel_map",
]

logger = logging.getLogger(__name__)

#: Channel order of the released model (TUEG 10-20 montage, old temporal names).
DEFAULT_CHANNELS: tuple[str, ...] = (
    "FP1",
    "FP2",
    "F3",
    "F4",
    "C3",
    "C4",
    "P3",
    "P4",
    "O1",
    "O2",
    "F7",
    "F8",
    "T3",
    "T4",
    "T5",
    "T6",
    "FZ",
    "CZ",
    "PZ",
)

#: 10-10 names mapped onto the 10-20 names the model uses.
CHANNEL_ALIASES: dict[str, str] = {"T7": "T3", "T8": "T4", "P7": "T5", "P8": "T6"}

# Reference suffixes stripped from ``<name>-<ref>`` labels (TUH uses -REF and -LE).
_REFERENCE_SUFFIXES = ("REF", "LE", "RE", "AR", "AVG", "AV", "CAR", "A1", "A2", "M1", "M2", "A1A2")
_PREFIX_RE = re.compile(r"^(EEG|EOG|ECG|EKG|EMG)[\s_:-]+", re.IGNORECASE)
_SUFFIX_RE = re.compile(r"[\s_-]+(" + "|".join(_REFERENCE_SUFFIXES) + r")$", re.IGNORECASE)

# Montage used for positions (interpolation, synthetic data). ``standard_1020`` is deprecated
# in MNE >= 1.13 in favour of the identical ``colin27_1020``.
_MONTAGE_NAMES = ("colin27_1020", "standard_1020")


def normalize_channel_name(name: str) -> str:
    """Map a channel label onto the canonical upper-case 10-20 spelling.

    Strips white space, a modality prefix (``EEG``), a reference suffix (``-REF``, ``-LE``,
    ``-A1``, ...) and trailing dots (``Fc5.``), upper-cases, and maps 10-10 temporal names
    onto the old 10-20 ones (T7→T3, T8→T4, P7→T5, P8→T6).

    Parameters
    ----------
    name : str
        Channel label as stored in the file.

    Returns
    -------
    str
        Canonical name, e.g. ``"EEG FP1-REF"`` → ``"FP1"``, ``"eeg t7-le"`` → ``"T3"``.
    """
    check_type("channel name", name, str)
    out = name.strip().rstrip(".").strip()
    out = _PREFIX_RE.sub("", out)
    out = _SUFFIX_RE.sub("", out)
    out = out.strip().rstrip(".").upper()
    return CHANNEL_ALIASES.get(out, out)


def parse_channel_map(spec: str | os.PathLike | Mapping[str, str] | None) -> dict[str, str]:
    """Read a channel mapping ``{name in the file: target name}``.

    Parameters
    ----------
    spec : str | path-like | mapping | None
        A mapping; inline text ``"old=new,old2=new2"``; or a file: ``.json`` holding one object
        ``{"old": "new", ...}``, or ``.csv`` with two columns ``old,new`` (a header row
        ``old,new`` / ``from,to`` / ``channel,target`` is skipped). None gives ``{}``.

    Returns
    -------
    dict of str to str
        Stripped names, in the given order.

    Raises
    ------
    ValueError
        Malformed text or file, an empty name, or a channel mapped twice.
    """
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        pairs = [(str(k), str(v)) for k, v in spec.items()]
        where = "channel map"
    else:
        text = os.fspath(spec)
        path = Path(text)
        if path.suffix.lower() in (".json", ".csv") or path.is_file():
            if not path.is_file():
                raise ValueError(f"Channel map file {path} does not exist.")
            pairs = _read_channel_map_file(path)
            where = f"channel map {path}"
        else:
            pairs = []
            for item in (t for t in text.split(",") if t.strip()):
                old, sep, new = item.partition("=")
                if not sep:
                    raise ValueError(
                        f"Channel map item {item.strip()!r} has no '='; expected "
                        "'old=new,old2=new2' or a .json/.csv file."
                    )
                pairs.append((old, new))
            where = "channel map"
    out: dict[str, str] = {}
    for old, new in pairs:
        old, new = old.strip(), new.strip()
        if not old or not new:
            raise ValueError(f"{where}: empty channel name in {old!r} -> {new!r}.")
        if old in out:
            raise ValueError(f"{where}: channel {old!r} is mapped twice.")
        out[old] = new
    if not out:
        raise ValueError(f"{where} is empty; expected old=new pairs.")
    return out


def _read_channel_map_file(path: Path) -> list[tuple[str, str]]:
    if path.suffix.lower() == ".json":
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"Channel map {path} is not valid JSON: {err}.") from err
        if not isinstance(obj, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in obj.items()
        ):
            raise ValueError(
                f"Channel map {path} must hold one JSON object of strings "
                '{"name in file": "target name", ...}.'
            )
        return list(obj.items())
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f) if any(c.strip() for c in r)]
    pairs = []
    for lineno, row in enumerate(rows, start=1):
        if len(row) != 2:
            raise ValueError(
                f"Channel map {path}, line {lineno}: expected two columns old,new, got {row}."
            )
        if lineno == 1 and [c.strip().lower() for c in row] in (
            ["old", "new"],
            ["from", "to"],
            ["channel", "target"],
        ):
            continue
        pairs.append((row[0], row[1]))
    return pairs


def _apply_channel_map(
    raw: mne.io.BaseRaw, channel_map: Mapping[str, str], verbose: bool | str | int | None
) -> None:
    """Rename the channels of ``raw`` named in ``channel_map``.

    A channel is found by its exact name, else by a case-insensitive match.
    """
    by_folded: dict[str, list[str]] = {}
    for name in raw.ch_names:
        by_folded.setdefault(name.strip().casefold(), []).append(name)
    rename: dict[str, str] = {}
    for old, new in channel_map.items():
        if old in raw.ch_names:
            rename[old] = new
        elif len(by_folded.get(old.strip().casefold(), [])) == 1:
            rename[by_folded[old.strip().casefold()][0]] = new
    unused = [old for old in channel_map if old not in rename and old not in rename.values()]
    if unused and len(unused) < len(channel_map):
        logger.info("Channel map entries absent from this recording: %s.", unused)
    if not rename:
        return
    # Free the new names first: a channel already called like a mapped target (and not
    # itself mapped) would otherwise clash.
    taken = set(raw.ch_names) - set(rename)
    clash = sorted(n for n in rename.values() if n in taken)
    if clash:
        raise ValueError(
            f"The channel map renames channels to {clash}, but the recording already has "
            "channels of these names; map those too or choose other names."
        )
    raw.rename_channels(rename, verbose=verbose)


def _how_to_map(raw: mne.io.BaseRaw, targets: Sequence[str]) -> str:
    """The hint of the channel errors: names found and how to map them."""
    example = ",".join(f"{old}={new}" for old, new in zip(raw.ch_names, targets[:2], strict=False))
    return (
        f"Found {len(raw.ch_names)} channels: {list(raw.ch_names)}. Map the recording's names "
        f"onto the targets with --channel-map '{example},...' (or a .json/.csv file; in Python "
        "PreprocessConfig(channel_map={...})), or pick other targets with --channels."
    )


def standard_montage() -> mne.channels.DigMontage:
    """Return MNE's template 10-20 montage (``colin27_1020``, formerly ``standard_1020``).

    Returns
    -------
    mne.channels.DigMontage
        94 positions in metres, head coordinates; includes both T3 and T7 style names.
    """
    available = mne.channels.get_builtin_montages()
    for montage_name in _MONTAGE_NAMES:
        if montage_name in available:
            return mne.channels.make_standard_montage(montage_name)
    raise RuntimeError(
        f"None of the montages {_MONTAGE_NAMES} is available in MNE {mne.__version__}."
    )


def _montage_positions(names: Sequence[str]) -> dict[str, np.ndarray]:
    """Positions ``(3,)`` in metres from the template montage, keyed by canonical name."""
    pos = standard_montage().get_positions()["ch_pos"]
    by_canonical: dict[str, np.ndarray] = {}
    for montage_name, xyz in pos.items():
        by_canonical.setdefault(montage_name.upper(), np.asarray(xyz, dtype=float))
    out = {}
    for name in names:
        key = normalize_channel_name(name)
        # Prefer the old names (T3...) but fall back on the new ones for positions.
        inverse = {v: k for k, v in CHANNEL_ALIASES.items()}
        xyz = by_canonical.get(key, by_canonical.get(inverse.get(key, "")))
        if xyz is None:
            raise ValueError(
                f"No standard 10-20 position for channel {name!r} (canonical {key!r})."
            )
        out[name] = xyz
    return out


def pick_target_channels(
    raw: mne.io.BaseRaw,
    channels: Sequence[str] = DEFAULT_CHANNELS,
    *,
    on_missing: Literal["raise", "interpolate"] = "raise",
    channel_map: Mapping[str, str] | None = None,
    verbose: bool | str | int | None = None,
) -> mne.io.BaseRaw:
    """Pick, rename and reorder the channels of ``raw`` to a target montage (in place).

    Parameters
    ----------
    raw : mne.io.BaseRaw
        Preloaded recording with any channel labels; modified in place.
    channels : sequence of str
        Target channels in the wanted order (normalised with :func:`normalize_channel_name`).
        Defaults to the 19 channels of the released model.
    on_missing : {"raise", "interpolate"}
        A target channel absent from ``raw`` raises a ``ValueError`` listing what is missing
        and what was found, or is interpolated by spherical splines from the others on the
        template 10-20 montage (``raw.interpolate_bads``).
    channel_map : mapping of str to str | None
        Renames applied first, ``{name in the file: target name}`` (see
        :func:`parse_channel_map`), for recordings whose channels are not named by 10-20
        labels (e.g. ``{"EEG 000": "FP1", ...}``). A name absent from ``raw`` is ignored.
    verbose : bool | str | int | None
        Passed to MNE.

    Returns
    -------
    mne.io.BaseRaw
        ``raw`` with exactly ``channels`` (canonical names, type ``eeg``) in that order.
    """
    check_option("on_missing", on_missing, ("raise", "interpolate"))
    check_value("channels", channels, len(channels) > 0, "a list of at least one target channel")
    targets = [normalize_channel_name(c) for c in channels]
    dup_targets = sorted({t for t in targets if targets.count(t) > 1})
    if dup_targets:
        raise ValueError(f"Target channels repeat after normalisation: {dup_targets}.")
    if channel_map:
        _apply_channel_map(raw, channel_map, verbose)

    found: dict[str, list[str]] = {}
    for orig in raw.ch_names:
        found.setdefault(normalize_channel_name(orig), []).append(orig)
    duplicated = {k: v for k, v in found.items() if k in targets and len(v) > 1}
    if duplicated:
        detail = "; ".join(f"{k}: {v}" for k, v in sorted(duplicated.items()))
        raise ValueError(
            f"Several channels map to the same name after normalisation ({detail}). "
            "Drop or rename the extra channels before mapping to the montage."
        )
    missing = [t for t in targets if t not in found]
    if missing and on_missing == "raise":
        if len(missing) == len(targets):
            raise ValueError(
                f"None of the target channels {targets} is in the recording (after name "
                f"normalisation). {_how_to_map(raw, targets)}"
            )
        raise ValueError(
            f"Missing channels {missing} (after name normalisation). Found channels: "
            f"{list(raw.ch_names)} (normalised: {sorted(found)}). Pass on_missing='interpolate' "
            "to interpolate them from a standard 10-20 montage, or map the recording's names "
            "with --channel-map old=new,... (PreprocessConfig(channel_map={...}))."
        )
    present = [t for t in targets if t in found]
    if not present:
        raise ValueError(
            f"None of the target channels {targets} is in the recording. {_how_to_map(raw, targets)}"
        )

    originals = [found[t][0] for t in present]
    raw.pick(originals, verbose=verbose)
    raw.rename_channels(dict(zip(originals, present, strict=True)), verbose=verbose)
    raw.set_channel_types(dict.fromkeys(present, "eeg"), on_unit_change="ignore", verbose=verbose)
    if missing:
        _interpolate_missing(raw, missing, verbose=verbose)
    raw.reorder_channels(targets)
    return raw


def _interpolate_missing(
    raw: mne.io.BaseRaw, missing: list[str], *, verbose: bool | str | int | None
) -> None:
    """Add ``missing`` channels as bads and interpolate them with spherical splines."""
    if len(raw.ch_names) < 3:
        raise ValueError(
            f"Cannot interpolate {missing}: need at least 3 recorded target channels, "
            f"found {raw.ch_names}."
        )
    logger.warning("Interpolating missing channels %s from %s.", missing, raw.ch_names)
    info = mne.create_info(missing, raw.info["sfreq"], ch_types="eeg")
    extra = mne.io.RawArray(np.zeros((len(missing), raw.n_times)), info, verbose=False)
    raw.add_channels([extra], force_update_info=True)
    positions = _montage_positions(raw.ch_names)
    montage = mne.channels.make_dig_montage(ch_pos=positions, coord_frame="head")
    raw.set_montage(montage, on_missing="raise", verbose=verbose)
    raw.info["bads"] = list(missing)
    raw.interpolate_bads(reset_bads=True, origin=(0.0, 0.0, 0.04), verbose=verbose)
