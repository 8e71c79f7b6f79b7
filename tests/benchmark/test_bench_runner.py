"""The benchmark runner end to end on real EEGMAT files (tiny models, one epoch), its
metrics and its CLI."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from codebrain.benchmark import get_recipe
from codebrain.benchmark.models import AuthorsHead, codebrain_training_settings
from codebrain.benchmark.runner import parse_models, parse_seeds, run_benchmark
from codebrain.benchmark.scoring import (
    VAL_THRESHOLD_METRIC,
    predicted_counts,
    probabilities,
    task_metrics,
    validation_threshold,
)
from codebrain.cli import main


def test_e2e_two_models_results_schema(eegmat_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench"
    rc = main(
        [
            "-q",
            "benchmark",
            "mental_arithmetic",
            "--data",
            str(eegmat_dir),
            "--models",
            "codebrain,logbandpower",
            "--seeds",
            "0,1",
            "--epochs",
            "1",
            "--width",
            "8",
            "--layers",
            "1",
            "--max-subjects",
            "4",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| CodeBrain |" in printed and "log band power" in printed
    res = json.loads((out / "results.json").read_text())
    assert res["task"] == "mental_arithmetic" and res["split_protocol"] == "fallback"
    split = res["split"]
    assert set(split) == {"train", "val", "test"}
    assert split == {
        "train": ["Subject00", "Subject01"],
        "val": ["Subject02"],
        "test": ["Subject03"],
    }
    assert set(res["n_windows"]) == {"train", "val", "test"}
    assert res["n_windows"]["test"] == 48  # Subject03: 36 rest + 12 task windows of 5 s
    metrics = {
        "balanced_accuracy",
        "auroc",
        "auprc",
        "average_precision",
        "balanced_accuracy_val_threshold",
    }
    assert set(res["models"]) == {"codebrain", "logbandpower"}
    for entry in res["models"].values():
        assert set(entry["seeds"]) == {"0", "1"}
        for seed_metrics in entry["seeds"].values():
            assert set(seed_metrics) == metrics
            assert all(v is None or 0.0 <= v <= 1.0 for v in seed_metrics.values())
        assert set(entry["mean"]) == set(entry["std"]) == metrics
        assert entry["params"] > 0 and entry["train_seconds"] > 0
        vals = [s["auroc"] for s in entry["seeds"].values()]
        assert entry["mean"]["auroc"] == pytest.approx(np.mean(vals))
        for counts in entry["test_predicted"].values():  # argmax per class, every test window
            assert set(counts) == {"rest", "arithmetic"} and sum(counts.values()) == 48
    # per seed, the curve the epoch was selected on: one row per epoch (per C for the baseline)
    curve = res["models"]["codebrain"]["history"]["0"]
    assert [r["epoch"] for r in curve] == [1] and set(curve[0]) >= {"train_loss", "val_auroc"}
    assert len(res["models"]["logbandpower"]["history"]["1"]) == 5  # the C grid
    md = (out / "results.md").read_text()
    assert "fallback" in md and "auc(recall, precision)" in md
    assert "Thresholds: balanced_accuracy: threshold 0.5" in md
    assert (out / "results.png").stat().st_size > 1000


def test_peer_eegnet_runs_the_generic_loop(eegmat_dir: Path) -> None:
    pytest.importorskip("braindecode")
    res = run_benchmark("eegmat", eegmat_dir, models="eegnet", seeds="0", epochs=1, max_subjects=3)
    entry = res["models"]["eegnet"]
    assert entry["params"] > 1000 and entry["best_epoch"] == {"0": 1}


def test_authors_head_binary_two_columns_is_bce() -> None:
    head = AuthorsHead(n_chans=3, n_patches=2, feature_dim=4, n_outputs=1, two_columns=True)
    assert head.mlp[1].out_features == 400  # P * 200
    feats = torch.randn(5, 3, 2, 4)
    out = head(feats)
    assert out.shape == (5, 2) and torch.all(out[:, 0] == 0)
    y = torch.tensor([0, 1, 1, 0, 1])
    ce = torch.nn.functional.cross_entropy(out, y)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(out[:, 1], y.float())
    assert torch.allclose(ce, bce, atol=1e-6)


def test_codebrain_settings_follow_the_authors() -> None:
    r = get_recipe("mental_arithmetic")
    arch, cfg = codebrain_training_settings(r, epochs=3, width=32, layers=2)
    assert arch["out_channels"] == 32 and arch["num_res_layers"] == 2
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.backbone_lr) == (3, 64, 1e-4, 1e-4)
    assert cfg.weight_decay == 5e-4 and cfg.grad_clip == 5.0 and cfg.warmup_epochs == 0
    assert cfg.min_lr_ratio == pytest.approx(0.01) and cfg.monitor == "auroc"
    assert cfg.label_smoothing == 0.0  # binary: BCE on one logit, no smoothing
    _, cfg4 = codebrain_training_settings(get_recipe("physionet_mi"))
    assert cfg4.label_smoothing == 0.1 and cfg4.monitor == "cohen_kappa" and cfg4.epochs == 50


def test_metrics_authors_auprc_beside_average_precision() -> None:
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    z = y + rng.normal(0, 1.2, 200)
    m = task_metrics(y, probabilities(z, 2))
    p, r, _ = precision_recall_curve(y, z)
    assert m["auprc"] == pytest.approx(auc(r, p))
    assert m["average_precision"] == pytest.approx(average_precision_score(y, z))
    assert m["auprc"] != m["average_precision"]
    single = task_metrics(np.zeros(4, int), probabilities(np.zeros(4), 2))
    assert single["auroc"] is None and single["balanced_accuracy"] is not None
    multi = task_metrics([0, 1, 2, 2], np.eye(3)[[0, 1, 2, 1]])
    assert set(multi) == {"balanced_accuracy", "cohen_kappa", "f1_weighted"}
    assert predicted_counts(np.eye(3)[[0, 1, 2, 1]]) == [1, 2, 1]
    assert predicted_counts(probabilities(np.array([-1.0, -2.0, -0.5]), 2)) == [3, 0]
    with pytest.raises(ValueError, match="prob must be"):
        predicted_counts(np.zeros(3))


def test_validation_threshold_recovers_a_shared_offset() -> None:
    rng = np.random.default_rng(1)
    y_val, y_test = rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    # both unseen splits score every window 3 logits too low: at 0.5 one class wins everything
    z_val = 2.0 * y_val + rng.normal(0, 0.5, 300) - 4.0
    z_test = 2.0 * y_test + rng.normal(0, 0.5, 300) - 4.0
    t = validation_threshold(y_val, probabilities(z_val, 2))
    assert 0.0 < t < 0.5
    m = task_metrics(y_test, probabilities(z_test, 2), threshold=t)
    assert m["balanced_accuracy"] == pytest.approx(0.5)
    assert m[VAL_THRESHOLD_METRIC] > 0.9
    assert VAL_THRESHOLD_METRIC not in task_metrics(y_test, probabilities(z_test, 2))
    # thresholds 0.4 and 0.8 both give balanced accuracy 0.75: the one nearer 0.5 wins
    prob = np.stack([1 - (p := np.array([0.2, 0.4, 0.6, 0.8])), p], axis=1)
    assert validation_threshold(np.array([0, 1, 0, 1]), prob) == pytest.approx(0.4)
    assert validation_threshold(np.zeros(4, int), prob) == 0.5  # one class: no information
    with pytest.raises(ValueError, match="prob_val must be"):
        validation_threshold(np.array([0, 1]), np.zeros((3, 2)))


def test_one_predicted_class_is_warned_and_recorded(eegmat_dir: Path, monkeypatch, caplog) -> None:
    import codebrain.benchmark.runner as runner
    from codebrain.benchmark.train import FitResult

    def fit(name, recipe, windows, seed, **kw):
        n = len(windows["test"])
        test = {"balanced_accuracy": 0.5, "auroc": 0.9, "auprc": 0.8, "average_precision": 0.8}
        counts = [n, 0] if seed == 0 else [n - 1, 1]
        return FitResult(test, dict(test), 3, 1.0, [], counts), 10, 0.0

    monkeypatch.setattr(runner, "_fit_one", fit)
    with caplog.at_level("WARNING", logger="codebrain"):
        res = run_benchmark("eegmat", eegmat_dir, models="eegnet", seeds="0,1", max_subjects=3)
    n = res["n_windows"]["test"]
    assert res["models"]["eegnet"]["test_predicted"] == {
        "0": {"rest": n, "arithmetic": 0},
        "1": {"rest": n - 1, "arithmetic": 1},
    }
    warned = [r.getMessage() for r in caplog.records if "every test window" in r.getMessage()]
    assert len(warned) == 1 and "eegnet seed 0: every test window was predicted 'rest'" in warned[0]


def test_parse_models_and_seeds() -> None:
    assert parse_models("CodeBrain, eegnet,eegnet") == ["codebrain", "eegnet"]
    with pytest.raises(ValueError, match="Unknown model 'resnet'"):
        parse_models("resnet")
    assert parse_seeds("0,1,2") == [0, 1, 2]
    with pytest.raises(ValueError, match="non-negative integers"):
        parse_seeds("0,x")


def test_cli_errors_are_one_line(tmp_path: Path, capsys) -> None:
    assert main(["benchmark", "nope", "--data", str(tmp_path)]) == 2
    assert "Unknown benchmark task" in capsys.readouterr().err
    assert main(["benchmark", "eegmat"]) == 2
    assert "--data DIR is required" in capsys.readouterr().err
    assert main(["benchmark", "eegmat", "--data", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "SubjectNN_1.edf" in err
    assert main(["benchmark", "eegmat", "--data", str(tmp_path), "--models", "x"]) == 2
    assert "--models" in capsys.readouterr().err
    assert main(["benchmark", "--list"]) == 0
    assert "mental_arithmetic" in capsys.readouterr().out


def test_pretrain_on_train_uses_only_training_windows(eegmat_dir: Path, monkeypatch) -> None:
    import codebrain.benchmark.runner as runner
    from codebrain.benchmark.runner import PretrainOnTrain

    seen = {}
    original = runner._pretrain_on_train

    def spy(model, recipe, train, budget, seed, device, work_dir):
        seen["subjects"] = set(train.subjects)
        return original(model, recipe, train, budget, seed, device, work_dir)

    monkeypatch.setattr(runner, "_pretrain_on_train", spy)
    res = run_benchmark(
        "mental_arithmetic",
        eegmat_dir,
        models="logbandpower",
        pretrain_on_train=True,
        pretrain_budget=PretrainOnTrain(
            tokenizer_steps=2,
            pretrain_steps=2,
            batch_size=8,
            codebook_size=16,
            tokenizer_heads=2,
            tokenizer_depth=1,
        ),  # fmt: skip
        seeds="0",
        epochs=1,
        width=8,
        layers=1,
        max_subjects=3,
    )
    assert seen["subjects"] == set(res["split"]["train"]) == {"Subject00"}
    entry = res["models"]["codebrain_pt"]
    assert entry["pretrain_seconds"] > 0 and set(entry["seeds"]["0"]) >= {"auroc"}


def _eegmat_codebrain(tiny_codebrain, recipe, seed: int | None = None):
    """A width-8, one-layer CodeBrain on the recipe's channels (default 4096-code books)."""
    return tiny_codebrain(
        seed=seed, n_outputs=2, n_chans=None, chs_info=[{"ch_name": c} for c in recipe.channels],
        n_times=1000, sfreq=200.0, res_channels=8, skip_channels=8, num_res_layers=1,
        codebook_size_t=4096, codebook_size_f=4096,
    )  # fmt: skip


