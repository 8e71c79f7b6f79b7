"""Subject ids of EEG recordings, for subject-wise splits.

:func:`subject_id` reads the subject from a user rule (a regex, or a preset name of
:data:`SUBJECT_PATTERNS`), else from the BIDS ``sub-`` entity, the known file-name rules
(EEGBCI, EEGMAT, TUH), the patient id in the file header, or the recording id.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import mne

from codebrain.data.formats import _is_bids_path
from codebrain.data.recordings import recording_id

__all__ = ["SUBJECT_PATTERNS", "subject_id"]

_SUBJECT_RE = re.compile(r"(?:^|[_/\\])sub-([A-Za-z0-9]+)")


#: Subject-id rules by name, for ``--subject-pattern NAME`` (a regex whose group ``subject``,
#: or first group, is the subject id). Without a pattern, :func:`subject_id` tries BIDS, then
#: the file-name rules (anchored to the whole name), then the header's patient id.
SUBJECT_PATTERNS: dict[str, str] = {
    "bids": r"(?:^|[_/\\])sub-(?P<subject>[A-Za-z0-9]+)",
    "eegbci": r"^(?P<subject>S\d{3})R\d{2}$",  # PhysioNet EEGBCI: S001R04
    "eegmat": r"^(?P<subject>Subject\d{2,})_\d+$",  # PhysioNet EEGMAT: Subject00_1
    "tuh": r"^(?P<subject>[a-z0-9]{8})_s\d{3}_t\d{3}$",  # TUH EEG: aaaaaaaa_s001_t000
}


def _subject_regex(pattern: str | re.Pattern) -> re.Pattern:
    """Compile ``pattern`` (a regex or a :data:`SUBJECT_PATTERNS` name); check its group."""
    if isinstance(pattern, re.Pattern):
        rx = pattern
    else:
        text = SUBJECT_PATTERNS.get(str(pattern).strip().lower(), pattern)
        try:
            rx = re.compile(text)
        except re.error as err:
            raise ValueError(
                f"subject pattern {pattern!r} is not a valid regular expression: {err}."
            ) from err
    if rx.groups < 1:
        raise ValueError(
            f"subject pattern {rx.pattern!r} needs a capture group holding the subject id "
            "(named 'subject', or the first group), e.g. '^(S\\d{3})R\\d{2}$'."
        )
    return rx


def _match_subject(rx: re.Pattern, text: str) -> str | None:
    m = rx.search(text)
    if m is None:
        return None
    value = m.group("subject") if "subject" in rx.groupindex else m.group(1)
    return value or None


def subject_id(
    path: str | os.PathLike | Any,
    raw: mne.io.BaseRaw | None = None,
    *,
    pattern: str | re.Pattern | None = None,
) -> str:
    """Subject identifier of a recording, for subject-wise splits.

    With ``pattern``: its group ``subject`` (or first group), searched in the file name
    without extension, then in the full path. Without: the BIDS ``sub-<label>`` entity, the
    known file-name rules of :data:`SUBJECT_PATTERNS` (EEGBCI ``S001R04`` → ``S001``, EEGMAT
    ``Subject00_1`` → ``Subject00``, TUH ``aaaaaaaa_s001_t000`` → ``aaaaaaaa``), the patient
    id stored in the file (``subject_info["his_id"]``), then the recording id (one subject
    per file).

    Parameters
    ----------
    path : path-like | mne_bids.BIDSPath
    raw : mne.io.BaseRaw | None
        The opened recording, to read ``subject_info``.
    pattern : str | re.Pattern | None
        A regex with a capture group, or a name from :data:`SUBJECT_PATTERNS`
        (``"eegbci"``, ``"eegmat"``, ``"tuh"``, ``"bids"``).

    Returns
    -------
    str

    Raises
    ------
    ValueError
        ``pattern`` is not a regex with a group, or does not match the path.
    """
    if _is_bids_path(path):
        if path.subject and pattern is None:
            return str(path.subject)
        path = path.fpath
    path = Path(path)
    stem = recording_id(path)
    if pattern is not None:
        rx = _subject_regex(pattern)
        for text in (stem, path.as_posix()):
            found = _match_subject(rx, text)
            if found:
                return found
        raise ValueError(
            f"subject pattern {rx.pattern!r} does not match {path} (tried the name {stem!r} "
            "and the full path)."
        )
    match = _SUBJECT_RE.search(path.name)
    if match:
        return match.group(1)
    for name in ("eegbci", "eegmat", "tuh"):
        found = _match_subject(re.compile(SUBJECT_PATTERNS[name]), stem)
        if found:
            return found
    if raw is not None:
        info = raw.info.get("subject_info") or {}
        his_id = info.get("his_id")
        if his_id and str(his_id).strip() not in ("", "X"):
            return str(his_id).strip()
    return stem
