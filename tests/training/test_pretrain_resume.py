"""A pretraining run killed with SIGKILL and resumed ends with the same weights as an
uninterrupted run (model, optimizer, scheduler, RNG and data position are all restored)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from _pretrain_helpers import _FixedTargetTokenizer, params_of

from _fixtures import make_tiny_backbone, sine_windows
from codebrain.training.checkpointing import list_checkpoints
from codebrain.training.pretrain import PretrainConfig, pretrain

HERE = Path(__file__).parent
# 8 steps over 2 epochs (5 steps per epoch), dropout on: the resume must restore RNG states,
# the sampler's epoch and its position inside the epoch.
CFG = dict(
    steps=8,
    batch_size=4,
    lr=3e-3,
    warmup_steps=2,
    log_every=1,
    checkpoint_every=2,
    keep_checkpoints=2,
    progress=False,
    seed=11,
)
N_WINDOWS = 20
KILL_AT = 7  # the callback of step 7 blocks; the newest checkpoint is step 6 (mid-epoch 1)

CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import torch
    sys.path[:0] = [{here!r}, {root!r}]  # _pretrain_helpers, _fixtures
    from _fixtures import make_tiny_backbone, sine_windows
    from _pretrain_helpers import _FixedTargetTokenizer
    from codebrain.training.pretrain import PretrainConfig, pretrain

    torch.set_num_threads({threads})
    out = Path({out!r})

    def hang(step, info):
        if step == {kill_at}:
            (out / "ready").write_text(str(step))
            time.sleep(600)

    pretrain(make_tiny_backbone(seed=0, dropout=True), _FixedTargetTokenizer(),
             sine_windows({n}), None, PretrainConfig(**{cfg!r}), out, step_callback=hang)
    """
)


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _run(out: Path, **overrides) -> tuple[dict, object]:
    model = make_tiny_backbone(seed=0, dropout=True)
    result = pretrain(
        model,
        _FixedTargetTokenizer(),
        sine_windows(N_WINDOWS),
        None,
        PretrainConfig(**{**CFG, **overrides}),
        out,
    )
    return params_of(model), result


