"""Tests of the ``tokenizer-train`` and ``tokenizer-report`` commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from codebrain.cli import main
from codebrain.models.tokenizer import TFDualTokenizer

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = [
    "--patch-size", "32", "--embed-dim", "16", "--depth", "1", "--heads", "2",
    "--decoder-depth", "1", "--conv-channels", "4", "--codebook-size", "16", "--code-dim", "4",
    "--dead-code-threshold", "0.5",
]  # fmt: skip


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def npy_corpus(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    folder = tmp_path / "windows"
    folder.mkdir()
    t = np.arange(96) / 32
    for i in range(2):
        freqs = rng.integers(1, 12, (12, 3, 1))
        x = np.sin(2 * np.pi * freqs * t) + 0.2 * rng.standard_normal((12, 3, 96))
        np.save(folder / f"part{i}.npy", x.astype(np.float32))
    return folder


def _train(corpus: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "-q",
            "tokenizer-train",
            "--corpus",
            str(corpus),
            "--out",
            str(out),
            *TINY,
            "--steps",
            "4",
            "--batch-size",
            "8",
            "--warmup-steps",
            "1",
            "--log-every",
            "2",
            "--checkpoint-every",
            "2",
            "--no-progress",
            *extra,
        ]
    )


def test_train_and_report(tmp_path: Path, npy_corpus: Path, capsys) -> None:
    out = tmp_path / "run"
    assert _train(npy_corpus, out) == 0
    assert "tokenizer-train: 4 steps" in capsys.readouterr().out
    tok = TFDualTokenizer.from_pretrained(out / "tokenizer")
    assert tok.config.patch_size == 32 and tok.config.codebook_size_f == 16
    assert tok.config.max_chans == 128 and tok.config.max_patches == 60  # the release's slots
    assert (out / "log.csv").is_file() and (out / "summary.json").is_file()

    report_dir = tmp_path / "report"
    rc = main(
        [
            "-q",
            "tokenizer-report",
            "--tokenizer",
            str(out / "tokenizer"),
            "--corpus",
            str(npy_corpus),
            "--out",
            str(report_dir),
            "--n-windows",
            "20",
            "--top",
            "8",
            "--n-examples",
            "3",
        ]
    )
    assert rc == 0
    assert "tokenizer-report:" in capsys.readouterr().out
    names = sorted(p.name for p in report_dir.iterdir())
    assert names == ["cooccurrence.png", "reconstructions.png", "report.json", "usage.png"]
    for name in names:
        if name.endswith(".png"):
            assert (report_dir / name).read_bytes()[:8] == PNG_MAGIC
    report = json.loads((report_dir / "report.json").read_text())
    assert report["n_windows"] == 20 and report["n_patches"] == 20 * 3 * 3
    assert 0 < report["codebook_t"]["fraction_used"] <= 1
    assert 1 <= report["codebook_f"]["perplexity"] <= 16
    co = np.array(report["cooccurrence"]["counts"])
    assert co.shape == (8, 8) and 0 < co.sum() <= 20 * 3 * 3
    # No temporary folders are left beside the report.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report", "run", "windows"]


def test_rerun_resumes_and_extends(tmp_path: Path, npy_corpus: Path) -> None:
    out = tmp_path / "run"
    assert _train(npy_corpus, out) == 0
    assert main(["-q", "tokenizer-train", "--corpus", str(npy_corpus), "--out", str(out),
                 *TINY, "--steps", "8", "--batch-size", "8", "--warmup-steps", "1",
                 "--log-every", "2", "--checkpoint-every", "2", "--no-progress"]) == 0  # fmt: skip
    rows = [json.loads(r) for r in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6, 8]
    # Step 4 ended the 4-step schedule; the extension follows the new 8-step cosine.
    assert rows[1]["lr"] == pytest.approx(5e-4 * 0.01)
    assert rows[2]["lr"] > 10 * rows[1]["lr"]
    assert rows[3]["lr"] == pytest.approx(5e-4 * 0.01)


def test_no_resume_refuses_checkpoints_unless_torchrun_relaunched(
    tmp_path: Path, npy_corpus: Path, monkeypatch, capsys
) -> None:
    out = tmp_path / "run"
    assert _train(npy_corpus, out) == 0
    assert _train(npy_corpus, out, "--steps", "6", "--no-resume") == 2
    assert "already holds checkpoints" in capsys.readouterr().err
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")  # a group relaunched by torchrun
    assert _train(npy_corpus, out, "--steps", "6", "--no-resume") == 0
    rows = [json.loads(r) for r in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6]
    assert rows[1]["lr"] == pytest.approx(5e-4 * 0.01)  # step 4 ended the first run's schedule


def test_user_errors(tmp_path: Path, npy_corpus: Path, capsys) -> None:
    assert _train(tmp_path / "missing", tmp_path / "o") == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert _train(tmp_path / "empty", tmp_path / "o") == 2
    assert "manifest.json" in capsys.readouterr().err
    # 96 samples are not a multiple of 40 (the flags themselves are consistent: the TFConv
    # width of 40-sample patches is 20, and flags are checked before the corpus is read).
    rc = main(
        ["-q", "tokenizer-train", "--corpus", str(npy_corpus), "--out", str(tmp_path / "o"),
         *TINY[2:], "--patch-size", "40", "--embed-dim", "20", "--steps", "1", "--no-progress"]
    )  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err
    assert "not a multiple of --patch-size 40" in err and len(err.strip().splitlines()) == 1
    np.save(npy_corpus / "bad.npy", np.zeros((2, 3, 64), dtype=np.float32))
    assert _train(npy_corpus, tmp_path / "o") == 2
    assert "disagree" in capsys.readouterr().err
    rc = main(
        ["-q", "tokenizer-report", "--tokenizer", str(tmp_path / "nope"), "--corpus",
         str(npy_corpus), "--out", str(tmp_path / "r")]
    )  # fmt: skip
    assert rc == 2 and "is not a folder" in capsys.readouterr().err


def test_built_corpus_is_accepted(tmp_path: Path, synthetic_edf_folder) -> None:
    """A folder written by codebrain.data.build_corpus is read through CorpusDataset."""
    data = pytest.importorskip("codebrain.data")
    from codebrain.cli._common import load_windows

    edfs = synthetic_edf_folder(n_subjects=1, n_trials=4, seed=0)
    corpus = tmp_path / "corpus"
    data.build_corpus(edfs, corpus, data.PreprocessConfig(window_seconds=2.0), verbose="error")
    ds = load_windows(corpus)
    assert isinstance(ds, data.CorpusDataset) and len(ds) > 0
    x = ds[0]
    assert x.ndim == 2 and x.shape[1] % 200 == 0
