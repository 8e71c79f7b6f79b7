"""Pretraining under real ``torchrun``: two nodes on this machine, and a rank killed mid-run.

* ``--nnodes 2`` (one process each, c10d rendezvous on 127.0.0.1, gloo) ends with the same
  weights as one process with the same global batch;
* ``kill -9`` of one worker under ``--max-restarts 1``: the group is relaunched, resumes from
  the newest checkpoint by itself (no ``resume`` given) and ends with exactly the weights of an
  uninterrupted run;
* without restarts the surviving rank is stopped promptly and torchrun exits non-zero.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from _pretrain_helpers import free_port

WORKER = str(Path(__file__).resolve().parent / "_torchrun_worker.py")
SRC = str(Path(__file__).resolve().parents[2] / "src")
STEPS = 16
pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    return dict(
        os.environ,
        PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
        OMP_NUM_THREADS="1",
        TORCHELASTIC_ERROR_FILE="",
    )


def _torchrun(*flags: str, out: Path, batch: int, ckpt_every: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", *flags, WORKER, str(out),
         str(STEPS), str(batch), str(ckpt_every)],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _single(out: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, WORKER, str(out), str(STEPS), "4", "0"],
        env=_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return torch.load(out / "weights.pt", weights_only=True)


def _max_diff(a: dict, b: dict) -> float:
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].numel())


def test_two_torchrun_nodes_match_one_process(tmp_path):
    reference = _single(tmp_path / "single")
    port = free_port()
    out = tmp_path / "two_nodes"
    common = ("--nnodes", "2", "--nproc_per_node", "1", "--rdzv_backend", "c10d",
              "--rdzv_endpoint", f"127.0.0.1:{port}", "--rdzv_id", "hardening")  # fmt: skip
    nodes = [
        _torchrun(*common, "--node_rank", str(i), out=out, batch=2, ckpt_every=0) for i in range(2)
    ]
    for node in nodes:
        text, _ = node.communicate(timeout=180)
        assert node.returncode == 0, text[-3000:]
    assert _max_diff(torch.load(out / "weights.pt", weights_only=True), reference) <= 1e-5


def _standalone(out: Path, max_restarts: int, ckpt_every: int) -> subprocess.Popen:
    return _torchrun(
        "--standalone", "--nproc-per-node", "2", "--max-restarts", str(max_restarts),
        "--monitor-interval", "0.2", out=out, batch=2, ckpt_every=ckpt_every,
    )  # fmt: skip


def _finish(agent: subprocess.Popen, timeout: float) -> str:
    try:
        return agent.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        agent.kill()
        pytest.fail(f"torchrun still running after {timeout} s: {agent.communicate()[0][-3000:]}")


def _workers(agent_pid: int) -> list[int]:
    """The worker processes torchrun started (its children running the worker script)."""
    children = Path(f"/proc/{agent_pid}/task/{agent_pid}/children")
    pids = [int(p) for p in children.read_text().split()] if children.exists() else []
    return [p for p in pids if WORKER in Path(f"/proc/{p}/cmdline").read_text(errors="replace")]


def _kill_a_worker_after_first_checkpoint(agent: subprocess.Popen, ckpt_dir: Path) -> None:
    deadline = time.monotonic() + 150
    while not any(ckpt_dir.glob("ckpt_*.pt")):
        if agent.poll() is not None or time.monotonic() > deadline:
            agent.kill()
            pytest.fail(f"no checkpoint before the kill: {agent.communicate()[0][-3000:]}")
        time.sleep(0.05)
    workers = _workers(agent.pid)
    assert len(workers) == 2, f"torchrun's workers: {workers}"
    os.kill(workers[-1], signal.SIGKILL)


def test_killed_rank_restarts_and_resumes_to_the_same_weights(tmp_path):
    uninterrupted = _standalone(tmp_path / "uninterrupted", max_restarts=0, ckpt_every=2)
    text = _finish(uninterrupted, 180)
    assert uninterrupted.returncode == 0, text[-3000:]
    out = tmp_path / "restarted"
    agent = _standalone(out, max_restarts=1, ckpt_every=2)
    _kill_a_worker_after_first_checkpoint(agent, out / "checkpoints")
    text = _finish(agent, 180)
    assert agent.returncode == 0, text[-3000:]
    assert "torchrun relaunched the group (restart 1)" in text, text[-3000:]
    reference = torch.load(tmp_path / "uninterrupted" / "weights.pt", weights_only=True)
    resumed = torch.load(out / "weights.pt", weights_only=True)
    assert resumed.keys() == reference.keys()
    for name in reference:
        assert torch.equal(resumed[name], reference[name]), name


def test_killed_rank_without_restarts_stops_the_group_promptly(tmp_path):
    out = tmp_path / "killed"
    agent = _standalone(out, max_restarts=0, ckpt_every=1)
    _kill_a_worker_after_first_checkpoint(agent, out / "checkpoints")
    t0 = time.monotonic()
    text = _finish(agent, 120)
    assert time.monotonic() - t0 < 60, "the surviving rank hung"
    assert agent.returncode != 0
    assert "SIGKILL" in text or "Signal 9" in text, text[-3000:]
    assert not (out / "weights.pt").exists()
