"""Replays of issue 14's hostile/careless cases (CLI outputs, messages, model inputs, temporaries).

Bad inputs are generated on the fly; commands run in-process through ``codebrain.cli.main``.
Each case failed before its fix (data destroyed, a traceback, or a silent NaN).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from _fixtures import make_tiny_classifier, make_tiny_tokenizer
from codebrain import CodeBrain
from codebrain.cli import main


def _tiny_model() -> CodeBrain:
    """The shared tiny 2-class CodeBrain with one residual layer (seeded; compiles quickly)."""
    return make_tiny_classifier(seed=0, num_res_layers=1)


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    """Exit code and the stderr of one in-process run."""
    try:
        code = main(["-q", *argv])
    except SystemExit as exc:  # argparse rejects a flag value
        code = exc.code
    return code, capsys.readouterr().err


def one_line_error(err: str, command: str, *needles: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("usage:")]
    assert len(lines) == 1, err
    assert f"codebrain {command}: error" in lines[0], err
    for needle in needles:
        assert needle in lines[0], lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> dict[str, Path]:
    """A tiny model folder and a matching windows .npz."""
    from codebrain.data.windows import WindowDataset, save_windows_npz

    root = tmp_path_factory.mktemp("hardening")
    model = _tiny_model()
    model.save_pretrained(root / "model")
    rng = np.random.default_rng(0)
    ds = WindowDataset(
        rng.standard_normal((6, 3, 400)).astype(np.float32),
        np.array([0, 1, 0, 1, 0, 1]),
        [f"r{i // 2}" for i in range(6)],
        [f"s{i // 2}" for i in range(6)],
        np.zeros(6),
        ["C3", "C4", "CZ"],
        200.0,
        classes=["a", "b"],
    )
    save_windows_npz(ds, root / "w.npz")
    return {"root": root, "model": root / "model", "npz": root / "w.npz"}


# ------------------------------------------------------------------ outputs never destroy data


def test_tokenizer_report_refuses_a_corpus_input_and_foreign_folders(tmp_path, capsys):
    tok = tmp_path / "tok"
    tok.mkdir()
    corpus = tmp_path / "corpus"
    (corpus / "shards").mkdir(parents=True)
    (corpus / "manifest.json").write_text("{}")
    (corpus / "shards" / "0.npy").write_bytes(b"x")
    before = snapshot(corpus)
    for force in ([], ["--force"]):  # the input itself: refused even with --force
        code, err = run_cli(
            capsys, "tokenizer-report", "--tokenizer", str(tok), "--corpus", str(corpus),
            "--out", str(corpus), *force,
        )  # fmt: skip
        assert code == 2
        one_line_error(err, "tokenizer-report", "input")
    other = tmp_path / "other_corpus"
    other.mkdir()
    (other / "manifest.json").write_text("{}")
    run = tmp_path / "tokrun"
    (run / "checkpoints").mkdir(parents=True)
    (run / "tokenizer").mkdir()
    (run / "train_config.json").write_text("{}")
    for target, kind in ((other, "corpus"), (run, "tokenizer-train run")):
        kept = snapshot(target)
        code, err = run_cli(
            capsys, "tokenizer-report", "--tokenizer", str(tok), "--corpus", str(corpus),
            "--out", str(target),
        )  # fmt: skip
        assert code == 2
        one_line_error(err, "tokenizer-report", kind, "--force")
        assert snapshot(target) == kept
    assert snapshot(corpus) == before


@pytest.mark.parametrize(
    ("command", "out", "needle"),
    [
        ("predict", "w.npz", ".csv"),
        ("embed", "w.npz", "input"),
        ("evaluate", "w.npz", ".json"),
    ],
)
def test_output_equal_to_the_windows_input_is_refused(work, capsys, command, out, needle):
    before = work["npz"].read_bytes()
    out_path = work["npz"] if out == "w.npz" else work["root"] / out
    code, err = run_cli(
        capsys, command, str(work["model"]), str(work["npz"]), "-o", str(out_path), "--force"
    )
    assert code == 2
    one_line_error(err, command, needle)
    assert work["npz"].read_bytes() == before


def test_predict_into_its_own_csv_labels_input_is_refused(work, tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text("recording,onset,duration,label\n")
    code, err = run_cli(
        capsys, "predict", str(work["model"]), str(work["npz"]), "--labels", str(labels),
        "-o", str(labels), "--force",
    )  # fmt: skip
    assert code == 2
    one_line_error(err, "predict", "is the input")
    assert labels.read_text() == "recording,onset,duration,label\n"


def test_finetune_into_the_folder_holding_its_input_is_refused(work, tmp_path, capsys):
    folder = tmp_path / "work"
    folder.mkdir()
    win = folder / "win.npz"
    win.write_bytes(work["npz"].read_bytes())
    (folder / "notes.txt").write_text("mine")
    before = snapshot(folder)
    code, err = run_cli(capsys, "finetune", str(win), "-o", str(folder), "--force")
    assert code == 2
    one_line_error(err, "finetune", "contains the input")
    assert snapshot(folder) == before


def test_existing_file_as_folder_output_is_refused_before_any_move(work, tmp_path, capsys):
    afile = tmp_path / "afile"
    ckpt = tmp_path / "ckpt.pth"
    torch.save(_tiny_model().state_dict(), ckpt)
    tok = tmp_path / "tok"
    tok.mkdir()
    cases = [
        ("convert", [str(ckpt), str(afile), "--force"]),
        ("finetune", [str(work["npz"]), "-o", str(afile), "--force"]),
        ("tokenizer-report", ["--tokenizer", str(tok), "--corpus", str(tmp_path),
                              "--out", str(afile), "--force"]),
    ]  # fmt: skip
    for command, argv in cases:
        afile.write_text("precious")
        code, err = run_cli(capsys, command, *argv)
        assert code == 2
        one_line_error(err, command, "existing file")
        assert afile.read_text() == "precious"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "ckpt.pth", "tok"]


def test_folder_named_like_a_file_and_a_file_parent_fail_before_work(work, tmp_path, capsys):
    (tmp_path / "existing_dir.npz").mkdir()
    (tmp_path / "plain").write_text("x")
    for command, out, needle in (
        ("embed", tmp_path / "existing_dir.npz", "existing folder"),
        ("predict", tmp_path / "plain" / "p.csv", "is a file"),
    ):
        t0 = time.perf_counter()
        code, err = run_cli(
            capsys, command, str(work["model"]), str(work["npz"]), "-o", str(out), "--force"
        )
        assert code == 2
        one_line_error(err, command, needle)
        assert time.perf_counter() - t0 < 5  # no model run first


# --------------------------------------------------------------------------------- messages


def test_convert_of_a_model_folder_says_what_it_is(work, tmp_path, capsys):
    code, err = run_cli(capsys, "convert", str(work["model"]), str(tmp_path / "o"))
    assert code == 2
    one_line_error(err, "convert", "model folder", "not a checkpoint file")


@pytest.mark.parametrize("size", [0, 100])
@pytest.mark.parametrize("command", ["evaluate", "convert", "tokenizer-report"])
def test_truncated_weights_are_named_by_every_command(work, tmp_path, capsys, command, size):
    """An empty or truncated ``model.safetensors``: one line naming the file, no traceback."""
    import shutil

    folder = tmp_path / "m"
    if command == "tokenizer-report":
        make_tiny_tokenizer(seed=0).save_pretrained(folder)
    else:
        shutil.copytree(work["model"], folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:size])
    argv = {
        "evaluate": [str(folder), str(work["npz"])],
        "convert": [str(weights), str(tmp_path / "o")],
        "tokenizer-report": ["--tokenizer", str(folder), "--corpus", str(tmp_path),
                             "--out", str(tmp_path / "o")],
    }[command]  # fmt: skip
    code, err = run_cli(capsys, command, *argv)
    assert code == 2
    one_line_error(err, command, "model.safetensors")
    assert "Traceback" not in err


def test_run_folders_of_the_other_stage_are_named(tmp_path, capsys):
    tok_run = tmp_path / "tokrun"
    (tok_run / "checkpoints").mkdir(parents=True)
    (tok_run / "train_config.json").write_text("{}")
    pt_run = tmp_path / "ptrun"
    (pt_run / "checkpoints").mkdir(parents=True)
    (pt_run / "config.json").write_text(json.dumps({"pretrain": {}}))
    code, err = run_cli(
        capsys, "pretrain", "--corpus", str(tmp_path / "c"), "--tokenizer", str(tmp_path / "t"),
        "--out", str(tok_run), "--resume",
    )  # fmt: skip
    assert code == 2
    one_line_error(err, "pretrain", "tokenizer-train run folder", "not a pretrain run")
    code, err = run_cli(
        capsys, "tokenizer-train", "--corpus", str(tmp_path / "c"), "--out", str(pt_run)
    )
    assert code == 2
    one_line_error(err, "tokenizer-train", "pretrain run folder", "not a tokenizer-train run")


@pytest.mark.parametrize(
    "command",
    [
        ["pretrain", "--corpus", "c", "--tokenizer", "t"],
        ["pretrain", "--corpus", "c", "--tokenizer", "t", "--resume"],
        ["tokenizer-train", "--corpus", "c"],
        ["finetune", "data.npz", "--resume"],
    ],
    ids=["pretrain", "pretrain-resume", "tokenizer-train", "finetune-resume"],
)
def test_a_run_never_replaces_a_users_file_of_a_name_it_writes(tmp_path, capsys, command):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.json").write_text('{"my": "settings"}')  # not a codebrain run's config
    (mine / "notes.txt").write_text("my notes")
    before = snapshot(mine)
    args = [str(tmp_path / a) if a in ("c", "t", "data.npz") else a for a in command]
    code, err = run_cli(capsys, *args, "--out", str(mine))
    assert code == 2
    one_line_error(err, command[0], "'config.json'", "no codebrain command wrote", "replace")
    assert snapshot(mine) == before
    # other files stay beside the run: a log the shell opened there, copied checkpoints
    logged = tmp_path / "logged"
    (logged / "checkpoints").mkdir(parents=True)
    (logged / "train.log").write_text("")
    code, err = run_cli(capsys, *args, "--out", str(logged))
    assert "no codebrain command wrote" not in err


def test_pretrain_over_checkpoints_names_the_resume_flag(tmp_path, capsys):
    from codebrain.training.checkpointing import save_checkpoint

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"pretrain": {}}))
    model = _tiny_model()
    save_checkpoint(run / "checkpoints" / "ckpt_00000001.pt", model=model, extra={"step": 1})
    code, err = run_cli(
        capsys, "pretrain", "--corpus", str(tmp_path / "c"), "--tokenizer", str(tmp_path / "t"),
        "--out", str(run),
    )  # fmt: skip
    assert code == 2
    one_line_error(err, "pretrain", "--resume")
    assert "resume=" not in err


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--window-seconds", "inf"), ("--notch", "0"), ("--sfreq", "nan"), ("--stride-seconds", "-1"),
     ("--sfreq", "1e9"), ("--window-seconds", "1e9")],
)  # fmt: skip
def test_prepare_refuses_non_finite_or_zero_settings(tmp_path, capsys, flag, value):
    code, err = run_cli(
        capsys, "prepare", str(tmp_path), "-o", str(tmp_path / "o.npz"), flag, value
    )
    assert code == 2
    assert flag in err and "Error" not in err


def test_bench_threads_zero(capsys):
    code, err = run_cli(capsys, "bench", "--threads", "0")
    assert code == 2
    one_line_error(err, "bench", "--threads")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a CPU-only torch")
@pytest.mark.parametrize("command", ["predict", "evaluate", "embed"])
def test_device_cuda_without_cuda_says_so(work, tmp_path, capsys, command):
    code, err = run_cli(
        capsys, command, str(work["model"]), str(work["npz"]), "-o",
        str(tmp_path / {"predict": "p.csv", "evaluate": "e.json", "embed": "e.npz"}[command]),
        "--device", "cuda",
    )  # fmt: skip
    assert code == 2
    one_line_error(err, command, "--device", "CUDA")


def test_resolve_device_messages():
    from codebrain.utils.device import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="not a device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            resolve_device("cuda:0")


# ---------------------------------------------------------------------------- NaN weights


@pytest.fixture
def nan_model(work, tmp_path) -> Path:
    model = _tiny_model()
    with torch.no_grad():
        model.final_layer[-1].weight.fill_(float("nan"))
    model.save_pretrained(tmp_path / "nan_model")
    return tmp_path / "nan_model"


@pytest.mark.parametrize("command", ["evaluate", "predict", "embed"])
def test_nan_weights_are_named_not_blamed_on_the_input(work, nan_model, tmp_path, capsys, command):
    out = tmp_path / {"predict": "p.csv", "evaluate": "e.json", "embed": "e.npz"}[command]
    code, err = run_cli(capsys, command, str(nan_model), str(work["npz"]), "-o", str(out))
    assert code == 2
    one_line_error(err, command, str(nan_model), "NaN/Inf weights")
    assert "Input contains NaN" not in err
    assert not out.exists()


# ------------------------------------------------------------------------------ model API


def test_model_api_bad_tensors():
    model = _tiny_model().eval()
    x = torch.randn(2, 3, 400)
    with pytest.raises(ValueError, match="batch size 0"):
        model(x[:0])
    for dtype in (torch.float64, torch.float16, torch.bfloat16):
        with pytest.raises(TypeError, match=f"{dtype}.*float32"):
            model(x.to(dtype))
        with pytest.raises(TypeError, match="float32"):
            model.encode(x.to(dtype))
    with pytest.raises(ValueError, match=r"largest \|value\| .*e\+30"):
        model(x * 1e30)
    with pytest.raises(ValueError, match="NaN/Inf"):
        model.encode(-x * 1e30)
    with torch.no_grad():
        model.final_layer[-1].bias.fill_(float("inf"))
    with pytest.raises(ValueError, match="final_layer"):
        model(x)
    assert torch.isfinite(model.encode(x)).all()  # the backbone is fine


def test_output_check_keeps_the_model_compilable():
    model = _tiny_model().eval()
    x = torch.randn(2, 3, 400)
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x))


# ---------------------------------------------------------------- temporaries, permissions

_WRITER = """
import sys, time
from codebrain.utils.io import atomic_replace_dir
with atomic_replace_dir(sys.argv[1]) as tmp:
    (tmp / "partial").write_text("x")
    print(tmp, flush=True)
    time.sleep(60)
"""


def test_temporaries_of_a_killed_writer_are_removed_by_the_next_one(tmp_path):
    from codebrain.utils.io import atomic_replace_dir

    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(out)], stdout=subprocess.PIPE, text=True, env=env
    )
    tmp = Path(proc.stdout.readline().strip())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    assert tmp.is_dir()  # left behind by kill -9
    foreign = tmp_path / ".out.someone-else.tmp"  # not ours: never touched
    foreign.mkdir()
    with atomic_replace_dir(out) as new:
        (new / "done").write_text("ok")
    assert not tmp.exists()
    assert foreign.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.someone-else.tmp", "out"]


def test_model_safetensors_gets_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        _tiny_model().save_pretrained(tmp_path / "m")
    finally:
        os.umask(old)
    for name in ("model.safetensors", "config.json"):
        assert (tmp_path / "m" / name).stat().st_mode & 0o777 == 0o644
