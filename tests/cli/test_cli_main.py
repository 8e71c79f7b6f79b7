"""The ``codebrain`` commands, run for real (in-process) on tiny data."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _cli_helpers import CLIResult, run_cli

COMMANDS = ["demo", "prepare", "finetune", "evaluate", "predict", "embed", "convert", "info"]
CHANNELS = "C3,C4,CZ"


def cli(*args: str) -> CLIResult:
    return run_cli("-q", *args)


def assert_one_line_error(proc: CLIResult, command: str, match: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"codebrain {command}: error:"), lines[0]
    assert match in lines[0], lines[0]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, synthetic_edfs) -> dict[str, Path]:
    """Synthetic EDFs (the shared, read-only folder) → windows .npz → tiny fine-tuned model,
    via the real commands."""
    root = tmp_path_factory.mktemp("cli")
    edf = synthetic_edfs[0].parent
    assert sorted(edf.iterdir()) == sorted(synthetic_edfs)  # the folder holds just the 3 EDFs
    npz = root / "windows.npz"
    proc = cli(
        "prepare", str(edf), "-o", str(npz), "--channels", CHANNELS, "--window-seconds", "2",
        "--windows", "events", "--events", "left_hand,right_hand", "--l-freq", "4",
        "--h-freq", "40",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "24 windows" in proc.stdout
    model = root / "model"
    proc = cli(
        "finetune", str(npz), "-o", str(model), "--width", "8", "--layers", "1",
        "--epochs", "1", "--batch-size", "8", "--val-fraction", "0.34", "--no-progress",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return {"root": root, "edf": edf, "npz": npz, "model": model}


def test_every_command_has_help(capsys):
    from codebrain.cli import main

    for command in COMMANDS:
        with pytest.raises(SystemExit) as exc:
            main([command, "--help"])
        assert exc.value.code == 0
        assert f"usage: codebrain {command}" in capsys.readouterr().out


def test_entry_point_runs_as_a_program():
    """The one CLI test that starts a process: ``python -m codebrain.cli`` itself."""
    proc = subprocess.run(
        [sys.executable, "-m", "codebrain.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert all(c in proc.stdout for c in COMMANDS)
    proc = subprocess.run(
        [sys.executable, "-m", "codebrain.cli", "info", "--n-times", "10"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (
        "codebrain info: error: --n-times must be >= the patch size 200, got 10."
    )


def test_prepare_writes_a_complete_windows_file(workspace):
    with np.load(workspace["npz"], allow_pickle=False) as z:
        assert z["data"].shape == (24, 3, 400) and z["data"].dtype == np.float32
        assert sorted(set(z["labels"].tolist())) == [0, 1]
        assert len(set(z["subject_ids"].tolist())) == 3
        assert list(z["ch_names"]) == ["C3", "C4", "CZ"]
        assert json.loads(str(z["preprocess"]))["l_freq"] == 4.0


def test_finetune_output_folder(workspace):
    run = workspace["model"]
    names = {p.name for p in run.iterdir()}
    assert {"config.json", "metrics.csv", "metrics.jsonl", "checkpoints", "final"} <= names
    assert {"result.json", "learning_curves.png", "confusion_matrix.png"} <= names
    assert "finetune" in json.loads((run / "config.json").read_text())
    final = {p.name for p in (run / "final").iterdir()}
    assert {"config.json", "model.safetensors", "finetune.json", "preprocess.json"} <= final
    meta = json.loads((run / "final" / "finetune.json").read_text())
    assert meta == json.loads((run / "result.json").read_text())
    assert meta["classes"] == ["left_hand", "right_hand"]
    assert set(meta["train_groups"]).isdisjoint(meta["val_groups"])
    assert len(meta["history"]) == 1
    assert not [p for p in run.parent.iterdir() if p.name.startswith(".model")]


def test_folders_of_earlier_versions_and_final_still_load(workspace, tmp_path):
    """A model folder as ``finetune -o`` wrote it before run folders (the model and its
    ``finetune.json``/``preprocess.json`` at the top, what ``final/`` holds now) and the run
    folder's ``final/`` itself work wherever the run folder does."""
    old = tmp_path / "tuned"
    shutil.copytree(workspace["model"] / "final", old)
    preds = []
    for model in (workspace["model"], old, workspace["model"] / "final"):
        out = tmp_path / f"p{len(preds)}.csv"
        proc = cli("predict", str(model), str(workspace["npz"]), "-o", str(out), "--no-progress")
        assert proc.returncode == 0, proc.stderr
        preds.append(out.read_text())
    assert preds[0] == preds[1] == preds[2]