def test_pretrained_folder_is_loaded(eegmat_dir: Path, tmp_path: Path, tiny_codebrain) -> None:
    r = get_recipe("mental_arithmetic")
    m = _eegmat_codebrain(tiny_codebrain, r, seed=0)
    m.save_pretrained(tmp_path / "cb")
    res = run_benchmark(
        r, eegmat_dir, models="codebrain", seeds="0", epochs=1, max_subjects=3,
        pretrained=tmp_path / "cb",
    )  # fmt: skip
    assert res["models"]["codebrain"]["pretrained"] == str(tmp_path / "cb")
    with pytest.raises(ValueError, match="--width/--layers"):
        run_benchmark(r, eegmat_dir, models="codebrain", pretrained=tmp_path / "cb", width=8)


def _toy_sequence_recipe():
    from codebrain.benchmark import Split, TaskRecipe, TaskWindows, glob_recordings

    def find(root):
        return glob_recordings(RECIPE_SEQ, root, "s*.npy")

    def load(recipe, rec):
        arr = np.load(rec.path)  # (n, C, S*T) µV with labels in the first sample
        y = np.abs(arr[:, 0, :: recipe.n_times]).astype(int) % recipe.n_classes
        return TaskWindows(arr * recipe.amplitude_scale, y, rec.subject, rec.id)

    RECIPE_SEQ = TaskRecipe(
        name="toy_sleep",
        title="Toy sleep sequences",
        classes=("W", "N1", "N2", "N3", "REM"),
        channels=("C3", "C4"),
        preprocessing=(),
        window_s=1.0,
        stride_s=1.0,
        subject_pattern=r"(s\d+)",
        find=find,
        load=load,
        layout="<DIR>/sNN.npy",
        source="tests",
        split=Split(("s1", "s2"), ("s3",), ("s4",)),
        head="isruc_sequence",
        sequence_length=3,
        amplitude_scale=1.0,
    )
    return RECIPE_SEQ


