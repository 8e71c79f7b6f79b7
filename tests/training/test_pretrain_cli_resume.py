"""``codebrain pretrain --seed 0`` killed with SIGKILL and rerun with ``--resume`` ends with the
weights of an uninterrupted run, on the default path (a fresh backbone, no ``--init``; issue 14).

The killed run is a real process (the CLI's ``main``) whose step callback blocks after the
step-4 checkpoint; the uninterrupted and the resumed runs call ``main`` in-process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import codebrain.data as data
from _fixtures import make_tiny_backbone_tokenizer as tiny_tokenizer
from codebrain.cli import main

SRC = str(Path(__file__).resolve().parents[2] / "src")
KILL_AT = 5  # the newest checkpoint is step 4 when the child is killed
pytestmark = pytest.mark.slow

CHILD = textwrap.dedent(
    """
    import importlib, sys, time
    from pathlib import Path
    module = importlib.import_module("codebrain.training.pretrain")  # not the re-exported function
    from codebrain.cli import main

    out, ready = Path({out!r}), Path({ready!r})
    original = module.pretrain

    def hang(step, info):
        if step == {kill_at}:
            ready.write_text(str(step))
            time.sleep(600)

    def hooked(*args, **kwargs):
        return original(*args, step_callback=hang, **kwargs)

    module.pretrain = hooked
    sys.exit(main({argv!r}))
    """
)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("pretrain_resume")
    edfs = data.write_synthetic_dataset(root / "edf", n_subjects=1, n_trials=4, seed=0)
    corpus = root / "corpus"
    data.build_corpus(edfs, corpus, data.PreprocessConfig(window_seconds=2.0), verbose="error")
    tiny_tokenizer(n_chans=19, n_patches=2).save_pretrained(root / "tok")
    return corpus, root / "tok"


def _argv(corpus: Path, tok: Path, out: Path) -> list[str]:
    return ["-q", "pretrain", "--corpus", str(corpus), "--tokenizer", str(tok), "--out", str(out),
            "--seed", "0", "--steps", "6", "--batch-size", "4", "--checkpoint-every", "2",
            "--val-fraction", "0", "--res-channels", "8", "--skip-channels", "8",
            "--out-channels", "8", "--num-res-layers", "1", "--no-progress"]  # fmt: skip


def _final(out: Path) -> dict[str, torch.Tensor]:
    return load_file(out / "final" / "model.safetensors")


def _kill_after_a_checkpoint(argv: list[str], out: Path, ready: Path) -> None:
    code = CHILD.format(out=str(out), ready=str(ready), kill_at=KILL_AT, argv=argv)
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"child did not reach step {KILL_AT}: {proc.stderr.read()[-3000:]!r}")
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


def test_killed_cli_run_resumes_to_the_uninterrupted_weights(tmp_path, inputs):
    corpus, tok = inputs
    assert main(_argv(corpus, tok, tmp_path / "straight")) == 0
    out = tmp_path / "killed"
    _kill_after_a_checkpoint(_argv(corpus, tok, out), out, tmp_path / "ready")
    assert not (out / "final").exists()
    assert sorted(p.name for p in (out / "checkpoints").glob("ckpt_*.pt"))[-1] == (
        "ckpt_00000004.pt"
    )
    assert main([*_argv(corpus, tok, out), "--resume"]) == 0
    straight, resumed = _final(tmp_path / "straight"), _final(out)
    assert straight.keys() == resumed.keys()
    for name in straight:
        assert torch.equal(resumed[name], straight[name]), name


def test_the_kill_test_can_fail(tmp_path, inputs):
    """Another seed gives other weights, so the equality above is not vacuous."""
    corpus, tok = inputs
    assert main(_argv(corpus, tok, tmp_path / "s0")) == 0
    argv = _argv(corpus, tok, tmp_path / "s1")
    argv[argv.index("--seed") + 1] = "1"
    assert main(argv) == 0
    a, b = _final(tmp_path / "s0"), _final(tmp_path / "s1")
    assert any(not torch.equal(a[k], b[k]) for k in a if a[k].is_floating_point())
