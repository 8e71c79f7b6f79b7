"""Benchmark reports: ``results.json``, ``results.md`` and ``results.png``.

``results.md`` is a model × metric table (mean ± std over seeds, parameters, train time); all
three are written atomically.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from codebrain.benchmark.scoring import VAL_THRESHOLD_METRIC
from codebrain.utils.io import atomic_open, atomic_write_json

__all__ = ["results_table", "results_markdown", "plot_results", "write_results"]

logger = logging.getLogger(__name__)


def _cell(mean: Any, std: Any) -> str:
    if mean is None:
        return "n/a"
    return f"{mean:.3f} ± {std:.3f}" if std is not None else f"{mean:.3f}"


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min"


def results_table(results: dict[str, Any]) -> str:
    """The model × metric table as Markdown (also what the CLI prints)."""
    metrics = results["metrics"]
    head = ["model", *metrics, "params", "train time / seed"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for entry in results["models"].values():
        row = [entry["title"]]
        row += [_cell(entry["mean"].get(m), entry["std"].get(m)) for m in metrics]
        row += [f"{entry['params']:,}", _seconds(entry["train_seconds"])]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def results_markdown(results: dict[str, Any]) -> str:
    """``results.md``: the table plus the protocol it was measured under."""
    n = results["n_windows"]
    split = results["split"]
    proto = results["split_protocol"]
    lines = [
        f"# {results.get('title', results['task'])}",
        "",
        f"Split: **{proto}** ({results.get('split_unit', 'subject')}-wise): "
        f"{len(split['train'])}/{len(split['val'])}/{len(split['test'])} "
        f"(train/val/test), windows {n['train']}/{n['val']}/{n['test']}.",
        f"Test metrics at the epoch chosen on validation {results['selection_metric']}; "
        f"mean ± std (population) over seeds {', '.join(map(str, results['seed_list']))}; "
        f"{results['epochs']} epochs; device {results['device']}.",
        "",
        results_table(results),
        "",
    ]
    if "auprc" in results["metrics"]:
        lines += [f"AUPRC: {results['auprc_definition']}.", ""]
    if VAL_THRESHOLD_METRIC in results["metrics"] and "threshold_definition" in results:
        lines += [f"Thresholds: {results['threshold_definition']}.", ""]
    aug = results.get("augment")
    if aug:
        lines += [
            "Training windows of every deep model augmented alike: "
            + ("circular time shift, " if aug["time_shift"] else "")
            + f"gain σ {aug['gain_sigma']:g}, frequency shift up to ±{aug['freq_shift']:g} Hz.",
            "",
        ]
    lines += [
        f"Test {('subjects' if results.get('split_unit') == 'subject' else 'ids')}: "
        + ", ".join(split["test"]),
        "",
    ]
    return "\n".join(lines)


def plot_results(results: dict[str, Any], path: str | os.PathLike) -> Path:
    """Bar chart of every metric per model (mean, std error bars, seeds as dots)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    metrics = results["metrics"]
    names = list(results["models"])
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(metrics) * max(1, len(names)) / 3, 3.6))
    width = 0.8 / max(1, len(names))
    x = np.arange(len(metrics))
    for i, name in enumerate(names):
        entry = results["models"][name]
        means = [entry["mean"].get(m) or 0.0 for m in metrics]
        stds = [entry["std"].get(m) or 0.0 for m in metrics]
        pos = x - 0.4 + width * (i + 0.5)
        ax.bar(pos, means, width, yerr=stds, label=entry["title"], capsize=2)
        for j, m in enumerate(metrics):
            vals = [s.get(m) for s in entry["seeds"].values() if s.get(m) is not None]
            ax.plot([pos[j]] * len(vals), vals, "k.", ms=3)
    ax.set_xticks(x, metrics, rotation=15)
    ax.set_ylim(0, 1)
    ax.set_title(f"{results.get('title', results['task'])} ({results['split_protocol']} split)")
    ax.legend(fontsize=7, loc="lower right")
    path = Path(path)
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def write_results(results: dict[str, Any], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``results.json``, ``results.md`` and ``results.png`` into ``out_dir``."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} exists and is not a folder.")
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "results.json", "md": out / "results.md", "png": out / "results.png"}
    atomic_write_json(paths["json"], results)
    with atomic_open(paths["md"], "w") as f:
        f.write(results_markdown(results))
    plot_results(results, paths["png"])
    return paths
