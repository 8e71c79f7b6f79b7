"""CHB-MIT recipe on small EDF files and summaries laid out as PhysioNet distributes them."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from _task_files import sine, write_edf

from codebrain.benchmark import DatasetNotFoundError, get_recipe, resolve_split
from codebrain.benchmark.tasks.chbmit import CHANNELS, read_chbmit_summary, seizure_windows

SFREQ = 256.0
# stored order differs from the recipe's; T8-P8 twice (the second copy must be ignored),
# P4-O2 absent (zero-filled), a '-' dummy channel and non-TCP pairs as in the real files
_STORED = [c for c in CHANNELS if c != "P4-O2"][::-1] + ["FZ-CZ", "-", "T8-P8", "P7-T7"]


def _chb_edf(path: Path, seconds: float) -> None:
    n = int(seconds * SFREQ)
    rows = []
    for name in _STORED:
        k = CHANNELS.index(name) if name in CHANNELS else 20
        offset = 10.0 * (k + 1) if name in CHANNELS else 500.0
        rows.append(offset + sine(n, SFREQ, 4.0, 5.0))
    rows[-2] = rows[-2] + 1000.0  # the repeated T8-P8 differs from the first
    write_edf(path, _STORED, np.stack(rows), SFREQ)


def _summary(folder: Path, patient: str, files: dict[str, list[tuple[int, int]]]) -> None:
    lines = ["Data Sampling Rate: 256 Hz", "*************************", ""]
    for name, seizures in files.items():
        lines += [f"File Name: {name}", "File Start Time: 11:42:54", "File End Time: 12:42:54"]
        lines.append(f"Number of Seizures in File: {len(seizures)}")
        for i, (a, b) in enumerate(seizures, start=1):
            tag = "Seizure" if len(seizures) == 1 else f"Seizure {i}"
            lines += [f"{tag} Start Time: {a} seconds", f"{tag} End Time: {b} seconds"]
        lines.append("")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{patient}-summary.txt").write_text("\n".join(lines))


@pytest.fixture(scope="module")
def chb_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("chbmit")
    for p in range(1, 25):
        patient = f"chb{p:02d}"
        files: dict[str, list[tuple[int, int]]] = {f"{patient}_01.edf": []}
        _chb_edf(root / patient / f"{patient}_01.edf", 10.0)
        if p == 1:
            files["chb01_03.edf"] = [(12, 16)]
            _chb_edf(root / patient / "chb01_03.edf", 35.0)
            files["chb01_04.edf"] = [(1, 34), (20, 25)]
            _chb_edf(root / patient / "chb01_04.edf", 35.0)
        if p == 24:
            files["chb24_02.edf"] = []
            _chb_edf(root / patient / "chb24_02.edf", 10.0)
        _summary(root / patient, patient, files)
    _chb_edf(root / "chb02" / "chb02_99.edf", 10.0)  # not in the summary: skipped
    return root


def test_read_summary_single_and_numbered(chb_root):
    s = read_chbmit_summary(chb_root / "chb01" / "chb01-summary.txt")
    assert s == {"chb01_01.edf": [], "chb01_03.edf": [(12.0, 16.0)],
                 "chb01_04.edf": [(1.0, 34.0), (20.0, 25.0)]}  # fmt: skip


def test_seizure_windows_follow_the_authors():
    # seizure 12-16 s -> samples 3071..4095; windows of 2560 from 0; extras 2815, 4095
    starts, labels = seizure_windows(35 * 256, [(12, 16)])
    assert starts == [0, 2560, 5120, 2815, 4095]
    assert labels == [0, 1, 0, 1, 1]
    # a window wholly inside a long seizure is 0
    starts, labels = seizure_windows(35 * 256, [(1, 34)])
    assert labels[:3] == [1, 0, 0]


def test_chbmit_discovery_excludes_and_split(chb_root, caplog):
    recipe = get_recipe("CHB-MIT")
    with caplog.at_level(logging.WARNING):
        recs = recipe.find_recordings(chb_root)
    assert (
        "CHB-MIT: 1 .edf file(s) are not in their patient's summary and are skipped "
        "(no seizure times): chb02_99.edf"
    ) in caplog.messages
    subjects = sorted({r.subject for r in recs})
    assert not {"chb12", "chb13", "chb17"} & set(subjects) and len(subjects) == 21
    assert "chb24_02" not in {r.id for r in recs}
    split, protocol = resolve_split(recipe, recs)
    assert protocol == "authors"
    assert len(split.train) == 17 and "chb20" in split.train and "chb12" not in split.train
    assert split.val == ("chb21", "chb22") and split.test == ("chb23", "chb24")
    assert recipe.head_dropout == 0.0 and recipe.selection_metric == "auroc"


def test_chbmit_windows_channels_and_labels(chb_root):
    recipe = get_recipe("chb_mit")
    recs = {r.id: r for r in recipe.find_recordings(chb_root)}
    tw = recipe.load(recipe, recs["chb01_03"])
    assert tw.x.shape == (5, 16, 2000) and tw.x.dtype == np.float32
    assert list(tw.y) == [0, 1, 0, 1, 1] and set(tw.subjects) == {"chb01"}
    means = tw.x.mean(axis=(0, 2))
    expected = [0.1 * (k + 1) for k in range(15)] + [0.0]  # P4-O2 missing -> zeros
    np.testing.assert_allclose(means, expected, atol=1e-3)  # first T8-P8 kept, /100
    tw = recipe.load(recipe, recs["chb01_04"])
    # 1-34 s starts in window 0; 20-25 s starts at sample 5119 (in window 1, the "- 1") and
    # ends at 6399 (in window 2)
    assert list(tw.y[:3]) == [1, 1, 1]


def test_chbmit_missing_summary_and_layout(tmp_path):
    recipe = get_recipe("chbmit")
    _chb_edf(tmp_path / "chb05" / "chb05_01.edf", 10.0)
    with pytest.raises(DatasetNotFoundError, match="chb05-summary.txt"):
        recipe.find_recordings(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="physionet.org"):
        recipe.find_recordings(tmp_path / "chb05" / "none")
