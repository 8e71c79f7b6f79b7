"""Does masked-token pretraining help? A linear probe on the built-in synthetic data.

Protocol (all on CPU, minutes):

1. Data: :func:`codebrain.data.write_synthetic_dataset` (motor imagery, left vs right hand,
   ``--subjects`` subjects). Subjects ``1..n_pre`` give the *unlabelled* pretraining corpus
   (fixed 4 s windows, 2 s stride, 19 channels at 200 Hz); the probe uses the event-locked 4 s
   imagery windows, trained on the same subjects and tested on the remaining, **held-out
   subjects** (never seen in any pretraining stage).
2. Stage 1: a small TFDual-Tokenizer is trained briefly on the pretraining corpus
   (its own loss: temporal + amplitude + phase reconstruction and commitment terms).
3. Stage 2: a small CodeBrain backbone is pretrained with :func:`codebrain.training.pretrain`
   (masked-token prediction, mask ratio 0.5).
4. Probe: ``encode`` features (eval mode) mean-pooled over patches (one ``D``-vector per
   channel, concatenated: ``C * D`` features; also the fully pooled ``D``-vector), standardised,
   logistic regression; balanced accuracy on the held-out subjects. The same architecture with
   the *same initial weights* the pretraining started from is the random baseline.

Also reported for context: a classical log band-power baseline (mu 8-13 Hz and beta 13-30 Hz
per channel) and the masked-token validation accuracy against always predicting the most
frequent token.

Usage::

    python benchmarks/pretrain_probe.py                       # defaults used for the README
    python benchmarks/pretrain_probe.py --seeds 0 1 2 --pretrain-steps 400

Writes ``benchmarks/results/pretrain_probe.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from codebrain import CodeBrain
from codebrain.training.pretrain import PretrainConfig, evaluate_masked_tokens, pretrain

logger = logging.getLogger("pretrain_probe")

CLASSES = {"left_hand": 0, "right_hand": 1}


class _Windows(Dataset):
    """Tensor windows ``(C, T)`` of a :class:`~codebrain.data.WindowDataset`, labels dropped."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = torch.as_tensor(np.asarray(data, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.data[i]


