"""Side by side: the authors' TFDual-Tokenizer (now ``TFDualTokenizer``) vs codebrain's earlier
design, at the same small size on the same data and budget.

The earlier design is read from git (``--old-rev``, default the commit before the switch) into a
temporary module; it is not part of the package any more. Both are trained with the same loop
(AdamW, warm-up + cosine, batch 32) on windows whose two sinusoids depend on a class label
(random amplitude and phase per channel, white noise), then compared on held-out windows:

- codebook usage (fraction of codes used, perplexity) of each codebook;
- linear-probe accuracy of logistic regression on per-window token histograms;
- training speed (steps/s, 1 thread) and parameter count.

Usage::

    PYTHONPATH=src python benchmarks/bench_tokenizer_designs.py --steps 300 --seeds 0 1
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from codebrain.layers.quantize import fraction_used, perplexity
from codebrain.models.tokenizer import TFDualTokenizer, TokenizerConfig
from codebrain.training._schedule import build_warmup_cosine_scheduler

S, C, P, K = 64, 4, 4, 64
CLASS_FREQS = np.array([[3, 7], [5, 11], [9, 17], [13, 23]])
ROOT = Path(__file__).resolve().parents[1]


def windows(n: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(CLASS_FREQS), n)
    t = np.arange(P * S) / S
    amp = rng.uniform(0.5, 1.5, (n, C, 2, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, C, 2, 1))
    x = (amp * np.sin(2 * np.pi * CLASS_FREQS[y][:, None, :, None] * t + phase)).sum(2)
    x += 0.3 * rng.standard_normal((n, C, P * S))
    return torch.from_numpy(x.astype(np.float32)), y


def load_old_design(rev: str):
    """The earlier ``codebrain.models.tokenizer`` module, from git revision ``rev``."""
    src = subprocess.run(
        ["git", "show", f"{rev}:src/codebrain/models/tokenizer.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "old_tokenizer.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("old_tokenizer", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_tokenizer"] = module
    spec.loader.exec_module(module)
    return module


def build(design: str, old) -> torch.nn.Module:
    common = dict(
        patch_size=S,
        max_chans=C,
        max_patches=P,
        embed_dim=32,
        depth=2,
        num_heads=2,
        decoder_depth=1,
        codebook_size_t=K,
        codebook_size_f=K,
        code_dim=8,
        ema_decay=0.9,
    )
    if design == "authors":
        return TFDualTokenizer(TokenizerConfig(**common, conv_channels=4))
    if design == "authors+restarts":  # the release plus k-means init and dead-code restarts
        cfg = TokenizerConfig(**common, conv_channels=4, kmeans_init=True, dead_code_threshold=0.5)
        return TFDualTokenizer(cfg)
    # the earlier design, with its own defaults (k-means init, restarts)
    return old.TFDualTokenizer(old.TokenizerConfig(**common, conv_channels=8))


def histograms(model, x: torch.Tensor) -> np.ndarray:
    ids_t, ids_f = model.tokenize(x)
    h = torch.zeros(len(x), 2 * K)
    h.scatter_add_(1, ids_t.flatten(1), torch.ones(ids_t.flatten(1).shape))
    h.scatter_add_(1, ids_f.flatten(1) + K, torch.ones(ids_f.flatten(1).shape))
    return h.numpy()


def run(design: str, old, seed: int, steps: int, x_tr, y_tr, x_te, y_te) -> dict:
    from sklearn.linear_model import LogisticRegression

    torch.manual_seed(seed)
    model = build(design, old).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    sched = build_warmup_cosine_scheduler(
        opt, warmup_steps=steps // 10, total_steps=steps, min_lr_ratio=0.1
    )
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for _ in range(steps):
        batch = x_tr[torch.randint(0, len(x_tr), (32,), generator=g)]
        loss = model(batch).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 3.0)
        opt.step()
        sched.step()
    elapsed = time.perf_counter() - t0
    model.eval()
    ids_t, ids_f = model.tokenize(x_te)
    ct = torch.bincount(ids_t.flatten(), minlength=K).float()
    cf = torch.bincount(ids_f.flatten(), minlength=K).float()
    clf = LogisticRegression(max_iter=3000).fit(histograms(model, x_tr), y_tr)
    return {
        "design": design,
        "seed": seed,
        "params": sum(p.numel() for p in model.parameters()),
        "steps_per_s": round(steps / elapsed, 2),
        "used_t": round(fraction_used(ct), 3),
        "used_f": round(fraction_used(cf), 3),
        "perplexity_t": round(perplexity(ct), 1),
        "perplexity_f": round(perplexity(cf), 1),
        "probe_acc": round(float(clf.score(histograms(model, x_te), y_te)), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--old-rev", default="01931d6", help="git revision of the earlier design")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/tokenizer_designs.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    old = load_old_design(args.old_rev)
    x_tr, y_tr = windows(400, seed=0)
    x_te, y_te = windows(200, seed=1)
    rows = []
    for seed in args.seeds:
        for design in ("authors", "authors+restarts", "earlier"):
            row = run(design, old, seed, args.steps, x_tr, y_tr, x_te, y_te)
            print(json.dumps(row), flush=True)
            rows.append(row)
    Path(args.out).write_text(
        json.dumps(
            {
                "steps": args.steps,
                "chance": float(np.bincount(y_te).max() / len(y_te)),
                "rows": rows,
            },
            indent=1,
        )  # fmt: skip
    )


if __name__ == "__main__":
    main()
