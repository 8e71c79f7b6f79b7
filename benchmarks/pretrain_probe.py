"""Does masked-token pretraining help? A linear probe on the built-in synthetic data.

Protocol (all on CPU, minutes):

1. Data: :func:`codebrain.data.write_synthetic_dataset` (motor imagery, left vs right hand,
   ``--subjects`` subjects). Subjects ``1..n_pre`` give the *unlabelled* pretraining corpus
   (fixed 4 s windows, 2 s stride, 19 channels at 200 Hz); the probe uses the event-locked 4 s
   imagery windows, trained on the same subjects and tested on the remaining, **held-out
   subjects** (never seen in any pretraining stage). Every band of ``--bands`` is one full
   repetition of the protocol with that band-pass (default: the motor-imagery band 4-40 Hz,
   and the paper's 0.3-75 Hz as an ablation).
2. Stage 1: a small TFDual-Tokenizer is trained briefly on the pretraining corpus
   (its own loss: temporal + amplitude + phase reconstruction and commitment terms).
3. Stage 2: a small CodeBrain backbone is pretrained with :func:`codebrain.training.pretrain`
   (masked-token prediction, mask ratio 0.5).
4. Probe: ``encode`` features (eval mode) mean-pooled over patches (one ``D``-vector per
   channel, concatenated: ``C * D`` features; also the fully pooled ``D``-vector), standardised,
   logistic regression; balanced accuracy on the held-out subjects. The same architecture with
   the *same initial weights* the pretraining started from is the random baseline.

Also reported for context: a classical log band-power baseline (mu 8-13 Hz and beta 13-30 Hz
per channel), a *token-histogram* probe (logistic regression on each channel's frequency of
every temporal and frequency token: how much of the class the Stage 1 vocabulary carries, i.e.
what Stage 2 can learn from its targets), and the masked-token validation accuracy against
always predicting the most frequent token.

Why the band matters at this scale: with 0.3-75 Hz the 64 + 64 codes of the small tokenizer are
spent on what dominates the signal's variance (eye blinks of 80-150 µV, slow drifts, the 1/f
background), the tokens carry less of the 8-30 Hz mu/beta desynchronisation that separates the
classes, and masked-token prediction has little of it to teach.

Usage::

    python benchmarks/pretrain_probe.py                       # defaults used for the README
    python benchmarks/pretrain_probe.py --bands 4-40 --seeds 0 --pretrain-steps 400
    python benchmarks/pretrain_probe.py --plot-only benchmarks/results/pretrain_probe.json

Writes ``benchmarks/results/pretrain_probe.json`` and ``pretrain_probe.png`` next to it.
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
from torch.utils.data import Dataset

from codebrain import CodeBrain
from codebrain.training.pretrain import PretrainConfig, evaluate_masked_tokens, pretrain
from codebrain.utils.io import atomic_write_json

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


def parse_band(text: str) -> tuple[float, float]:
    """``"4-40"`` -> ``(4.0, 40.0)`` (band-pass edges in Hz)."""
    try:
        lo, hi = (float(v) for v in text.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a band is LOW-HIGH in Hz (e.g. 4-40), got {text!r}"
        ) from None
    if not 0 <= lo < hi:
        raise argparse.ArgumentTypeError(f"band {text!r}: need 0 <= LOW < HIGH")
    return lo, hi


def load_data(
    root: Path, n_subjects: int, n_pre: int, seed: int, band: tuple[float, float]
) -> dict:
    """Synthetic EDF -> pretraining windows (subjects 1..n_pre) and labelled probe windows."""
    from codebrain.data import PreprocessConfig, load_windows, write_synthetic_dataset

    paths = write_synthetic_dataset(root, n_subjects=n_subjects, n_trials=40, seed=seed)
    filt = {"l_freq": band[0], "h_freq": band[1]}
    fixed = load_windows(
        paths[:n_pre],
        PreprocessConfig(window_seconds=4.0, stride_seconds=2.0, **filt),
        mode="fixed",
        verbose="error",
    )
    events = load_windows(
        paths,
        PreprocessConfig(window_seconds=4.0, **filt),
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


def train_tokenizer(
    ds: Dataset, n_chans: int, n_times: int, steps: int, seed: int, out_dir: Path
) -> tuple:
    """Brief Stage 1 training of a small TFDual-Tokenizer on ``ds`` (the package's trainer)."""
    from codebrain.models.tokenizer import TokenizerConfig
    from codebrain.training import TokenizerTrainConfig
    from codebrain.training import train_tokenizer as fit

    model_cfg = TokenizerConfig(
        max_chans=n_chans,
        max_patches=n_times // 200,
        embed_dim=50,  # the TFConv width of 200-sample patches with 2 conv channels
        conv_channels=2,
        depth=2,
        num_heads=5,
        decoder_depth=1,
        codebook_size_t=64,
        codebook_size_f=64,
        code_dim=16,
        # Fast EMA so unused codes are restarted within a short run; with the default 0.99
        # a run of ~100 steps leaves the frequency codebook collapsed onto one or two codes.
        ema_decay=0.8,
        kmeans_init=True,
        dead_code_threshold=1.0,
    )
    loop_cfg = TokenizerTrainConfig(
        max_steps=steps,
        batch_size=16,
        lr=2e-3,
        warmup_steps=max(1, steps // 10),
        min_lr_ratio=0.05,
        grad_clip=1.0,
        checkpoint_every=steps,
        keep_checkpoints=1,
        log_every=max(1, steps // 20),
        seed=seed,
        resume=False,
        progress=False,
    )
    result = fit(ds, loop_cfg, out_dir, model_config=model_cfg)
    tok = result.model.eval()
    with torch.no_grad():
        ids_t, ids_f = tok.tokenize(torch.stack([ds[i] for i in range(min(len(ds), 256))]))
    usage = {"t": int(ids_t.unique().numel()), "f": int(ids_f.unique().numel())}
    first, last = result.history[0]["loss"], result.history[-1]["loss"]
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


@torch.no_grad()
def token_histograms(tokenizer, x: np.ndarray) -> np.ndarray:
    """Per-channel token frequencies ``(N, C * (K_t + K_f))`` of windows ``x`` (N, C, T)."""
    out = []
    for i in range(0, len(x), 64):
        ids_t, ids_f = tokenizer.tokenize(torch.as_tensor(x[i : i + 64], dtype=torch.float32))
        hists = [
            torch.nn.functional.one_hot(ids, k).float().mean(2)  # (B, C, K)
            for ids, k in (
                (ids_t, tokenizer.config.codebook_size_t),
                (ids_f, tokenizer.config.codebook_size_f),
            )
        ]
        out.append(torch.cat(hists, -1).flatten(1).numpy())
    return np.concatenate(out)


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
        data["pre_train"],
        data["n_chans"],
        data["n_times"],
        args.tokenizer_steps,
        seed,
        work / f"tokenizer_seed{seed}",
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
    out["token_histogram_probe"] = probe(
        token_histograms(tok, data["x_train"]),
        data["y_train"],
        token_histograms(tok, data["x_test"]),
        data["y_test"],
    )
    return out


def _summary(runs: list[dict], path: tuple[str, ...]) -> dict:
    """Mean, std and per-seed values of one nested field of ``runs``."""
    vals = []
    for r in runs:
        v = r
        for k in path:
            v = v[k]
        vals.append(v)
    return {"mean": float(np.mean(vals)), "std": float(np.std(vals)), "values": vals}


def run_band(args: argparse.Namespace, band: tuple[float, float], tmp: Path) -> dict:
    """The whole protocol for one band-pass: data, classical baseline, every seed."""
    data = load_data(tmp / "edf", args.subjects, args.pretrain_subjects, args.data_seed, band)
    logger.info(
        "band %g-%g Hz: pretraining windows %d (+%d val); probe train %d / held-out test %d",
        *band,
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
    runs = [run_seed(data, args, s, tmp / f"band{band[0]:g}-{band[1]:g}") for s in args.seeds]
    summary = {
        f"{model}/{kind}": _summary(runs, ("probe", model, kind, "test_balanced_accuracy"))
        for model in ("pretrained", "random_init")
        for kind in ("channel_pooled", "global_pooled")
    }
    summary["token_histogram"] = _summary(runs, ("token_histogram_probe", "test_balanced_accuracy"))
    for head in ("acc_t", "acc_f"):
        summary[f"masked_token_{head}"] = _summary(runs, ("masked_token_val", "after", head))
        summary[f"majority_token_{head}"] = _summary(
            runs, ("masked_token_val", "majority_token", head)
        )
    return {
        "band_hz": list(band),
        "classical_log_bandpower": classical,
        "summary": summary,
        "runs": runs,
    }


def plot(record: dict, path: Path) -> None:
    """Probe accuracy (pretrained vs random init, per seed) and masked-token accuracy, per band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from codebrain.utils.io import atomic_path

    bands = record["bands"]
    labels = [f"{b['band_hz'][0]:g}-{b['band_hz'][1]:g} Hz" for b in bands]
    x = np.arange(len(bands))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    bars = (
        ("random_init/channel_pooled", "random init", "tab:gray", -0.3),
        ("pretrained/channel_pooled", "pretrained", "tab:blue", -0.1),
        ("token_histogram", "token histogram", "tab:orange", 0.1),
    )
    for key, label, color, dx in bars:
        means = [b["summary"][key]["mean"] for b in bands]
        ax.bar(x + dx, means, width=0.2, color=color, label=label, align="edge")
        for xi, b in zip(x, bands, strict=True):
            vals = b["summary"][key]["values"]
            ax.plot([xi + dx + 0.1] * len(vals), vals, "k.", markersize=4)
    for xi, b in zip(x, bands, strict=True):
        acc = b["classical_log_bandpower"]["test_balanced_accuracy"]
        ax.hlines(acc, xi - 0.35, xi + 0.35, colors="tab:green", linestyles="--")
    ax.plot([], [], "--", color="tab:green", label="log band power")
    ax.axhline(0.5, color="k", linewidth=0.6)
    ax.set_xticks(x, labels)
    ax.set_ylim(0.4, 1.12)
    ax.set_ylabel("balanced accuracy, held-out subjects")
    ax.set_title("linear probe (channel-pooled features), dots = seeds", fontsize=10)
    ax.legend(fontsize=8, loc="upper center", ncol=4, handlelength=1.2, columnspacing=0.8)

    ax = axes[1]
    for j, (head, name) in enumerate((("acc_t", "temporal"), ("acc_f", "frequency"))):
        dx = -0.3 + 0.3 * j
        pre = [b["summary"][f"masked_token_{head}"]["mean"] for b in bands]
        maj = [b["summary"][f"majority_token_{head}"]["mean"] for b in bands]
        ax.bar(x + dx, pre, width=0.15, align="edge", label=f"{name} tokens: pretrained")
        ax.bar(x + dx + 0.15, maj, width=0.15, align="edge", label=f"{name}: most frequent")
    ax.set_xticks(x, labels)
    ax.set_ylabel("masked-token accuracy (validation)")
    ax.set_title("masked-token prediction after pretraining", fontsize=10)
    ax.legend(fontsize=8)
    a = record["args"]
    fig.suptitle(
        f"Masked-token pretraining on synthetic MI: tokenizer {a['tokenizer_steps']} + backbone "
        f"{a['pretrain_steps']} steps, {len(a['seeds'])} seed(s)",
        fontsize=11,
    )
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--subjects", type=int, default=12)
    p.add_argument("--pretrain-subjects", type=int, default=8)
    p.add_argument(
        "--bands",
        type=parse_band,
        nargs="+",
        default=[(4.0, 40.0), (0.3, 75.0)],
        help="band-pass edges LOW-HIGH in Hz, one protocol run each (default: 4-40 0.3-75)",
    )
    p.add_argument("--tokenizer-steps", type=int, default=400)
    p.add_argument("--pretrain-steps", type=int, default=1500)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--threads", type=int)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "pretrain_probe.json"))
    p.add_argument("--plot-only", type=Path, help="redraw the figure of an existing JSON result")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("codebrain").setLevel(logging.WARNING)
    if args.plot_only:
        record = json.loads(args.plot_only.read_text())
        plot(record, args.plot_only.with_suffix(".png"))
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        bands = [run_band(args, band, Path(tmp)) for band in args.bands]

    record = {
        "benchmark": "pretrain_probe",
        "protocol": {
            "data": f"synthetic motor imagery (left vs right hand), {args.subjects} subjects; "
            f"pretraining on unlabelled 4 s windows of subjects 1-{args.pretrain_subjects}; "
            f"probe trained on their labelled trials, tested on held-out subjects "
            f"{args.pretrain_subjects + 1}-{args.subjects}; one run per band-pass",
            "tokenizer": "TFDualTokenizer embed 32, depth 2, codebooks 64 + 64 (EMA decay 0.8), "
            f"{args.tokenizer_steps} steps of batch 16",
            "backbone": "CodeBrain res/skip/out 32, 2 layers, 19 ch x 4 patches",
            "pretraining": f"{args.pretrain_steps} steps, batch {args.batch_size}, lr {args.lr}, "
            "mask ratio 0.5",
            "probe": "StandardScaler + LogisticRegression(C=0.1) on eval-mode encode "
            "features mean-pooled over patches (channel_pooled: C*D) or over everything "
            "(global_pooled: D); balanced accuracy. Random init = the same initial weights "
            "the pretraining started from",
        },
        "args": {k: (list(map(list, v)) if k == "bands" else v) for k, v in vars(args).items()},
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "bands": bands,
        "seconds_total": time.perf_counter() - t_start,
    }
    record["args"].pop("plot_only")
    record["args"].pop("out")  # where it was written, not how it was measured
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, record)
    plot(record, out.with_suffix(".png"))
    for b in bands:
        s = b["summary"]
        print(
            f"band {b['band_hz'][0]:g}-{b['band_hz'][1]:g} Hz: probe pretrained "
            f"{s['pretrained/channel_pooled']['mean']:.3f} vs random init "
            f"{s['random_init/channel_pooled']['mean']:.3f} (seeds "
            f"{s['pretrained/channel_pooled']['values']} vs "
            f"{s['random_init/channel_pooled']['values']}); token histogram "
            f"{s['token_histogram']['mean']:.3f}; log band power "
            f"{b['classical_log_bandpower']['test_balanced_accuracy']:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
