"""The sharded corpus: build, resume, corrupt inputs, simulated kills, checksums, ranks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from codebrain.data import (
    MANIFEST_NAME,
    CorpusDataset,
    CorpusError,
    PreprocessConfig,
    build_corpus,
    file_sha256,
)
from codebrain.data import store as store_module

CONFIG = PreprocessConfig(window_seconds=10.0)


def _manifest(out: Path) -> dict:
    return json.loads((out / MANIFEST_NAME).read_text())


@pytest.fixture
def corpus(tmp_path: Path, synthetic_edfs: list[Path]) -> Path:
    out = tmp_path / "corpus"
    build_corpus(synthetic_edfs, out, CONFIG, verbose="error")
    return out


def test_build_and_read(corpus: Path, synthetic_edfs: list[Path]) -> None:
    manifest = _manifest(corpus)
    assert manifest["format_version"] == 2 and manifest["complete"] is True
    assert manifest["channels"][:2] == ["FP1", "FP2"] and manifest["sfreq"] == 200.0
    assert manifest["config"] == CONFIG.to_dict() and manifest["dtype"] == "float16"
    entry = manifest["recordings"][0]
    assert entry["path"] == str(synthetic_edfs[0].resolve())
    assert entry["subject_id"] == "01"
    assert file_sha256(corpus / entry["shard"]) == entry["sha256"]

    ds = CorpusDataset(corpus, verify_checksums=True)
    counts = [e["n_windows"] for e in manifest["recordings"]]
    assert len(ds) == sum(counts) and all(c >= 5 for c in counts)
    x = ds[len(ds) - 1]
    assert x.dtype == torch.float32 and x.shape == (19, 2000)
    shard = np.load(corpus / manifest["recordings"][-1]["shard"])
    np.testing.assert_array_equal(x.numpy(), shard[-1].astype(np.float32))
    assert ds.recordings == [e["recording_id"] for e in manifest["recordings"]]
    assert ds.window_recording_ids().shape == (len(ds),)
    held_out = ds.indices_for([ds.recordings[1]])
    assert len(held_out) == counts[1] and held_out[0] == counts[0]
    with pytest.raises(IndexError):
        ds[len(ds)]
    batch = next(iter(DataLoader(ds, batch_size=4, num_workers=0)))
    assert batch.shape == (4, 19, 2000)


def test_same_windows_as_in_memory_pipeline(corpus: Path, synthetic_edfs: list[Path]) -> None:
    from codebrain.data import load_windows

    memory = load_windows(synthetic_edfs[0], CONFIG, verbose="error")
    ds = CorpusDataset(corpus)
    np.testing.assert_allclose(ds[2].numpy(), memory.data[2], atol=2e-3, rtol=1e-3)  # float16


def test_resume_skips_finished(corpus: Path, synthetic_edfs: list[Path]) -> None:
    mtimes = {p: p.stat().st_mtime_ns for p in (corpus / "shards").iterdir()}
    summary = build_corpus(synthetic_edfs, corpus, CONFIG, verify_existing=True)
    assert len(summary.skipped_existing) == 3 and not summary.processed and not summary.failed
    assert {p: p.stat().st_mtime_ns for p in (corpus / "shards").iterdir()} == mtimes
    # A shard deleted behind the manifest's back is rebuilt.
    first = corpus / _manifest(corpus)["recordings"][0]["shard"]
    first.unlink()
    summary = build_corpus(synthetic_edfs, corpus, CONFIG)
    assert summary.processed == [str(synthetic_edfs[0].resolve())]
    assert len(summary.skipped_existing) == 2


def test_corrupt_file_reported_and_skipped(tmp_path: Path, synthetic_edfs: list[Path]) -> None:
    bad = tmp_path / "broken.edf"
    bad.write_bytes(b"\x00" * 300)
    short = tmp_path / "unknown.xyz"
    short.write_text("?")
    out = tmp_path / "corpus"
    summary = build_corpus([bad, short, *synthetic_edfs[:2]], out, CONFIG)
    assert len(summary.processed) == 2
    assert set(summary.failed) == {str(bad.resolve()), str(short.resolve())}
    assert "broken.edf" in summary.failed[str(bad.resolve())]
    assert "unknown EEG file extension" in summary.failed[str(short.resolve())]
    assert "2 processed" in str(summary) and "2 failed" in str(summary)
    failed = {f["path"] for f in _manifest(out)["failed"]}
    assert failed == set(summary.failed)
    assert len(CorpusDataset(out).recordings) == 2


def test_simulated_kill_leaves_no_complete_looking_shard(
    tmp_path: Path, synthetic_edfs: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "corpus"
    real_write = np.lib.format.write_array
    calls = {"n": 0}

    def dying_write(fp, array, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # die half-way through the second shard
            fp.write(b"\x93NUMPY partial")
            raise KeyboardInterrupt
        return real_write(fp, array, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", dying_write)
    with pytest.raises(KeyboardInterrupt):
        build_corpus(synthetic_edfs, out, CONFIG)
    monkeypatch.undo()
    manifest = _manifest(out)
    assert len(manifest["recordings"]) == 1  # only the finished shard is listed
    assert sorted(p.name for p in (out / "shards").iterdir()) == [
        Path(manifest["recordings"][0]["shard"]).name
    ]
    # A SIGKILL leaves temporaries (no cleanup handler runs) and maybe a renamed shard whose
    # manifest update never happened: neither counts as complete.
    (out / "shards" / ".sub-02_task-motorimagery_eeg-abc.npy.0123456789ab.tmp").write_bytes(b"x")
    (out / f".{MANIFEST_NAME}.ba9876543210.tmp").write_text("{")
    assert manifest["complete"] is False
    with pytest.raises(CorpusError, match="incomplete"):
        CorpusDataset(out)
    part = CorpusDataset(out, allow_incomplete=True)
    assert len(part) == manifest["recordings"][0]["n_windows"]
    summary = build_corpus(synthetic_edfs, out, CONFIG)
    assert len(summary.skipped_existing) == 1 and len(summary.processed) == 2
    assert not list(out.rglob(".*.tmp"))
    assert len(CorpusDataset(out, verify_checksums=True).recordings) == 3


def test_manifest_shard_mismatch(corpus: Path) -> None:
    manifest = _manifest(corpus)
    shard = corpus / manifest["recordings"][1]["shard"]
    data = np.load(shard)
    np.save(shard, data[:-1])  # one window short
    with pytest.raises(CorpusError, match=r"sub-02.*manifest says"):
        CorpusDataset(corpus)
    np.save(shard, data[:, :, ::-1].copy())  # same shape, different bytes
    CorpusDataset(corpus)  # header checks pass
    with pytest.raises(CorpusError, match="SHA-256"):
        CorpusDataset(corpus, verify_checksums=True)
    shard.unlink()
    with pytest.raises(CorpusError, match="missing"):
        CorpusDataset(corpus)


def test_bad_manifest_and_config_mismatch(corpus: Path, synthetic_edfs: list[Path]) -> None:
    with pytest.raises(CorpusError, match="another folder"):
        build_corpus(synthetic_edfs, corpus, PreprocessConfig(window_seconds=5.0))
    with pytest.raises(CorpusError, match="dtype"):
        build_corpus(synthetic_edfs, corpus, CONFIG, dtype="float32")
    manifest = _manifest(corpus)
    manifest["format_version"] = 99
    (corpus / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(CorpusError, match="format version 99"):
        CorpusDataset(corpus)
    (corpus / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(CorpusError, match="Corrupt manifest"):
        CorpusDataset(corpus)
    with pytest.raises(CorpusError, match="not found"):
        CorpusDataset(corpus / "nothing")


@pytest.mark.parametrize("world_size", [2, 3])
def test_distributed_sampler_split(corpus: Path, world_size: int) -> None:
    ds = CorpusDataset(corpus)
    shares = [
        list(DistributedSampler(ds, num_replicas=world_size, rank=r, shuffle=True, seed=1))
        for r in range(world_size)
    ]
    flat = [i for share in shares for i in share]
    assert set(flat) == set(range(len(ds)))  # everything covered
    n_padded = len(flat) - len(ds)  # DistributedSampler pads to a multiple of world_size
    assert n_padded == (-len(ds)) % world_size
    assert len(flat) - len(set(flat)) == n_padded  # disjoint apart from that padding
    dropped = [
        set(DistributedSampler(ds, num_replicas=world_size, rank=r, drop_last=True))
        for r in range(world_size)
    ]
    assert all(a.isdisjoint(b) for i, a in enumerate(dropped) for b in dropped[i + 1 :])


def test_parallel_build_float32(tmp_path: Path, synthetic_edfs: list[Path]) -> None:
    bad = tmp_path / "broken.edf"
    bad.write_bytes(b"junk" * 100)
    out = tmp_path / "corpus"
    summary = build_corpus([*synthetic_edfs, bad], out, CONFIG, n_jobs=2, dtype="float32")
    assert len(summary.processed) == 3 and list(summary.failed) == [str(bad.resolve())]
    ds = CorpusDataset(out, verify_checksums=True)
    assert ds.manifest["dtype"] == "float32"
    serial = tmp_path / "serial"
    build_corpus(synthetic_edfs, serial, CONFIG, n_jobs=1, dtype="float32")
    serial_ds = CorpusDataset(serial)
    np.testing.assert_array_equal(ds[7].numpy(), serial_ds[7].numpy())


def test_dataset_pickles_without_open_maps(corpus: Path) -> None:
    import pickle

    ds = CorpusDataset(corpus, max_open_shards=1)
    ds[0], ds[len(ds) - 1]
    assert len(ds._open) == 1
    clone = pickle.loads(pickle.dumps(ds))
    assert len(clone._open) == 0
    torch.testing.assert_close(clone[3], ds[3])


def test_options_validated(tmp_path: Path, synthetic_edfs: list[Path]) -> None:
    with pytest.raises(ValueError, match="dtype"):
        build_corpus(synthetic_edfs, tmp_path, CONFIG, dtype="int8")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_jobs"):
        build_corpus(synthetic_edfs, tmp_path, CONFIG, n_jobs=0)
    assert store_module.FORMAT_VERSION == 2


_KILL_SCRIPT = """
import os, signal, sys
import numpy as np
from codebrain.data import PreprocessConfig, build_corpus

