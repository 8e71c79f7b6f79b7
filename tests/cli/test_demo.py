"""``codebrain demo`` end to end, with a reduced budget (tiny model, few subjects)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

from _cli_helpers import CLIResult, run_cli
from codebrain import CodeBrain

SMALL = ["--n-subjects", "5", "--n-trials", "60", "--test-subjects", "1", "--val-subjects", "1",
         "--epochs", "6", "--width", "16", "--layers", "1", "--batch-size", "16", "--no-progress"]  # fmt: skip


def run_demo(*args: str) -> CLIResult:
    return run_cli("-q", "demo", *args)


def test_demo_learns_above_chance_on_held_out_subjects(tmp_path):
    out = tmp_path / "demo_out"
    proc = run_demo("--out", str(out), *SMALL)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    test_bacc = report["test_metrics"]["balanced_accuracy"]
    # 60 held-out windows of one unseen subject; chance is 0.5
    assert test_bacc >= 0.75, report["test_metrics"]
    assert f"balanced accuracy {test_bacc:.3f}" in proc.stdout
    subjects = report["subjects"]
    assert not set(subjects["test"]) & (set(subjects["train"]) | set(subjects["validation"]))
    assert report["reload_max_abs_diff"] <= 1e-4
    names = {p.name for p in out.iterdir()}
    assert {"report.json", "metrics.json", "predictions.csv", "learning_curves.png",
            "confusion_matrix.png", "model", "recordings"} <= names  # fmt: skip
    assert len(list((out / "recordings").glob("*.edf"))) == 5
    rows = list(csv.DictReader((out / "predictions.csv").read_text().splitlines()))
    assert len(rows) == report["windows"]["test"] == 60
    model = CodeBrain.from_pretrained(out / "model")
    assert (model.n_chans, model.n_times, model.n_outputs) == (19, 800, 2)
    assert not [p for p in tmp_path.iterdir() if p.name != "demo_out"]  # no temporary left


def test_demo_rejects_bad_arguments_without_output(tmp_path):
    proc = run_demo("--out", str(tmp_path / "d"), "--n-subjects", "2")
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("codebrain demo: error: --n-subjects (2)")
    assert len(proc.stderr.strip().splitlines()) == 1
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    proc = run_demo("--out", str(foreign), *SMALL)
    assert proc.returncode == 2 and "--force" in proc.stderr
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_terminated_demo_leaves_no_partial_output(tmp_path):
    """SIGTERM mid-run (a separate process: the signal is the point of the test)."""
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "codebrain.cli", "-q", "demo", "--out", str(tmp_path / "d"), *SMALL],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".d.*")) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert list(tmp_path.glob(".d.*")), "the demo never started writing"
        proc.terminate()
        assert proc.wait(timeout=60) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert list(tmp_path.iterdir()) == []