def test_finetune_augment_is_recorded_and_refused_with_a_frozen_backbone(workspace, tmp_path):
    npz, out = str(workspace["npz"]), tmp_path / "aug"
    proc = cli(
        "finetune", npz, "-o", str(out), "--width", "8", "--layers", "1", "--epochs", "1",
        "--batch-size", "8", "--val-fraction", "0.34", "--no-progress", "--augment",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "config.json").read_text())["finetune"]["augment"] is True
    bad = tmp_path / "bad"
    proc = cli("finetune", npz, "-o", str(bad), "--mode", "linear", "--augment")
    assert_one_line_error(proc, "finetune", "augment needs mode='full'")
    assert not bad.exists()


def test_finetune_resume_continues_and_a_fresh_start_is_refused(workspace, tmp_path):
    npz, out = str(workspace["npz"]), tmp_path / "run"
    common = ("--width", "8", "--layers", "1", "--epochs", "3", "--batch-size", "8",
              "--val-fraction", "0.34", "--no-progress", "--keep-checkpoints", "3")  # fmt: skip
    proc = cli("finetune", npz, "-o", str(out), *common)
    assert proc.returncode == 0, proc.stderr
    ref = json.loads((out / "result.json").read_text())
    proc = cli("finetune", npz, "-o", str(out), *common)
    assert proc.returncode == 2 and "pass --resume to continue it or --force" in proc.stderr
    # as a run killed in epoch 3 leaves it: no final model, no result, checkpoints 1 and 2
    shutil.rmtree(out / "final")
    (out / "result.json").unlink()
    (out / "checkpoints" / "ckpt_00000003.pt").unlink()
    proc = cli("predict", str(out), npz, "-o", str(tmp_path / "p.csv"), "--no-progress")
    assert proc.returncode == 2 and "has not finished" in proc.stderr
    proc = cli("finetune", npz, "-o", str(out), *common, "--lr", "0.01", "--resume")
    assert proc.returncode == 2 and "its run had other config" in proc.stderr
    proc = cli("finetune", npz, "-o", str(out), *common, "--resume")
    assert proc.returncode == 0, proc.stderr
    again = json.loads((out / "result.json").read_text())
    assert again["history"] == ref["history"] and again["best_epoch"] == ref["best_epoch"]
    assert (out / "final" / "preprocess.json").is_file()
    proc = cli("finetune", npz, "-o", str(out), *common, "--folds", "2", "--resume")
    assert proc.returncode == 2 and "does not apply to --folds" in proc.stderr
    # the run's config.json is a --config file (its "resume" is not reused)
    other = tmp_path / "again"
    proc = cli("finetune", npz, "-o", str(other), "--config", str(out / "config.json"),
               "--width", "8", "--layers", "1", "--val-fraction", "0.34")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads((other / "result.json").read_text())["history"] == ref["history"]


