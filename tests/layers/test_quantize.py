"""Tests of the EMA codebook (codebrain.layers.quantize)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from codebrain.layers import quantize
from codebrain.layers.quantize import (
    Codebook,
    fraction_used,
    kmeans,
    l2norm,
    nearest_code,
    perplexity,
)


def _brute_force_nearest(x: torch.Tensor, embed: torch.Tensor) -> torch.Tensor:
    z = F.normalize(x.double(), dim=-1)
    e = embed.double()
    out = []
    for v in z:
        d = [float(((v - c) ** 2).sum()) for c in e]
        out.append(min(range(len(d)), key=d.__getitem__))
    return torch.tensor(out)


def test_nearest_code_matches_brute_force() -> None:
    cb = Codebook(16, 5, kmeans_init=False).eval()
    x = torch.randn(200, 5) * 3.0
    expected = _brute_force_nearest(x, cb.embed)
    assert torch.equal(cb.lookup(x), expected)
    out = cb(x)
    assert torch.equal(out.indices, expected)
    assert torch.allclose(out.quantized, cb.embed[expected])
    # Leading dimensions are kept.
    assert cb.lookup(x.reshape(10, 20, 5)).shape == (10, 20)


def test_eval_mode_does_not_update() -> None:
    cb = Codebook(8, 4, kmeans_init=True).eval()
    before = {k: v.clone() for k, v in cb.state_dict().items()}
    cb(torch.randn(50, 4))
    for k, v in cb.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not bool(cb.initted)


def test_ema_update_math() -> None:
    decay, eps = 0.8, 1e-5
    cb = Codebook(3, 2, decay=decay, eps=eps, kmeans_init=False).train()
    embed = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    cb.embed.copy_(embed)
    cb.cluster_size.copy_(torch.tensor([2.0, 1.0, 0.5]))
    cb.embed_sum.copy_(embed * cb.cluster_size[:, None])
    x = torch.tensor([[2.0, 0.2], [1.0, -0.1], [0.1, 3.0]])
    out = cb(x)
    assert out.indices.tolist() == [0, 0, 1]

    z = F.normalize(x.double(), dim=-1)
    counts = torch.tensor([2.0, 1.0, 0.0], dtype=torch.float64)
    sums = torch.stack([z[0] + z[1], z[2], torch.zeros(2, dtype=torch.float64)])
    cs = torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64) * decay + counts * (1 - decay)
    es = embed.double() * torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64)[:, None]
    es = es * decay + sums * (1 - decay)
    n = cs.sum()
    smoothed = (cs + eps) / (n + 3 * eps) * n
    new_embed = F.normalize(es / smoothed[:, None], dim=-1)
    assert torch.allclose(cb.cluster_size.double(), cs, atol=1e-6)
    assert torch.allclose(cb.embed_sum.double(), es, atol=1e-6)
    assert torch.allclose(cb.embed.double(), new_embed, atol=1e-6)
    assert torch.allclose(cb.embed.norm(dim=-1), torch.ones(3), atol=1e-6)
    assert cb.usage.tolist() == [2.0, 1.0, 0.0]
    # The commitment loss compares the normalised input with the code chosen before the update.
    expected_commit = F.mse_loss(z.float(), embed[[0, 0, 1]])
    assert torch.allclose(out.commit_loss, expected_commit)


def test_norm_ema_update_math() -> None:
    """The authors' (LaBraM's NormEMAVectorQuantizer) rule: each used code moves towards the
    l2-normalised mean of its vectors and is re-normalised; unused codes stay."""
    decay = 0.8
    cb = Codebook(3, 2, decay=decay, kmeans_init=False, update="norm_ema").train()
    embed = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    cb.embed.copy_(embed)
    x = torch.tensor([[2.0, 0.2], [1.0, -0.1], [0.1, 3.0]])
    out = cb(x)
    assert out.indices.tolist() == [0, 0, 1]
    z = F.normalize(x.double(), dim=-1)
    means = torch.stack([F.normalize((z[0] + z[1]) / 2, dim=0), z[2], embed[2].double()])
    expected = F.normalize(embed.double() * decay + means * (1 - decay), dim=-1)
    assert torch.allclose(cb.embed.double(), expected, atol=1e-6)
    assert torch.equal(cb.embed[2], embed[2])  # unused: unchanged
    assert torch.allclose(cb.cluster_size, torch.tensor([2.0, 1.0, 0.0]) * (1 - decay))
    with pytest.raises(ValueError, match="update"):
        Codebook(3, 2, update="bogus")


def test_kmeans_recovers_separated_clusters() -> None:
    g = torch.Generator().manual_seed(1)
    centres = l2norm(torch.randn(4, 6, generator=g))
    labels = torch.arange(400) % 4
    samples = l2norm(centres[labels] + 0.01 * torch.randn(400, 6, generator=g))
    means, counts = kmeans(samples, 4, 20, generator=g)
    assert means.shape == (4, 6) and counts.shape == (4,)
    assert counts.sum() == 400
    # Every true centre has a k-means centre next to it.
    d = torch.cdist(centres, means)
    assert float(d.min(dim=1).values.max()) < 0.05
    with pytest.raises(ValueError, match="shape"):
        kmeans(torch.randn(5), 2)


def test_kmeans_init_sets_flag_and_is_not_repeated_after_reload(monkeypatch) -> None:
    cb = Codebook(8, 4, kmeans_init=True).train()
    random_embed = cb.embed.clone()
    x = torch.randn(64, 4)
    cb(x)
    assert bool(cb.initted)
    assert not torch.equal(cb.embed, random_embed)
    # The codes after k-means are close to the data: each code has a sample at cosine > 0.5.
    sims = l2norm(x) @ cb.embed.t()
    assert float(sims.max(dim=0).values.min()) > 0.5

    fresh = Codebook(8, 4, kmeans_init=True).train()
    fresh.load_state_dict(cb.state_dict())
    assert bool(fresh.initted)

    def boom(*args, **kwargs):
        raise AssertionError("k-means must not run again after a reload")

    monkeypatch.setattr(quantize, "kmeans", boom)
    fresh(torch.randn(64, 4))  # would raise if k-means ran
    with pytest.raises(AssertionError, match="must not run"):
        Codebook(8, 4, kmeans_init=True).train()(torch.randn(16, 4))


def test_dead_code_restart() -> None:
    cb = Codebook(8, 4, kmeans_init=True, threshold_ema_dead_code=0.5, decay=0.9).train()
    cb(torch.randn(64, 4))  # k-means init
    assert int(cb.num_restarts) == 0
    # Codes 3 and 5 point away from the next batch and have no EMA usage: they are dead.
    direction = torch.tensor([1.0, 0.0, 0.0, 0.0])
    cb.embed[3] = -direction
    cb.embed[5] = l2norm(torch.tensor([-1.0, 0.1, 0.0, 0.0]))
    cb.cluster_size[3] = 0.0
    cb.cluster_size[5] = 0.0
    x2 = direction + 0.05 * torch.randn(64, 4)
    out = cb(x2)
    assert not bool(((out.indices == 3) | (out.indices == 5)).any())
    assert int(cb.num_restarts) >= 2
    z = l2norm(x2)
    for k in (3, 5):
        # The restarted code is one of the batch vectors, with a reset EMA usage.
        assert float((z @ cb.embed[k]).max()) == pytest.approx(1.0, abs=1e-5)
        assert float(cb.cluster_size[k]) == pytest.approx(0.5)
        assert torch.allclose(cb.embed_sum[k], cb.embed[k] * 0.5)
    # Restarted codes are now chosen by the data they were drawn from.
    assert bool(((cb.lookup(x2) == 3) | (cb.lookup(x2) == 5)).any())


def test_straight_through_gradient() -> None:
    cb = Codebook(16, 4, kmeans_init=False).train()
    x = torch.randn(32, 4, requires_grad=True)
    w = torch.randn(32, 4)
    out = cb(x)
    (out.quantized * w).sum().backward()
    x2 = x.detach().clone().requires_grad_(True)
    (l2norm(x2) * w).sum().backward()
    assert torch.allclose(x.grad, x2.grad, atol=1e-6)
    assert x.grad.abs().sum() > 0
    # Commitment gradient flows to the input only.
    x3 = torch.randn(32, 4, requires_grad=True)
    cb(x3).commit_loss.backward()
    assert x3.grad is not None and x3.grad.abs().sum() > 0


def test_quantized_values_are_the_codes() -> None:
    cb = Codebook(16, 4, kmeans_init=False).eval()
    out = cb(torch.randn(20, 4))
    assert torch.allclose(out.quantized, cb.embed[out.indices], atol=1e-6)
    assert torch.allclose(cb.decode(out.indices), out.quantized, atol=1e-6)


def test_state_dict_round_trip_continues_identically() -> None:
    torch.manual_seed(3)
    a = Codebook(8, 4, kmeans_init=True, threshold_ema_dead_code=0.3).train()
    for _ in range(3):
        a(torch.randn(32, 4))
    sd = a.state_dict()
    assert set(sd) == {"embed", "cluster_size", "embed_sum", "initted", "usage", "num_restarts"}
    b = Codebook(8, 4, kmeans_init=True, threshold_ema_dead_code=0.3).train()
    b.load_state_dict(sd)
    x = torch.randn(32, 4)
    torch.manual_seed(5)
    oa = a(x)
    torch.manual_seed(5)
    ob = b(x)
    assert torch.equal(oa.indices, ob.indices)
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k


def test_injected_all_reduce_matches_a_global_batch() -> None:
    """Two identical ranks (simulated by doubling the local sums) == one process on a batch
    that holds both ranks' vectors."""
    calls: list[tuple[int, ...]] = []

    def fake_all_reduce(t: torch.Tensor) -> None:
        t.mul_(2)

    def fake_broadcast(t: torch.Tensor) -> None:
        calls.append(tuple(t.shape))

    x = torch.randn(40, 4)
    embed = l2norm(torch.randn(6, 4))
    dist_cb = Codebook(
        6,
        4,
        kmeans_init=False,
        all_reduce_fn=fake_all_reduce,
        broadcast_fn=fake_broadcast,
    ).train()
    single = Codebook(6, 4, kmeans_init=False).train()
    for cb in (dist_cb, single):
        cb.embed.copy_(embed)
        cb.cluster_size.fill_(4.0)
        cb.embed_sum.copy_(embed * 4.0)
    dist_cb(x)
    single(torch.cat([x, x]))
    for name in ("embed", "cluster_size", "embed_sum", "usage"):
        assert torch.allclose(getattr(dist_cb, name), getattr(single, name), atol=1e-6), name

    # k-means initialisation goes through the broadcast hook.
    km = Codebook(6, 4, kmeans_init=True, broadcast_fn=fake_broadcast).train()
    km(x)
    assert (6, 4) in calls and (6,) in calls


