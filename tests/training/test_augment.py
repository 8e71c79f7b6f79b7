"""Training-window augmentation: each transform does what it says, draws are per window."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codebrain.training.augment import (
    AugmentedDataset,
    WindowAugment,
    analytic_signal,
    frequency_shift,
)
from codebrain.training.batching import dataset_labels

SFREQ = 200.0


def _sine(freq: float, n_times: int = 1000, n_chans: int = 3) -> torch.Tensor:
    t = torch.arange(n_times, dtype=torch.float64) / SFREQ
    return torch.sin(2 * torch.pi * freq * t).repeat(n_chans, 1).float()


def _peak(x: torch.Tensor) -> float:
    spec = np.abs(np.fft.rfft(x.double().numpy(), axis=-1)).mean(0)
    return float(np.fft.rfftfreq(x.shape[-1], 1 / SFREQ)[spec.argmax()])


@pytest.mark.parametrize("n_times", [1000, 999])
def test_analytic_signal_matches_scipy(n_times):
    from scipy.signal import hilbert

    x = torch.randn(2, 3, n_times, dtype=torch.float64)
    np.testing.assert_allclose(analytic_signal(x).numpy(), hilbert(x.numpy(), axis=-1), atol=1e-10)


def test_frequency_shift_moves_a_sine_and_keeps_its_amplitude():
    x = _sine(10.0)
    for df in (-1.5, 1.0, 2.0):
        y = frequency_shift(x, df, SFREQ)
        assert y.shape == x.shape and y.dtype == x.dtype
        assert _peak(y) == pytest.approx(10.0 + df, abs=0.2)  # 0.2 Hz bins
        assert float(y.std()) == pytest.approx(float(x.std()), rel=0.02)
    torch.testing.assert_close(frequency_shift(x, 0.0, SFREQ), x, atol=1e-5, rtol=0)


def test_each_transform_alone():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 400)
    rolled = WindowAugment(time_shift=True, gain_sigma=0, freq_shift=0)(x)
    for a, b in zip(x, rolled, strict=True):  # each window is a circular shift of itself
        shifts = [k for k in range(400) if torch.equal(torch.roll(a, k, -1), b)]
        assert len(shifts) == 1
    scaled = WindowAugment(time_shift=False, gain_sigma=0.3, freq_shift=0)(x)
    ratio = scaled / x
    assert torch.allclose(ratio, ratio[:, :1, :1].expand_as(ratio), rtol=1e-4)  # one gain each
    assert ratio[:, 0, 0].unique().numel() == 4
    moved = WindowAugment(time_shift=False, gain_sigma=0, freq_shift=2.0)(_sine(10.0)[None])
    assert 8.0 <= _peak(moved[0]) <= 12.0
    same = WindowAugment(time_shift=False, gain_sigma=0, freq_shift=0)(x)
    assert torch.equal(same, x)


def test_draws_follow_torch_seed_and_input_is_untouched():
    x = torch.randn(3, 1000)
    keep = x.clone()
    aug = WindowAugment()
    torch.manual_seed(1)
    a = aug(x)
    torch.manual_seed(1)
    b = aug(x)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert torch.equal(x, keep) and not torch.equal(a, x)
    assert aug(x).shape == (3, 1000)


@pytest.mark.parametrize("attr", ["y", "labels"])
def test_dataset_wrapper_keeps_labels_without_drawing_items(attr, monkeypatch):
    class Windows(torch.utils.data.Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return torch.randn(2, 400), torch.tensor(getattr(self, attr)[i])

    base = Windows()
    setattr(base, attr, np.array([0, 1, 1]))
    ds = AugmentedDataset(base, WindowAugment())
    drawn = []
    monkeypatch.setattr(Windows, "__getitem__", lambda self, i: drawn.append(i))
    assert len(ds) == 3 and list(dataset_labels(ds)) == [0, 1, 1]
    assert drawn == []  # the labels came from the array, not from transformed items
    monkeypatch.undo()
    x, y = ds[1]
    assert x.shape == (2, 400) and int(y) == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gain_sigma": -0.1}, "gain_sigma"),
        ({"freq_shift": 100.0}, "Nyquist"),
        ({"sfreq": 0}, "sfreq"),
        ({"time_shift": 1}, "time_shift"),
    ],
)
def test_bad_settings_are_refused(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        WindowAugment(**kwargs)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="n_chans, n_times"):
        WindowAugment()(torch.randn(400))
    with pytest.raises(TypeError, match="augment"):
        AugmentedDataset([], "shift")  # type: ignore[arg-type]