def test_evaluate_predict_embed_info(workspace):
    model, npz, root = str(workspace["model"]), str(workspace["npz"]), workspace["root"]
    proc = cli("evaluate", model, npz, "-o", str(root / "m.json"), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((root / "m.json").read_text())["metrics"]
    assert metrics["n_samples"] == 24 and 0.0 <= metrics["balanced_accuracy"] <= 1.0
    assert "balanced_accuracy" in proc.stdout

    proc = cli("predict", model, npz, "-o", str(root / "p.csv"), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader((root / "p.csv").read_text().splitlines()))
    assert len(rows) == 24
    p = np.array([[float(r["p_left_hand"]), float(r["p_right_hand"])] for r in rows])
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
    assert {r["true"] for r in rows} == {"left_hand", "right_hand"}

    # predict straight from EEG files, with the preprocessing stored next to the model
    proc = cli("predict", model, str(workspace["edf"]), "-o", str(root / "p2.csv"), "--windows",
               "events", "--events", "left_hand,right_hand", "--no-progress")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows2 = list(csv.DictReader((root / "p2.csv").read_text().splitlines()))
    assert [r["p_left_hand"] for r in rows2] == [r["p_left_hand"] for r in rows]

    proc = cli("embed", model, npz, "-o", str(root / "e.npz"), "--pooling", "none")
    assert proc.returncode == 0, proc.stderr
    with np.load(root / "e.npz") as z:
        assert z["features"].shape == (24, 3, 2, 8) and z["labels"].shape == (24,)
    proc = cli("embed", model, npz, "-o", str(root / "e.npy"), "--pooling", "mean")
    assert proc.returncode == 0 and np.load(root / "e.npy").shape == (24, 8)

    proc = cli("info", model)
    assert proc.returncode == 0, proc.stderr
    assert "parameters" in proc.stdout and "FLOPs per window" in proc.stdout


def test_convert_upstream_checkpoint(tmp_path):
    import torch

    from codebrain import CodeBrain, to_upstream_state_dict

    arch = dict(res_channels=8, skip_channels=8, out_channels=8, num_res_layers=1)
    ref = CodeBrain(n_outputs=4, n_chans=19, n_times=400, **arch)
    sd = {
        k: v for k, v in to_upstream_state_dict(ref.state_dict()).items() if "final_layer" not in k
    }
    torch.save(sd, tmp_path / "CodeBrain.pth")
    flags = ["--n-times", "400", "--res-channels", "8", "--skip-channels", "8",
             "--out-channels", "8", "--num-res-layers", "1"]  # fmt: skip
    proc = cli("convert", str(tmp_path / "CodeBrain.pth"), str(tmp_path / "out"), *flags)
    assert proc.returncode == 0, proc.stderr
    loaded = CodeBrain.from_pretrained(tmp_path / "out")
    for k, v in ref.state_dict().items():
        if not k.startswith("final_layer."):
            assert torch.equal(loaded.state_dict()[k], v), k
    # a checkpoint of another architecture: one-line error, no output folder
    proc = cli(
        "convert", str(tmp_path / "CodeBrain.pth"), str(tmp_path / "bad"), "--n-times", "400"
    )
    assert_one_line_error(proc, "convert", "does not fit")
    assert not (tmp_path / "bad").exists()


def test_bad_inputs_fail_with_one_line_and_leave_nothing(workspace, tmp_path):
    out = tmp_path / "w.npz"
    proc = cli("prepare", str(tmp_path / "missing.edf"), "-o", str(out))
    assert_one_line_error(proc, "prepare", "does not exist")

    (tmp_path / "empty").mkdir()
    proc = cli("prepare", str(tmp_path / "empty"), "-o", str(out))
    assert_one_line_error(proc, "prepare", "No EEG recordings")

    proc = cli("prepare", str(workspace["edf"]), "-o", str(out), "--channels", "C3,XYZ9")
    assert_one_line_error(proc, "prepare", "Missing channels ['XYZ9']")

    one = tmp_path / "one.npz"
    proc = cli("prepare", str(workspace["edf"]), "-o", str(one), "--channels", CHANNELS,
               "--window-seconds", "2", "--windows", "events", "--events", "left_hand")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    proc = cli("finetune", str(one), "-o", str(tmp_path / "m"), "--width", "8", "--layers", "1")
    assert_one_line_error(proc, "finetune", "single class")
    assert not (tmp_path / "m").exists()

    proc = cli("evaluate", str(tmp_path / "nomodel"), str(workspace["npz"]))
    assert_one_line_error(proc, "evaluate", "not found")
    proc = cli("predict", str(workspace["model"]), str(tmp_path / "nope.npz"), "-o",
               str(tmp_path / "p.csv"))  # fmt: skip
    assert_one_line_error(proc, "predict", "does not exist")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    proc = cli("embed", str(workspace["model"]), str(tmp_path / "junk.npz"), "-o",
               str(tmp_path / "e.npy"))  # fmt: skip
    assert_one_line_error(proc, "embed", "not a readable windows .npz")
    proc = cli("prepare", str(workspace["edf"]), "-o", str(workspace["npz"]))
    assert_one_line_error(proc, "prepare", "--force")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "junk.npz", "one.npz"]


def test_prepare_corpus_and_cross_validation(workspace, tmp_path):
    corpus = tmp_path / "corpus"
    proc = cli("prepare", str(workspace["edf"]), "--corpus", str(corpus), "--channels", CHANNELS,
               "--window-seconds", "10")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "3 processed" in proc.stdout and (corpus / "manifest.json").is_file()

    out = tmp_path / "cv"
    proc = cli("finetune", str(workspace["npz"]), "-o", str(out), "--folds", "3", "--width", "8",
               "--layers", "1", "--epochs", "1", "--val-fraction", "0", "--no-progress")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    cv = json.loads((out / "cv.json").read_text())["cv"]
    assert len(cv["folds"]) == 3
    held_out = [g for fold in cv["folds"] for g in fold["test_groups"]]
    assert sorted(held_out) == ["01", "02", "03"]  # every subject tested exactly once
    assert 0.0 <= cv["mean"]["balanced_accuracy"] <= 1.0
