"""TCP bipolar montage: derivations from monopolar TUH labels and from stored CHB-MIT pairs."""

from __future__ import annotations

import mne
import numpy as np
import pytest

from codebrain.data.bipolar import (
    TCP_BIPOLAR_CHANNELS,
    TCP_BIPOLAR_CHANNELS_1010,
    TCP_BIPOLAR_PAIRS,
    bipolar_derivations,
    bipolar_raw,
    tcp_bipolar_names,
)

_ELECTRODES = ["FP1", "FP2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2"]
_ELECTRODES += ["F7", "F8", "T3", "T4", "T5", "T6", "FZ", "CZ", "PZ"]


def test_names_match_cbramod_and_chbmit():
    assert TCP_BIPOLAR_CHANNELS[:4] == ("FP1-F7", "F7-T3", "T3-T5", "T5-O1")
    assert TCP_BIPOLAR_CHANNELS[-1] == "P4-O2"
    assert len(TCP_BIPOLAR_CHANNELS) == 16 == len(set(TCP_BIPOLAR_CHANNELS))
    assert TCP_BIPOLAR_CHANNELS_1010[:8] == (
        "FP1-F7", "F7-T7", "T7-P7", "P7-O1", "FP2-F8", "F8-T8", "T8-P8", "P8-O2",
    )  # fmt: skip
    assert tcp_bipolar_names("1010") == TCP_BIPOLAR_CHANNELS_1010
    with pytest.raises(ValueError, match="style"):
        tcp_bipolar_names("1005")


@pytest.mark.parametrize("suffix", ["-REF", "-LE"])
def test_monopolar_tuh_labels_give_differences(suffix):
    rng = np.random.default_rng(0)
    names = [f"EEG {e}{suffix}" for e in _ELECTRODES] + ["EKG1-REF", "PHOTIC-REF"]
    data = rng.standard_normal((len(names), 500))
    out = bipolar_derivations(data, names)
    assert out.shape == (16, 500)
    row = {e: data[i] for i, e in enumerate(_ELECTRODES)}
    np.testing.assert_array_equal(out[0], row["FP1"] - row["F7"])  # FP1-F7
    for k, (a, b) in enumerate(TCP_BIPOLAR_PAIRS):
        np.testing.assert_array_equal(out[k], row[a] - row[b])


def test_10_10_monopolar_names_are_aliases():
    names = ["Fp1", "F7", "T7", "P7", "O1"]
    data = np.arange(5 * 4, dtype=float).reshape(5, 4) ** 2
    out = bipolar_derivations(data, names, TCP_BIPOLAR_PAIRS[:4])
    np.testing.assert_array_equal(out[1], data[1] - data[2])  # F7-T3 = F7 - T7
    np.testing.assert_array_equal(out[2], data[2] - data[3])  # T3-T5 = T7 - P7


def test_stored_bipolar_channels_are_copied_first_duplicate_wins():
    rng = np.random.default_rng(1)
    names = list(TCP_BIPOLAR_CHANNELS_1010)
    names[6] = "T8-P8-0"  # MNE's names for CHB-MIT's repeated T8-P8
    names += ["FZ-CZ", "T8-P8-1", "--0", "ECG"]
    data = rng.standard_normal((len(names), 300))
    out = bipolar_derivations(data, names)
    np.testing.assert_array_equal(out, data[:16])


def test_missing_derivation_raises_or_zero_fills():
    names = ["EEG FP1-REF", "EEG F7-REF"]
    data = np.ones((2, 10))
    with pytest.raises(ValueError, match="F7-T3"):
        bipolar_derivations(data, names)
    out = bipolar_derivations(data, names, on_missing="zeros")
    np.testing.assert_array_equal(out[0], 0.0)  # FP1 - F7 = 1 - 1
    assert not out[1:].any()
    with pytest.raises(ValueError, match="3 channel names"):
        bipolar_derivations(data, names + ["X"])
    with pytest.raises(ValueError, match="2-D"):
        bipolar_derivations(np.ones(10), ["A"])


def test_bipolar_raw_names_and_values():
    names = [f"EEG {e}-REF" for e in _ELECTRODES]
    data = np.random.default_rng(2).standard_normal((len(names), 400)) * 1e-5
    raw = mne.io.RawArray(data, mne.create_info(names, 200.0, "eeg"), verbose=False)
    raw.set_annotations(mne.Annotations([0.5], [1.0], ["spike"]))
    out = bipolar_raw(raw, style="1010")
    assert out.ch_names[:3] == ["FP1-F7", "F7-T7", "T7-P7"]
    assert out.info["sfreq"] == 200.0
    assert list(out.annotations.description) == ["spike"]
    np.testing.assert_allclose(out.get_data()[0], data[0] - data[10])
