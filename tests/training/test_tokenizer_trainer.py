"""Tests of the Stage 1 training loop (codebrain.training.tokenizer_trainer)."""

from __future__ import annotations

import csv
import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from _fixtures import TINY_LOOP_TOKENIZER, TensorWindows, random_windows, tiny_loop_tokenizer_config
from codebrain.models.tokenizer import TFDualTokenizer, TokenizerConfig
from codebrain.training._schedule import (
    WarmupCosine,
    build_warmup_cosine_scheduler,
    warmup_cosine_factor,
)
from codebrain.training.tokenizer_trainer import (
    LOG_FIELDS,
    TokenizerTrainConfig,
    train_tokenizer,
)

S, P = TINY_LOOP_TOKENIZER["patch_size"], TINY_LOOP_TOKENIZER["max_patches"]


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _model_config(**kw) -> TokenizerConfig:
    base = dict(
        dropout=0.1,  # makes the RNG state matter for exact resume
        ema_decay=0.9,
        dead_code_threshold=0.5,  # restarts draw random numbers too
    )
    return tiny_loop_tokenizer_config(**{**base, **kw})


def _train_config(**kw) -> TokenizerTrainConfig:
    base = dict(
        max_steps=12,
        batch_size=8,
        lr=1e-3,
        warmup_steps=3,
        checkpoint_every=4,
        keep_checkpoints=2,
        log_every=2,
        progress=False,
        seed=7,
    )
    base.update(kw)
    return TokenizerTrainConfig(**base)


def _pairs(n: int) -> TensorWindows:
    """Items are (x, y) tuples (like WindowDataset), x as a NumPy array."""
    return TensorWindows(random_windows(n).x.numpy(), np.arange(n) % 2)


def _read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_exact_resume(tmp_path) -> None:
    ds = random_windows(36)  # 4 batches per epoch: the run crosses epoch boundaries
    mcfg = _model_config()
    straight = train_tokenizer(ds, _train_config(), tmp_path / "a", model_config=mcfg)
    assert straight.finished and straight.step == 12

    first = train_tokenizer(ds, _train_config(), tmp_path / "b", model_config=mcfg, stop_after=7)
    assert not first.finished and first.step == 7
    assert first.checkpoint is not None and first.checkpoint.name == "ckpt_00000007.pt"
    assert not (tmp_path / "b" / "tokenizer").exists()
    # A fresh call (new model, new optimizer) picks the run up from the checkpoint.
    torch.manual_seed(123)  # the global RNG state before the call must not matter
    resumed = train_tokenizer(ds, _train_config(), tmp_path / "b", model_config=mcfg)
    assert resumed.finished and resumed.step == 12

    sa, sb = straight.model.state_dict(), resumed.model.state_dict()
    s7 = first.model.state_dict()
    assert not torch.equal(s7["head_time.2.weight"], sb["head_time.2.weight"])  # it trained on
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    assert int(sa["codebook_t.num_restarts"]) == int(sb["codebook_t.num_restarts"])
    assert bool(sb["codebook_t.initted"]) and bool(sb["codebook_f.initted"])
    # The logs agree row by row (the resumed run drops nothing and duplicates nothing).
    rows_a = _read_jsonl(tmp_path / "a" / "log.jsonl")
    rows_b = _read_jsonl(tmp_path / "b" / "log.jsonl")
    assert [r["step"] for r in rows_a] == [r["step"] for r in rows_b] == list(range(2, 13, 2))
    for ra, rb in zip(rows_a, rows_b, strict=True):
        for key in ("loss", "time", "amp", "phase", "used_t", "perplexity_f", "lr"):
            assert ra[key] == rb[key], (ra["step"], key)


def test_a_group_relaunched_by_torchrun_resumes_by_itself(tmp_path, monkeypatch, caplog) -> None:
    """``TORCHELASTIC_RESTART_COUNT > 0`` (torchrun's relaunch) turns ``resume=False`` into True."""
    ds, mcfg = random_windows(36), _model_config()
    straight = train_tokenizer(ds, _train_config(max_steps=8), tmp_path / "a", model_config=mcfg)
    cfg = _train_config(max_steps=8, resume=False)
    train_tokenizer(ds, cfg, tmp_path / "b", model_config=mcfg, stop_after=4)  # "killed" at 4
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    with caplog.at_level("INFO", logger="codebrain.training"):
        relaunched = train_tokenizer(ds, cfg, tmp_path / "b", model_config=mcfg)
    assert "torchrun relaunched the group (restart 1)" in caplog.text
    assert "ckpt_00000004.pt (step 4)" in caplog.text  # resumed, not started afresh
    assert relaunched.finished and relaunched.step == 8
    sa, sb = straight.model.state_dict(), relaunched.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "one")
    with pytest.raises(ValueError, match="TORCHELASTIC_RESTART_COUNT='one': expected a whole"):
        train_tokenizer(ds, cfg, tmp_path / "b", model_config=mcfg)


