"""EEG signal parameters that infer one another (braindecode's naming and rules).

``n_outputs``, ``n_chans``, ``chs_info``, ``n_times``, ``input_window_seconds`` and ``sfreq``:
``n_chans = len(chs_info)``, ``n_times = round(input_window_seconds * sfreq)``,
``sfreq = n_times / input_window_seconds``, ``input_window_seconds = n_times / sfreq``.
Contradictory values raise ``ValueError`` when the model is built; a value that is needed but
cannot be inferred raises ``ValueError`` naming it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from codebrain.utils.check import check_int, check_type, check_value

__all__ = ["EEGSignalParams", "check_int_type", "serialize_chs_info", "deserialize_chs_info"]

_INT_FIELDS = ("kind", "coil_type", "unit")
_FLOAT_FIELDS = ("cal", "range")


def serialize_chs_info(chs_info: Sequence[dict] | None) -> list[dict] | None:
    """MNE ``info["chs"]`` → JSON-able dicts (``loc`` as a list)."""
    if chs_info is None:
        return None
    out = []
    for ch in chs_info:
        d: dict[str, Any] = {"ch_name": str(ch.get("ch_name", ""))}
        for key in _INT_FIELDS:
            if ch.get(key) is not None:
                d[key] = int(ch[key])
        for key in _FLOAT_FIELDS:
            if ch.get(key) is not None:
                d[key] = float(ch[key])
        if ch.get("loc") is not None:
            d["loc"] = [float(v) for v in np.asarray(ch["loc"]).ravel()]
        out.append(d)
    return out


def deserialize_chs_info(chs_info: Sequence[dict] | None) -> list[dict] | None:
    """Inverse of :func:`serialize_chs_info` (``loc`` back to an array)."""
    if chs_info is None:
        return None
    out = []
    for ch in chs_info:
        d = dict(ch)
        if d.get("loc") is not None:
            d["loc"] = np.asarray(d["loc"], dtype=float)
        out.append(d)
    return out


def check_int_type(name: str, value: Any) -> int:
    """Alias of :func:`codebrain.utils.check.check_int`, kept for existing imports.

    ``check_int`` now raises ``TypeError`` itself for a non-int (``"nineteen"``, ``1e12``,
    ``True``).
    """
    return check_int(name, value)


class EEGSignalParams:
    """Holds the six EEG signal parameters and infers missing ones on access."""

    def _init_signal_params(
        self,
        n_outputs: int | None,
        n_chans: int | None,
        chs_info: Sequence[dict] | None,
        n_times: int | None,
        input_window_seconds: float | None,
        sfreq: float | None,
    ) -> None:
        if chs_info is not None:
            if isinstance(chs_info, dict | str) or not isinstance(chs_info, Sequence):
                raise TypeError(
                    "chs_info must be a list of channel dicts (mne.Info['chs']), "
                    f"got {type(chs_info).__name__}."
                )
            chs_info = deserialize_chs_info(list(chs_info))
        for name, val in (("n_outputs", n_outputs), ("n_chans", n_chans), ("n_times", n_times)):
            if val is not None:
                check_type(name, val, int)
        for name, val in (("input_window_seconds", input_window_seconds), ("sfreq", sfreq)):
            if val is not None:
                check_type(name, val, (int, float))
        if n_chans is not None and chs_info is not None and len(chs_info) != n_chans:
            raise ValueError(f"n_chans={n_chans} different from len(chs_info)={len(chs_info)}.")
        given = n_times is not None and input_window_seconds is not None and sfreq is not None
        if given and n_times != round(input_window_seconds * sfreq):
            raise ValueError(
                f"n_times={n_times} different from input_window_seconds={input_window_seconds} "
                f"* sfreq={sfreq} (= {input_window_seconds * sfreq:g})."
            )
        for name, val in (("n_outputs", n_outputs), ("n_chans", n_chans), ("n_times", n_times)):
            if val is not None:
                check_int(name, val)
        for name, val in (("input_window_seconds", input_window_seconds), ("sfreq", sfreq)):
            if val is not None:
                check_value(name, val, val > 0 and math.isfinite(val), "a positive finite number")
        self._n_outputs = n_outputs
        self._n_chans = n_chans
        self._chs_info = chs_info
        self._n_times = n_times
        self._input_window_seconds = input_window_seconds
        self._sfreq = sfreq

    @property
    def n_outputs(self) -> int:
        """Number of model outputs (classes)."""
        if self._n_outputs is None:
            raise ValueError("n_outputs not specified.")
        return self._n_outputs

    @property
    def n_chans(self) -> int:
        """Number of EEG channels (``len(chs_info)`` when not given)."""
        if self._n_chans is None and self._chs_info is not None:
            return len(self._chs_info)
        if self._n_chans is None:
            raise ValueError("n_chans could not be inferred. Either specify n_chans or chs_info.")
        return self._n_chans

    @property
    def chs_info(self) -> list[dict]:
        """MNE channel descriptions."""
        if self._chs_info is None:
            raise ValueError("chs_info not specified.")
        return self._chs_info

    @property
    def n_times(self) -> int:
        """Samples per input window (``round(input_window_seconds * sfreq)`` when not given)."""
        if (
            self._n_times is None
            and self._input_window_seconds is not None
            and self._sfreq is not None
        ):
            return int(round(self._input_window_seconds * self._sfreq))
        if self._n_times is None:
            raise ValueError(
                "n_times could not be inferred. "
                "Either specify n_times or input_window_seconds and sfreq."
            )
        return self._n_times

    @property
    def input_window_seconds(self) -> float:
        """Window length in seconds (``n_times / sfreq`` when not given)."""
        if (
            self._input_window_seconds is None
            and self._n_times is not None
            and self._sfreq is not None
        ):
            return float(self._n_times / self._sfreq)
        if self._input_window_seconds is None:
            raise ValueError(
                "input_window_seconds could not be inferred. "
                "Either specify input_window_seconds or n_times and sfreq."
            )
        return self._input_window_seconds

    @property
    def sfreq(self) -> float:
        """Sampling frequency in Hz (``n_times / input_window_seconds`` when not given)."""
        if (
            self._sfreq is None
            and self._input_window_seconds is not None
            and self._n_times is not None
        ):
            return float(self._n_times / self._input_window_seconds)
        if self._sfreq is None:
            raise ValueError(
                "sfreq could not be inferred. Either specify sfreq or input_window_seconds and n_times."
            )
        return self._sfreq

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(1, n_chans, n_times)``."""
        return (1, self.n_chans, self.n_times)
