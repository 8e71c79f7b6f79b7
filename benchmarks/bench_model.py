"""Benchmark ``codebrain.CodeBrain`` against braindecode's ``CodeBrain`` with the same weights.

Measured in one run, on this machine, with alternating runs of the two implementations:

* eval forward, batch 1 and 16, 19 x 6000 (30 s at 200 Hz): median wall time and ratio;
* one training step (cross-entropy + AdamW), batch 8: median wall time and ratio;
* peak memory of each of these, one fresh subprocess per (implementation, configuration);
* a length sweep T = 6000 ... 120000 (one sample, ``return_features=True``): time and peak
  memory per length for both. The reference builds an ``L x L`` attention (L = 19 T / 200
  tokens); it is skipped where its projected attention memory exceeds ``--ref-mem-budget-gib``
  or its projected time (quadratic in L from the last measured length) exceeds
  ``--ref-time-cap-s``, and the output says so;
* FLOPs (``torch.utils.flop_counter.FlopCounterMode``: matmuls and convolutions, not FFTs)
  per configuration, achieved GFLOP/s, and this machine's float32 ``torch.mm`` peak.

Timer: with ``--threads 1`` speed ratios use process CPU time (``time.process_time``), the work
done by the single compute thread, which does not count time spent descheduled while other
tenants load a shared machine; wall times are reported beside them (``speedup_wall``). With
more threads, wall time is used (OpenMP spin-waiting inflates CPU time).

Peak memory: each measurement runs in a new Python process (``MALLOC_MMAP_THRESHOLD_`` set low so
freed buffers leave the resident set), which builds the model and input, runs the workload once
to warm up (kernel caches, optimizer state), resets the kernel's resident-set high-water mark
(``/proc/self/clear_refs``), runs it again and reports ``VmHWM`` minus the resident set before
that run: the extra memory the workload needed at its peak. Where ``clear_refs`` is not
writable it falls back to the ``ru_maxrss`` delta over the first run.

Usage::

    python benchmarks/bench_model.py                 # full run (~15 min on 2 cores)
    python benchmarks/bench_model.py --quick         # < 2 min smoke run (batch 4 instead of
                                                     # 16, training batch 2, memory at
                                                     # batch 1 only, short sweep)
    python benchmarks/bench_model.py --out DIR       # results.json and length_sweep.png

Results: ``DIR/bench_model.json`` and ``DIR/bench_model_length_sweep.png``.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger("bench_model")

N_CHANS = 19
N_TIMES = 6000
PATCH = 200
HEADS = 4
FULL_SWEEP = (6000, 12000, 24000, 48000, 72000, 96000, 120000)
QUICK_SWEEP = (6000, 12000)
MODEL_KW: dict[str, Any] = dict(n_outputs=2, n_chans=N_CHANS, n_times=N_TIMES)


# ----------------------------------------------------------------------------- models
def _quiet() -> None:
    warnings.simplefilter("ignore")
    logging.getLogger("codebrain").setLevel(logging.ERROR)


def build_model(impl: str, state_path: str | None) -> torch.nn.Module:
    """Build ``impl`` ('ours' or 'ref') with the default config and the weights at ``state_path``."""
    _quiet()
    if impl == "ref":
        from braindecode.models import CodeBrain as RefCodeBrain

        model = RefCodeBrain(**MODEL_KW)
    elif impl == "ours":
        from codebrain import CodeBrain

        model = CodeBrain(**MODEL_KW)
    else:
        raise ValueError(f"unknown implementation {impl!r}")
    if state_path is not None:
        model.load_state_dict(torch.load(state_path, weights_only=True))
    return model


def make_reference_state(path: str) -> None:
    """Seeded reference model, kernel norms initialised by one forward, saved to ``path``."""
    torch.manual_seed(0)
    ref = build_model("ref", None).eval()
    with torch.no_grad():
        ref(torch.randn(1, N_CHANS, N_TIMES))
    torch.save(ref.state_dict(), path)


def workload(impl_model: torch.nn.Module, kind: str, batch: int, n_times: int):
    """A closure running one eval forward ('eval'/'sweep') or one training step ('train')."""
    torch.manual_seed(1)
    x = torch.randn(batch, N_CHANS, n_times)
    if kind in ("eval", "sweep"):
        impl_model.eval()
        features = kind == "sweep"

        def run() -> None:
            with torch.no_grad():
                impl_model(x, return_features=True) if features else impl_model(x)

        return run
    if kind == "train":
        impl_model.train()
        y = torch.randint(0, 2, (batch,))
        opt = torch.optim.AdamW(impl_model.parameters(), lr=1e-4)
        loss_fn = torch.nn.CrossEntropyLoss()

        def run() -> None:
            opt.zero_grad(set_to_none=True)
            loss_fn(impl_model(x), y).backward()
            opt.step()

        return run
    raise ValueError(f"unknown workload {kind!r}")


def count_flops(run) -> float:
    """FLOPs of one call of ``run`` (matmuls and convolutions; FFTs are not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        run()
    return float(counter.get_total_flops())


# ----------------------------------------------------------------------------- memory
def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _trim() -> None:
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # pragma: no cover - non-glibc
        pass


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Run in a fresh process: peak extra memory and times of one workload."""
    import resource

    torch.set_num_threads(spec["threads"])
    model = build_model(spec["impl"], spec["state"])
    run = workload(model, spec["kind"], spec["batch"], spec["n_times"])
    _trim()
    maxrss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss0 = _status_kib("VmRSS")
    t0 = time.perf_counter()
    run()  # warm-up: caches, optimizer state
    first_s = time.perf_counter() - t0
    first_peak_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - maxrss0) / 1024
    _trim()
    method = "VmHWM after clear_refs"
    times: list[float] = []
    cpu_times: list[float] = []
    if _reset_hwm():
        rss1 = _status_kib("VmRSS")
        c0, t0 = time.process_time(), time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
        peak_mib = (_status_kib("VmHWM") - rss1) / 1024
    else:
        method = "ru_maxrss delta over the first run"
        peak_mib = first_peak_mib
    for _ in range(spec["reps"] - len(times)):
        c0, t0 = time.process_time(), time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
    del rss0
    return {
        "peak_mib": peak_mib,
        "peak_method": method,
        "first_run_s": first_s,
        "times_s": times,
        "cpu_times_s": cpu_times,
        "median_wall_s": statistics.median(times) if times else first_s,
        "median_cpu_s": statistics.median(cpu_times) if cpu_times else None,
        "median_s": statistics.median(cpu_times if spec.get("cpu_time") else times)
        if times
        else first_s,
    }


def run_worker(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run :func:`worker` in a new interpreter and parse its JSON answer."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, __file__, "--_worker", json.dumps(spec)]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["?"]
        return {"error": f"exit {proc.returncode}: {tail[0]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- timing
def matmul_peak_gflops(n: int = 2048, reps: int = 7, cpu_time: bool = False) -> float:
    """Measured float32 ``torch.mm`` peak (GFLOP/s, fastest of ``reps``).

    ``cpu_time``: time with ``time.process_time`` (the timer used for single-thread runs).
    """
    clock = time.process_time if cpu_time else time.perf_counter
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    ts = []
    for _ in range(reps):
        t0 = clock()
        torch.mm(a, b)
        ts.append(clock() - t0)
    return 2 * n**3 / min(ts) / 1e9


def alternating_times(
    runs: dict[str, Any], reps: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Time each closure ``reps`` times, alternating between them (after one warm-up each).

    Returns wall-clock times and process CPU times (``time.process_time``), per closure.
    """
    for run in runs.values():
        run()
    wall: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    order = list(runs)
    for i in range(reps):
        for name in order if i % 2 == 0 else order[::-1]:
            c0, t0 = time.process_time(), time.perf_counter()
            runs[name]()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return wall, cpu


def _ratio(ref: float | None, ours: float | None) -> float | None:
    return None if not ref or not ours else ref / ours


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:  # noqa: C901
    """Run the benchmark; returns a process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run, < 2 minutes")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument(
        "--threads",
        type=int,
        default=torch.get_num_threads(),
        help="torch intra-op threads; on a loaded shared machine 1 gives stable timings "
        "(OpenMP threads spin-wait on descheduled peers)",
    )
    parser.add_argument("--reps", type=int, default=None, help="timed runs per configuration")
    parser.add_argument("--ref-mem-budget-gib", type=float, default=3.0)
    parser.add_argument("--ref-time-cap-s", type=float, default=90.0)
    parser.add_argument("--plot-only", type=Path, help="redraw the PNG from a results JSON")
    parser.add_argument("--_worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._worker:
        print(json.dumps(worker(json.loads(args._worker))))
        return 0
    if args.plot_only:
        saved = json.loads(args.plot_only.read_text())
        plot_sweep(
            saved["length_sweep"],
            args.plot_only.with_name(args.plot_only.stem + "_length_sweep.png"),
        )
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    _quiet()
    torch.set_num_threads(args.threads)
    quick = args.quick
    reps = args.reps or (2 if quick else 5)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "threads": args.threads,
            "torch": torch.__version__,
            "load_avg_at_start": os.getloadavg(),
        },
        "config": {**MODEL_KW, "quick": quick, "reps": reps},
    }
    # With one intra-op thread the process CPU time is the work done, unaffected by time spent
    # descheduled when other tenants load the machine; with more threads OpenMP spin-waits
    # inflate CPU time, so wall time is used.
    use_cpu_time = args.threads == 1
    timer = "process CPU time (1 thread)" if use_cpu_time else "wall time"
    results["timer"] = timer
    peak = matmul_peak_gflops(cpu_time=use_cpu_time)
    results["matmul_peak_gflops"] = peak
    logger.info(
        "float32 torch.mm peak: %.1f GFLOP/s (%d threads, fastest of 7, %s)",
        peak,
        args.threads,
        timer,
    )

    with tempfile.TemporaryDirectory() as tmp:
        state = str(Path(tmp) / "ref_state.pt")
        make_reference_state(state)
        models = {impl: build_model(impl, state) for impl in ("ours", "ref")}

        # ---- in-process alternating timings
        configs = [("eval", 1), ("eval", 4 if quick else 16), ("train", 2 if quick else 8)]
        timing: dict[str, Any] = {}
        for kind, batch in configs:
            name = f"{kind}_b{batch}"
            runs = {impl: workload(m, kind, batch, N_TIMES) for impl, m in models.items()}
            for run in runs.values():  # warm-up: eval caches are built once, not counted
                run()
            flops = {impl: count_flops(run) for impl, run in runs.items()}
            ts, cpu = alternating_times(runs, 1 if quick and kind == "train" else reps)
            wall_med = {impl: statistics.median(v) for impl, v in ts.items()}
            cpu_med = {impl: statistics.median(v) for impl, v in cpu.items()}
            med = cpu_med if use_cpu_time else wall_med
            entry = {
                "times_s": ts,
                "cpu_times_s": cpu,
                "median_wall_s": wall_med,
                "median_cpu_s": cpu_med,
                "median_s": med,
                "timer": timer,
                "speedup": _ratio(med["ref"], med["ours"]),
                "speedup_wall": _ratio(wall_med["ref"], wall_med["ours"]),
                "speedup_cpu": _ratio(cpu_med["ref"], cpu_med["ours"]),
                "gflop": {k: v / 1e9 for k, v in flops.items()},
                "gflops_per_s": {k: flops[k] / med[k] / 1e9 for k in med},
                "fraction_of_matmul_peak": {k: flops[k] / med[k] / 1e9 / peak for k in med},
            }
            timing[name] = entry
            logger.info(
                "%-9s ours %.3f s  ref %.3f s  speedup %.2fx [%s; wall %.2fx]  "
                "(ours %.1f GFLOP/s = %.0f%% of mm peak)",
                name,
                med["ours"],
                med["ref"],
                entry["speedup"],
                timer,
                entry["speedup_wall"],
                entry["gflops_per_s"]["ours"],
                100 * entry["fraction_of_matmul_peak"]["ours"],
            )
            del runs
            gc.collect()
        results["timing"] = timing
        del models
        gc.collect()

        # ---- peak memory, one subprocess per measurement
        memory: dict[str, Any] = {}
        mem_configs = [("eval", 1), ("eval", 16), ("train", 2 if quick else 8)]
        if quick:
            mem_configs = [("eval", 1)]
        for kind, batch in mem_configs:
            name = f"{kind}_b{batch}"
            memory[name] = {}
            for impl in ("ours", "ref"):
                spec = dict(
                    impl=impl,
                    kind=kind,
                    batch=batch,
                    n_times=N_TIMES,
                    state=state,
                    threads=args.threads,
                    reps=1,
                    cpu_time=use_cpu_time,
                )
                memory[name][impl] = run_worker(spec, timeout=600)
            m = memory[name]
            if "peak_mib" in m["ours"] and "peak_mib" in m["ref"]:
                m["ratio_ours_over_ref"] = m["ours"]["peak_mib"] / m["ref"]["peak_mib"]
                logger.info(
                    "%-9s peak memory ours %.0f MiB  ref %.0f MiB  ratio %.2f",
                    name,
                    m["ours"]["peak_mib"],
                    m["ref"]["peak_mib"],
                    m["ratio_ours_over_ref"],
                )
        results["memory"] = memory

        # ---- length sweep, one subprocess per (implementation, length)
        sweep: list[dict[str, Any]] = []
        lengths = QUICK_SWEEP if quick else FULL_SWEEP
        last_ref: tuple[int, float] | None = None
        for n_times in lengths:
            n_tokens = N_CHANS * (n_times // PATCH)
            row: dict[str, Any] = {"n_times": n_times, "n_tokens": n_tokens}
            # reference: attention weights (B*heads*L^2, need_weights=True), softmax input and
            # output, plus the L x L float mask
            ref_attn_gib = (3 * HEADS + 2) * n_tokens**2 * 4 / 2**30
            projected = None
            if last_ref is not None:
                projected = last_ref[1] * (n_tokens / last_ref[0]) ** 2
            row["ref_projected_attention_gib"] = ref_attn_gib
            for impl in ("ours", "ref"):
                if impl == "ref" and ref_attn_gib > args.ref_mem_budget_gib:
                    row[impl] = {
                        "skipped": f"projected L x L attention memory {ref_attn_gib:.1f} GiB "
                        f"> budget {args.ref_mem_budget_gib} GiB"
                    }
                    continue
                if impl == "ref" and projected is not None and projected > args.ref_time_cap_s:
                    row[impl] = {
                        "skipped": f"projected time {projected:.0f} s (quadratic in L) > cap "
                        f"{args.ref_time_cap_s} s"
                    }
                    continue
                spec = dict(
                    impl=impl,
                    kind="sweep",
                    batch=1,
                    n_times=n_times,
                    state=state,
                    threads=args.threads,
                    reps=1 if quick else 3,
                    cpu_time=use_cpu_time,
                )
                row[impl] = run_worker(spec, timeout=900)
                if impl == "ref" and "median_s" in row[impl]:
                    last_ref = (n_tokens, row[impl]["median_s"])
            sweep.append(row)
            logger.info(
                "T=%6d L=%5d  ours %s  ref %s",
                n_times,
                n_tokens,
                _fmt(row["ours"]),
                _fmt(row["ref"]),
            )
        results["length_sweep"] = sweep
    base = sweep[0]["ours"].get("median_s") if sweep else None
    top = sweep[-1]["ours"].get("median_s") if sweep else None
    results["length_sweep_summary"] = {
        "ours_time_ratio_longest_over_shortest": (top / base) if base and top else None,
        "length_ratio": lengths[-1] / lengths[0],
    }
    results["wall_s"] = time.perf_counter() - started
    results["machine"]["load_avg_at_end"] = os.getloadavg()

    from codebrain.utils.io import atomic_write_json

    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / ("bench_model_quick.json" if quick else "bench_model.json")
    atomic_write_json(json_path, results)
    png = json_path.with_name(json_path.stem + "_length_sweep.png")
    plot_sweep(sweep, png)
    logger.info("wrote %s and %s (%.0f s)", json_path, png, results["wall_s"])
    return 0


def _fmt(m: dict[str, Any]) -> str:
    if "skipped" in m:
        return "skipped (" + m["skipped"] + ")"
    if "error" in m:
        return "error (" + m["error"] + ")"
    return f"{m['median_s']:.2f} s {m['peak_mib']:.0f} MiB"


def plot_sweep(sweep: list[dict[str, Any]], path: Path) -> None:
    """Time and peak memory against recording length, both implementations (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from codebrain.utils.io import atomic_path

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for impl, label, style in (("ours", "codebrain", "o-"), ("ref", "braindecode", "s--")):
        rows = [r for r in sweep if "median_s" in r[impl]]
        secs = [r["n_times"] / 200 for r in rows]
        axes[0].plot(secs, [r[impl]["median_s"] for r in rows], style, label=label)
        axes[1].plot(secs, [r[impl]["peak_mib"] for r in rows], style, label=label)
        skipped = [r for r in sweep if "skipped" in r[impl] or "error" in r[impl]]
        if skipped and rows:
            axes[0].annotate(
                f"{label}: not run beyond {rows[-1]['n_times'] // 200} s "
                "(projected L x L memory/time cap)",
                xy=(0.98, 0.03),
                xycoords="axes fraction",
                ha="right",
                fontsize=8,
            )
    ours_rows = [r for r in sweep if "median_s" in r["ours"]]
    if ours_rows:  # guides through the first point: linear and quadratic growth
        t0, s0 = ours_rows[0]["n_times"], ours_rows[0]["ours"]["median_s"]
        secs = [r["n_times"] / 200 for r in sweep]
        for power, style in ((1, ":"), (2, "-.")):
            axes[0].plot(
                secs,
                [s0 * (r["n_times"] / t0) ** power for r in sweep],
                style,
                color="gray",
                linewidth=0.8,
                label=f"~ T^{power}",
            )
    for ax, ylabel in zip(
        axes, ("forward time (s), batch 1", "peak extra memory (MiB)"), strict=True
    ):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("recording length (s at 200 Hz, 19 channels)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle("CodeBrain eval forward vs length: codebrain vs braindecode (same weights)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
