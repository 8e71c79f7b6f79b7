"""Vector quantisation with an EMA-updated, l2-normalised codebook (CodeBrain §3.2).

The TFDual-Tokenizer (arXiv 2506.09110, §3.2) holds two of these codebooks, one temporal and
one frequency; each patch embedding is projected into each codebook space and takes its nearest
code independently. The codebook follows the VQ-VAE recipe with the refinements of
Razavi et al. (VQ-VAE-2, EMA updates) and LaBraM / ViT-VQGAN (l2-normalised codes, k-means
initialisation), with dead-code restarts as in Dhariwal et al. (Jukebox):

- inputs and codes live on the unit sphere; the nearest code in L2 is the one with the largest
  cosine similarity;
- codes are *not* trained by the optimizer: they are exponential moving averages (decay
  ``decay``), re-normalised after each update. Two update rules: ``update="norm_ema"``
  (LaBraM's ``NormEMAVectorQuantizer``, which CodeBrain's release uses) moves each code towards
  the l2-normalised mean of the vectors assigned to it in this step and leaves unused codes
  alone; ``update="sum_ema"`` (VQ-VAE-2) keeps EMAs of cluster sizes and sums with Laplace
  smoothing;
- on the first training batch the codebook is initialised by spherical k-means on the batch;
- optionally (off by default, and in CodeBrain's release), codes whose EMA usage falls below
  ``threshold_ema_dead_code`` are replaced by random vectors of the current batch;
- gradients pass from the quantised output to the input unchanged (straight-through), and a
  commitment loss pulls the encoder outputs towards their codes.

All state (``embed``, ``cluster_size``, ``embed_sum``, ``initted``, usage counters) is held in
buffers, so ``state_dict`` captures it and a resumed run neither repeats k-means nor loses its
statistics. Cross-process statistics go through injectable ``all_reduce_fn``/``broadcast_fn``
(defaults: ``torch.distributed`` when a process group is initialised, else no-ops): EMA sums
are all-reduced and k-means / restarts are computed on rank 0 and broadcast, so every rank keeps
an identical codebook.

Shape legend: N = vectors, D = code dimension, K = codebook size.

References
----------
.. [1] CodeBrain, arXiv 2506.09110, §3.2.
.. [2] van den Oord et al., "Neural Discrete Representation Learning", 2017.
.. [3] Razavi et al., "Generating Diverse High-Fidelity Images with VQ-VAE-2", 2019.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from codebrain.utils import distributed as _distributed
from codebrain.utils.check import check_int, check_number, check_option, check_type, check_value

__all__ = [
    "Codebook",
    "nearest_code",
    "QuantizerOutput",
    "fraction_used",
    "kmeans",
    "l2norm",
    "perplexity",
]

logger = logging.getLogger(__name__)

ReduceFn = Callable[[torch.Tensor], object]
BroadcastFn = Callable[[torch.Tensor], object]


# ------------------------------------------------------------------------------ helpers
def l2norm(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Unit-normalise the last dimension.

    Parameters
    ----------
    x : torch.Tensor, shape (..., D)
    eps : float
        Lower bound of the norm (zero vectors stay zero).

    Returns
    -------
    torch.Tensor, shape (..., D)
    """
    return F.normalize(x, p=2.0, dim=-1, eps=eps)


def squared_distances(x: torch.Tensor, embed: torch.Tensor) -> torch.Tensor:
    """Squared L2 distance between every vector and every code.

    Parameters
    ----------
    x : torch.Tensor, shape (N, D)
    embed : torch.Tensor, shape (K, D)

    Returns
    -------
    torch.Tensor, shape (N, K)
    """
    # ``|x|^2 + |e|^2 - 2 x.e`` in this order (the order of the LaBraM / CodeBrain quantiser,
    # so near-ties resolve as theirs do); not clamped, values may be a rounding error below 0.
    return x.pow(2).sum(-1, keepdim=True) + embed.pow(2).sum(-1) - 2.0 * (x @ embed.t())


