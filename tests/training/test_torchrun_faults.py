"""Pretraining under real ``torchrun``: two nodes on this machine.

``--nnodes 2`` (one process each, c10d rendezvous on 127.0.0.1, gloo) ends with the same
weights as one process with the same global batch.
"""

from __future__ import annotations

import os
import subprocess
import sys
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
