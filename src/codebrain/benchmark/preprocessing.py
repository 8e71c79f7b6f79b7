"""The preprocessing steps a recipe declares, in the authors' order.

:class:`Resample`, :class:`BandPass`, :class:`Notch` and :class:`CommonAverage` are frozen,
validated declarations; :meth:`codebrain.benchmark.recipe.TaskRecipe.prepare` applies them in
order through :func:`codebrain.benchmark.signal.apply_preprocessing`, which implements them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
        if not (isinstance(self.sfreq, int | float) and self.sfreq > 0):
            raise ValueError(f"Resample.sfreq must be a positive number, got {self.sfreq!r}.")
        if self.method not in ("mne", "scipy"):
            raise ValueError(f"Resample.method must be 'mne' or 'scipy', got {self.method!r}.")

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
            v = getattr(self, name)
            if v is not None and not (isinstance(v, int | float) and v > 0):
                raise ValueError(f"BandPass.{name} must be a positive number or None, got {v!r}.")
        if self.l_freq is not None and self.h_freq is not None and self.l_freq >= self.h_freq:
            raise ValueError(
                f"BandPass needs l_freq < h_freq, got {self.l_freq!r} >= {self.h_freq!r}."
            )
        if self.method not in ("fir", "butter"):
            raise ValueError(f"BandPass.method must be 'fir' or 'butter', got {self.method!r}.")
        if not (isinstance(self.order, int) and self.order >= 1):
            raise ValueError(f"BandPass.order must be a positive int, got {self.order!r}.")

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
        if not (isinstance(self.freq, int | float) and self.freq > 0):
            raise ValueError(f"Notch.freq must be a positive number, got {self.freq!r}.")

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
