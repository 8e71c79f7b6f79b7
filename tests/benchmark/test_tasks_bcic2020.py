"""BCIC2020-3 recipe on small files laid out as the competition distributes them."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from codebrain.benchmark import DatasetNotFoundError, get_recipe, resolve_split
from codebrain.benchmark.tasks.bcic2020 import ANSWER_SHEET, read_answer_sheet

N_TIME = 795  # longer than the 768 samples the authors keep
_M = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def _write_xlsx(path: Path, cells: dict[str, object]) -> None:
    """A minimal workbook: one sheet, numbers as values and text as shared strings."""
    strings = [v for v in cells.values() if isinstance(v, str)]
    rows: dict[int, list[str]] = {}
    for ref, v in cells.items():
        row = int("".join(ch for ch in ref if ch.isdigit()))
        if isinstance(v, str):
            xml = f'<c r="{ref}" t="s"><v>{strings.index(v)}</v></c>'
        else:
            xml = f'<c r="{ref}"><v>{v}</v></c>'
        rows.setdefault(row, []).append(xml)
    sheet_rows = "".join(f'<row r="{r}">{"".join(c)}</row>' for r, c in sorted(rows.items()))
    sst = "".join(f"<si><t>{s}</t></si>" for s in strings)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(
            "xl/workbook.xml",
            f'<workbook xmlns="{_M}" xmlns:r="{_R}"><sheets>'
            '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>',
        )
        z.writestr(
            "xl/_rels/workbook.xml.rels",
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{_R}/worksheet" Target="worksheets/sheet1.xml"/>'
            "</Relationships>",
        )
        z.writestr("xl/sharedStrings.xml", f'<sst xmlns="{_M}">{sst}</sst>')
        z.writestr("xl/worksheets/sheet1.xml", f'<worksheet xmlns="{_M}"><sheetData>{sheet_rows}</sheetData></worksheet>')  # fmt: skip


def _trials(n: int, subject: int) -> np.ndarray:
    """(n, 64, N_TIME) µV: channel c of trial k is 100 c + k + 10 subject, the first 27
    samples (dropped by the recipe) 5000."""
    x = 100.0 * np.arange(64)[None, :, None] + np.arange(n)[:, None, None] + 10.0 * subject
    x = np.broadcast_to(x, (n, 64, N_TIME)).copy()
    x[:, :, : N_TIME - 768] = 5000.0
    return x


def _onehot(labels: list[int]) -> np.ndarray:
    y = np.zeros((5, len(labels)))
    y[labels, np.arange(len(labels))] = 1
    return y


TRAIN_Y = [0, 1, 2, 3, 4, 0]
VAL_Y = [4, 3, 2]


@pytest.fixture(scope="module")
def bcic_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bcic2020")
    for folder in ("Training set", "Validation set", "Test set"):
        (root / folder).mkdir()
    for s in (1, 2, 3):
        name = f"Data_Sample{s:02d}.mat"
        for folder, var, ys in (
            ("Training set", "epo_train", TRAIN_Y),
            ("Validation set", "epo_validation", VAL_Y),
        ):
            x = _trials(len(ys), s).transpose(2, 1, 0)  # MATLAB layout (time, 64, trials)
            struct = {"clab": np.array(["Fp1"] * 64, dtype=object), "fs": 256, "x": x}
            struct["y"] = _onehot(ys)
            scipy.io.savemat(root / folder / name, {var: struct})
        test_file = root / "Test set" / name
        with h5py.File(test_file, "w", userblock_size=512) as f:  # v7.3: (trials, C, T) here
            f.create_group("epo_test").create_dataset("x", data=_trials(50, s))
        with open(test_file, "r+b") as f:  # MATLAB's v7.3 header in the user block
            f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(116) + b"\x00" * 8)
            f.write(b"\x00\x02IM")
    # answer sheet: title and header rows, then rows 4-53; subject s in column C, E, G
    cells: dict[str, object] = {"A1": "Track3 answer sheet", "C2": "Data_Sample01"}
    for i in range(50):
        for s, col in ((1, "C"), (2, "E"), (3, "G")):
            cells[f"{col}{4 + i}"] = (i + s) % 5 + 1
            cells[f"{chr(ord(col) + 1)}{4 + i}"] = "word"
    _write_xlsx(root / ANSWER_SHEET, cells)
    return root


def test_read_answer_sheet(bcic_root, tmp_path):
    y = read_answer_sheet(bcic_root / ANSWER_SHEET, 2)
    assert y.shape == (50,) and list(y[:6]) == [2, 3, 4, 0, 1, 2]
    _write_xlsx(tmp_path / "bad.xlsx", {"C4": 7})
    with pytest.raises(ValueError, match="cell C4 .*1-5"):
        read_answer_sheet(tmp_path / "bad.xlsx", 1)
    (tmp_path / "junk.xlsx").write_text("not a zip")
    with pytest.raises(ValueError, match="not a readable .xlsx"):
        read_answer_sheet(tmp_path / "junk.xlsx", 1)


def test_bcic2020_discovery_and_authors_split(bcic_root):
    recipe = get_recipe("BCIC2020-3")
    recs = recipe.find_recordings(bcic_root)
    assert len(recs) == 9
    assert recs[0].subject == "Data_Sample01"
    assert [r.id for r in recs[:3]] == [
        "Data_Sample01:test",
        "Data_Sample01:train",
        "Data_Sample01:val",
    ]
    split, protocol = resolve_split(recipe, recs)
    assert protocol == "authors" and split.unit == "recording"
    assert split.train == ("Data_Sample01:train", "Data_Sample02:train", "Data_Sample03:train")
    assert split.val == ("Data_Sample01:val", "Data_Sample02:val", "Data_Sample03:val")
    assert split.test == ("Data_Sample01:test", "Data_Sample02:test", "Data_Sample03:test")
    assert recipe.head_dropout == 0.0 and recipe.n_outputs == 5


def test_bcic2020_windows_labels_channel_order(bcic_root):
    recipe = get_recipe("bcic2020")
    recs = {r.id: r for r in recipe.find_recordings(bcic_root)}
    tw = recipe.load(recipe, recs["Data_Sample02:train"])
    assert tw.x.shape == (6, 64, 600) and tw.x.dtype == np.float32
    assert list(tw.y) == TRAIN_Y and set(tw.subjects) == {"Data_Sample02"}
    assert set(tw.recordings) == {"Data_Sample02:train"}
    # last 768 samples only (the 5000 µV lead-in is gone), channel order kept, /100
    expected = (100.0 * np.arange(64)[None, :] + np.arange(6)[:, None] + 20.0) / 100
    np.testing.assert_allclose(tw.x.mean(axis=2), expected, atol=1e-3)
    assert list(recipe.load(recipe, recs["Data_Sample03:val"]).y) == VAL_Y
    test = recipe.load(recipe, recs["Data_Sample03:test"])
    assert test.x.shape == (50, 64, 600)
    assert list(test.y[:6]) == [3, 4, 0, 1, 2, 3]  # column G: (i + 3) % 5 + 1, minus 1
    np.testing.assert_allclose(test.x[7, 5].mean(), (500 + 7 + 30) / 100, atol=1e-3)


def test_bcic2020_without_answer_sheet(bcic_root, tmp_path, caplog):
    (tmp_path / "Training set").mkdir()
    (tmp_path / "Test set").mkdir()
    for folder in ("Training set", "Test set"):
        src = bcic_root / folder / "Data_Sample01.mat"
        (tmp_path / folder / src.name).write_bytes(src.read_bytes())
    recipe = get_recipe("bcic2020_3")
    with caplog.at_level(logging.WARNING):
        recs = recipe.find_recordings(tmp_path)
    assert [r.id for r in recs] == ["Data_Sample01:train"] and "no labels" in caplog.text
    assert recipe.split_rule(recs, 0) is None


def test_bcic2020_missing_layout_says_where(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="Training set.*osf.io"):
        get_recipe("bcic2020").find_recordings(tmp_path)


def test_bcic2020_runner_uses_the_competition_sets(bcic_root):
    from codebrain.benchmark.runner import load_split_windows

    recipe = get_recipe("bcic2020")
    recs = recipe.find_recordings(bcic_root)
    split, _ = resolve_split(recipe, recs)
    data = load_split_windows(recipe, recs, split)
    assert [len(data[p]) for p in ("train", "val", "test")] == [18, 9, 150]
    assert set(data["val"].recordings) == {f"Data_Sample0{s}:val" for s in (1, 2, 3)}
    assert set(data["test"].subjects) == {"Data_Sample01", "Data_Sample02", "Data_Sample03"}
