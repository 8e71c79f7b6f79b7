"""The authors' TUEG corpus recipe, on small files in TUEG's layout and naming."""

from __future__ import annotations

import json
from pathlib import Path

import mne
import numpy as np
import pytest

from codebrain.cli import main
from codebrain.data import (
    DEFAULT_CHANNELS,
    CorpusDataset,
    build_tueg_corpus,
    tueg_config,
    tueg_recordings,
)

SFREQ = 250.0


def _write_edf(
    root: Path, montage: str, subject: int, seconds: float, suffix: str = "REF", **kw
) -> Path:
    """One TUEG-style EDF: edf/<montage>/<group>/<subject>/<session>/<subject>_s001_t000.edf."""
    rng = np.random.default_rng(subject)
    channels = [c for c in DEFAULT_CHANNELS if c not in kw.get("missing", ())]
    names = [f"EEG {c}-{suffix}" for c in channels] + [f"EEG EKG1-{suffix}"]
    data = 10e-6 * rng.standard_normal((len(names), int(seconds * SFREQ)))  # 10 µV noise
    data += 5e-6 * np.sin(2 * np.pi * 60.0 * np.arange(data.shape[1]) / SFREQ)  # mains
    for start in kw.get("spikes_s", ()):
        data[2, int(start * SFREQ) : int(start * SFREQ) + 25] += 300e-6  # a 300 µV artefact
    sid = f"{subject:08d}"
    folder = root / "edf" / montage / sid[:3] / sid / "s001_2015_01_01"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{sid}_s001_t000.edf"
    raw = mne.io.RawArray(data, mne.create_info(names, SFREQ, ch_types="eeg"), verbose=False)
    mne.export.export_raw(path, raw, fmt="edf", overwrite=True, verbose=False)
    return path


@pytest.fixture(scope="module")
def tueg(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tueg")
    return {
        "root": root,
        "ar": _write_edf(root, "01_tcp_ar", 1, 370.0, spikes_s=(165.0,)),
        "le": _write_edf(root, "02_tcp_le", 2, 310.0, suffix="LE"),
        "short": _write_edf(root, "01_tcp_ar", 3, 200.0),
        "missing": _write_edf(root, "03_tcp_ar_a", 4, 320.0, missing=("CZ",)),
        "other_montage": _write_edf(root, "04_tcp_le_a", 5, 320.0, suffix="LE"),
    }


def _authors_windows(path: Path, suffix: str) -> np.ndarray:
    """The recipe step by step with MNE, as the authors' script describes it (µV)."""
    raw = mne.io.read_raw_edf(path, preload=True, verbose=False)
    raw.pick([f"EEG {c}-{suffix}" for c in DEFAULT_CHANNELS])
    raw.resample(200, verbose=False)
    raw.filter(0.3, 75, verbose=False)
    raw.notch_filter(60, verbose=False)
    x = raw.get_data() * 1e6  # (19, points)
    points = x.shape[1]
    remainder = points % 6000
    x = x[:, 12000 : points - remainder - 12000]
    windows = x.reshape(19, -1, 6000).transpose(1, 0, 2)  # (n, 19, 6000)
    return windows[np.abs(windows).max(axis=(1, 2)) < 100]


def test_recipe_config() -> None:
    config = tueg_config()
    assert config.resample_first and config.sfreq == 200.0 and config.n_times == 6000
    assert (config.l_freq, config.h_freq, config.notch_freq) == (0.3, 75.0, 60.0)
    assert (config.trim_seconds, config.min_duration_seconds, config.reject_abs_uv) == (
        60.0,
        300.0,
        100.0,
    )
    assert tueg_config(on_nonfinite="drop").on_nonfinite == "drop"
    with pytest.raises(ValueError, match="fixes"):
        tueg_config(window_seconds=10.0)


def test_montage_selection(tueg: dict[str, Path]) -> None:
    kept = tueg_recordings(tueg["root"] / "edf")
    assert tueg["other_montage"] not in kept and len(kept) == 4
    with pytest.raises(ValueError, match="TUEG montage folder"):
        tueg_recordings(tueg["other_montage"])


def test_tueg_corpus_matches_the_recipe(tueg: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    summary = build_tueg_corpus(tueg["root"] / "edf", out, dtype="float32")
    assert sorted(summary.processed) == sorted(str(tueg[k].resolve()) for k in ("ar", "le"))
    assert "min_duration_seconds=300" in summary.failed[str(tueg["short"].resolve())]
    assert "CZ" in summary.failed[str(tueg["missing"].resolve())]
    ds = CorpusDataset(out, verify_checksums=True)
    by_id = {e["recording_id"]: e for e in ds.manifest["recordings"]}
    # 370 s at 200 Hz: 60 s off each end and the 10 s remainder leave 8 windows, one of
    # which holds the 300 µV artefact; 310 s leave 6.
    assert by_id["00000001_s001_t000"]["n_windows"] == 7
    assert by_id["00000001_s001_t000"]["n_rejected"] == 1
    assert by_id["00000002_s001_t000"]["n_windows"] == 6
    for key, suffix, offset in (("ar", "REF", 0), ("le", "LE", 7)):
        expected = _authors_windows(tueg[key], suffix) / 100.0  # model units
        ours = np.stack([ds[offset + i].numpy() for i in range(len(expected))])
        np.testing.assert_allclose(ours, expected, atol=2e-5)


def test_cli_recipe(tueg: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cli"
    edf = str(tueg["root"] / "edf")
    assert main(["-q", "prepare", edf, "--corpus", str(out), "--recipe", "tueg"]) == 0
    assert "2 processed" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"] == tueg_config().to_dict() and manifest["complete"] is True
    code = main(["-q", "prepare", edf, "--corpus", str(tmp_path / "x"), "--recipe", "tueg",
                 "--window-seconds", "10", "--notch", "50"])  # fmt: skip
    err = capsys.readouterr().err
    assert (
        code == 2 and "--recipe tueg fixes the preprocessing; drop --window-seconds, --notch" in err
    )
    assert main(["-q", "prepare", edf, "-o", str(tmp_path / "w.npz"), "--recipe", "tueg"]) == 2
    assert "use it with --corpus" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "w.npz").exists()
