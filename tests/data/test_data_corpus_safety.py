"""Corpus builds under concurrency, interruption and empty inputs; too-short and 0-signal files."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from _cli_helpers import run_cli
from codebrain.data import (
    CorpusDataset,
    CorpusError,
    CorpusLockedError,
    PreprocessConfig,
    RecordingError,
    build_corpus,
    load_windows,
    read_raw,
)
from codebrain.data import store as store_module

CONFIG = PreprocessConfig(window_seconds=10.0)
ROOT = Path(__file__).resolve().parents[2]


def _env(marker: str = "") -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    if marker:
        env["CODEBRAIN_TEST_MARKER"] = marker
    return env


def _copies(tmp_path: Path, edfs: list[Path], n: int) -> Path:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(n):
        shutil.copy(edfs[i % len(edfs)], folder / f"rec{i:03d}.edf")
    return folder


def _marked_pids(marker: str) -> list[int]:
    """Live (non-zombie) processes whose environment holds ``marker``."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker.encode() not in (proc / "environ").read_bytes():
                continue
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            pids.append(int(proc.name))
    return pids


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def _journal_lines(out: Path) -> int:
    try:
        return len((out / "journal.jsonl").read_text().splitlines())
    except FileNotFoundError:
        return 0


# The build runs as from a terminal: Ctrl-C raises KeyboardInterrupt even when the test itself
# was started in the background (a shell leaves SIGINT ignored there, and children inherit it).
_BUILD_SCRIPT = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
from codebrain.data import PreprocessConfig, build_corpus
build_corpus([sys.argv[2]], sys.argv[1], PreprocessConfig(window_seconds=10.0), n_jobs=2)
"""

_HOLD_SCRIPT = """
import os, signal, sys, time
from pathlib import Path
from codebrain.data import store
out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
with store._corpus_lock(out):
    print("locked", flush=True)
    if sys.argv[2] == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)