def load_data(root: Path, n_subjects: int, n_pre: int, seed: int) -> dict:
    """Synthetic EDF -> pretraining windows (subjects 1..n_pre) and labelled probe windows."""
    from codebrain.data import PreprocessConfig, load_windows, write_synthetic_dataset

    paths = write_synthetic_dataset(root, n_subjects=n_subjects, n_trials=40, seed=seed)
    fixed = load_windows(
        paths[:n_pre],
        PreprocessConfig(window_seconds=4.0, stride_seconds=2.0),
        mode="fixed",
        verbose="error",
    )
    events = load_windows(
        paths,
        PreprocessConfig(window_seconds=4.0),
        mode="events",
        event_id=CLASSES,
        verbose="error",
    )
    subjects = np.asarray(events.subject_ids).astype(int)
    train = subjects <= n_pre
    x = np.stack([events[i][0].numpy() for i in range(len(events))])
    y = np.asarray([int(events[i][1]) for i in range(len(events))])
    pre = np.stack([fixed[i][0].numpy() for i in range(len(fixed))])
    # Hold out 10 % of the pretraining windows for masked-token validation.
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pre))
    n_val = max(1, len(pre) // 10)
    return {
        "pre_train": _Windows(pre[order[n_val:]]),
        "pre_val": _Windows(pre[order[:n_val]]),
        "x_train": x[train],
        "y_train": y[train],
        "x_test": x[~train],
        "y_test": y[~train],
        "n_chans": x.shape[1],
        "n_times": x.shape[2],
    }


def train_tokenizer(ds: Dataset, n_chans: int, n_times: int, steps: int, seed: int):
    """Brief Stage 1 training of a small TFDual-Tokenizer on ``ds``."""
    from codebrain.models.tokenizer import TFDualTokenizer, TokenizerConfig

    torch.manual_seed(seed)
    cfg = TokenizerConfig(
        max_chans=n_chans,
        max_patches=n_times // 200,
        embed_dim=32,
        conv_channels=4,
        depth=2,
        num_heads=4,
        decoder_depth=1,
        codebook_size_t=64,
        codebook_size_f=64,
        code_dim=16,
        # Fast EMA so unused codes are restarted within a short run; with the default 0.99
        # a run of ~100 steps leaves the frequency codebook collapsed onto one or two codes.
        ema_decay=0.8,
    )
    tok = TFDualTokenizer(cfg).train()
    opt = torch.optim.AdamW(tok.parameters(), lr=2e-3, weight_decay=1e-4)
    loader = DataLoader(ds, batch_size=16, shuffle=True, drop_last=True)
    step, first, last = 0, None, None
    while step < steps:
        for x in loader:
            out = tok(x)
            opt.zero_grad(set_to_none=True)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(tok.parameters(), 1.0)
            opt.step()
            last = out.loss.item()
            first = first if first is not None else last
            step += 1
            if step >= steps:
                break
    tok.eval()
    with torch.no_grad():
        ids_t, ids_f = tok.tokenize(torch.stack([ds[i] for i in range(min(len(ds), 256))]))
    usage = {"t": int(ids_t.unique().numel()), "f": int(ids_f.unique().numel())}
    logger.info("tokenizer: loss %.3f -> %.3f; codes used t=%d f=%d", first, last, *usage.values())
    return tok, {"loss_first": first, "loss_last": last, "codes_used": usage, "steps": steps}


def new_backbone(n_chans: int, n_times: int, seed: int) -> CodeBrain:
    """The small backbone of this benchmark, initialised from ``seed``."""
    torch.manual_seed(seed)
    return CodeBrain(
        n_outputs=2,
        n_chans=n_chans,
        n_times=n_times,
        res_channels=32,
        skip_channels=32,
        out_channels=32,
        num_res_layers=2,
        s4_lmax=n_chans * (n_times // 200),
        codebook_size_t=64,
        codebook_size_f=64,
        drop_prob=0.1,
    )


@torch.no_grad()
def features(model: CodeBrain, x: np.ndarray) -> dict[str, np.ndarray]:
    """Mean-pooled ``encode`` features: per channel ``(N, C*D)`` and global ``(N, D)``."""
    model.eval()
    out_c, out_g = [], []
    for i in range(0, len(x), 64):
        f = model.encode(torch.as_tensor(x[i : i + 64], dtype=torch.float32))  # (B, C, P, D)
        out_c.append(f.mean(2).flatten(1).numpy())
        out_g.append(f.mean((1, 2)).numpy())
    return {"channel_pooled": np.concatenate(out_c), "global_pooled": np.concatenate(out_g)}


def log_bandpower(x: np.ndarray, sfreq: float = 200.0) -> np.ndarray:
    """Classical baseline: log power in mu (8-13 Hz) and beta (13-30 Hz) per channel."""
    spec = np.abs(np.fft.rfft(x, axis=-1)) ** 2
    freqs = np.fft.rfftfreq(x.shape[-1], 1.0 / sfreq)
    bands = [(8, 13), (13, 30)]
    feats = [np.log(spec[..., (freqs >= lo) & (freqs < hi)].mean(-1) + 1e-12) for lo, hi in bands]
    return np.concatenate(feats, axis=1)


def probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray):
    """Standardised logistic regression; balanced accuracy on the test set."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    clf.fit(train_x, train_y)
    return {
        "test_balanced_accuracy": float(balanced_accuracy_score(test_y, clf.predict(test_x))),
        "train_balanced_accuracy": float(balanced_accuracy_score(train_y, clf.predict(train_x))),
    }


def run_seed(data: dict, args: argparse.Namespace, seed: int, work: Path) -> dict:
    """Tokenizer + pretraining + probes for one seed."""
    t0 = time.perf_counter()
    tok, tok_info = train_tokenizer(
        data["pre_train"], data["n_chans"], data["n_times"], args.tokenizer_steps, seed
    )
    t_tok = time.perf_counter() - t0

    random_model = new_backbone(data["n_chans"], data["n_times"], seed)
    model = new_backbone(data["n_chans"], data["n_times"], seed)  # same initial weights
    val_before = evaluate_masked_tokens(model, tok, data["pre_val"], batch_size=64, seed=seed)
    cfg = PretrainConfig(
        steps=args.pretrain_steps,
        batch_size=args.batch_size,
        lr=args.lr,
        min_lr=args.lr / 20,
        warmup_steps=max(1, args.pretrain_steps // 10),
        log_every=max(1, args.pretrain_steps // 10),
        val_every=0,
        checkpoint_every=0,
        seed=seed,
        progress=False,
    )
    t0 = time.perf_counter()
    result = pretrain(model, tok, data["pre_train"], data["pre_val"], cfg, work / f"seed{seed}")
    t_pre = time.perf_counter() - t0

    # Most-frequent-token accuracy on the validation windows (what a model that ignores the
    # input could reach).
    with torch.no_grad():
        xs = torch.stack([data["pre_val"][i] for i in range(len(data["pre_val"]))])
        ids_t, ids_f = tok.tokenize(xs)
    majority = {
        "acc_t": float(ids_t.flatten().bincount().max() / ids_t.numel()),
        "acc_f": float(ids_f.flatten().bincount().max() / ids_f.numel()),
    }

    out = {"seed": seed, "tokenizer": tok_info, "seconds": {"tokenizer": t_tok, "pretrain": t_pre}}
    out["masked_token_val"] = {
        "before": {k: val_before[k] for k in ("loss", "acc_t", "acc_f")},
        "after": {k: result.val_metrics[k] for k in ("loss", "acc_t", "acc_f")},
        "majority_token": majority,
    }
    probes = {}
    for name, m in (("pretrained", model), ("random_init", random_model)):
        ftr, fte = features(m, data["x_train"]), features(m, data["x_test"])
        probes[name] = {
            kind: probe(ftr[kind], data["y_train"], fte[kind], data["y_test"]) for kind in ftr
        }
    out["probe"] = probes
    return out


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--subjects", type=int, default=12)
    p.add_argument("--pretrain-subjects", type=int, default=8)
    p.add_argument("--tokenizer-steps", type=int, default=100)
    p.add_argument("--pretrain-steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--threads", type=int)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "pretrain_probe.json"))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("codebrain").setLevel(logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = load_data(tmp / "edf", args.subjects, args.pretrain_subjects, args.data_seed)
        logger.info(
            "pretraining windows: %d (+%d val); probe train %d / held-out test %d windows",
            len(data["pre_train"]),
            len(data["pre_val"]),
            len(data["y_train"]),
            len(data["y_test"]),
        )
        classical = probe(
            log_bandpower(data["x_train"]),
            data["y_train"],
            log_bandpower(data["x_test"]),
            data["y_test"],
        )
        runs = [run_seed(data, args, s, tmp) for s in args.seeds]

    def summary(path: tuple[str, ...]) -> dict:
        vals = []
        for r in runs:
            v = r
            for k in path:
                v = v[k]
            vals.append(v)
        return {"mean": float(np.mean(vals)), "std": float(np.std(vals)), "values": vals}

    record = {
        "benchmark": "pretrain_probe",
        "protocol": {
            "data": f"synthetic motor imagery (left vs right hand), {args.subjects} subjects; "
            f"pretraining on unlabelled 4 s windows of subjects 1-{args.pretrain_subjects}; "
            f"probe trained on their labelled trials, tested on held-out subjects "
            f"{args.pretrain_subjects + 1}-{args.subjects}",
            "tokenizer": "TFDualTokenizer embed 32, depth 2, codebooks 64 + 64 (EMA decay 0.8), "
            f"{args.tokenizer_steps} steps of batch 16",
            "backbone": "CodeBrain res/skip/out 32, 2 layers, 19 ch x 4 patches",
            "pretraining": f"{args.pretrain_steps} steps, batch {args.batch_size}, lr {args.lr}, "
            "mask ratio 0.5",
            "probe": "StandardScaler + LogisticRegression(C=0.1) on eval-mode encode "
            "features mean-pooled over patches (channel_pooled: C*D) or over everything "
            "(global_pooled: D); balanced accuracy",
        },
        "args": vars(args),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "classical_log_bandpower": classical,
        "summary": {
            f"{model}/{kind}": summary(("probe", model, kind, "test_balanced_accuracy"))
            for model in ("pretrained", "random_init")
            for kind in ("channel_pooled", "global_pooled")
        },
        "runs": runs,
        "seconds_total": time.perf_counter() - t_start,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    json.dump(record["summary"], sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