def test_sequence_head_task_runs_all_model_kinds(tmp_path: Path) -> None:
    pytest.importorskip("braindecode")
    recipe = _toy_sequence_recipe()
    rng = np.random.default_rng(0)
    for s in range(1, 5):
        np.save(tmp_path / f"s{s}.npy", rng.integers(-40, 40, (6, 2, 600)).astype(np.float32))
    res = run_benchmark(
        recipe, tmp_path, models="codebrain,eegnet,logbandpower", seeds="0", epochs=1,
        width=8, layers=1,
    )  # fmt: skip
    assert res["split_protocol"] == "authors" and res["n_windows"] == {
        "train": 12,
        "val": 6,
        "test": 6,
    }
    for entry in res["models"].values():
        assert set(entry["seeds"]["0"]) == {"balanced_accuracy", "cohen_kappa", "f1_weighted"}


def test_from_scratch_codebrain_sees_microvolts_pretrained_sees_model_units(
    eegmat_dir: Path, tmp_path: Path, monkeypatch, tiny_codebrain
) -> None:
    """The input gain of from-scratch CodeBrain (µV, not µV / 100) and none for loaded weights;
    every torch model trains on class-balanced batches."""
    import codebrain.benchmark.runner as runner
    from codebrain.benchmark.models import SCRATCH_INPUT_GAIN

    seen: dict[str, float] = {}
    original = runner.fit_codebrain

    def spy(model, recipe, train, val, test, config, *rest):
        seen.setdefault("rms", []).append(float(np.sqrt(np.mean(train.x.astype(np.float64) ** 2))))
        assert config.balanced_sampling
        return original(model, recipe, train, val, test, config, *rest)

    monkeypatch.setattr(runner, "fit_codebrain", spy)
    kw = dict(models="codebrain", seeds="0", epochs=1, max_subjects=3)
    run_benchmark("mental_arithmetic", eegmat_dir, width=8, layers=1, **kw)
    _eegmat_codebrain(tiny_codebrain, get_recipe("mental_arithmetic")).save_pretrained(
        tmp_path / "cb"
    )
    run_benchmark("mental_arithmetic", eegmat_dir, pretrained=tmp_path / "cb", **kw)
    scratch, loaded = seen["rms"]
    assert scratch == pytest.approx(SCRATCH_INPUT_GAIN * loaded, rel=1e-5)
    assert 0.01 < loaded < 1.0  # EEG of ~10 µV in units of 100 µV