def test_outputs_and_logs(tmp_path) -> None:
    ds = _pairs(20)
    out = tmp_path / "run"
    res = train_tokenizer(
        ds, _train_config(max_steps=6, checkpoint_every=2), out, model_config=_model_config()
    )
    ckpts = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert ckpts == ["ckpt_00000004.pt", "ckpt_00000006.pt"]  # keep_checkpoints=2
    with open(out / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [2, 4, 6]
    assert list(rows[0]) == list(LOG_FIELDS)
    for r in rows:
        assert math.isfinite(float(r["loss"]))
        assert 0.0 < float(r["used_t"]) <= 1.0 and 0.0 < float(r["used_f"]) <= 1.0
        assert 1.0 <= float(r["perplexity_t"]) <= 16.0
    assert len(_read_jsonl(out / "log.jsonl")) == 3
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 6 and 0 < summary["codebook_t"]["fraction_used_total"] <= 1
    cfg = json.loads((out / "train_config.json").read_text())
    assert cfg["train"]["max_steps"] == 6 and cfg["model"]["embed_dim"] == 16
    loaded = TFDualTokenizer.from_pretrained(out / "tokenizer")
    x = torch.from_numpy(ds.x[:2])
    assert all(
        torch.equal(a, b) for a, b in zip(loaded.tokenize(x), res.model.tokenize(x), strict=True)
    )
    # Finished runs are not retrained: a second call resumes at max_steps and returns at once.
    again = train_tokenizer(
        ds, _train_config(max_steps=6, checkpoint_every=2), out, model_config=_model_config()
    )
    assert again.step == 6 and len(_read_jsonl(out / "log.jsonl")) == 3


def test_bf16_and_no_clip(tmp_path) -> None:
    res = train_tokenizer(
        random_windows(16),
        _train_config(max_steps=2, precision="bf16", grad_clip=0.0),
        tmp_path / "bf16",
        model_config=_model_config(dropout=0.0),
    )
    assert res.finished
    assert all(math.isfinite(r["loss"]) and r["grad_norm"] > 0 for r in res.history)


def test_resume_with_another_model_config_fails(tmp_path) -> None:
    ds = random_windows(16)
    train_tokenizer(ds, _train_config(max_steps=2), tmp_path / "r", model_config=_model_config())
    with pytest.raises(ValueError, match="different tokenizer configuration"):
        train_tokenizer(
            ds,
            _train_config(max_steps=4),
            tmp_path / "r",
            model_config=_model_config(code_dim=8),
        )


def test_resume_over_a_grown_dataset_warns(tmp_path, caplog) -> None:
    train_tokenizer(
        random_windows(16), _train_config(max_steps=2), tmp_path / "r", model_config=_model_config()
    )
    with caplog.at_level("WARNING", logger="codebrain.training"):
        train_tokenizer(
            random_windows(24),
            _train_config(max_steps=3),
            tmp_path / "r",
            model_config=_model_config(),
        )
    assert "dataset of 24 windows, but the checkpoint was written over 16" in caplog.text


@pytest.mark.parametrize("n_after", [16, 28])
def test_resume_over_a_shrunk_dataset_starts_the_next_epoch(tmp_path, caplog, n_after) -> None:
    """The saved position (3 batches of 8 into epoch 0 of 32 windows) lies past the end of an
    epoch of ``n_after`` windows: resuming moves to the next epoch instead of failing (16) or
    looping forever on an empty epoch (28)."""
    cfg = _train_config(max_steps=3, batch_size=8)
    train_tokenizer(random_windows(32), cfg, tmp_path / "r", model_config=_model_config())
    with caplog.at_level("WARNING", logger="codebrain.training"):
        res = train_tokenizer(
            random_windows(n_after),
            _train_config(max_steps=5, batch_size=8),
            tmp_path / "r",
            model_config=_model_config(),
        )
    assert res.finished and res.step == 5
    assert "resuming at the start of epoch 1" in caplog.text


def test_bad_datasets(tmp_path) -> None:
    cfg = _train_config(max_steps=1)
    with pytest.raises(ValueError, match="empty"):
        train_tokenizer(random_windows(0), cfg, tmp_path / "x", model_config=_model_config())
    with pytest.raises(ValueError, match="batch_size"):
        train_tokenizer(random_windows(5), cfg, tmp_path / "x", model_config=_model_config())
    with pytest.raises(ValueError, match="multiple of patch_size"):
        train_tokenizer(
            random_windows(16, n_times=P * S + 3), cfg, tmp_path / "x", model_config=_model_config()
        )

    class _Strings(TensorWindows):
        def __getitem__(self, i):
            return "not a tensor"

    with pytest.raises(TypeError, match="expected a float tensor"):
        train_tokenizer(
            _Strings(random_windows(16).x), cfg, tmp_path / "x", model_config=_model_config()
        )
    with pytest.raises(ValueError, match="precision"):
        _train_config(precision="fp8")  # fp16 became valid (the paper recipe)
    with pytest.raises(ValueError, match="max_steps"):
        _train_config(max_steps=0)


def test_default_model_config_fits_the_data(tmp_path, monkeypatch) -> None:
    """Without a model config the released architecture is used, widened to the data."""
    from codebrain.training import tokenizer_trainer

    captured = {}

    class _Stop(Exception):
        pass

    def spy(config):
        captured["config"] = config
        raise _Stop

    monkeypatch.setattr(tokenizer_trainer, "TFDualTokenizer", spy)
    ds = random_windows(2, n_times=200 * 70)
    with pytest.raises(_Stop):
        train_tokenizer(ds, _train_config(max_steps=1, batch_size=2), tmp_path / "d")
    got = captured["config"]
    assert got.patch_size == 200 and got.codebook_size_t == 4096 and got.code_dim == 32
    # The release's 128 channel slots are kept; its 60 time slots widen to 70 patches.
    assert got.max_chans == 128 and got.max_patches == 70


def _fake_gpus(monkeypatch, n: int) -> None:
    """Make this PyTorch see ``n`` CUDA GPUs (nothing is ever put on them)."""
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)