"""


# ------------------------------------------------------------------------------ locking
def test_second_build_fails_naming_the_holder(tmp_path: Path, synthetic_edfs: list[Path]) -> None:
    out = tmp_path / "corpus"
    out.mkdir()
    (out / "shards").mkdir()
    theirs = out / "shards" / ".rec-0123456789.npy.0123456789ab.tmp"
    theirs.write_bytes(b"another run is writing this")
    holder = rf"another run \(pid {os.getpid()} on host"
    with store_module._corpus_lock(out), pytest.raises(CorpusLockedError, match=holder):
        build_corpus(synthetic_edfs, out, CONFIG)
    assert theirs.read_bytes() == b"another run is writing this"  # never deleted
    assert not (out / "manifest.json").exists()
    build_corpus(synthetic_edfs[:1], out, CONFIG)  # lock released: builds (and cleans up)
    assert not theirs.exists()


def test_lock_held_by_another_process_and_released_by_its_death(
    tmp_path: Path, synthetic_edfs: list[Path]
) -> None:
    out = tmp_path / "corpus"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_SCRIPT, str(out), "hold"],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        proc = run_cli(
            "-q", "prepare", synthetic_edfs[0], "--corpus", out, "--window-seconds", "10"
        )
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert f"being built by another run (pid {holder.pid} on host" in lines[0]
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    crashed = subprocess.run(
        [sys.executable, "-c", _HOLD_SCRIPT, str(out), "crash"], env=_env(), timeout=60
    )
    assert crashed.returncode == -signal.SIGKILL
    summary = build_corpus(synthetic_edfs[:1], out, CONFIG)  # the kernel released both locks
    assert len(summary.processed) == 1


# --------------------------------------------------------------------- interruptions
def test_ctrl_c_stops_the_pool_promptly(tmp_path: Path, synthetic_edfs: list[Path]) -> None:
    folder = _copies(tmp_path, synthetic_edfs, 40)
    out = tmp_path / "corpus"
    marker = uuid.uuid4().hex
    proc = subprocess.Popen(
        [sys.executable, "-c", _BUILD_SCRIPT, str(out), str(folder)],
        stderr=subprocess.PIPE,
        env=_env(marker),
    )
    try:
        _wait_for(lambda: _journal_lines(out) >= 2)
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        _, err = proc.communicate(timeout=30)
        elapsed = time.monotonic() - sent
    finally:
        proc.kill()
        proc.wait()
    lines = _journal_lines(out)
    assert b"KeyboardInterrupt" in err, (
        f"exit {proc.returncode}, {lines} of 40 files journalled, stderr: {err.decode()!r}"
    )
    # prompt = well before the 40 queued files are done (the checks below); the bound leaves
    # room for a loaded 2-core CI machine, where 5 s was flaky
    assert elapsed < 15.0, elapsed
    assert _marked_pids(marker) == []  # no worker left behind
    manifest = json.loads((out / "manifest.json").read_text())
    listed = {e["shard"] for e in manifest["recordings"]}
    on_disk = {f"shards/{p.name}" for p in (out / "shards").glob("*.npy")}
    assert manifest["complete"] is False and 2 <= len(listed) < 40
    assert listed == on_disk  # every finished shard is listed
    with pytest.raises(CorpusError, match="incomplete"):
        CorpusDataset(out)
    summary = build_corpus(folder, out, CONFIG)  # resume: nothing redone
    assert len(summary.skipped_existing) == len(listed)
    assert len(summary.processed) == 40 - len(listed)
    assert len(CorpusDataset(out).recordings) == 40


def test_kill_9_leaves_no_worker_writing(tmp_path: Path, synthetic_edfs: list[Path]) -> None:
    if not Path("/proc/self/environ").exists():
        pytest.skip("needs /proc to find the workers")
    folder = _copies(tmp_path, synthetic_edfs, 40)
    out = tmp_path / "corpus"
    marker = uuid.uuid4().hex
    proc = subprocess.Popen(
        [sys.executable, "-c", _BUILD_SCRIPT, str(out), str(folder)],
        stderr=subprocess.DEVNULL,
        env=_env(marker),
    )
    try:
        _wait_for(lambda: _journal_lines(out) >= 1)
        proc.kill()
        proc.wait()
        _wait_for(lambda: _marked_pids(marker) == [], timeout=10.0)  # 3 s flaked under load
    finally:
        proc.kill()
    files = sorted(p.name for p in (out / "shards").iterdir())
    time.sleep(0.5)
    assert sorted(p.name for p in (out / "shards").iterdir()) == files
    assert _journal_lines(out) < 40
    assert len(CorpusDataset(out, allow_incomplete=True).recordings) == _journal_lines(out)


# ---------------------------------------------------------------------- empty inputs
def test_empty_inputs_write_nothing(tmp_path: Path, synthetic_edfs: list[Path]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "corpus"
    with pytest.raises(CorpusError, match="No EEG recordings found"):
        build_corpus(empty, out, CONFIG)
    with pytest.raises(CorpusError, match="No EEG recordings found"):
        build_corpus([], out, CONFIG)
    assert not out.exists()
    too_long = PreprocessConfig(window_seconds=120.0)  # every recording is about 60 s
    with pytest.raises(CorpusError, match="too short for one 120 s window") as err:
        build_corpus(synthetic_edfs, out, too_long)
    assert "Nothing was written" in str(err.value)
    assert not out.exists()
    proc = run_cli("-q", "prepare", empty, "--corpus", out)
    assert proc.returncode == 2 and "No EEG recordings found" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not out.exists()


def test_too_short_files_are_named(
    tmp_path: Path, synthetic_edfs: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    raw = read_raw(synthetic_edfs[0], verbose="error").crop(0, 5.0)
    short = tmp_path / "short_raw.fif"
    raw.save(short, verbose=False)
    with pytest.raises(ValueError, match=r"short_raw.fif: recording is 5.0 s long, too short"):
        load_windows(short, CONFIG, verbose="error")
    with caplog.at_level(logging.WARNING, logger="codebrain"):
        ds = load_windows([short, synthetic_edfs[0]], CONFIG, verbose="error")
    assert len(ds) > 0 and set(ds.recording_ids) == {"sub-01_task-motorimagery_eeg"}
    assert "1 of 2 recording(s) gave no window" in caplog.text and "short_raw.fif" in caplog.text


def test_edf_with_zero_signals(tmp_path: Path) -> None:
    header = (
        b"0       "
        + b" " * 80  # patient
        + b" " * 80  # recording
        + b"01.01.15"
        + b"00.00.00"
        + b"256     "
        + b" " * 44
        + b"1       "
        + b"1       "
        + b"0   "
    )
    assert len(header) == 256
    path = tmp_path / "nosignals.edf"
    path.write_bytes(header)
    with pytest.raises(RecordingError, match="header declares 0 signals; expected at least one"):
        read_raw(path)