def test_peers_train_on_class_balanced_batches(monkeypatch) -> None:
    import codebrain.benchmark.train as train_mod

    calls = []
    original = train_mod.balanced_sampler

    def spy(y, seed):
        calls.append(np.bincount(np.asarray(y)))
        return original(y, seed)

    monkeypatch.setattr(train_mod, "balanced_sampler", spy)
    from codebrain.benchmark.models import TrainSettings
    from codebrain.benchmark.recipe import TaskWindows

    rng = np.random.default_rng(0)
    y = np.array([0] * 30 + [1] * 10)
    w = TaskWindows(
        rng.standard_normal((40, 20, 1000)).astype(np.float32), y,
        np.array(["s"] * 40), np.array(["r"] * 40),
    )  # fmt: skip
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(20 * 1000, 1))
    settings = TrainSettings(
        epochs=1, batch_size=8, lr=1e-3, weight_decay=0.0, min_lr=1e-5, warmup_epochs=0,
        clip_grad_norm=5.0, label_smoothing=0.0,
    )  # fmt: skip
    train_mod.fit_torch(model, get_recipe("mental_arithmetic"), w, w, w, settings)
    assert len(calls) == 1 and calls[0].tolist() == [30, 10]


def test_cli_checks_the_output_folder_before_running(tmp_path: Path, monkeypatch, capsys) -> None:
    import codebrain.benchmark.runner as runner

    def never(*args, **kwargs):
        raise AssertionError("the benchmark ran before --out was checked")

    monkeypatch.setattr(runner, "run_benchmark", never)
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    rc = main(
        ["-q", "benchmark", "mental_arithmetic", "--data", str(tmp_path), "--out", str(afile)]
    )
    assert rc != 0
    assert "is an existing file, not a folder" in capsys.readouterr().err
    assert afile.read_text() == "keep me"


