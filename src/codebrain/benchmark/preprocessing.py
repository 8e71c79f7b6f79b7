"""The preprocessing steps a recipe declares, in the authors' order.

:class:`Resample`, :class:`BandPass`, :class:`Notch` and :class:`CommonAverage` are frozen,
validated declarations; :meth:`codebrain.benchmark.recipe.TaskRecipe.prepare` applies them in
order through :func:`codebrain.benchmark.signal.apply_preprocessing`, which implements them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from codebrain.utils.check import check_int, check_number, check_option

__all__ = ["Resample", "BandPass", "Notch", "CommonAverage", "PreprocessStep"]


@dataclass(frozen=True)
class Resample:
    """Resample to ``sfreq`` Hz.

    Parameters
    ----------
    sfreq : float
        Target rate in Hz.
    method : {"mne", "scipy"}
        ``"mne"``: ``mne.filter.resample`` (what ``raw.resample`` does, FFT with padding;
        CBraMod's TUEG/TUAB/TUEV/PhysioNet scripts). ``"scipy"``: ``scipy.signal.resample`` to
        ``round(n_times * sfreq / old)`` samples (FFT without padding; CBraMod's CHB-MIT,
        FACED, SHU-MI, BCIC-IV-2a loaders).
    """

    sfreq: float = 200.0
    method: Literal["mne", "scipy"] = "mne"

    def __post_init__(self) -> None:
        check_number("Resample.sfreq", self.sfreq, greater=0)
        check_option("Resample.method", self.method, ("mne", "scipy"))

    def describe(self) -> str:
        """One-line human description."""
        return f"resample to {self.sfreq:g} Hz ({self.method})"


@dataclass(frozen=True)
class BandPass:
    """Band-pass (or high-/low-pass with one edge None) filter.

    Parameters
    ----------
    l_freq, h_freq : float | None
        Edges in Hz; None disables that edge (``BandPass(0.3, None)`` is a high-pass).
    method : {"fir", "butter"}
        ``"fir"``: MNE's default zero-phase FIR (``raw.filter``). ``"butter"``: a
        Butterworth IIR of ``order`` from SciPy, applied causally (``lfilter``) when
        ``causal`` else forward-backward (``filtfilt``).
    order : int
        Butterworth order (``method="butter"`` only).
    causal : bool
        Causal ``lfilter`` instead of ``filtfilt`` (``method="butter"`` only).
    """

    l_freq: float | None
    h_freq: float | None
    method: Literal["fir", "butter"] = "fir"
    order: int = 5
    causal: bool = False

    def __post_init__(self) -> None:
        if self.l_freq is None and self.h_freq is None:
            raise ValueError("BandPass needs l_freq or h_freq (both are None).")
        for name in ("l_freq", "h_freq"):
            if getattr(self, name) is not None:
                check_number(f"BandPass.{name}", getattr(self, name), greater=0)
        if self.l_freq is not None and self.h_freq is not None and self.l_freq >= self.h_freq:
            raise ValueError(
                f"BandPass needs l_freq < h_freq, got {self.l_freq!r} >= {self.h_freq!r}."
            )
        check_option("BandPass.method", self.method, ("fir", "butter"))
        check_int("BandPass.order", self.order)

    def describe(self) -> str:
        """One-line human description."""
        lo = "" if self.l_freq is None else f"{self.l_freq:g}"
        hi = "" if self.h_freq is None else f"{self.h_freq:g}"
        how = "FIR" if self.method == "fir" else f"Butterworth order {self.order}"
        if self.method == "butter":
            how += ", causal" if self.causal else ", zero-phase"
        return f"band-pass {lo}-{hi} Hz ({how})"


@dataclass(frozen=True)
class Notch:
    """Notch one frequency (MNE ``notch_filter``).

    The authors notch the mains only, no harmonics.

    Parameters
    ----------
    freq : float
        Frequency in Hz (50 or 60).
    """

    freq: float

    def __post_init__(self) -> None:
        check_number("Notch.freq", self.freq, greater=0)

    def describe(self) -> str:
        """One-line human description."""
        return f"notch {self.freq:g} Hz"


@dataclass(frozen=True)
class CommonAverage:
    """Subtract the mean over channels at every sample (average reference)."""

    def describe(self) -> str:
        """One-line human description."""
        return "common average reference"


PreprocessStep = Resample | BandPass | Notch | CommonAverage
