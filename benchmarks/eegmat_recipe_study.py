"""Why is a from-scratch CodeBrain at chance on EEGMAT, and which fine-tuning recipe fixes it?

Issue 11 item 3. Data: PhysioNet EEGMAT (the paper's "MentalArithmetic" task) as found in
``--data`` (``SubjectNN_1.edf`` = rest, label 0; ``SubjectNN_2.edf`` = mental arithmetic,
label 1). Preprocessing follows the authors (paper.md §3): the 20 ``EEG *`` channels (19 + A2-A1,
ECG dropped) in the file's order, 500 → 200 Hz with MNE's FFT resampling and **no filter**
(PhysioNet's files are already band-passed 0.5-45 Hz), non-overlapping 5 s windows, µV / 100.
The windows are cached to ``--cache`` (an ``.npz``).

Protocol: the 24 subjects sorted by number are cut into 6 blocks of 4; fold ``k`` tests on block
``k``, validates on block ``(k + 1) % 6`` and trains on the other 16 subjects (~770 windows).
Every model picks its epoch (or its regularisation) on the validation subjects by AUROC and is
reported on the test subjects at that choice: balanced accuracy (argmax) and AUROC.

Models:

* ``logbp`` — log band power (1-4, 4-8, 8-13, 13-20, 20-30, 30-45 Hz, Welch) per channel,
  standardised, logistic regression (``class_weight="balanced"``; C chosen on validation).
* ``eegnet`` — braindecode's ``EEGNet`` (1.8.1 defaults), AdamW 1e-3, cosine, batch 64,
  the same balanced sampling as CodeBrain's winning recipe, epoch chosen on validation AUROC.
* CodeBrain conditions (``--conditions``, see ``CONDITIONS``): each is one change of the
  fine-tuning recipe, measured with :func:`codebrain.training.finetune`.

Usage (the commands behind ``benchmarks/results/eegmat_recipe_study.json``, in this order;
``OMP_NUM_THREADS=1 nice -n 5`` on the shared 2-core machine; every command is also recorded in
the JSON's ``commands``)::

    S=benchmarks/eegmat_recipe_study.py; R=/tmp/brecipe/study.json
    python $S --diagnose --conditions logbp,eegnet --folds all --seeds 0 --out $R
    python $S --conditions issue,balanced,auroc_select,gain100,gain100_lr1e3 --folds 0,1 --out $R
    python $S --conditions gain100 --folds 2,3,4,5 --threads 1 --out $R
    python $S --conditions gain100_ba --folds 0,1 --threads 1 --out /tmp/brecipe/study_ba.json
    python $S --merge /tmp/brecipe/study_ba.json --diagnose --out $R

Results are merged into ``--out`` (one entry per condition, fold and seed), so a study can be run
in pieces; ``--summary`` prints mean ± std per condition over every (fold, seed) stored.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from codebrain import CodeBrain
from codebrain.training.finetune import FinetuneConfig, finetune
from codebrain.training.inference import predict
from codebrain.training.metrics import compute_metrics
from codebrain.utils.io import atomic_write_json

logger = logging.getLogger("eegmat_recipe_study")

SFREQ = 200.0
WINDOW_S = 5.0
N_SUBJECTS_PER_BLOCK = 4
RESULTS = Path(__file__).parent / "results" / "eegmat_recipe_study.json"

# The recipe of the run (`codebrain finetune` defaults), at the study's width.
BASE_MODEL = dict(res_channels=32, skip_channels=32, out_channels=32, num_res_layers=2)
BASE_FT = dict(epochs=15, batch_size=32)

#: Every CodeBrain condition: model kwargs, FinetuneConfig fields, input transform, head.
#: Each line adds one change to the one above it (``None`` keys are inherited).
CONDITIONS: dict[str, dict[str, Any]] = {}


def _cond(name: str, parent: str | None = None, **changes: Any) -> None:
    base = (
        {
            "model": dict(BASE_MODEL),
            "ft": dict(BASE_FT),
            "gain": 1.0,
            "norm": "none",
            "head": "model",
        }
        if parent is None
        else json.loads(json.dumps(CONDITIONS[parent]))
    )
    for key in ("model", "ft"):
        base[key].update(changes.pop(key, {}))
    base.update(changes)
    base["parent"] = parent
    CONDITIONS[name] = base


_cond("issue")  # finetune defaults: CE, shuffled batches, select on balanced accuracy
_cond("balanced", "issue", ft={"balanced_sampling": True})
_cond("classweight", "issue", ft={"class_weight": "balanced"})
_cond("auroc_select", "balanced", ft={"monitor": "auroc"})
_cond("gain10", "auroc_select", gain=10.0)  # inputs in units of 10 µV
_cond("gain100", "auroc_select", gain=100.0)  # inputs in µV
_cond("gain100_lr1e3", "gain100", ft={"backbone_lr": 1e-3})
_cond("gain100_ba", "gain100", ft={"monitor": "balanced_accuracy"})
_cond("chan_z", "auroc_select", norm="channel_z")  # z-score every channel of every window
_cond("gain10_lr1e3", "gain10", ft={"backbone_lr": 1e-3})
_cond("lr1e3", "auroc_select", ft={"backbone_lr": 1e-3})
_cond("pool_head", "gain100", head="pool")
_cond("authors_head", "gain100", head="authors")
_cond("small_head", "gain100", model={"mlp_hidden_multiplier": 1})
_cond("wd_drop", "gain100", ft={"weight_decay": 0.2}, model={"drop_prob": 0.3})
_cond("shift_aug", "gain100", augment="shift")
_cond("epochs30", "gain100", ft={"epochs": 30})
_cond(
    "w64x4",
    "gain100",
    model=dict(res_channels=64, skip_channels=64, out_channels=64, num_res_layers=4),
)
_cond(
    "issue_w64x4",
    "issue",
    model=dict(res_channels=64, skip_channels=64, out_channels=64, num_res_layers=4),
)
PEERS = ("logbp", "eegnet")


# ------------------------------------------------------------------------------ data
def load_eegmat(data_dir: Path, cache: Path) -> dict[str, np.ndarray]:
    """Windows ``X`` (N, 20, 1000) in µV / 100, labels ``y`` and subject numbers (cached)."""
    if cache.is_file():
        z = np.load(cache)
        return {k: z[k] for k in z.files}
    import mne

    files = sorted(data_dir.glob("Subject*_*.edf"))
    if not files:
        raise FileNotFoundError(f"No SubjectNN_K.edf files in {data_dir}.")
    xs, ys, ss, names = [], [], [], None
    n = int(SFREQ * WINDOW_S)
    for f in files:
        m = re.fullmatch(r"Subject(\d+)_([12])\.edf", f.name)
        if m is None:
            continue
        raw = mne.io.read_raw_edf(f, preload=True, verbose="ERROR")
        raw.pick([c for c in raw.ch_names if c.startswith("EEG")])
        if names is None:
            names = list(raw.ch_names)
        elif list(raw.ch_names) != names:
            raise ValueError(f"{f.name}: channels {raw.ch_names} differ from {names}.")
        raw.resample(SFREQ, verbose="ERROR")
        d = raw.get_data() * 1e4  # V -> units of 100 µV
        k = d.shape[1] // n
        xs.append(d[:, : k * n].reshape(d.shape[0], k, n).transpose(1, 0, 2).astype(np.float32))
        ys += [int(m.group(2)) - 1] * k
        ss += [int(m.group(1))] * k
    out = {
        "X": np.concatenate(xs),
        "y": np.asarray(ys, dtype=np.int64),
        "subject": np.asarray(ss, dtype=np.int64),
        "ch_names": np.asarray(names),
    }
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **out)
    return out


def fold_split(subjects: np.ndarray, fold: int) -> dict[str, list[int]]:
    """Subject ids of train / val / test for ``fold`` (blocks of 4 sorted subjects)."""
    subs = np.unique(subjects)
    n_blocks = len(subs) // N_SUBJECTS_PER_BLOCK
    if not 0 <= fold < n_blocks:
        raise ValueError(f"fold must be in [0, {n_blocks}), got {fold}.")
    blocks = [
        subs[i * N_SUBJECTS_PER_BLOCK : (i + 1) * N_SUBJECTS_PER_BLOCK] for i in range(n_blocks)
    ]
    test, val = blocks[fold], blocks[(fold + 1) % n_blocks]
    train = [s for s in subs if s not in set(test) | set(val)]
    return {
        "train": [int(s) for s in train],
        "val": [int(s) for s in val],
        "test": [int(s) for s in test],
    }


def transform(x: np.ndarray, gain: float, norm: str) -> np.ndarray:
    """Input scaling / normalisation of a condition, ``(N, C, T) -> (N, C, T)``."""
    x = x * np.float32(gain)
    if norm == "channel_z":
        x = (x - x.mean(-1, keepdims=True)) / (x.std(-1, keepdims=True) + 1e-6)
    elif norm != "none":
        raise ValueError(f"unknown norm {norm!r}")
    return x.astype(np.float32)


# ------------------------------------------------------------------------- diagnostics
def diagnose(data: dict[str, np.ndarray]) -> dict[str, Any]:
    """Numbers that test the candidate causes before any training."""
    x, y, s = data["X"], data["y"], data["subject"]
    uv = x * 100.0
    out: dict[str, Any] = {
        "n_windows": int(y.size),
        "class_counts": np.bincount(y).tolist(),
        "std_uv": float(uv.std()),
        "mean_abs_window_channel_mean_uv": float(np.abs(uv.mean(-1)).mean()),
        "p99_9_abs_uv": float(np.percentile(np.abs(uv), 99.9)),
        "per_subject_std_uv": [float(uv[s == i].std()) for i in np.unique(s)],
        "input_std_model_units": float(x.std()),
    }
    # How much of the patch embedding the spectral branch contributes at initialisation,
    # at the input scale of µV/100, 10x and 100x larger (µV).
    torch.manual_seed(0)
    m = CodeBrain(n_outputs=2, n_chans=x.shape[1], n_times=x.shape[2], **BASE_MODEL).eval()
    pe = m.patch_embedding
    for gain in (1.0, 10.0, 100.0):
        xb = torch.from_numpy(x[:64] * gain).reshape(64, x.shape[1], -1, 200)
        with torch.no_grad():
            t = pe.proj_in(xb.reshape(64, 1, -1, 200))
            spec = torch.fft.rfft(xb, dim=-1, norm="forward").abs()
            sp = pe.spectral_proj[0](spec)
        out[f"embedding_rms_temporal_gain{gain:g}"] = float(t.pow(2).mean().sqrt())
        out[f"embedding_rms_spectral_gain{gain:g}"] = float(
            (sp - pe.spectral_proj[0].bias).pow(2).mean().sqrt()
        )
    return out


# ---------------------------------------------------------------------------- metrics
def _metrics(y: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    m = compute_metrics(y, logits, "classification")
    return {"balanced_accuracy": m["balanced_accuracy"], "auroc": m["auroc"]}


# ------------------------------------------------------------------------------ peers
def _band_power(x: np.ndarray) -> np.ndarray:
    from scipy.signal import welch

    f, p = welch(x, fs=SFREQ, nperseg=400, axis=-1)
    bands = [(1, 4), (4, 8), (8, 13), (13, 20), (20, 30), (30, 45)]
    feats = [p[..., (f >= lo) & (f < hi)].mean(-1) for lo, hi in bands]
    return np.log(np.stack(feats, -1) + 1e-12).reshape(x.shape[0], -1)


def run_logbp(parts: dict[str, tuple[np.ndarray, np.ndarray]], seed: int) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    feats = {k: (_band_power(x), y) for k, (x, y) in parts.items()}
    best: tuple[float, Any, float] | None = None
    for c in (0.001, 0.01, 0.1, 1.0):
        clf = make_pipeline(
            StandardScaler(),
            LogisticRegression(C=c, class_weight="balanced", max_iter=2000, random_state=seed),
        )
        clf.fit(*feats["train"])
        val = _metrics(
            feats["val"][1], clf.decision_function(feats["val"][0])[:, None] * [-0.5, 0.5]
        )
        if best is None or val["auroc"] > best[0]:
            best = (val["auroc"], clf, c)
    assert best is not None
    xt, yt = feats["test"]
    test = _metrics(yt, best[1].decision_function(xt)[:, None] * [-0.5, 0.5])
    return {
        "test": test,
        "val_auroc": best[0],
        "chosen": {"C": best[2]},
        "params": int(xt.shape[1] + 1),
    }


def run_eegnet(
    parts: dict[str, tuple[np.ndarray, np.ndarray]], seed: int, epochs: int = 30
) -> dict[str, Any]:
    from braindecode.models import EEGNet

    from codebrain.training.batching import balanced_sampler

    torch.manual_seed(seed)
    xtr, ytr = parts["train"]
    model = EEGNet(n_chans=xtr.shape[1], n_outputs=2, n_times=xtr.shape[2])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    loader = torch.utils.data.DataLoader(
        TensorDataset(torch.from_numpy(xtr), torch.from_numpy(ytr)),
        batch_size=64,
        sampler=balanced_sampler(ytr, seed),
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * len(loader))
    lossf = nn.CrossEntropyLoss()
    best: tuple[float, dict, int] | None = None
    for ep in range(1, epochs + 1):
        model.train()
        for xb, yb in loader:
            loss = lossf(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        val = _metrics(
            parts["val"][1], predict(model, TensorDataset(*map(torch.from_numpy, parts["val"])))[0]
        )
        if best is None or val["auroc"] > best[0]:
            best = (val["auroc"], {k: v.clone() for k, v in model.state_dict().items()}, ep)
    assert best is not None
    model.load_state_dict(best[1])
    out, yt = predict(model, TensorDataset(*map(torch.from_numpy, parts["test"])))
    return {
        "test": _metrics(yt, out),
        "val_auroc": best[0],
        "chosen": {"epoch": best[2]},
        "params": int(sum(p.numel() for p in model.parameters())),
    }


# ---------------------------------------------------------------------------- CodeBrain
class _MeanPatchHead(nn.Module):
    """``(B, C, P, D) -> (B, K)``: mean over patches, dropout, one Linear on ``C·D``."""

    def __init__(self, n_chans: int, d: int, n_out: int, drop: float) -> None:
        super().__init__()
        self.drop = nn.Dropout(drop)
        self.linear = nn.Linear(n_chans * d, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.drop(x.mean(2).flatten(1)))


def _authors_head(n_chans: int, n_patches: int, d: int, n_out: int, drop: float) -> nn.Module:
    hidden = n_patches * 200
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(n_chans * n_patches * d, hidden),
        nn.ELU(),
        nn.Dropout(drop),
        nn.Linear(hidden, 200),
        nn.ELU(),
        nn.Dropout(drop),
        nn.Linear(200, n_out),
    )


class _ShiftDataset(torch.utils.data.Dataset):
    """Training windows with a random circular time shift and sign-preserving gain jitter."""

    def __init__(self, x: np.ndarray, y: np.ndarray, seed: int) -> None:
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        shift = int(self.rng.integers(0, self.x.shape[-1]))
        gain = float(np.exp(self.rng.normal(0.0, 0.1)))
        return torch.roll(self.x[i], shift, dims=-1) * gain, self.y[i]


def run_codebrain(
    cond: dict[str, Any], parts: dict[str, tuple[np.ndarray, np.ndarray]], seed: int, threads: int
) -> dict[str, Any]:
    xtr, ytr = parts["train"]
    torch.manual_seed(seed)
    model = CodeBrain(n_outputs=2, n_chans=xtr.shape[1], n_times=xtr.shape[2], **cond["model"])
    drop = cond["model"].get("drop_prob", 0.1)
    if cond["head"] == "pool":
        model.final_layer = _MeanPatchHead(model.n_chans, model.out_channels, 2, drop)
    elif cond["head"] == "authors":
        model.final_layer = _authors_head(
            model.n_chans, model.n_patches, model.out_channels, 2, drop
        )
    elif cond["head"] != "model":
        raise ValueError(f"unknown head {cond['head']!r}")
    ds = {k: TensorDataset(torch.from_numpy(x), torch.from_numpy(y)) for k, (x, y) in parts.items()}
    if cond.get("augment") == "shift":
        train_ds = _ShiftDataset(xtr, ytr, seed)
        train_ds.y = ytr  # type: ignore[attr-defined]
    else:
        train_ds = ds["train"]
    cfg = FinetuneConfig(**{**cond["ft"], "seed": seed, "progress": False})
    torch.set_num_threads(threads)
    res = finetune(model, train_ds, ds["val"], cfg)
    out, yt = predict(res.model, ds["test"])
    pred_rest = float((out.argmax(1) == 0).mean())
    return {
        "test": _metrics(yt, out),
        "val_auroc": res.val_metrics.get("auroc") if res.val_metrics else None,
        "chosen": {"epoch": res.best_epoch},
        "test_fraction_predicted_rest": pred_rest,
        "train_loss_last": res.history[-1]["train_loss"],
        "params": int(
            sum(p.numel() for n, p in model.named_parameters() if not n.startswith("lm_head"))
        ),
        "history": [
            {
                k: r[k]
                for k in ("epoch", "train_loss", "val_loss", "val_balanced_accuracy", "val_auroc")
                if k in r
            }
            for r in res.history
        ],
    }


# ------------------------------------------------------------------------------- main
def _load_results(path: Path) -> dict[str, Any]:
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    return {
        "protocol": __doc__.split("Models:")[0].strip(),
        "conditions": {},
        "runs": {},
        "commands": [],
    }


def summarise(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Mean ± std over every stored (fold, seed) of each condition, plus per-fold means."""
    table: dict[str, dict[str, Any]] = {}
    for name, runs in results["runs"].items():
        row: dict[str, Any] = {"n_runs": len(runs)}
        for metric in ("balanced_accuracy", "auroc"):
            vals = np.array([r["test"][metric] for r in runs.values()], dtype=float)
            row[metric] = {
                "mean": float(vals.mean()),
                "std": float(vals.std(ddof=1)) if vals.size > 1 else 0.0,
            }
        folds = sorted({r["fold"] for r in runs.values()})
        row["per_fold_auroc"] = {
            int(f): float(np.mean([r["test"]["auroc"] for r in runs.values() if r["fold"] == f]))
            for f in folds
        }
        row["seconds_per_run"] = float(np.mean([r["seconds"] for r in runs.values()]))
        table[name] = row
    return table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data/eegmat"))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/eegmat_200hz_5s_uV100.npz"))
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--conditions", default="")
    ap.add_argument("--folds", default="0,1", help="comma list or 'all'")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--diagnose", action="store_true")
    ap.add_argument("--summary", action="store_true")
    ap.add_argument(
        "--merge", type=Path, nargs="*", default=[], help="results JSONs of runs made in parallel"
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("codebrain").setLevel(logging.WARNING)

    data = load_eegmat(args.data, args.cache)
    results = _load_results(args.out)
    results["commands"].append(
        "python benchmarks/eegmat_recipe_study.py "
        + " ".join(sys.argv[1:] if argv is None else argv)
    )
    for other in args.merge:
        extra = json.loads(other.read_text(encoding="utf-8"))
        results["conditions"].update(extra["conditions"])
        results["commands"] += [c for c in extra["commands"] if c not in results["commands"]]
        for name, runs in extra["runs"].items():
            results["runs"].setdefault(name, {}).update(runs)
    if args.diagnose:
        results["diagnostics"] = diagnose(data)
        print(json.dumps(results["diagnostics"], indent=1))
    n_folds = len(np.unique(data["subject"])) // N_SUBJECTS_PER_BLOCK
    folds = list(range(n_folds)) if args.folds == "all" else [int(f) for f in args.folds.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    names = [c for c in args.conditions.split(",") if c]
    for name in names:
        if name not in CONDITIONS and name not in PEERS:
            raise SystemExit(f"unknown condition {name!r}; choose from {[*PEERS, *CONDITIONS]}")
    for name in names:
        if name in CONDITIONS:
            results["conditions"][name] = CONDITIONS[name]
        for fold in folds:
            split = fold_split(data["subject"], fold)
            for seed in seeds:
                cond = CONDITIONS.get(name, {"gain": 1.0, "norm": "none"})
                parts = {}
                for k, subs in split.items():
                    sel = np.isin(data["subject"], subs)
                    parts[k] = (
                        transform(data["X"][sel], cond["gain"], cond["norm"]),
                        data["y"][sel],
                    )
                t0 = time.perf_counter()
                if name == "logbp":
                    run = run_logbp(parts, seed)
                elif name == "eegnet":
                    torch.set_num_threads(args.threads)
                    run = run_eegnet(parts, seed)
                else:
                    run = run_codebrain(CONDITIONS[name], parts, seed, args.threads)
                run.update(
                    fold=fold,
                    seed=seed,
                    split=split,
                    seconds=time.perf_counter() - t0,
                    n_windows={k: int(v[1].size) for k, v in parts.items()},
                )
                results["runs"].setdefault(name, {})[f"fold{fold}_seed{seed}"] = run
                logger.info(
                    "%s fold %d seed %d: test %s (chosen %s, %.0f s)",
                    name,
                    fold,
                    seed,
                    {k: round(v, 3) for k, v in run["test"].items()},
                    run["chosen"],
                    run["seconds"],
                )
                results["summary"] = summarise(results)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_json(args.out, results)
    if args.summary or names or args.merge:
        results["summary"] = summarise(results)
        atomic_write_json(args.out, results)
        for name, row in results["summary"].items():
            print(
                f"{name:16s} n={row['n_runs']:2d}  BA {row['balanced_accuracy']['mean']:.3f} ± "
                f"{row['balanced_accuracy']['std']:.3f}  AUROC {row['auroc']['mean']:.3f} ± "
                f"{row['auroc']['std']:.3f}  {row['seconds_per_run']:.0f} s/run"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