@pytest.mark.parametrize("device", [None, "cuda"])
def test_the_loop_trains_on_the_gpu_of_the_local_rank(tmp_path, monkeypatch, device) -> None:
    """Global rank 3 on a second machine (``LOCAL_RANK=1``) trains on ``cuda:1``, the device
    the process-group setup resolved, not ``cuda:3`` (the global rank taken as local)."""
    from codebrain.training import _distributed, tokenizer_trainer

    class _Stop(Exception):
        pass

    def spy(model, model_config, first, device):
        raise _Stop(device)

    _fake_gpus(monkeypatch, 4)
    monkeypatch.delenv("WORLD_SIZE", raising=False)  # no group is joined here
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(_distributed, "rank", lambda: 3)  # what the group would say
    monkeypatch.setattr(tokenizer_trainer, "_build_model", spy)
    with pytest.raises(_Stop) as stop:
        train_tokenizer(random_windows(8), _train_config(device=device), tmp_path / "run")
    assert stop.value.args[0] == torch.device("cuda", 1)


def test_config_round_trip() -> None:
    cfg = _train_config(betas=(0.8, 0.95))
    d = json.loads(json.dumps(cfg.to_dict()))
    assert TokenizerTrainConfig.from_dict(d) == cfg
    with pytest.raises(ValueError, match="Unknown"):
        TokenizerTrainConfig.from_dict({"nope": 1})


def test_warmup_cosine_schedule() -> None:
    f = [
        warmup_cosine_factor(s, warmup_steps=4, total_steps=12, min_lr_ratio=0.1) for s in range(14)
    ]
    assert f[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert f[4] == pytest.approx(1.0)
    assert f[8] == pytest.approx(0.1 + 0.9 * 0.5)
    assert f[12] == pytest.approx(0.1) and f[13] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(f[4:], f[5:], strict=False))
    sched_fn = pickle.loads(pickle.dumps(WarmupCosine(4, 12, 0.1)))
    assert sched_fn(8) == pytest.approx(f[8])
    with pytest.raises(ValueError, match="total_steps"):
        WarmupCosine(1, 0)

    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=2.0)
    sched = build_warmup_cosine_scheduler(opt, warmup_steps=4, total_steps=12, min_lr_ratio=0.1)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([2.0 * v for v in f[:6]])
    # The scheduler's state round-trips (resume continues on the same curve).
    opt2 = torch.optim.SGD([p], lr=2.0)
    sched2 = build_warmup_cosine_scheduler(opt2, warmup_steps=4, total_steps=12, min_lr_ratio=0.1)
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(sched.state_dict())
    for o, sc in ((opt, sched), (opt2, sched2)):
        o.step()
        sc.step()
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"] == pytest.approx(2.0 * f[7])


