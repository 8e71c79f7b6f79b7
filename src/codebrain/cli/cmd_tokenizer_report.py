"""``codebrain tokenizer-report``: inspect a trained TFDual-Tokenizer on a corpus.

Writes into ``--out`` (built under a temporary name, then renamed into place):

- ``usage.png``: code-usage histograms of the temporal and frequency codebooks (codes sorted
  by frequency), with the fraction of codes used and the perplexity;
- ``reconstructions.png``: example patches with their reconstructions, in time (the waveform)
  and in frequency (the per-sample z-scored amplitude spectrum, bins 0 to S/2);
- ``cooccurrence.png``: the cross-domain co-occurrence matrix of temporal id × frequency id,
  for the most used codes of each codebook;
- ``report.json``: the numbers behind the figures (usage, perplexity, reconstruction losses).

Example::

    codebrain tokenizer-report --tokenizer runs/tok/tokenizer --corpus corpus/ --out report/
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from codebrain.cli import CLIError

__all__ = ["register", "run", "write_tokenizer_report"]

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``tokenizer-report`` subcommand."""
    p = subparsers.add_parser(
        "tokenizer-report",
        help="figures of a trained TFDual-Tokenizer: code usage, reconstructions, co-occurrence",
        description=(
            "Tokenize windows of a corpus with a trained TFDual-Tokenizer and write PNG figures "
            "(code usage, example reconstructions, temporal x frequency token co-occurrence) "
            "and report.json into --out."
        ),
        epilog="example: codebrain tokenizer-report --tokenizer runs/tok/tokenizer "
        "--corpus corpus/ --out report/",
    )
    p.add_argument("--tokenizer", required=True, help="folder written by save_pretrained")
    p.add_argument(
        "--corpus",
        required=True,
        help="built corpus folder (manifest.json) or folder of .npy (n_windows, n_chans, n_times)",
    )
    p.add_argument(
        "--out",
        required=True,
        help="output folder (replaced atomically; an existing folder that is not an earlier "
        "report needs --force)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing --out folder")
    p.add_argument("--n-windows", type=int, default=256, help="windows sampled (256)")
    p.add_argument("--n-examples", type=int, default=4, help="patches shown (4)")
    p.add_argument("--top", type=int, default=32, help="codes per axis in co-occurrence (32)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run)


def _save(fig: Any, path: Path) -> None:
    fig.savefig(path, format="png", dpi=110, bbox_inches="tight")


@torch.no_grad()
def write_tokenizer_report(
    model: Any,
    dataset: Dataset,
    out_dir: str | os.PathLike,
    *,
    n_windows: int = 256,
    n_examples: int = 4,
    top: int = 32,
    batch_size: int = 32,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Tokenize sampled windows and write the report figures and ``report.json``.

    Parameters
    ----------
    model : TFDualTokenizer
    dataset : torch.utils.data.Dataset
        Items: tensors ``(n_chans, n_times)`` or tuples whose first element is one.
    out_dir : path-like
        Replaced atomically by the finished report folder.
    n_windows : int
        Windows drawn at random (without replacement; all if fewer).
    n_examples : int
        Patches shown in ``reconstructions.png``.
    top : int
        Most used codes of each codebook in the co-occurrence matrix.
    batch_size : int
    seed : int
        Seed of the window sample and the example choice.
    device : str or torch.device

    Returns
    -------
    dict
        The content of ``report.json``.
    """
    from matplotlib.figure import Figure  # standalone figures: no pyplot state, no GUI

    from codebrain.layers.quantize import fraction_used, perplexity
    from codebrain.utils.io import atomic_replace_dir

    for name, value in (("n_windows", n_windows), ("n_examples", n_examples), ("top", top)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}.")
    n_total = len(dataset)  # type: ignore[arg-type]
    if n_total == 0:
        raise ValueError("the dataset is empty.")
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(n_total, size=min(n_windows, n_total), replace=False))
    model = model.to(device).eval()
    cfg = model.config

    ids_t, ids_f, sums, n_batches = [], [], {}, 0
    example = None
    for start in range(0, len(picks), batch_size):
        items = [dataset[int(i)] for i in picks[start : start + batch_size]]
        x = torch.stack(
            [
                torch.as_tensor(it[0] if isinstance(it, (tuple, list)) else it, dtype=torch.float32)
                for it in items
            ]
        ).to(device)  # (B, C, T)
        out = model(x)
        ids_t.append(out.ids_t.flatten().cpu())
        ids_f.append(out.ids_f.flatten().cpu())
        for k, v in out.losses.as_dict().items():
            sums[k] = sums.get(k, 0.0) + float(v)
        n_batches += 1
        if example is None:
            example = out
    all_t = torch.cat(ids_t)
    all_f = torch.cat(ids_f)
    counts_t = torch.bincount(all_t, minlength=cfg.codebook_size_t).float()
    counts_f = torch.bincount(all_f, minlength=cfg.codebook_size_f).float()
    report = {
        "n_windows": int(len(picks)),
        "n_patches": int(all_t.numel()),
        "codebook_t": {
            "size": cfg.codebook_size_t,
            "fraction_used": fraction_used(counts_t),
            "perplexity": perplexity(counts_t),
        },
        "codebook_f": {
            "size": cfg.codebook_size_f,
            "fraction_used": fraction_used(counts_f),
            "perplexity": perplexity(counts_f),
        },
        "losses": {k: v / n_batches for k, v in sums.items()},
    }
    joint = all_t.long() * cfg.codebook_size_f + all_f.long()
    report["distinct_pairs"] = int(torch.unique(joint).numel())

    with atomic_replace_dir(out_dir) as tmp:
        # --- usage histograms
        fig = Figure(figsize=(11, 3.6))
        for ax, counts, name in (
            (fig.add_subplot(1, 2, 1), counts_t, "temporal"),
            (fig.add_subplot(1, 2, 2), counts_f, "frequency"),
        ):
            sorted_counts = torch.sort(counts, descending=True).values.numpy()
            ax.bar(np.arange(len(sorted_counts)), sorted_counts, width=1.0, color="tab:blue")
            ax.set_yscale("symlog")
            ax.set_xlabel("code rank")
            ax.set_ylabel("patches")
            ax.set_title(
                f"{name} codebook: {fraction_used(counts):.0%} of {len(counts)} codes used, "
                f"perplexity {perplexity(counts):.1f}",
                fontsize=9,
            )
        _save(fig, tmp / "usage.png")

        # --- reconstructions of example patches
        if example is None:  # pragma: no cover - picks is never empty
            raise RuntimeError("no batch was tokenized.")
        b, c, p, s = example.recon_time.shape
        flat = rng.choice(b * c * p, size=min(n_examples, b * c * p), replace=False)
        fig = Figure(figsize=(10, 2.4 * len(flat)))
        freqs = np.fft.rfftfreq(s, d=1.0 / s)  # cycles per patch
        nf = len(freqs)  # the full-DFT targets are symmetric: bins 0 .. S/2 are shown
        for row, idx in enumerate(flat):
            bi, rem = divmod(int(idx), c * p)
            ci, pi = divmod(rem, p)
            ax_t = fig.add_subplot(len(flat), 2, 2 * row + 1)
            ax_t.plot(example.targets.time[bi, ci, pi].cpu().numpy(), label="target", lw=1)
            ax_t.plot(example.recon_time[bi, ci, pi].float().cpu().numpy(), label="recon", lw=1)
            ax_t.set_title(
                f"window {int(picks[bi])} ch {ci} patch {pi}: time "
                f"(token t={int(example.ids_t[bi, ci, pi])})",
                fontsize=8,
            )
            ax_f = fig.add_subplot(len(flat), 2, 2 * row + 2)
            target_amp = example.targets.amp[bi, ci, pi, :nf].cpu().numpy()
            ax_f.plot(freqs, target_amp, label="target", lw=1)
            recon_amp = example.recon_amp[bi, ci, pi, :nf].float().cpu().numpy()
            ax_f.plot(freqs, recon_amp, label="recon", lw=1)
            ax_f.set_title(
                f"amplitude spectrum (token f={int(example.ids_f[bi, ci, pi])})", fontsize=8
            )
            if row == 0:
                ax_t.legend(fontsize=7)
            if row == len(flat) - 1:
                ax_t.set_xlabel("sample")
                ax_f.set_xlabel("frequency (cycles per patch)")
        fig.tight_layout()
        _save(fig, tmp / "reconstructions.png")

        # --- cross-domain co-occurrence of the most used codes
        top_t = torch.argsort(counts_t, descending=True)[: min(top, cfg.codebook_size_t)]
        top_f = torch.argsort(counts_f, descending=True)[: min(top, cfg.codebook_size_f)]
        pos_t = torch.full((cfg.codebook_size_t,), -1, dtype=torch.long)
        pos_f = torch.full((cfg.codebook_size_f,), -1, dtype=torch.long)
        pos_t[top_t] = torch.arange(len(top_t))
        pos_f[top_f] = torch.arange(len(top_f))
        rt, rf = pos_t[all_t], pos_f[all_f]
        keep = (rt >= 0) & (rf >= 0)
        mat = torch.zeros(len(top_t), len(top_f))
        mat.index_put_((rt[keep], rf[keep]), torch.ones(int(keep.sum())), accumulate=True)
        fig = Figure(figsize=(7.5, 6.5))
        ax = fig.add_subplot(1, 1, 1)
        im = ax.imshow(mat.numpy(), aspect="auto", cmap="viridis", interpolation="nearest")
        fig.colorbar(im, ax=ax, label="patches")
        ax.set_xticks(range(len(top_f)))
        ax.set_xticklabels([str(int(i)) for i in top_f], rotation=90, fontsize=6)
        ax.set_yticks(range(len(top_t)))
        ax.set_yticklabels([str(int(i)) for i in top_t], fontsize=6)
        ax.set_xlabel("frequency token id")
        ax.set_ylabel("temporal token id")
        ax.set_title(
            f"token co-occurrence (top {len(top_t)} x {len(top_f)} codes; "
            f"{report['distinct_pairs']} distinct pairs)",
            fontsize=9,
        )
        _save(fig, tmp / "cooccurrence.png")
        report["cooccurrence"] = {
            "temporal_ids": [int(i) for i in top_t],
            "frequency_ids": [int(i) for i in top_f],
            "counts": mat.long().tolist(),
        }
        (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    logger.info("Wrote tokenizer report to %s", out_dir)
    return report


def run(args: argparse.Namespace) -> int:
    """Run ``tokenizer-report``; returns the exit code."""
    from codebrain.cli._data_args import load_windows
    from codebrain.cli._outputs import check_output
    from codebrain.models.tokenizer import TFDualTokenizer

    tok_dir = Path(args.tokenizer)
    if not tok_dir.is_dir():
        raise CLIError(f"--tokenizer {args.tokenizer!r} is not a folder.")
    check_output(
        args.out,
        kind="dir",
        force=args.force,
        inputs=[args.tokenizer, args.corpus],
        replaceable=("a tokenizer-report folder",),
    )
    model = TFDualTokenizer.from_pretrained(tok_dir)
    dataset = load_windows(args.corpus)
    report = write_tokenizer_report(
        model,
        dataset,
        args.out,
        n_windows=args.n_windows,
        n_examples=args.n_examples,
        top=args.top,
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device,
    )
    print(
        f"tokenizer-report: {report['n_patches']} patches; codes used "
        f"t={report['codebook_t']['fraction_used']:.2f} "
        f"f={report['codebook_f']['fraction_used']:.2f}; perplexity "
        f"t={report['codebook_t']['perplexity']:.1f} f={report['codebook_f']['perplexity']:.1f}; "
        f"figures in {args.out}"
    )
    return 0