def nearest_code(x: torch.Tensor, embed: torch.Tensor, chunk_size: int = 8192) -> torch.Tensor:
    """Index of the nearest code (squared L2) of every vector, in chunks of rows.

    Parameters
    ----------
    x : torch.Tensor, shape (N, D)
    embed : torch.Tensor, shape (K, D)
    chunk_size : int
        Rows per distance block, bounding memory to ``chunk_size x K`` floats.

    Returns
    -------
    torch.Tensor of int64, shape (N,)
    """
    if x.shape[0] <= chunk_size:
        return squared_distances(x, embed).argmin(dim=-1)
    return torch.cat(
        [squared_distances(part, embed).argmin(dim=-1) for part in x.split(chunk_size)]
    )


def kmeans(
    samples: torch.Tensor,
    num_clusters: int,
    num_iters: int = 10,
    *,
    spherical: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means (pure function: reads ``samples``, returns new tensors).

    Parameters
    ----------
    samples : torch.Tensor, shape (N, D)
        Floating-point vectors. With fewer samples than clusters the initial centres are drawn
        with replacement.
    num_clusters : int
        K.
    num_iters : int
        Assignment/update rounds (>= 0).
    spherical : bool
        Cluster on the unit sphere: centres are re-normalised after each update (use with
        l2-normalised samples).
    generator : torch.Generator, optional
        Random source of the initial centres (default: the global generator).

    Returns
    -------
    means : torch.Tensor, shape (K, D)
        Cluster centres; a cluster that ends empty keeps its previous centre.
    counts : torch.Tensor, shape (K,)
        Number of samples assigned to each centre in the last assignment (float).
    """
    if samples.ndim != 2:
        raise ValueError(f"kmeans expects samples of shape (N, D), got {tuple(samples.shape)}.")
    n, d = samples.shape
    if n == 0:
        raise ValueError("kmeans needs at least one sample.")
    check_int("num_clusters", num_clusters)
    samples = samples.float()
    if n >= num_clusters:
        idx = torch.randperm(n, generator=generator, device="cpu")[:num_clusters]
    else:
        idx = torch.randint(0, n, (num_clusters,), generator=generator, device="cpu")
    means = samples[idx.to(samples.device)].clone()
    counts = torch.zeros(num_clusters, device=samples.device)
    for _ in range(max(1, num_iters)):
        assign = nearest_code(samples, means)  # (N,)
        counts = torch.bincount(assign, minlength=num_clusters).float()  # (K,)
        if num_iters == 0:
            break
        sums = torch.zeros_like(means).index_add_(0, assign, samples)  # (K, D)
        new = sums / counts.clamp_min(1.0)[:, None]
        if spherical:
            new = l2norm(new)
        means = torch.where((counts == 0)[:, None], means, new)
    return means, counts


def perplexity(counts: torch.Tensor) -> float:
    """Perplexity ``exp(H(p))`` of the code-usage distribution ``p = counts / counts.sum()``.

    Ranges from 1 (one code used) to K (uniform usage); 0 for an all-zero histogram.

    Parameters
    ----------
    counts : torch.Tensor, shape (K,)
        Non-negative usage counts.

    Returns
    -------
    float
    """
    counts = counts.detach().double().flatten()
    total = counts.sum()
    if total <= 0:
        return 0.0
    p = counts / total
    entropy = -(p * torch.log(p.clamp_min(1e-300))).sum()
    return float(torch.exp(entropy))


def fraction_used(counts: torch.Tensor, min_count: float = 1.0) -> float:
    """Fraction of codes whose usage count is at least ``min_count``.

    Parameters
    ----------
    counts : torch.Tensor, shape (K,)
    min_count : float

    Returns
    -------
    float
        In [0, 1].
    """
    counts = counts.detach().flatten()
    if counts.numel() == 0:
        raise ValueError("counts is empty.")
    return float((counts >= min_count).double().mean())


def _default_all_reduce(t: torch.Tensor) -> None:
    _distributed.all_reduce_sum(t)


def _default_broadcast(t: torch.Tensor) -> None:
    _distributed.broadcast(t, src=0)


# ----------------------------------------------------------------------------- codebook
@dataclass
class QuantizerOutput:
    """Result of :meth:`Codebook.forward`.

    Attributes
    ----------
    quantized : torch.Tensor, shape (..., D)
        Selected (unit-norm) codes, with straight-through gradients to the normalised input.
    indices : torch.Tensor of int64, shape (...)
        Code index of each vector.
    commit_loss : torch.Tensor, scalar
        ``mean((normalised input - sg[code])**2)`` (unweighted).
    counts : torch.Tensor, shape (K,)
        Codes used in this call (this process only), float.
    """

    quantized: torch.Tensor
    indices: torch.Tensor
    commit_loss: torch.Tensor
    counts: torch.Tensor


class Codebook(nn.Module):
    """EMA vector quantiser over l2-normalised vectors.

    Parameters
    ----------
    codebook_size : int
        K, the number of codes.
    dim : int
        D, the code dimension.
    decay : float
        EMA decay of the cluster sizes and sums, in [0, 1).
    eps : float
        Laplace smoothing constant of the cluster sizes.
    kmeans_init : bool
        Initialise the codes by spherical k-means on the first training batch; otherwise they
        start as random unit vectors (and count as initialised).
    kmeans_iters : int
        Lloyd rounds of the k-means initialisation.
    update : {"sum_ema", "norm_ema"}
        Codebook update rule (see the module notes). ``"norm_ema"``: ``e <- l2norm(decay * e +
        (1 - decay) * l2norm(mean of the vectors assigned to e in this step))`` for the codes
        used in the step, as the authors' quantiser. ``"sum_ema"``: EMA of cluster sizes and
        sums, Laplace smoothing, ``e <- l2norm(sum / size)``.
    threshold_ema_dead_code : float
        A code whose EMA cluster size falls below this value is replaced by a random vector of
        the current batch (0 disables restarts). The EMA cluster size approximates the number
        of vectors (summed over all ranks) assigned to the code per training step.
    all_reduce_fn : callable, optional
        ``fn(tensor)`` summing a tensor in place over processes; default
        ``torch.distributed.all_reduce`` when a process group is initialised, else a no-op.
    broadcast_fn : callable, optional
        ``fn(tensor)`` copying a tensor in place from rank 0 to every process; same default.

    Notes
    -----
    Buffers (all in ``state_dict``):

    - ``embed`` (K, D): unit-norm codes;
    - ``cluster_size`` (K,): EMA of per-step assignment counts;
    - ``embed_sum`` (K, D): EMA of per-step sums of assigned vectors;
    - ``initted`` (): bool, k-means done;
    - ``usage`` (K,): float64, assignments counted in training since creation;
    - ``num_restarts`` (): int64, codes replaced so far.

    The codes are updated only in training mode. Under autocast the lookup runs in float32.
    """

    def __init__(
        self,
        codebook_size: int,
        dim: int,
        *,
        decay: float = 0.99,
        eps: float = 1e-5,
        kmeans_init: bool = True,
        kmeans_iters: int = 10,
        update: str = "sum_ema",
        threshold_ema_dead_code: float = 0.0,
        all_reduce_fn: ReduceFn | None = None,
        broadcast_fn: BroadcastFn | None = None,
    ) -> None:
        super().__init__()
        check_int("codebook_size", codebook_size, minimum=2)
        check_int("dim", dim)
        check_number("decay", decay, minimum=0)
        check_value("decay", decay, decay < 1, "in [0, 1)")
        check_number("eps", eps, greater=0)
        check_number("threshold_ema_dead_code", threshold_ema_dead_code, minimum=0)
        check_option("update", update, ("sum_ema", "norm_ema"))
        check_int("kmeans_iters", kmeans_iters, minimum=0)
        self.codebook_size = codebook_size
        self.dim = dim
        self.decay = float(decay)
        self.eps = float(eps)
        self.kmeans_init = bool(kmeans_init)
        self.kmeans_iters = int(kmeans_iters)
        self.update = update
        self.threshold_ema_dead_code = float(threshold_ema_dead_code)
        self.all_reduce_fn: ReduceFn = all_reduce_fn or _default_all_reduce
        self.broadcast_fn: BroadcastFn = broadcast_fn or _default_broadcast

        embed = l2norm(torch.randn(codebook_size, dim))
        self.register_buffer("embed", embed)
        self.register_buffer("cluster_size", torch.zeros(codebook_size))
        self.register_buffer("embed_sum", embed.clone() * 0.0)
        self.register_buffer("initted", torch.tensor(not self.kmeans_init))
        self.register_buffer("usage", torch.zeros(codebook_size, dtype=torch.float64))
        self.register_buffer("num_restarts", torch.zeros((), dtype=torch.long))

    def extra_repr(self) -> str:
        """The constructor's settings, shown by ``repr(module)``."""
        return (
            f"codebook_size={self.codebook_size}, dim={self.dim}, decay={self.decay}, "
            f"kmeans_init={self.kmeans_init}, update={self.update!r}, threshold_ema_dead_code="
            f"{self.threshold_ema_dead_code}"
        )

    # ------------------------------------------------------------------- lookup
    def lookup(self, x: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code (L2 between unit vectors) of every vector.

        Parameters
        ----------
        x : torch.Tensor, shape (..., D)
            Vectors (normalised here).

        Returns
        -------
        torch.Tensor of int64, shape (...)
        """
        self._check_input(x)
        with torch.autocast(device_type=x.device.type, enabled=False):
            flat = l2norm(x.detach().float().reshape(-1, self.dim))  # (N, D)
            idx = nearest_code(flat, self.embed.float())  # (N,)
        return idx.reshape(x.shape[:-1])

    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes of the given indices.

        Parameters
        ----------
        indices : torch.Tensor of int, shape (...)

        Returns
        -------
        torch.Tensor, shape (..., D)
        """
        if indices.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise TypeError(f"indices must be an integer tensor, got {indices.dtype}.")
        if indices.numel() and (indices.min() < 0 or indices.max() >= self.codebook_size):
            raise ValueError(
                f"indices must be in [0, {self.codebook_size}), got range "
                f"[{int(indices.min())}, {int(indices.max())}]."
            )
        return F.embedding(indices.long(), self.embed)

    def _check_input(self, x: torch.Tensor) -> None:
        check_type("x", x, torch.Tensor, "a torch.Tensor")
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(f"expected input of shape (..., {self.dim}), got {tuple(x.shape)}.")
        if not x.is_floating_point():
            raise TypeError(f"expected a floating-point tensor, got {x.dtype}.")

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> QuantizerOutput:
        """Quantise ``x``; in training mode also initialise/update the codebook.

        Parameters
        ----------
        x : torch.Tensor, shape (..., D)
            Encoder outputs (l2-normalised here).

        Returns
        -------
        QuantizerOutput
            ``quantized`` (..., D), ``indices`` (...), ``commit_loss`` (scalar), ``counts`` (K,).
        """
        self._check_input(x)
        lead = x.shape[:-1]
        with torch.autocast(device_type=x.device.type, enabled=False):
            z = l2norm(x.float().reshape(-1, self.dim))  # (N, D)
            if self.training and not bool(self.initted):
                self._init_kmeans(z.detach())
            idx = nearest_code(z.detach(), self.embed)  # (N,)
            counts = torch.bincount(idx, minlength=self.codebook_size).to(z.dtype)  # (K,)
            q = F.embedding(idx, self.embed)  # (N, D), codes before this step's update
            commit = F.mse_loss(z, q.detach())
            if self.training:
                self._ema_update(z.detach(), idx, counts)
            q_st = z + (q - z).detach()  # straight-through
        return QuantizerOutput(
            quantized=q_st.reshape(*lead, self.dim),
            indices=idx.reshape(lead),
            commit_loss=commit,
            counts=counts.detach(),
        )

    # ------------------------------------------------------------------- update
    @torch.no_grad()
    def _init_kmeans(self, z: torch.Tensor) -> None:
        """Spherical k-means on ``z`` (N, D), computed on rank 0 and broadcast."""
        means, counts = kmeans(z, self.codebook_size, self.kmeans_iters, spherical=True)
        means, counts = means.contiguous(), counts.contiguous()
        self.broadcast_fn(means)
        self.broadcast_fn(counts)
        self.embed.copy_(l2norm(means))
        self.cluster_size.copy_(counts)
        self.embed_sum.copy_(self.embed * counts[:, None])
        self.initted.fill_(True)
        logger.debug(
            "k-means initialised a %d x %d codebook from %d vectors",
            self.codebook_size,
            self.dim,
            z.shape[0],
        )

    @torch.no_grad()
    def _ema_update(self, z: torch.Tensor, idx: torch.Tensor, counts: torch.Tensor) -> None:
        """EMA update of the codes (statistics all-reduced first), then dead-code restarts.

        ``z`` (N, D), ``idx`` (N,), ``counts`` (K,). ``cluster_size`` is the EMA of the
        per-step counts under both rules.
        """
        counts = counts.clone()
        sums = torch.zeros_like(self.embed_sum).index_add_(0, idx, z)  # (K, D)
        self.all_reduce_fn(counts)
        self.all_reduce_fn(sums)
        self.usage.add_(counts.double())
        self.cluster_size.lerp_(counts, 1.0 - self.decay)
        if self.update == "norm_ema":
            used = counts > 0  # (K,)
            means = l2norm(sums / counts.clamp_min(1.0)[:, None])  # (K, D)
            means = torch.where(used[:, None], means, self.embed)
            self.embed.copy_(l2norm(self.embed * self.decay + means * (1.0 - self.decay)))
        else:
            self.embed_sum.lerp_(sums, 1.0 - self.decay)
            n = self.cluster_size.sum()
            smoothed = (self.cluster_size + self.eps) / (n + self.codebook_size * self.eps) * n
            self.embed.copy_(l2norm(self.embed_sum / smoothed[:, None]))
        if self.threshold_ema_dead_code > 0:
            self._restart_dead_codes(z)

    @torch.no_grad()
    def _restart_dead_codes(self, z: torch.Tensor) -> None:
        """Replace codes with EMA usage below the threshold by random vectors of ``z`` (N, D).

        The dead mask is identical on every rank (it depends on all-reduced statistics); the
        replacement vectors are drawn on rank 0 and broadcast.
        """
        dead = self.cluster_size < self.threshold_ema_dead_code  # (K,)
        n_dead = int(dead.sum())
        if n_dead == 0 or z.shape[0] == 0:
            return
        pick = torch.randint(0, z.shape[0], (n_dead,), device="cpu").to(z.device)
        new = z[pick].contiguous()  # (n_dead, D)
        self.broadcast_fn(new)
        new = l2norm(new)
        reset = self.threshold_ema_dead_code
        self.embed[dead] = new
        self.cluster_size[dead] = reset
        self.embed_sum[dead] = new * reset
        self.num_restarts.add_(n_dead)

    # ------------------------------------------------------------------ metrics
    def reset_usage(self) -> None:
        """Zero the cumulative ``usage`` counters."""
        self.usage.zero_()

    def perplexity(self) -> float:
        """Perplexity of the cumulative training usage (see :func:`perplexity`)."""
        return perplexity(self.usage)

    def fraction_used(self, min_count: float = 1.0) -> float:
        """Fraction of codes used at least ``min_count`` times in training so far."""
        return fraction_used(self.usage, min_count)
