"""Fine-tuning API: modes, reproducibility, early stopping/restore, optimiser groups, splits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from _fixtures import TINY_CLASSIFIER, TensorWindows, make_tiny_classifier, rhythm_windows
from codebrain import CodeBrain
from codebrain.models.probe import LinearProbe, ProbedCodeBrain, load_finetuned, pool_features
from codebrain.training._splits import group_kfold, group_train_val_split
from codebrain.training.finetune import (
    FinetuneConfig,
    _class_weights,
    _param_groups,
    finetune,
)
from codebrain.training.inference import encode_dataset, evaluate, predict


def _cfg(**kw) -> FinetuneConfig:
    base = dict(epochs=2, batch_size=16, progress=False, lr=3e-3, backbone_lr=1e-3)
    base.update(kw)
    return FinetuneConfig(**base)


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_same_seed_gives_identical_weights():
    ds = rhythm_windows()
    a = finetune(make_tiny_classifier(), ds, rhythm_windows(16, seed=1), _cfg(seed=3)).model
    b = finetune(make_tiny_classifier(), ds, rhythm_windows(16, seed=1), _cfg(seed=3)).model
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    c = finetune(make_tiny_classifier(), ds, None, _cfg(seed=4)).model
    assert not all(torch.equal(sa[k], c.state_dict()[k]) for k in sa)


def test_full_finetuning_learns_a_separable_task():
    res = finetune(
        make_tiny_classifier(),
        rhythm_windows(64),
        rhythm_windows(32, seed=1),
        _cfg(epochs=8, lr=3e-3, backbone_lr=3e-3),
    )
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    assert evaluate(res.model, rhythm_windows(32, seed=2))["balanced_accuracy"] >= 0.8


def test_mlp_probe_trains_only_the_head():
    model = make_tiny_classifier()
    before = _state(model)
    flags = [p.requires_grad for p in model.parameters()]
    res = finetune(model, rhythm_windows(), rhythm_windows(16, seed=1), _cfg(mode="mlp", epochs=2))
    after = res.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("final_layer.") for k in changed)
    assert [p.requires_grad for p in res.model.parameters()] == flags  # caller's flags back


def test_linear_probe_keeps_model_and_saves_roundtrip(tmp_path):
    model = make_tiny_classifier()
    before = _state(model)
    res = finetune(
        model, rhythm_windows(), rhythm_windows(16, seed=1), _cfg(mode="linear", epochs=3)
    )
    probed = res.model
    assert isinstance(probed, ProbedCodeBrain)
    assert all(torch.equal(before[k], v) for k, v in probed.backbone.state_dict().items())
    assert (
        probed.probe.linear.in_features
        == TINY_CLASSIFIER["n_chans"] * TINY_CLASSIFIER["out_channels"]
    )
    out, _ = predict(probed, rhythm_windows(8, seed=5))
    probed.save_pretrained(tmp_path / "m")
    loaded = load_finetuned(tmp_path / "m")
    assert isinstance(loaded, ProbedCodeBrain)
    out2, _ = predict(loaded, rhythm_windows(8, seed=5))
    np.testing.assert_allclose(out, out2, atol=1e-6)
    # a plain CodeBrain folder loads as CodeBrain
    make_tiny_classifier().save_pretrained(tmp_path / "plain")
    assert type(load_finetuned(tmp_path / "plain")) is CodeBrain
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_finetuned(tmp_path / "nothing")


def test_pool_features_shapes():
    f = torch.randn(2, 3, 4, 5)
    assert pool_features(f, "mean_patches").shape == (2, 15)
    assert pool_features(f, "mean").shape == (2, 5)
    assert pool_features(f, "flatten").shape == (2, 60)
    torch.testing.assert_close(pool_features(f, "mean_patches")[:, :5], f[:, 0].mean(1))
    with pytest.raises(ValueError, match="pooling"):
        LinearProbe(4, 2, pooling="max")


def test_best_epoch_is_restored_and_history_is_complete():
    val = rhythm_windows(16, seed=1)
    res = finetune(make_tiny_classifier(), rhythm_windows(), val, _cfg(epochs=4, monitor="loss"))
    losses = [h["val_loss"] for h in res.history]
    assert res.best_epoch == int(np.argmin(losses)) + 1
    assert res.best_score == pytest.approx(min(losses))
    # the returned weights are the best epoch's: recompute the validation loss
    out, y = predict(res.model, val)
    loss = torch.nn.functional.cross_entropy(torch.from_numpy(out), torch.from_numpy(y))
    assert float(loss) == pytest.approx(min(losses), rel=1e-5)
    keys = {"epoch", "lr", "train_loss", "val_loss", "val_balanced_accuracy", "val_auroc"}
    assert keys <= set(res.history[0])
    json.dumps(res.to_dict())


@pytest.mark.parametrize("mode", ["full", "linear"])
def test_ema_returns_the_moving_average_of_the_trained_weights(mode):
    # the raw trajectory is the same with and without the average: record it in a plain run
    seen: list[dict[str, torch.Tensor]] = []

    def record(opt, args, kwargs):
        seen.append({id(p): p.detach().clone() for g in opt.param_groups for p in g["params"]})

    ds, decay = rhythm_windows(32), 0.7
    hook = register_optimizer_step_post_hook(record)
    try:
        plain = finetune(make_tiny_classifier(), ds, None, _cfg(epochs=2, mode=mode))
    finally:
        hook.remove()
    averaged = finetune(
        make_tiny_classifier(), ds, None, _cfg(epochs=2, mode=mode, ema_decay=decay)
    )
    head = (lambda m: m.probe) if mode == "linear" else (lambda m: m)
    trained = [p for p in head(plain.model).parameters() if id(p) in seen[0]]
    assert trained and len(seen) == 4  # 2 epochs x 2 steps
    for p, q in zip(head(plain.model).parameters(), head(averaged.model).parameters(), strict=True):
        if id(p) not in seen[0]:  # frozen: untouched either way
            torch.testing.assert_close(p, q, rtol=0, atol=0)
            continue
        want = seen[0][id(p)]
        for step in seen[1:]:
            want = decay * want + (1 - decay) * step[id(p)]
        torch.testing.assert_close(q, want)
        torch.testing.assert_close(p, seen[-1][id(p)], rtol=0, atol=0)
    with pytest.raises(ValueError, match="ema_decay"):
        FinetuneConfig(ema_decay=1.0)


def test_ema_weights_are_what_is_validated_and_selected():
    val = rhythm_windows(16, seed=1)
    cfg = _cfg(epochs=3, monitor="loss", ema_decay=0.5)
    res = finetune(make_tiny_classifier(), rhythm_windows(), val, cfg)
    out, y = predict(res.model, val)
    loss = torch.nn.functional.cross_entropy(torch.from_numpy(out), torch.from_numpy(y))
    assert float(loss) == pytest.approx(res.best_score, rel=1e-5)
    assert res.best_score == pytest.approx(min(h["val_loss"] for h in res.history))


def test_early_stopping_stops_before_max_epochs():
    # a learning rate this small cannot improve the balanced accuracy for long
    cfg = _cfg(epochs=6, patience=1, lr=1e-9, backbone_lr=1e-9, warmup_epochs=0)
    res = finetune(make_tiny_classifier(), rhythm_windows(), rhythm_windows(16, seed=1), cfg)
    assert res.stopped_early and len(res.history) < 6


def test_param_groups_layer_decay_and_no_decay():
    model = make_tiny_classifier()
    cfg = _cfg(lr=1e-3, backbone_lr=1e-4, layer_decay=0.5, weight_decay=0.1)
    groups = _param_groups(model, model.final_layer, cfg)
    lr_of = {}
    for g in groups:
        for p in g["params"]:
            lr_of[id(p)] = (g["lr"], g["weight_decay"])
    named = dict(model.named_parameters())
    n = TINY_CLASSIFIER["num_res_layers"]
    assert lr_of[id(named["final_layer.1.weight"])] == (1e-3, 0.1)
    assert lr_of[id(named["final_layer.1.bias"])] == (1e-3, 0.0)
    blk = "residual_layer.residual_blocks.{}.res_conv.parametrizations.weight.original1"
    assert lr_of[id(named[blk.format(n - 1)])][0] == pytest.approx(1e-4 * 0.5)
    assert lr_of[id(named[blk.format(0)])][0] == pytest.approx(1e-4 * 0.5**n)
    emb = next(k for k, p in named.items() if k.startswith("patch_embedding.") and p.requires_grad)
    assert lr_of[id(named[emb])][0] == pytest.approx(1e-4 * 0.5 ** (n + 1))
    assert not any(k.startswith("lm_head") for k in named if id(named[k]) in lr_of)


def test_class_weights_balanced():
    w = _class_weights(FinetuneConfig(class_weight="balanced"), np.array([0, 0, 0, 1]), 2)
    torch.testing.assert_close(w, torch.tensor([4 / 6, 4 / 2]))
    with pytest.raises(ValueError, match="one per class"):
        _class_weights(FinetuneConfig(class_weight=[1.0]), np.array([0, 1]), 2)


def test_frozen_features_and_encode_dataset():
    feats, labels = encode_dataset(make_tiny_classifier(), rhythm_windows(8), pooling=None)
    assert feats.shape == (8, 3, 2, 8) and labels.shape == (8,)
    pooled, _ = encode_dataset(make_tiny_classifier(), rhythm_windows(8), pooling="mean")
    assert pooled.shape == (8, 8)


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (torch.zeros(8, dtype=torch.long), "single class"),
        (torch.arange(8) % 3, "n_outputs=2"),
        (torch.rand(8), "integer class labels"),
    ],
)
def test_bad_labels_raise(labels, match):
    ds = TensorWindows(torch.randn(8, 3, 400), labels)
    with pytest.raises(ValueError, match=match):
        finetune(make_tiny_classifier(), ds, None, _cfg(epochs=1))


def test_bad_config_and_inputs():
    with pytest.raises(ValueError, match="mode"):
        FinetuneConfig(mode="partial")
    with pytest.raises(ValueError, match="epochs"):
        FinetuneConfig(epochs=0)
    with pytest.raises(ValueError, match="Unknown FinetuneConfig"):
        FinetuneConfig.from_dict({"epochz": 3})
    assert FinetuneConfig.from_dict(FinetuneConfig().to_dict()) == FinetuneConfig()
    with pytest.raises(ValueError, match="empty"):
        finetune(
            make_tiny_classifier(),
            TensorWindows(torch.zeros(0, 3, 400), torch.zeros(0)),
            None,
            _cfg(),
        )
    with pytest.raises(TypeError, match="CodeBrain"):
        finetune(torch.nn.Linear(2, 2), rhythm_windows(), None, _cfg())


def test_regression_mode():
    ds = rhythm_windows(32)
    target = TensorWindows(ds.x, ds.y.float())
    res = finetune(
        make_tiny_classifier(n_outputs=1), target, target, _cfg(task="regression", epochs=2)
    )
    assert {"val_rmse", "val_r2", "val_pearson_r"} <= set(res.history[0])
    assert res.monitor == "r2"


def test_group_splits_never_share_groups():
    groups = np.repeat(np.arange(10), 6)
    y = np.tile([0, 1], 30)
    tr, va = group_train_val_split(y, groups, val_fraction=0.2, seed=0)
    assert set(groups[tr]).isdisjoint(groups[va]) and len(tr) + len(va) == 60
    assert set(y[va]) == {0, 1}
    folds = group_kfold(y, groups, n_splits=5, seed=0)
    seen = np.concatenate([te for _, te in folds])
    assert sorted(seen.tolist()) == list(range(60))
    for a, b in folds:
        assert set(groups[a]).isdisjoint(groups[b])
    with pytest.raises(ValueError, match="distinct groups"):
        group_kfold(y, np.zeros(60), n_splits=3)


def test_learning_rate_warms_up_then_decays():
    cfg = _cfg(epochs=4, warmup_epochs=1, lr=1e-2, min_lr_ratio=0.1)
    lrs = [h["lr"] for h in finetune(make_tiny_classifier(), rhythm_windows(32), None, cfg).history]
    # logged after each epoch: peak after warm-up, then cosine down to lr * min_lr_ratio
    assert lrs[0] == pytest.approx(1e-2)
    assert lrs[0] > lrs[1] > lrs[2] > lrs[3] == pytest.approx(1e-3)


def test_requires_grad_flags_restored_even_on_error():
    model = make_tiny_classifier()
    model.patch_embedding.requires_grad_(False)
    finetune(model, rhythm_windows(16), None, _cfg(mode="mlp", epochs=1))
    assert not any(p.requires_grad for p in model.patch_embedding.parameters())
    assert all(p.requires_grad for p in model.final_layer.parameters())
    bad = TensorWindows(torch.full((8, 3, 400), 1e38), torch.arange(8) % 2)
    with pytest.raises(ValueError, match="loss became|NaN or Inf"):
        finetune(model, bad, None, _cfg(epochs=1))
    assert all(p.requires_grad for p in model.final_layer.parameters())
    assert not any(p.requires_grad for p in model.patch_embedding.parameters())


def test_balanced_sampling_draws_classes_equally():
    from codebrain.training.batching import balanced_sampler

    y = np.array([0] * 90 + [1] * 10)
    idx = np.array(list(balanced_sampler(y, seed=0)))
    assert idx.size == y.size
    frac = (y[idx] == 1).mean()
    assert 0.35 < frac < 0.65  # unbalanced shuffling would give 0.10
    again = np.array(list(balanced_sampler(y, seed=0)))
    np.testing.assert_array_equal(idx, again)


def test_balanced_sampling_learns_an_imbalanced_task():
    # 7 of 8 training windows are class 0; balanced sampling still separates the classes
    # and is exactly reproducible.
    full = rhythm_windows(96)
    keep = [i for i in range(96) if full.y[i] == 0 or i % 8 == 1]
    ds = TensorWindows(full.x[keep], full.y[keep])
    cfg = _cfg(balanced_sampling=True, epochs=6, batch_size=8)
    bal = finetune(make_tiny_classifier(), ds, None, cfg)
    assert evaluate(bal.model, rhythm_windows(32, seed=5))["balanced_accuracy"] >= 0.8
    again = finetune(make_tiny_classifier(), ds, None, cfg).model.state_dict()
    assert all(torch.equal(v, again[k]) for k, v in bal.model.state_dict().items())


def test_balanced_sampling_is_checked():
    with pytest.raises(TypeError, match="balanced_sampling"):
        FinetuneConfig(balanced_sampling="yes")
    with pytest.raises(ValueError, match="classification"):
        FinetuneConfig(balanced_sampling=True, task="regression")


def test_augment_transforms_every_training_draw_and_no_validation_window(monkeypatch):
    from codebrain.training import augment

    calls: list[tuple[int, ...]] = []
    real = augment.WindowAugment.__call__

    def counting(self, x):
        assert self.sfreq == 200.0  # the model's sampling rate
        calls.append(tuple(x.shape))
        return real(self, x)

    monkeypatch.setattr(augment.WindowAugment, "__call__", counting)
    train, val = rhythm_windows(32), rhythm_windows(16, seed=1)
    cfg = _cfg(epochs=2, augment=True, seed=1)
    first = finetune(make_tiny_classifier(sfreq=200.0), train, val, cfg)
    assert calls == [(3, 400)] * (2 * 32)  # one draw per training window and epoch, nothing else
    again = finetune(make_tiny_classifier(sfreq=200.0), train, val, cfg)
    assert again.history == first.history  # the draws follow the seed
    plain = finetune(make_tiny_classifier(sfreq=200.0), train, val, _cfg(epochs=2, seed=1))
    assert [h["train_loss"] for h in plain.history] != [h["train_loss"] for h in first.history]
    assert torch.equal(train.x, rhythm_windows(32).x)  # the caller's windows are untouched


def test_augment_is_checked():
    with pytest.raises(ValueError, match="augment needs mode='full'"):
        FinetuneConfig(augment=True, mode="linear")
    with pytest.raises(TypeError, match="FinetuneConfig.augment must be True or False"):
        FinetuneConfig(augment=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="augment needs the model's sampling rate"):
        finetune(make_tiny_classifier(), rhythm_windows(16), None, _cfg(augment=True))


class _CountingWindows(torch.utils.data.Dataset):
    """Items of ``inner`` without a label array, counting every item read."""

    def __init__(self, inner: TensorWindows) -> None:
        self.inner = inner
        self.reads = 0

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, i: int):
        self.reads += 1
        return self.inner[i]


def test_balanced_sampling_reads_the_training_labels_once():
    # a dataset without a y / labels array: its labels cost one pass over the items, taken
    # once for the checks and the sampler; one epoch then draws len(ds) items
    ds = _CountingWindows(rhythm_windows(24))
    finetune(make_tiny_classifier(), ds, None, _cfg(balanced_sampling=True, epochs=1))
    assert ds.reads == 2 * len(ds)
