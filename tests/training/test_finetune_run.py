"""Fine-tuning in a run folder: layout, exact resume, refusals, loading the result."""

from __future__ import annotations

import importlib
import json

import pytest
import torch

from _fixtures import make_tiny_classifier, rhythm_windows
from codebrain import CodeBrain
from codebrain.models.probe import ProbedCodeBrain, load_finetuned
from codebrain.training.finetune import FinetuneConfig, finetune
from codebrain.utils.run_layout import run_final_dir, run_kind

ft = importlib.import_module("codebrain.training.finetune")  # the module, not the function


def _cfg(**kw) -> FinetuneConfig:
    base = dict(
        epochs=4, batch_size=8, lr=1e-3, warmup_epochs=1, seed=0, patience=None, progress=False
    )
    return FinetuneConfig(**{**base, **kw})


def _data():
    return rhythm_windows(32, seed=0), rhythm_windows(16, seed=1)


def _crash_at(monkeypatch, epoch: int) -> None:
    """Make the next run die at the start of ``epoch`` (as a killed process would)."""
    real = ft._train_epoch

    def dying(*args, **kwargs):
        if args[-1] == epoch:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(ft, "_train_epoch", dying)


def test_run_folder_layout_and_loading(tmp_path):
    train, val = _data()
    out = tmp_path / "run"
    res = finetune(
        make_tiny_classifier(),
        train,
        val,
        _cfg(),
        out_dir=out,
        final_files={"preprocess.json": {"sfreq": 200.0}},
    )
    assert run_kind(out) == "finetune"
    saved = json.loads((out / "config.json").read_text())
    assert saved["finetune"]["epochs"] == 4 and saved["model"]["n_outputs"] == 2
    rows = [json.loads(r) for r in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert "val_balanced_accuracy" in rows[0]
    assert (out / "metrics.csv").read_text().splitlines()[0].startswith("step,epoch,lr")
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["ckpt_00000004.pt"]
    result = json.loads((out / "result.json").read_text())
    assert result["best_epoch"] == res.best_epoch and len(result["history"]) == 4
    assert json.loads((out / "final" / "preprocess.json").read_text()) == {"sfreq": 200.0}
    assert run_final_dir(out) == out / "final"
    # the run folder loads like a model folder, with the selected epoch's weights
    for loaded in (CodeBrain.from_pretrained(out), load_finetuned(out)):
        for a, b in zip(loaded.state_dict().values(), res.model.state_dict().values(), strict=True):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize(
    ("mode", "ema", "augment"),
    [("full", 0.0, False), ("linear", 0.0, False), ("full", 0.8, False), ("full", 0.0, True)],
)
def test_resume_after_a_crash_ends_as_the_uninterrupted_run(
    tmp_path, monkeypatch, mode, ema, augment
):
    train, val = _data()
    cfg = _cfg(
        mode=mode, balanced_sampling=True, keep_checkpoints=2, ema_decay=ema, augment=augment
    )
    ref = finetune(make_tiny_classifier(sfreq=200.0), train, val, cfg, out_dir=tmp_path / "ref")

    out = tmp_path / "crashed"
    with monkeypatch.context() as m:
        _crash_at(m, 3)
        with pytest.raises(KeyboardInterrupt):
            finetune(make_tiny_classifier(sfreq=200.0), train, val, cfg, out_dir=out)
    assert not (out / "final").exists() and not (out / "result.json").exists()
    with pytest.raises(FileNotFoundError, match="has not finished"):
        load_finetuned(out)

    resume = _cfg(**{**cfg.to_dict(), "resume": True})
    if mode == "full":  # the whole model is in the checkpoint: any initial weights will do
        start = make_tiny_classifier(seed=5, sfreq=200.0)
    else:  # the frozen backbone is not: another one is refused
        with pytest.raises(ValueError, match="its run had other backbone weights"):
            finetune(make_tiny_classifier(seed=5, sfreq=200.0), train, val, resume, out_dir=out)
        start = make_tiny_classifier(sfreq=200.0)
    resumed = finetune(start, train, val, resume, out_dir=out)
    assert resumed.history == ref.history
    assert resumed.best_epoch == ref.best_epoch
    model = resumed.model.probe if isinstance(resumed.model, ProbedCodeBrain) else resumed.model
    want = ref.model.probe if isinstance(ref.model, ProbedCodeBrain) else ref.model
    for a, b in zip(model.state_dict().values(), want.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    rows = [json.loads(r) for r in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]


def test_early_stopped_run_is_not_continued_on_resume(tmp_path):
    train, val = _data()
    cfg = _cfg(epochs=30, patience=1, lr=1e-2)
    first = finetune(make_tiny_classifier(), train, val, cfg, out_dir=tmp_path)
    assert first.stopped_early and len(first.history) < 30
    again = finetune(
        make_tiny_classifier(), train, val, _cfg(**{**cfg.to_dict(), "resume": True}),
        out_dir=tmp_path,
    )  # fmt: skip
    assert again.history == first.history and again.stopped_early


def test_fresh_start_over_checkpoints_and_foreign_resume_are_refused(tmp_path):
    train, val = _data()
    finetune(make_tiny_classifier(), train, val, _cfg(epochs=1), out_dir=tmp_path)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        finetune(make_tiny_classifier(), train, val, _cfg(epochs=1), out_dir=tmp_path)
    with pytest.raises(ValueError, match="its run had other config"):
        finetune(
            make_tiny_classifier(), train, val, _cfg(epochs=1, lr=5e-3, resume=True),
            out_dir=tmp_path,
        )  # fmt: skip
    with pytest.raises(ValueError, match="its run had other config"):  # augment turned on
        finetune(
            make_tiny_classifier(sfreq=200.0), train, val,
            _cfg(epochs=1, augment=True, resume=True), out_dir=tmp_path,
        )  # fmt: skip
    with pytest.raises(ValueError, match="its run had other n_train"):
        finetune(
            make_tiny_classifier(), rhythm_windows(24), val, _cfg(epochs=1, resume=True),
            out_dir=tmp_path,
        )  # fmt: skip


def test_resume_and_final_files_need_out_dir_and_other_runs_are_refused(tmp_path):
    train, val = _data()
    with pytest.raises(ValueError, match=r"config.resume needs out_dir"):
        finetune(make_tiny_classifier(), train, val, _cfg(resume=True))
    with pytest.raises(ValueError, match="final_files needs out_dir"):
        finetune(make_tiny_classifier(), train, val, _cfg(), final_files={"a.json": {}})
    (tmp_path / "config.json").write_text(json.dumps({"pretrain": {}}))
    with pytest.raises(ValueError, match="is a pretrain run folder, not a finetune one"):
        finetune(make_tiny_classifier(), train, val, _cfg(), out_dir=tmp_path)
    assert not (tmp_path / "checkpoints").exists()


def test_a_corrupt_checkpoint_is_one_clear_error_and_nothing_is_lost(tmp_path):
    train, val = _data()
    finetune(make_tiny_classifier(), train, val, _cfg(epochs=1), out_dir=tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    ckpt = tmp_path / "checkpoints" / "ckpt_00000001.pt"
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"ckpt_00000001.pt' cannot be read \(\w+\): it is") as e:
        finetune(make_tiny_classifier(), train, val, _cfg(epochs=1, resume=str(ckpt)),
                 out_dir=tmp_path)  # fmt: skip
    assert "\n" not in str(e.value) and "weights_only" not in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