def test_perplexity_and_fraction_used() -> None:
    assert perplexity(torch.ones(16)) == pytest.approx(16.0)
    assert perplexity(torch.tensor([5.0, 0.0, 0.0])) == pytest.approx(1.0)
    assert perplexity(torch.tensor([1.0, 1.0, 0.0, 0.0])) == pytest.approx(2.0)
    assert perplexity(torch.zeros(4)) == 0.0
    assert fraction_used(torch.tensor([0.0, 1.0, 3.0, 0.0])) == pytest.approx(0.5)
    assert fraction_used(torch.tensor([0.0, 1.0, 3.0, 0.0]), min_count=2) == pytest.approx(0.25)
    cb = Codebook(4, 2, kmeans_init=False).train()
    cb(torch.tensor([[1.0, 0.0], [1.0, 0.01], [-1.0, 0.0]]))
    assert 0 < cb.fraction_used() <= 0.5
    assert 1.0 <= cb.perplexity() <= 2.0 + 1e-9
    assert math.isclose(float(cb.usage.sum()), 3.0)
    cb.reset_usage()
    assert float(cb.usage.sum()) == 0.0


def test_bad_inputs() -> None:
    cb = Codebook(8, 4)
    with pytest.raises(ValueError, match=r"\(\.\.\., 4\)"):
        cb(torch.randn(3, 5))
    with pytest.raises(TypeError, match="floating"):
        cb(torch.ones(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="codebook_size"):
        Codebook(1, 4)
    with pytest.raises(ValueError, match="decay"):
        Codebook(8, 4, decay=1.0)
    with pytest.raises(ValueError, match="threshold"):
        Codebook(8, 4, threshold_ema_dead_code=-1)
    with pytest.raises(ValueError, match=r"\[0, 8\)"):
        cb.decode(torch.tensor([0, 8]))


def test_autocast_lookup_runs_in_float32() -> None:
    cb = Codebook(8, 4, kmeans_init=False).eval()
    x = torch.randn(16, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = cb(x)
        ids = cb.lookup(x)
    assert out.quantized.dtype == torch.float32
    assert torch.equal(out.indices, ids)
    assert torch.equal(ids, _brute_force_nearest(x, cb.embed))


def test_chunked_nearest_code_matches_one_block() -> None:
    x = l2norm(torch.randn(1000, 6))
    embed = l2norm(torch.randn(50, 6))
    full = nearest_code(x, embed, chunk_size=10_000)
    assert torch.equal(nearest_code(x, embed, chunk_size=7), full)
    assert torch.equal(full[:100], _brute_force_nearest(x[:100], embed))
