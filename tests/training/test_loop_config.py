"""The shared loop-config vocabulary (codebrain.training.loop_config) and its deprecations."""

from __future__ import annotations

import dataclasses
import json

import pytest

from codebrain.training.finetune import FinetuneConfig
from codebrain.training.loop_config import LoopConfig, StepLoopConfig
from codebrain.training.pretrain import PretrainConfig
from codebrain.training.tokenizer_trainer import TokenizerTrainConfig

SHARED = {
    "batch_size", "lr", "min_lr", "weight_decay", "grad_clip", "seed", "device",
    "num_workers", "progress",
}  # fmt: skip
STEP = {
    "steps", "warmup_steps", "precision", "resume", "log_every", "checkpoint_every",
    "keep_checkpoints",
}  # fmt: skip


def _names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_every_config_speaks_the_vocabulary():
    assert _names(LoopConfig) == SHARED
    assert _names(StepLoopConfig) == SHARED | STEP
    for cls in (PretrainConfig, TokenizerTrainConfig):
        assert issubclass(cls, StepLoopConfig) and _names(cls) >= SHARED | STEP
    assert issubclass(FinetuneConfig, LoopConfig) and not issubclass(FinetuneConfig, StepLoopConfig)
    assert SHARED | {"epochs", "warmup_epochs"} <= _names(FinetuneConfig)
    # the deprecation table is a class attribute, not a field
    assert "_deprecated_fields" not in _names(TokenizerTrainConfig)
    assert TokenizerTrainConfig._deprecated_fields == {
        "max_steps": "steps",
        "min_lr_ratio": "min_lr",
    }
    assert FinetuneConfig._deprecated_fields == {"min_lr_ratio": "min_lr"}


def test_defaults_keep_each_loop_behaviour():
    tok, pre, ft = TokenizerTrainConfig(), PretrainConfig(), FinetuneConfig()
    assert (tok.steps, tok.resume, tok.min_lr) == (100_000, True, pytest.approx(5e-4 / 100))
    assert (pre.steps, pre.resume, pre.min_lr) == (10_000, False, 1e-5)
    assert (ft.epochs, ft.min_lr, ft.device) == (10, pytest.approx(1e-3 / 100), "cpu")
    assert TokenizerTrainConfig(lr=2e-3).min_lr == pytest.approx(2e-5)  # None follows lr


def test_deprecated_kwargs_translate_with_a_warning():
    with pytest.warns(DeprecationWarning, match="max_steps"):
        cfg = TokenizerTrainConfig(max_steps=7, lr=1e-3, min_lr_ratio=0.1)
    assert cfg == TokenizerTrainConfig(steps=7, lr=1e-3, min_lr=1e-4)
    with pytest.warns(DeprecationWarning):
        assert cfg.max_steps == 7 and cfg.min_lr_ratio == pytest.approx(0.1)
    with pytest.raises(TypeError, match="both"):
        TokenizerTrainConfig(max_steps=3, steps=4)
    # the error names the spelling the caller used
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="given as max_steps"):
        TokenizerTrainConfig(max_steps=0)
    with pytest.warns(DeprecationWarning, match="min_lr_ratio"):
        ft = FinetuneConfig(lr=1e-2, min_lr_ratio=0.5)
    assert ft.min_lr == pytest.approx(5e-3)
    with pytest.warns(DeprecationWarning, match="resume"):
        assert PretrainConfig(resume=None).resume is False
    with pytest.warns(DeprecationWarning, match="resume"):
        assert PretrainConfig(resume="auto").resume is True
    assert PretrainConfig(resume="run/checkpoints/ckpt_00000002.pt").resume.endswith(".pt")


def test_saved_configs_with_old_names_still_load():
    cfg = TokenizerTrainConfig(steps=9, lr=2e-3, min_lr=1e-4, batch_size=4)
    old = json.loads(json.dumps(cfg.to_legacy_dict()))
    assert "max_steps" in old and "steps" not in old and old["min_lr_ratio"] == pytest.approx(0.05)
    with pytest.warns(DeprecationWarning):
        back = TokenizerTrainConfig.from_dict(old)
    assert back.steps == 9 and back.min_lr == pytest.approx(1e-4)
    assert TokenizerTrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="Unknown TokenizerTrainConfig"):
        TokenizerTrainConfig.from_dict({"stepz": 1})


def test_paper_recipe_accepts_old_and_new_step_override():
    new = TokenizerTrainConfig.paper(100, steps=5)
    with pytest.warns(DeprecationWarning):
        old = TokenizerTrainConfig.paper(100, max_steps=5)
    assert new == old and new.steps == 5 and new.min_lr == pytest.approx(1e-5)


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (TokenizerTrainConfig, dict(lr=1e-3, min_lr=1e-2), "min_lr"),
        (TokenizerTrainConfig, dict(grad_clip=-1.0), "grad_clip"),
        (TokenizerTrainConfig, dict(resume=""), "resume"),
        (PretrainConfig, dict(checkpoint_every=-1), "checkpoint_every"),
        (FinetuneConfig, dict(batch_size=0), "batch_size"),
        (FinetuneConfig, dict(lr=0.0), "lr"),
    ],
)
def test_shared_validation(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (TokenizerTrainConfig, dict(resume=3), "resume must be True, False or a checkpoint path"),
        (PretrainConfig, dict(seed="0"), "seed must be an int"),
        (FinetuneConfig, dict(lr="1e-3"), "lr must be a number"),
        (PretrainConfig, dict(device=0), "device must be a device name or None"),
    ],
)
def test_shared_validation_wrong_type_is_a_type_error(cls, kwargs, match):
    with pytest.raises(TypeError, match=match):
        cls(**kwargs)


@pytest.mark.parametrize("cls", [PretrainConfig, TokenizerTrainConfig])
def test_bad_betas_are_one_clear_error_naming_betas(cls):
    """``betas`` is checked before it is converted: no bare ``float()`` error, no silently
    dropped third value."""
    name = f"{cls.__name__}.betas"
    pair = r"a pair \(beta1, beta2\) of numbers in \[0, 1\)"
    for bad, error, match in (
        (None, TypeError, f"^{name} must be {pair}, got NoneType None"),
        (0.9, TypeError, f"^{name} must be {pair}, got float 0.9"),
        (("a", 0.9), TypeError, rf"^{name}\[0\] must be a number in \[0, 1\), got str 'a'"),
        ((0.9, True), TypeError, rf"^{name}\[1\] must be a number"),
        ((0.9, 0.99, 0.999), ValueError, rf"^{name} must be {pair}, got \(0.9, 0.99, 0.999\)"),
        ((0.9,), ValueError, f"^{name} must be {pair}"),
        ((0.9, 1.0), ValueError, f"^{name} must be {pair}"),
        ((-0.1, 0.9), ValueError, f"^{name} must be {pair}"),
    ):
        with pytest.raises(error, match=match):
            cls(betas=bad)
    assert cls(betas=[0, 0.5]).betas == (0.0, 0.5)  # a JSON list, ints too: floats
    assert cls.from_dict({"betas": [0.8, 0.9]}).betas == (0.8, 0.9)