def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    out = tmp_path / "killed"
    out.mkdir()
    code = CHILD.format(
        here=str(HERE),
        root=str(HERE.parent),
        threads=torch.get_num_threads(),
        out=str(out),
        kill_at=KILL_AT,
        n=N_WINDOWS,
        cfg=CFG,
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (out / "ready").exists():
            if proc.poll() is not None:
                pytest.fail(f"child exited early: {proc.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("child did not reach the kill point in time")
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert [s for s, _ in list_checkpoints(out / "checkpoints")] == [4, 6]
    assert not (out / "final").exists()
    rows_before = _rows(out / "metrics.csv")
    assert int(rows_before[-1]["step"]) == KILL_AT  # logged after the last checkpoint

    resumed_weights, resumed = _run(out, resume="auto")
    assert resumed.resumed_from is not None and resumed.resumed_from.endswith("ckpt_00000006.pt")
    assert resumed.step == CFG["steps"]

    reference_weights, reference = _run(tmp_path / "reference")
    assert reference.resumed_from is None
    diff = max(
        float((resumed_weights[k].double() - reference_weights[k].double()).abs().max())
        for k in reference_weights
    )
    assert (
        max(  # the run did train (weights moved from their initial values)
            float((resumed_weights[k].double() - v.double()).abs().max())
            for k, v in params_of(make_tiny_backbone(seed=0, dropout=True)).items()
        )
        > 1e-3
    )
    assert diff < 1e-6, diff

    # The metric log of the resumed run has no duplicated or lost steps.
    steps = [int(r["step"]) for r in _rows(out / "metrics.csv")]
    assert steps == list(range(1, CFG["steps"] + 1))
    assert (out / "final" / "model.safetensors").exists()


def test_resume_is_not_vacuous(tmp_path):
    """Losing the RNG state changes the result (so the test above can fail)."""
    _, _ = _run(tmp_path / "a", steps=4, checkpoint_every=2)
    ckpt = torch.load(tmp_path / "a" / "checkpoints" / "ckpt_00000002.pt", weights_only=False)
    # Same checkpoint, but pretend the RNG was never saved: continue from a different stream.
    ckpt["rng"][0]["torch"] = torch.manual_seed(999).get_state()
    (tmp_path / "b" / "checkpoints").mkdir(parents=True)
    torch.save(ckpt, tmp_path / "b" / "checkpoints" / "ckpt_00000002.pt")
    good, _ = _run(tmp_path / "a", steps=4, resume=str(tmp_path / "a/checkpoints/ckpt_00000002.pt"))
    bad, _ = _run(tmp_path / "b", steps=4, resume="auto")
    assert max(float((good[k].double() - bad[k].double()).abs().max()) for k in good) > 1e-6


def test_fresh_run_refuses_existing_checkpoints(tmp_path):
    _run(tmp_path / "r", steps=2, checkpoint_every=2)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        _run(tmp_path / "r", steps=2)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _run(tmp_path / "r", steps=2, resume=str(tmp_path / "nope.pt"))


def test_a_group_relaunched_by_torchrun_resumes_by_itself(tmp_path, monkeypatch, caplog):
    """``TORCHELASTIC_RESTART_COUNT > 0`` (torchrun's relaunch) turns ``resume=None`` into auto."""
    straight, _ = _run(tmp_path / "straight", steps=4, schedule_steps=4)
    _run(tmp_path / "r", steps=2, schedule_steps=4)  # "killed" after its step-2 checkpoint
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    with caplog.at_level("WARNING", logger="codebrain.training"):
        relaunched, result = _run(tmp_path / "r", steps=4, schedule_steps=4)
    assert "torchrun relaunched the group (restart 1)" in caplog.text
    assert result.resumed_from.endswith("ckpt_00000002.pt")
    assert all(torch.equal(relaunched[k], straight[k]) for k in straight)
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "one")
    with pytest.raises(ValueError, match="TORCHELASTIC_RESTART_COUNT='one': expected a whole"):
        _run(tmp_path / "r", steps=4)


def test_resume_over_a_different_dataset_warns(tmp_path, caplog):
    _run(tmp_path / "r", steps=2, checkpoint_every=2)
    cfg = PretrainConfig(**{**CFG, "steps": 4, "resume": "auto"})
    with caplog.at_level("WARNING", logger="codebrain.training"):
        pretrain(
            make_tiny_backbone(seed=0), _FixedTargetTokenizer(), sine_windows(N_WINDOWS), None, cfg,
            tmp_path / "r",
        )  # fmt: skip
        assert "checkpoint was written over" not in caplog.text  # same data: silent
        cfg = PretrainConfig(**{**CFG, "steps": 6, "resume": "auto"})
        pretrain(
            make_tiny_backbone(seed=0), _FixedTargetTokenizer(), sine_windows(N_WINDOWS + 4), None,
            cfg, tmp_path / "r",
        )  # fmt: skip
    assert f"dataset of {N_WINDOWS + 4} windows, but the checkpoint was written over" in caplog.text


def test_resume_over_a_shrunk_dataset_starts_the_next_epoch(tmp_path, caplog):
    """4 steps of batch 4 into an epoch of 20 windows, resumed over 8 windows (2 steps per
    epoch): the run goes on from the next epoch instead of failing."""
    _run(tmp_path / "r", steps=4, checkpoint_every=4)
    cfg = PretrainConfig(**{**CFG, "steps": 6, "resume": "auto"})
    with caplog.at_level("WARNING", logger="codebrain.training"):
        result = pretrain(
            make_tiny_backbone(seed=0), _FixedTargetTokenizer(), sine_windows(8), None, cfg,
            tmp_path / "r",
        )  # fmt: skip
    assert result.step == 6
    assert "resuming at the start of epoch 1" in caplog.text
