"""Random transforms of training windows: time shift, gain, frequency shift.

:class:`WindowAugment` transforms one window ``(n_chans, n_times)`` (or a batch
``(batch, n_chans, n_times)``, one draw per window); :class:`AugmentedDataset` applies it to
every item of a dataset of ``(x, y)`` items. The draws come from torch's default generator, so
a training loop that seeds torch (and, to resume, restores its state, as
:func:`codebrain.training.finetune` does) gets the same augmented batches every time.

The transforms model differences between recordings that carry no label: where the window
starts (a circular shift), the overall amplitude (a log-normal gain), and the individual
alpha frequency, which varies between people by 1–2 Hz (every frequency moved by ``Δf``:
the analytic signal times ``exp(2πi Δf t)``, as in braindecode's ``FrequencyShift``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from codebrain.training.batching import label_array
from codebrain.utils.check import check_number, check_type

__all__ = ["AugmentedDataset", "WindowAugment", "analytic_signal", "frequency_shift"]


def analytic_signal(x: torch.Tensor) -> torch.Tensor:
    """The analytic signal along the last axis (``scipy.signal.hilbert``).

    Parameters
    ----------
    x : torch.Tensor
        Real, ``(..., n_times)``.

    Returns
    -------
    torch.Tensor
        Complex, ``(..., n_times)``; its real part is ``x``.
    """
    n = x.shape[-1]
    h = torch.zeros(n, dtype=x.dtype, device=x.device)
    h[0] = 1.0
    if n % 2 == 0:
        h[1 : n // 2] = 2.0
        h[n // 2] = 1.0
    else:
        h[1 : (n + 1) // 2] = 2.0
    return torch.fft.ifft(torch.fft.fft(x, dim=-1) * h, dim=-1)


def frequency_shift(x: torch.Tensor, shift_hz: torch.Tensor | float, sfreq: float) -> torch.Tensor:
    """Move every frequency of ``x`` by ``shift_hz``.

    Parameters
    ----------
    x : torch.Tensor
        Real, ``(..., n_times)``.
    shift_hz : torch.Tensor or float
        A number, or one per leading index (shape ``x.shape[:-1]`` or broadcastable to it).
    sfreq : float
        Sampling rate of ``x`` in Hz.

    Returns
    -------
    torch.Tensor
        Real, the shape and dtype of ``x``.
    """
    t = torch.arange(x.shape[-1], dtype=torch.float64, device=x.device) / sfreq
    df = torch.as_tensor(shift_hz, dtype=torch.float64, device=x.device)[..., None]
    phase = torch.polar(torch.ones_like(df * t), 2 * math.pi * df * t)
    return (analytic_signal(x.double()) * phase).real.to(x.dtype)


@dataclass(frozen=True)
class WindowAugment:
    """Random transforms of EEG windows, one independent draw per window.

    Parameters
    ----------
    time_shift : bool
        Roll each window by a uniform number of samples (circularly).
    gain_sigma : float
        Multiply each window by ``exp(N(0, gain_sigma²))``; 0 disables.
    freq_shift : float
        Move every frequency of each window by ``U(-freq_shift, freq_shift)`` Hz; 0 disables.
    sfreq : float
        Sampling rate of the windows in Hz (for ``freq_shift``).
    """

    time_shift: bool = True
    gain_sigma: float = 0.1
    freq_shift: float = 1.5
    sfreq: float = 200.0

    def __post_init__(self) -> None:
        check_type("WindowAugment.time_shift", self.time_shift, bool, "True or False")
        check_number("WindowAugment.gain_sigma", self.gain_sigma, minimum=0)
        check_number("WindowAugment.freq_shift", self.freq_shift, minimum=0, unit="Hz")
        check_number("WindowAugment.sfreq", self.sfreq, greater=0, unit="Hz")
        if self.freq_shift >= self.sfreq / 2:
            raise ValueError(
                f"WindowAugment.freq_shift must be below the Nyquist frequency "
                f"{self.sfreq / 2:g} Hz, got {self.freq_shift:g} Hz."
            )

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Transform ``x``: ``(n_chans, n_times)`` or ``(batch, n_chans, n_times)``.

        Returns a new tensor of the same shape and dtype (the input is not modified).
        """
        if x.ndim not in (2, 3):
            raise ValueError(
                "WindowAugment expects (n_chans, n_times) or (batch, n_chans, n_times), "
                f"got shape {tuple(x.shape)}."
            )
        batch = x if x.ndim == 3 else x[None]
        n, n_times = batch.shape[0], batch.shape[-1]
        if self.time_shift:
            starts = torch.randint(0, n_times, (n,))
            idx = (torch.arange(n_times)[None] + starts[:, None]) % n_times
            batch = torch.gather(batch, -1, idx[:, None, :].expand_as(batch).to(batch.device))
        if self.gain_sigma > 0:
            gain = torch.exp(torch.randn(n, dtype=torch.float64) * self.gain_sigma)
            batch = batch * gain.to(batch)[:, None, None]
        if self.freq_shift > 0:
            df = (torch.rand(n, dtype=torch.float64) * 2 - 1) * self.freq_shift
            batch = frequency_shift(batch, df[:, None], self.sfreq)
        return batch if x.ndim == 3 else batch[0]

    def to_dict(self) -> dict[str, float | bool]:
        """The settings as a JSON-able dict."""
        return {
            "time_shift": self.time_shift,
            "gain_sigma": self.gain_sigma,
            "freq_shift": self.freq_shift,
            "sfreq": self.sfreq,
        }


class AugmentedDataset(Dataset):
    """``dataset`` with ``augment`` applied to the ``x`` of every item it returns.

    Parameters
    ----------
    dataset : Dataset
        Items ``(x, y)`` with ``x`` ``(n_chans, n_times)``; its ``y`` (or ``labels``) array,
        if any, is kept as ``y``, so that
        :func:`codebrain.training.batching.dataset_labels` reads the labels without drawing
        (and transforming) every item.
    augment : WindowAugment
    """

    def __init__(self, dataset: Dataset, augment: WindowAugment) -> None:
        check_type("augment", augment, WindowAugment)
        self.dataset = dataset
        self.augment = augment
        labels = label_array(dataset)
        if labels is not None:
            self.y = labels

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.dataset[i]
        return self.augment(torch.as_tensor(x)), y