@pytest.mark.parametrize(
    ("flag", "expected"), [([], None), (["--augment"], True), (["--no-augment"], False)]
)
def test_cli_augment_defaults_to_the_task_and_can_be_turned_off(
    tmp_path: Path, monkeypatch, flag: list[str], expected: bool | None
) -> None:
    import codebrain.benchmark.runner as runner

    seen: dict[str, object] = {}

    def capture(*args, **kwargs):
        seen.update(kwargs)
        raise ValueError("captured")

    monkeypatch.setattr(runner, "run_benchmark", capture)
    argv = ["-q", "benchmark", "eegmat", "--data", str(tmp_path), "--out", str(tmp_path / "o")]
    assert main(argv + flag) == 2
    assert seen["augment"] is expected  # None: run_benchmark takes the recipe's default


def test_peer_input_unit_uv_feeds_microvolts(monkeypatch) -> None:
    """A peer whose ``input_unit`` is ``"uV"`` sees ``x / amplitude_scale``; others see ``x``."""
    import codebrain.benchmark.models as models

    class Spy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[torch.Tensor] = []

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.seen.append(x)
            return x.mean((1, 2))[:, None]

    inner: dict[str, Spy] = {}

    def build(r):
        inner["m"] = Spy()
        return inner["m"]

    r = get_recipe("mental_arithmetic")
    x = torch.randn(2, r.n_chans, r.n_times)
    for unit, gain in (("uV", 1.0 / r.amplitude_scale), ("recipe", 1.0)):
        monkeypatch.setitem(models.PEERS, "spy", models.PeerSpec("Spy", build, 1e-3, unit))
        models.build_peer("spy", r)(x)
        assert torch.allclose(inner["m"].seen[0], x * gain)
    assert r.amplitude_scale == 0.01  # so "uV" above multiplied by 100
    # EEGNet in µV (its batch-norm statistics; eegmat_bench_cv.md), the foundation models not
    assert models.PEERS["eegnet"].input_unit == "uV"
    assert models.PEERS["cbramod"].input_unit == models.PEERS["labram"].input_unit == "recipe"
    with pytest.raises(ValueError, match="input_unit must be 'recipe' or 'uV'"):
        models.PeerSpec("Bad", build, 1e-3, "volts")


def test_augment_transforms_only_training_windows_of_every_deep_model(
    eegmat_dir: Path, monkeypatch
) -> None:
    from codebrain.training.augment import AugmentedDataset

    calls: list[int] = []
    original = AugmentedDataset.__getitem__

    def spy(self, i):
        calls.append(i)
        return original(self, i)

    monkeypatch.setattr(AugmentedDataset, "__getitem__", spy)
    kw = dict(seeds="0", epochs=2, max_subjects=3, width=8, layers=1)
    models = "codebrain,logbandpower"
    if importlib.util.find_spec("braindecode") is not None:
        models += ",eegnet"
    plain = run_benchmark("mental_arithmetic", eegmat_dir, models=models, augment=False, **kw)
    assert plain["augment"] is None and not calls
    assert get_recipe("mental_arithmetic").augment  # so augment=None (the default) augments
    res = run_benchmark("mental_arithmetic", eegmat_dir, models=models, **kw)
    n_deep = len(models.split(",")) - 1
    assert len(calls) == n_deep * 2 * res["n_windows"]["train"]  # every training draw, no other
    assert res["augment"] == {
        "time_shift": True, "gain_sigma": 0.1, "freq_shift": 1.5, "sfreq": 200.0
    }  # fmt: skip
    assert res["models"]["logbandpower"]["seeds"] == plain["models"]["logbandpower"]["seeds"]
    assert res["models"]["codebrain"]["seeds"] != plain["models"]["codebrain"]["seeds"]
    with pytest.raises(TypeError, match="augment"):
        run_benchmark("mental_arithmetic", eegmat_dir, models="logbandpower", augment="yes")
