"""Channel-name normalisation and mapping to the model's montage."""

from __future__ import annotations

import numpy as np
import pytest

from codebrain.data import (
    DEFAULT_CHANNELS,
    make_synthetic_recording,
    normalize_channel_name,
    pick_target_channels,
)


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("EEG FP1-REF", "FP1"),
        ("EEG T3-LE", "T3"),
        ("EEG T7-REF", "T3"),
        ("t8", "T4"),
        ("P7", "T5"),
        ("EEG P8-LE", "T6"),
        ("Fp2", "FP2"),
        ("Fc5.", "FC5"),
        ("  Cz ", "CZ"),
        ("EEG CZ-A1", "CZ"),
        ("F3-AVG", "F3"),
    ],
)
def test_normalize_channel_name(label: str, expected: str) -> None:
    assert normalize_channel_name(label) == expected


def test_default_channels_order() -> None:
    assert DEFAULT_CHANNELS == (
        "FP1", "FP2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2",
        "F7", "F8", "T3", "T4", "T5", "T6", "FZ", "CZ", "PZ",
    )  # fmt: skip


def test_pick_reorders_and_drops_extras(raw_factory) -> None:
    names = [f"EEG {c}-REF" for c in reversed(DEFAULT_CHANNELS)] + ["EKG", "EEG A1-REF"]
    raw = raw_factory(names)
    expected = raw.get_data(picks="EEG C3-REF")
    pick_target_channels(raw)
    assert raw.ch_names == list(DEFAULT_CHANNELS)
    np.testing.assert_array_equal(raw.get_data(picks="C3"), expected)


def test_pick_accepts_new_temporal_names(raw_factory) -> None:
    names = [{"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}.get(c, c) for c in DEFAULT_CHANNELS]
    raw = raw_factory([n.capitalize() for n in names])
    pick_target_channels(raw)
    assert raw.ch_names == list(DEFAULT_CHANNELS)


def test_missing_channels_error_lists_missing_and_found(raw_factory) -> None:
    raw = raw_factory([f"EEG {c}-REF" for c in DEFAULT_CHANNELS if c not in ("O1", "T4")])
    with pytest.raises(ValueError, match=r"Missing channels \['O1', 'T4'\]") as info:
        pick_target_channels(raw)
    assert "EEG FP1-REF" in str(info.value)  # what was found
    assert "interpolate" in str(info.value)


def test_missing_channel_interpolated(caplog: pytest.LogCaptureFixture) -> None:
    raw = make_synthetic_recording(1, seed=0, n_trials=4)
    truth = pick_target_channels(raw.copy()).get_data(picks="C3")[0]
    raw.drop_channels(["EEG C3-REF"])
    with caplog.at_level("WARNING", logger="codebrain.data.montage"):
        pick_target_channels(raw, on_missing="interpolate", verbose="error")
    assert "Interpolating missing channels ['C3']" in caplog.text
    assert raw.ch_names == list(DEFAULT_CHANNELS)
    assert raw.info["bads"] == []
    estimate = raw.get_data(picks="C3")[0]
    assert np.corrcoef(truth, estimate)[0, 1] > 0.3  # spatially correlated background


def test_duplicate_names_after_normalisation(raw_factory) -> None:
    names = [f"EEG {c}-REF" for c in DEFAULT_CHANNELS] + ["EEG T7-REF"]
    raw = raw_factory(names)
    with pytest.raises(ValueError, match=r"T3: \['EEG T3-REF', 'EEG T7-REF'\]"):
        pick_target_channels(raw)


def test_bad_option(raw_factory) -> None:
    raw = raw_factory(list(DEFAULT_CHANNELS))
    with pytest.raises(ValueError, match="on_missing"):
        pick_target_channels(raw, on_missing="zeros")  # type: ignore[arg-type]
