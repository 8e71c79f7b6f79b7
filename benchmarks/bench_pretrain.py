"""Pretraining throughput: windows per second, split into data loading, tokenizer and compute.

Builds a real on-disk corpus (synthetic EDF -> :func:`codebrain.data.build_corpus`, float16
memory-mapped shards) so the data path is the one a pretraining run uses, then times
:func:`codebrain.training.pretrain.pretrain` with a randomly initialised TFDual-Tokenizer
(its cost does not depend on its weights). The first ``--warmup`` steps are excluded.

Sizes (19 channels, the released montage):

``tiny``   4 s windows, res/skip/out 32, 2 layers, codebooks 64 + 64
``small``  4 s windows, res/skip/out 64, 4 layers, codebooks 256 + 256
``paper``  30 s windows, the released configuration (200 wide, 8 layers, 4096 + 4096)

Usage::

    python benchmarks/bench_pretrain.py --size small --steps 20
    python benchmarks/bench_pretrain.py --size paper --device cuda --bf16 --batch-size 32

Writes ``benchmarks/results/pretrain_throughput[_<device>].json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from codebrain import CodeBrain
from codebrain.training.pretrain import PretrainConfig, pretrain

logger = logging.getLogger("bench_pretrain")

SIZES = {
    "tiny": dict(window_seconds=4.0, width=32, layers=2, codebook=64),
    "small": dict(window_seconds=4.0, width=64, layers=4, codebook=256),
    "paper": dict(window_seconds=30.0, width=200, layers=8, codebook=4096),
}


# Tokenizer widths per size (the paper-size tokenizer uses the released defaults).
TOKENIZER_SIZES = {
    # embed_dim = the TFConv width of 200-sample patches: 50 with 2 conv channels, 100 with 4
    64: dict(embed_dim=50, conv_channels=2, depth=2, num_heads=5, decoder_depth=1, code_dim=16),
    256: dict(embed_dim=100, conv_channels=4, depth=4, num_heads=4, decoder_depth=1, code_dim=32),
    4096: dict(),
}


def build_corpus_dir(root: Path, window_seconds: float, n_subjects: int) -> Path:
    """Synthetic EDF -> sharded corpus in ``root``; returns the corpus folder."""
    from codebrain.data import PreprocessConfig, build_corpus, write_synthetic_dataset

    edf = write_synthetic_dataset(root / "edf", n_subjects=n_subjects, n_trials=40, seed=0)
    out = root / f"corpus_{window_seconds:g}s"
    build_corpus(edf, out, PreprocessConfig(window_seconds=window_seconds), n_jobs=1)
    return out


def make_tokenizer(codebook: int, n_chans: int, n_times: int) -> torch.nn.Module:
    """A randomly initialised TFDual-Tokenizer with ``codebook`` codes per codebook."""
    from codebrain.models.tokenizer import TFDualTokenizer, TokenizerConfig

    cfg = TokenizerConfig(
        max_chans=n_chans,
        max_patches=max(1, n_times // 200),
        codebook_size_t=codebook,
        codebook_size_f=codebook,
        **TOKENIZER_SIZES[codebook],
    )
    return TFDualTokenizer(cfg).eval()


def run(args: argparse.Namespace) -> dict:
    """Time one configuration; returns the JSON record."""
    from codebrain.data import CorpusDataset

    size = SIZES[args.size]
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        corpus_dir = (
            Path(args.corpus)
            if args.corpus
            else build_corpus_dir(tmp, size["window_seconds"], args.subjects)
        )
        corpus = CorpusDataset(corpus_dir)
        n_chans, n_times = corpus[0].shape
        w = size["width"]
        torch.manual_seed(0)
        model = CodeBrain(
            n_outputs=2,
            n_chans=n_chans,
            n_times=n_times,
            res_channels=w,
            skip_channels=w,
            out_channels=w,
            num_res_layers=size["layers"],
            s4_lmax=n_chans * (n_times // 200),
            codebook_size_t=size["codebook"],
            codebook_size_f=size["codebook"],
        )
        tokenizer = make_tokenizer(size["codebook"], n_chans, n_times)
        marks: dict[int, dict] = {}
        t_marks: dict[int, float] = {}

        def mark(step: int, info: dict) -> None:
            marks[step] = dict(info["timing"])
            t_marks[step] = time.perf_counter()

        total = args.warmup + args.steps
        cfg = PretrainConfig(
            steps=total,
            batch_size=args.batch_size,
            warmup_steps=1,
            log_every=max(1, total),
            checkpoint_every=0,
            num_workers=args.num_workers,
            precision="bf16" if args.bf16 else "fp32",
            device=device,
            progress=False,
        )
        result = pretrain(model, tokenizer, corpus, None, cfg, tmp / "run", step_callback=mark)
        a, b = args.warmup, total
        wall = t_marks[b] - t_marks[a]
        split = {k: marks[b][k] - marks[a][k] for k in ("data_s", "tokenize_s", "compute_s")}
        windows = args.steps * args.batch_size
        record = {
            "benchmark": "pretrain_throughput",
            "size": args.size,
            "device": device,
            "device_name": torch.cuda.get_device_name(0)
            if device.startswith("cuda")
            else platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            # Other processes on a shared machine slow a CPU measurement down: keep the load.
            "load_average_1m_at_end": os.getloadavg()[0],
            "precision": cfg.precision,
            "batch_size": args.batch_size,
            "num_workers": args.num_workers,
            "n_chans": n_chans,
            "n_times": n_times,
            "tokens_per_window": n_chans * (n_times // 200),
            "model_parameters": sum(p.numel() for p in model.parameters()),
            "trained_parameters": sum(
                p.numel() for n, p in model.named_parameters() if not n.startswith("final_layer")
            ),
            "measured_steps": args.steps,
            "warmup_steps_excluded": args.warmup,
            "windows_per_second": windows / wall,
            "ms_per_step": 1000 * wall / args.steps,
            "seconds": {"wall": wall, **split},
            "fraction": {k: v / wall for k, v in split.items()},
            "final_train_loss": result.train_metrics.get("loss"),
        }
    return record


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size", choices=sorted(SIZES), default="small")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--steps", type=int, default=20, help="measured steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--subjects", type=int, default=4, help="synthetic subjects in the corpus")
    p.add_argument("--corpus", help="use an existing corpus folder instead")
    p.add_argument("--device")
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--threads", type=int, help="torch intra-op threads (CPU)")
    p.add_argument("--out", help="JSON output path")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    record = run(args)
    dev = "gpu" if record["device"].startswith("cuda") else "cpu"
    out = Path(
        args.out
        or Path(__file__).parent / "results" / f"pretrain_throughput_{dev}_{args.size}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    json.dump(record, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