def test_collate_rejects_mixed_shapes(tmp_path) -> None:
    class _Mixed(TensorWindows):
        def __getitem__(self, i):
            return self.x[i] if i % 2 else self.x[i][:, :S]

    with pytest.raises(ValueError, match="different shapes"):
        train_tokenizer(
            _Mixed(random_windows(16).x),
            _train_config(max_steps=1),
            tmp_path / "m",
            model_config=_model_config(),
        )


# --------------------------------------------------------------------------- distributed
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist

    from codebrain.layers.quantize import Codebook

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        # A codebook fed different vectors on each rank.
        torch.manual_seed(0)
        cb = Codebook(8, 4, kmeans_init=True, threshold_ema_dead_code=2.0, decay=0.8).train()
        data = torch.randn(world, 5, 32, 4, generator=torch.Generator().manual_seed(1))
        torch.manual_seed(100 + rank)  # different local RNG streams on purpose
        for step in range(5):
            x = data[rank, step] * (1 + rank)
            if step > 0:  # concentrated data after the k-means step: some codes die
                x = 0.1 * x + torch.tensor([1.0, 0.0, 0.0, 0.0])
            cb(x)
        torch.save(cb.state_dict(), f"{out}/codebook{rank}.pt")
        # The full training loop (DDP + DistributedSampler).
        res = train_tokenizer(
            random_windows(32),
            _train_config(max_steps=4, batch_size=4, checkpoint_every=2),
            f"{out}/run",
            model_config=_model_config(),
        )
        torch.save(res.model.state_dict(), f"{out}/model{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def gloo_run(tmp_path_factory) -> Path:
    """Two gloo ranks on CPU, spawned once for the distributed tests."""
    import torch.multiprocessing as mp

    out = tmp_path_factory.mktemp("gloo")
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(out)), nprocs=2, join=True)
    return out


def _env_worker(rank: int, world: int, port: int, out: str) -> None:
    """A rank as ``torchrun`` starts it: the group is only described by the environment."""
    import os

    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ.update(
        WORLD_SIZE=str(world),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    res = train_tokenizer(
        random_windows(32),
        _train_config(max_steps=2, batch_size=4, checkpoint_every=2),
        f"{out}/run",
        model_config=_model_config(),
    )
    assert not dist.is_initialized()  # joined for the run, left afterwards
    torch.save(res.model.state_dict(), f"{out}/envmodel{rank}.pt")


def test_train_tokenizer_joins_the_torchrun_group_from_the_environment(tmp_path) -> None:
    """Under ``torchrun`` the ranks train one model together (world size 2), instead of
    each training alone as if it were rank 0 of a world of one."""
    import torch.multiprocessing as mp

    mp.spawn(_env_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = _pair(tmp_path, "envmodel")
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["world_size"] == 2


def _pair(out: Path, name: str) -> tuple[dict, dict]:
    return (
        torch.load(out / f"{name}0.pt", weights_only=True),
        torch.load(out / f"{name}1.pt", weights_only=True),
    )


def test_codebooks_stay_identical_across_gloo_ranks(gloo_run) -> None:
    """Each rank sees different vectors; k-means, EMA statistics and dead-code restarts are
    synchronised, so both ranks end with the same codebook."""
    r0, r1 = _pair(gloo_run, "codebook")
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    assert bool(r0["initted"])
    assert int(r0["num_restarts"]) > 0  # restarts happened and were broadcast
    assert float(r0["usage"].sum()) == 2 * 5 * 32  # usage counts both ranks' vectors


def test_train_tokenizer_under_two_gloo_ranks(gloo_run) -> None:
    r0, r1 = _pair(gloo_run, "model")
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    assert (gloo_run / "run" / "tokenizer" / "model.safetensors").is_file()
    rows = _read_jsonl(gloo_run / "run" / "log.jsonl")
    assert [r["step"] for r in rows] == [2, 4]
