"""The declarative recipe base: validation, registry, splits, signal helpers."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from codebrain.benchmark import (
    BandPass,
    CommonAverage,
    DatasetNotFoundError,
    FinetuneRecipe,
    Notch,
    Recording,
    Resample,
    Split,
    TaskRecipe,
    TaskWindows,
    apply_preprocessing,
    event_windows,
    fallback_split,
    fixed_windows,
    get_recipe,
    glob_recordings,
    list_recipes,
    pick_channels,
    resolve_split,
)


def _find(root: Path) -> list[Recording]:
    return glob_recordings(RECIPE, root, "*.edf")


def _load(recipe: TaskRecipe, rec: Recording) -> TaskWindows:
    raise AssertionError("not called")


def _recipe(**kw) -> TaskRecipe:
    base = dict(
        name="toy_task",
        title="Toy",
        classes=("a", "b", "c"),
        channels=("FP1-F7", "CZ"),
        preprocessing=(Resample(200.0), BandPass(0.3, 75.0), Notch(60.0)),
        window_s=2.0,
        stride_s=None,
        subject_pattern=r"(?P<subject>sub\d+)_",
        find=_find,
        load=_load,
        layout="<DIR>/subNN_*.edf",
        source="nowhere",
        split=Split(("sub1", "sub2"), ("sub3",), ("sub4",)),
    )
    base.update(kw)
    return TaskRecipe(**base)


RECIPE = _recipe()


def test_derived_fields_follow_the_authors() -> None:
    r = RECIPE
    assert (r.n_times, r.n_patches, r.head_hidden) == (400, 2, 400)
    assert r.metrics == ("balanced_accuracy", "cohen_kappa", "f1_weighted")
    assert r.selection_metric == "cohen_kappa" and r.n_outputs == 3 and r.is_bipolar
    b = _recipe(classes=("x", "y"))
    assert b.selection_metric == "auroc" and b.n_outputs == 1
    assert "auprc" in b.metrics and "average_precision" in b.metrics
    f = FinetuneRecipe()
    assert (f.epochs, f.batch_size, f.lr, f.weight_decay, f.min_lr) == (50, 64, 1e-4, 5e-4, 1e-6)
    assert (f.clip_grad_norm, f.label_smoothing, f.warmup_epochs) == (5.0, 0.1, 0)
    assert r.fallback_fractions == pytest.approx((0.5, 0.25, 0.25))


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(name="Bad Name"), "lower case"),
        (dict(classes=("a",)), "classes"),
        (dict(window_s=2.5), "multiple of the 200-sample patch"),
        (dict(subject_pattern=r"sub\d+"), "capture group"),
        (dict(subject_pattern=r"(sub"), "not a regex"),
        (dict(preprocessing=(Resample(250.0),)), "last Resample"),
        (dict(selection_metric="auroc"), "not among metrics"),
        (dict(head="transformer"), "head must be"),
        (dict(fallback_fractions=(0.5, 0.5, 0.5)), "fallback_fractions"),
        (dict(channels=("CZ", "CZ")), "distinct"),
        (dict(augment="yes"), "augment must be True or False"),
    ],
)
def test_recipe_rejects_bad_fields(kw: dict, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        _recipe(**kw)


def test_steps_and_split_validate() -> None:
    with pytest.raises(ValueError, match="l_freq < h_freq"):
        BandPass(40.0, 0.3)
    with pytest.raises(ValueError, match="overlap"):
        Split(("a", "b"), ("b",), ("c",))
    with pytest.raises(ValueError, match="empty"):
        Split(("a",), (), ("c",))
    with pytest.raises(ValueError, match="positive int"):
        FinetuneRecipe(epochs=0)


def test_subject_rule_and_error(tmp_path: Path) -> None:
    assert RECIPE.subject_of(tmp_path / "sub12_run1.edf") == "sub12"
    assert RECIPE.subject_of(tmp_path / "sub7_x" / "rec.edf", tmp_path) == "sub7"
    with pytest.raises(ValueError, match="subject pattern"):
        RECIPE.subject_of(tmp_path / "patient.edf")


def test_missing_data_says_layout_and_source(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"does not exist.*subNN_\*\.edf.*nowhere"):
        RECIPE.find_recordings(tmp_path / "absent")
    with pytest.raises(DatasetNotFoundError, match=r"no files matching.*Expected layout"):
        RECIPE.find_recordings(tmp_path)


def _recs(subjects: list[str]) -> list[Recording]:
    return [Recording(Path(f"{s}_r{i}.edf"), s) for s in subjects for i in (1, 2)]


def test_resolve_split_authors_fallback_and_by_recording(caplog) -> None:
    split, protocol = resolve_split(RECIPE, _recs(["sub1", "sub2", "sub3", "sub4", "sub9"]))
    assert protocol == "authors" and split == RECIPE.split
    split, protocol = resolve_split(RECIPE, _recs([f"sub{i}" for i in range(1, 4)] + ["sub10"]))
    assert protocol == "fallback" and split.unit == "subject"
    assert split.train == ("sub1", "sub2") and split.val == ("sub3",) and split.test == ("sub10",)
    assert "fallback" in caplog.text
    split, protocol = resolve_split(
        RECIPE, [Recording(Path(f"sub1_r{i}.edf"), "sub1") for i in range(8)]
    )
    assert protocol == "fallback" and split.unit == "recording"
    assert "RECORDING" in caplog.text
    with pytest.raises(ValueError, match="fold"):
        resolve_split(RECIPE, _recs(["sub1"]), fold=1)


def test_fallback_split_is_deterministic_and_disjoint() -> None:
    ids = [f"S{i}" for i in (10, 2, 1, 33, 4, 5, 6, 7, 8, 9)]
    a = fallback_split(ids, (0.7, 0.15, 0.15))
    assert a == fallback_split(list(reversed(ids)), (0.7, 0.15, 0.15))
    assert a.train[:3] == ("S1", "S2", "S4")  # natural order
    assert not (set(a.train) & set(a.test)) and len(a.ids) == 10
    with pytest.raises(ValueError, match="at least 3"):
        fallback_split(["a", "b"], (0.7, 0.15, 0.15))


def test_registry_lookup() -> None:
    names = [r.name for r in list_recipes()]
    assert "mental_arithmetic" in names
    assert get_recipe("EEGMAT") is get_recipe("Mental-Arithmetic")
    with pytest.raises(KeyError, match="known tasks"):
        get_recipe("no_such_task")


def test_only_the_measured_task_augments_by_default() -> None:
    # codebrain's augmentation is on where it was measured to help (eegmat_bench_cv.md)
    assert [r.name for r in list_recipes() if r.augment] == ["mental_arithmetic"]


def test_pick_channels_stored_normalised_and_bipolar() -> None:
    names = ["EEG Fp1-REF", "EEG F7-REF", "EEG T7-REF", "EEG A2-A1"]
    data = np.arange(4 * 5, dtype=float).reshape(4, 5)
    out = pick_channels(data, names, ["A2-A1", "FP1-F7", "T3"])
    np.testing.assert_array_equal(out[0], data[3])
    np.testing.assert_array_equal(out[1], data[0] - data[1])
    np.testing.assert_array_equal(out[2], data[2])
    with pytest.raises(ValueError, match=r"channels \['O1'\] are missing"):
        pick_channels(data, names, ["O1"])


def test_apply_preprocessing_order_and_rates() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 15000))
    y, sf = apply_preprocessing(x, 500.0, (Resample(200.0), BandPass(0.3, 75.0), Notch(60.0)))
    assert sf == 200.0 and y.shape == (3, 6000)
    y2, _ = apply_preprocessing(x, 500.0, (Resample(200.0, "scipy"),))
    assert y2.shape == (3, 6000)
    y3, _ = apply_preprocessing(x, 250.0, (BandPass(0.3, 40.0, "butter", causal=True),))
    assert y3.shape == x.shape and not np.allclose(y3, x)
    car, _ = apply_preprocessing(x, 250.0, (CommonAverage(),))
    np.testing.assert_allclose(car.mean(0), 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="NaN"):
        apply_preprocessing(np.full((2, 10), np.nan), 200.0, ())


def test_prepare_scales_and_checks_rate() -> None:
    r = _recipe(preprocessing=())
    out = r.prepare(np.full((2, 400), 100.0), 200.0)
    assert out.dtype == np.float32 and np.allclose(out, 1.0)
    with pytest.raises(ValueError, match="Resample"):
        r.prepare(np.zeros((2, 400)), 250.0)


def test_windows_helpers() -> None:
    x = np.arange(2 * 10, dtype=np.float32).reshape(2, 10)
    w = fixed_windows(x, 4)
    assert w.shape == (2, 2, 4) and w[1, 0, 0] == 4
    assert fixed_windows(x, 4, 3).shape == (3, 2, 4)
    assert fixed_windows(x, 20).shape == (0, 2, 20)
    ew, kept = event_windows(x, [0, 5, 8], 4, offset=1)
    assert ew.shape == (2, 2, 4) and list(kept) == [0, 1]


def test_task_windows_concat_and_select() -> None:
    a = TaskWindows(np.zeros((2, 1, 4)), [0, 1], "s1", "r1")
    b = TaskWindows(np.ones((3, 1, 4)), [1, 1, 0], "s2", "r2")
    c = TaskWindows.concat([a, b])
    assert len(c) == 5 and list(c.subjects) == ["s1"] * 2 + ["s2"] * 3
    assert list(c.select(c.y == 1).recordings) == ["r1", "r2", "r2"]
    with pytest.raises(ValueError, match="shapes"):
        TaskWindows.concat([a, TaskWindows(np.zeros((1, 2, 4)), [0], "s", "r")])
    with pytest.raises(ValueError, match="entries for"):
        TaskWindows(np.zeros((2, 1, 4)), [0], "s", "r")


def test_kept_recordings_warns_about_skipped_files_and_fails_when_none_is_left(caplog) -> None:
    from codebrain.benchmark.tasks._common import kept_recordings

    rec = Recording(Path("a.edf"), "s1")
    names = [f"f{i}.edf" for i in range(7)]
    with caplog.at_level(logging.WARNING):
        kept = kept_recordings(
            [rec], names, skip_warning="X: %d file(s) lack labels and are skipped", not_found="-"
        )
        assert kept == [rec]
        assert kept_recordings([rec], [], skip_warning="X: %d", not_found="-") == [rec]
    assert caplog.messages == [
        "X: 7 file(s) lack labels and are skipped: f0.edf, f1.edf, f2.edf, f3.edf, f4.edf"
    ]
    with pytest.raises(DatasetNotFoundError, match="^nothing under root$"):
        kept_recordings([], names[:1], skip_warning="X: %d skipped", not_found="nothing under root")
