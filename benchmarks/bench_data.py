"""Benchmark the data pipeline: EEG hours preprocessed per minute, and memory vs corpus size.

Writes ``max(--sizes)`` synthetic recordings (EDF+, 250 Hz, 21 channels; not timed), then for
each corpus size builds a corpus with :func:`codebrain.data.build_corpus` in a fresh Python
process and records:

- wall time and throughput (hours of EEG per minute of wall time);
- peak resident memory (VmHWM on Linux, else ``ru_maxrss``) of the parent process and of its largest worker
  (each worker reports its own ``ru_maxrss``), and the parent's peak Python allocation (``tracemalloc``);

and, again in a fresh process, streams every window of the finished corpus through
:class:`codebrain.data.CorpusDataset` (memory-mapped) to show that reading memory does not
grow with the corpus either. Results go to a JSON file.

Run (a few minutes on 2 cores)::

    python benchmarks/bench_data.py --sizes 10 25 50 --n-jobs 2 --out bench_data.json

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

RUSAGE_UNIT = 1024 if sys.platform != "darwin" else 1  # ru_maxrss is KiB on Linux, bytes on macOS


def _maxrss_mib(who: int) -> float:
    """Peak resident memory of this process in MiB.

    On Linux, VmHWM: ``ru_maxrss`` survives ``exec``, so a fresh worker process would report
    the benchmark driver's peak at fork time.
    """
    from codebrain.data.store import _peak_rss_mib

    if who == resource.RUSAGE_SELF and Path("/proc/self/status").is_file():
        return _peak_rss_mib()
    return resource.getrusage(who).ru_maxrss * RUSAGE_UNIT / 2**20


def _rss_breakdown_mib() -> dict:
    """Current anonymous (heap) and file-backed (memory-mapped shards) resident memory, Linux."""
    out = {}
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            key = line.split(":")[0]
            if key in ("RssAnon", "RssFile"):
                out[f"{key.lower()}_mib"] = int(line.split()[1]) / 1024
    return out


def _build_worker(paths_file: str, out_dir: str, n_jobs: int) -> dict:
    """In a fresh process: build one corpus and measure it."""
    from codebrain.data import CorpusDataset, PreprocessConfig, build_corpus

    paths = json.loads(Path(paths_file).read_text())
    tracemalloc.start()
    start = time.perf_counter()
    summary = build_corpus(paths, out_dir, PreprocessConfig(), n_jobs=n_jobs)
    seconds = time.perf_counter() - start
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    ds = CorpusDataset(out_dir)
    hours = sum(e["duration_s"] for e in ds.manifest["recordings"]) / 3600.0
    shard_bytes = sum(
        (Path(out_dir) / e["shard"]).stat().st_size for e in ds.manifest["recordings"]
    )
    return {
        "n_recordings": len(paths),
        "processed": len(summary.processed),
        "failed": len(summary.failed),
        "n_windows": len(ds),
        "eeg_hours": hours,
        "wall_seconds": seconds,
        "eeg_hours_per_minute": hours / (seconds / 60.0),
        "worker_cpu_seconds": summary.cpu_seconds,
        # Robust to other load on the machine: EEG hours per CPU minute of preprocessing.
        "eeg_hours_per_cpu_minute": hours / (summary.cpu_seconds / 60.0),
        "corpus_mib": shard_bytes / 2**20,
        "parent_maxrss_mib": _maxrss_mib(resource.RUSAGE_SELF),
        # Pool workers are forked by the forkserver, not by this process, so RUSAGE_CHILDREN
        # does not see them: each worker reports its own ru_maxrss to the summary.
        "largest_worker_maxrss_mib": summary.peak_worker_rss_mib,
        "parent_tracemalloc_peak_mib": traced_peak / 2**20,
    }


def _read_worker(out_dir: str) -> dict:
    """In a fresh process: stream every window of a corpus and measure memory."""
    import torch

    from codebrain.data import CorpusDataset

    torch.set_num_threads(1)
    ds = CorpusDataset(out_dir)
    rss_open = _maxrss_mib(resource.RUSAGE_SELF)
    tracemalloc.start()
    start = time.perf_counter()
    total = 0.0
    for i in range(len(ds)):
        total += float(ds[i][0, 0])
    seconds = time.perf_counter() - start
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "n_windows": len(ds),
        "windows_per_second": len(ds) / seconds,
        **_rss_breakdown_mib(),
        "maxrss_after_open_mib": rss_open,
        "maxrss_after_stream_mib": _maxrss_mib(resource.RUSAGE_SELF),
        "tracemalloc_peak_mib": traced_peak / 2**20,
    }


def _run_in_fresh_process(*args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark worker {args} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; return (and write) the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 25, 50])
    parser.add_argument("--n-jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--n-trials", type=int, default=80, help="trials per recording (~6.5 s each)"
    )
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None, help="JSON results (default: workdir)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)

    from codebrain.data import write_synthetic_dataset

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="codebrain-bench-data-"))
    workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    paths = write_synthetic_dataset(
        workdir / "edf", n_subjects=max(args.sizes), n_trials=args.n_trials, seed=0
    )
    write_seconds = time.perf_counter() - start
    print(f"wrote {len(paths)} synthetic EDF files in {write_seconds:.1f} s", file=sys.stderr)

    results = {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
        },
        "n_jobs": args.n_jobs,
        "n_trials_per_recording": args.n_trials,
        "synthetic_write_seconds": write_seconds,
        "build": [],
        "stream": [],
    }
    for size in args.sizes:
        paths_file = workdir / f"paths-{size}.json"
        paths_file.write_text(json.dumps([str(p) for p in paths[:size]]))
        out_dir = workdir / f"corpus-{size}"
        shutil.rmtree(out_dir, ignore_errors=True)
        build = _run_in_fresh_process("--_build", str(paths_file), str(out_dir), str(args.n_jobs))
        stream = _run_in_fresh_process("--_read", str(out_dir))
        results["build"].append(build)
        results["stream"].append(stream)
        print(
            f"{size:4d} recordings ({build['eeg_hours']:.2f} h EEG): "
            f"{build['eeg_hours_per_minute']:.1f} h/min wall "
            f"({build['eeg_hours_per_cpu_minute']:.1f} h per CPU-min), parent {build['parent_maxrss_mib']:.0f} MiB, "
            f"worker {build['largest_worker_maxrss_mib']:.0f} MiB; stream "
            f"{stream['windows_per_second']:.0f} windows/s, peak {stream['maxrss_after_stream_mib']:.0f} "
            f"MiB (anon {stream.get('rssanon_mib', 0):.0f}, mapped {stream.get('rssfile_mib', 0):.0f})",
            file=sys.stderr,
        )
    out = args.out or workdir / "bench_data.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {out}", file=sys.stderr)
    if not args.keep and args.workdir is None:
        shutil.rmtree(workdir / "edf", ignore_errors=True)
        for size in args.sizes:
            shutil.rmtree(workdir / f"corpus-{size}", ignore_errors=True)
    return results


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--_build":
        print(json.dumps(_build_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
    elif len(sys.argv) > 1 and sys.argv[1] == "--_read":
        print(json.dumps(_read_worker(sys.argv[2])))
    else:
        main()