real_write = np.lib.format.write_array
calls = [0]

def dying_write(fp, array, **kwargs):
    calls[0] += 1
    if calls[0] == 2:  # SIGKILL half-way through the second shard: no cleanup runs
        fp.write(b"\\x93NUMPY partial")
        os.kill(os.getpid(), signal.SIGKILL)
    return real_write(fp, array, **kwargs)

np.lib.format.write_array = dying_write
build_corpus(sys.argv[2:], sys.argv[1], PreprocessConfig(window_seconds=10.0), verbose="error")
"""


def test_sigkill_mid_shard(tmp_path: Path, synthetic_edfs: list[Path]) -> None:
    import signal
    import subprocess
    import sys

    out = tmp_path / "corpus"
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_SCRIPT, str(out), *map(str, synthetic_edfs)],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    leftovers = list((out / "shards").glob(".*.tmp"))
    assert len(leftovers) == 1  # the half-written shard, never under its final name
    manifest = _manifest(out)
    assert manifest["complete"] is False and manifest["recordings"] == []
    journal = (out / "journal.jsonl").read_text().splitlines()
    assert len(journal) == 1  # the finished shard was listed as it landed
    with pytest.raises(CorpusError, match="incomplete"):
        CorpusDataset(out)
    assert len(CorpusDataset(out, allow_incomplete=True).recordings) == 1
    summary = build_corpus(synthetic_edfs, out, CONFIG)
    assert len(summary.skipped_existing) == 1 and len(summary.processed) == 2
    assert not list(out.rglob(".*.tmp"))


def test_dataloader_workers(corpus: Path) -> None:
    ds = CorpusDataset(corpus)
    loader = DataLoader(ds, batch_size=5, num_workers=2, shuffle=False)
    batches = torch.cat(list(loader))
    assert batches.shape == (len(ds), 19, 2000)
    torch.testing.assert_close(batches[len(ds) - 1], ds[len(ds) - 1])
