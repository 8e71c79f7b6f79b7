"""Public constructors validate through the check pair: a wrong type is a ``TypeError``, a wrong
value a ``ValueError``, and both messages name the argument."""

from __future__ import annotations

from typing import Any

import pytest

from codebrain.benchmark.hooks import Recording
from codebrain.benchmark.preprocessing import BandPass, Notch, Resample
from codebrain.benchmark.pretrain_on_train import PretrainOnTrain
from codebrain.benchmark.recipe import FinetuneRecipe
from codebrain.benchmark.split import Split
from codebrain.data.synthetic import write_synthetic_dataset
from codebrain.models.probe import LinearProbe
from codebrain.models.tokenizer_config import TokenizerConfig
from codebrain.training.finetune import finetune
from codebrain.training.finetune_config import FinetuneConfig
from codebrain.training.masking import random_patch_mask
from codebrain.training.pretrain_config import PretrainConfig
from codebrain.training.run import RunFolder
from codebrain.training.tokenizer_train_config import TokenizerTrainConfig
from codebrain.training.tokenizer_trainer import train_tokenizer
from codebrain.utils.device import resolve_device


def _split(**kw: Any) -> Split:
    return Split(("a",), ("b",), ("c",), **kw)


# (constructor, wrong-type kwargs, wrong-value kwargs, the argument's name in the message).
# An option (``check_option``) outside its choices is a wrong value whatever its type.
CASES = [
    (TokenizerConfig, dict(depth="2"), dict(depth=0), "TokenizerConfig.depth"),
    (TokenizerConfig, dict(dropout="0.1"), dict(dropout=1.0), "TokenizerConfig.dropout"),
    (TokenizerConfig, dict(mlp_ratio=None), dict(mlp_ratio=0), "TokenizerConfig.mlp_ratio"),
    (FinetuneRecipe, dict(epochs=2.0), dict(epochs=0), "FinetuneRecipe.epochs"),
    (FinetuneRecipe, dict(lr="1e-4"), dict(lr=-1.0), "FinetuneRecipe.lr"),
    (FinetuneRecipe, dict(dropout=None), dict(dropout=1.0), "FinetuneRecipe.dropout"),
    (Resample, dict(sfreq="200"), dict(sfreq=0.0), "Resample.sfreq"),
    (BandPass, dict(l_freq="0.3"), dict(l_freq=-1.0), "BandPass.l_freq"),
    (BandPass, dict(order=4.0), dict(order=0), "BandPass.order"),
    (Notch, dict(freq=[50]), dict(freq=0), "Notch.freq"),
    (_split, None, dict(unit="session"), "Split.unit"),
    (PretrainOnTrain, dict(batch_size="8"), dict(batch_size=0), "PretrainOnTrain.batch_size"),
    (LinearProbe, None, dict(pooling="max"), "pooling"),
    (FinetuneConfig, None, dict(mode="partial"), "FinetuneConfig.mode"),
    (FinetuneConfig, None, dict(task="ranking"), "FinetuneConfig.task"),
    (FinetuneConfig, None, dict(pooling="max"), "FinetuneConfig.pooling"),
    (FinetuneConfig, dict(epochs=2.0), dict(epochs=0), "FinetuneConfig.epochs"),
    (FinetuneConfig, dict(backbone_lr="1e-4"), dict(backbone_lr=0.0), "FinetuneConfig.backbone_lr"),
    (FinetuneConfig, dict(layer_decay=None), dict(layer_decay=-0.5), "FinetuneConfig.layer_decay"),
    (
        FinetuneConfig,
        dict(warmup_epochs="1"),
        dict(warmup_epochs=-1),
        "FinetuneConfig.warmup_epochs",
    ),
    (
        FinetuneConfig,
        dict(label_smoothing="0.1"),
        dict(label_smoothing=1.0),
        "FinetuneConfig.label_smoothing",
    ),
    (FinetuneConfig, dict(patience=2.5), dict(patience=0), "FinetuneConfig.patience"),
    (FinetuneConfig, None, dict(class_weight="uniform"), "FinetuneConfig.class_weight"),
    (PretrainConfig, dict(steps=1.5), dict(steps=0), "PretrainConfig.steps"),
    (PretrainConfig, dict(accum_steps="2"), dict(accum_steps=0), "PretrainConfig.accum_steps"),
    (PretrainConfig, dict(val_batches=1.5), dict(val_batches=0), "PretrainConfig.val_batches"),
    (PretrainConfig, dict(mask_ratio="0.5"), dict(mask_ratio=0.0), "PretrainConfig.mask_ratio"),
    (PretrainConfig, None, dict(mask_strategy="x"), "PretrainConfig.mask_strategy"),
    (PretrainConfig, dict(betas=None), dict(betas=(0.9, 1.0)), "PretrainConfig.betas"),
    (PretrainConfig, dict(betas="ab"), dict(betas=(0.9, 0.99, 0.999)), "PretrainConfig.betas"),
    (PretrainConfig, None, dict(precision="fp8"), "PretrainConfig.precision"),
    (TokenizerTrainConfig, dict(steps=2.0), dict(steps=0), "TokenizerTrainConfig.steps"),
    (TokenizerTrainConfig, dict(seed=None), dict(seed=-1), "TokenizerTrainConfig.seed"),
    (TokenizerTrainConfig, dict(resume=3), dict(resume=""), "TokenizerTrainConfig.resume"),
    (TokenizerTrainConfig, dict(lr="1e-3"), dict(lr=0.0), "TokenizerTrainConfig.lr"),
    (
        TokenizerTrainConfig,
        dict(betas=0.9),
        dict(betas=(0.9, float("nan"))),
        "TokenizerTrainConfig.betas",
    ),
]

_DEFAULTS: dict[Any, dict[str, Any]] = {
    Notch: dict(freq=50.0),
    BandPass: dict(l_freq=0.3, h_freq=40.0),
    LinearProbe: dict(in_features=4, n_outputs=2),
}


@pytest.mark.parametrize(("build", "wrong_type", "wrong_value", "name"), CASES)
def test_wrong_type_is_type_error_and_wrong_value_is_value_error(
    build: Any, wrong_type: dict, wrong_value: dict, name: str
) -> None:
    base = _DEFAULTS.get(build, {})
    if wrong_type is not None:
        with pytest.raises(TypeError, match=f"^{name} must be"):
            build(**{**base, **wrong_type})
    with pytest.raises(ValueError, match=f"^{name} must be"):
        build(**{**base, **wrong_value})


def test_functions_and_small_classes_use_the_pair(tmp_path) -> None:
    mask = dict(batch_size=2, n_chans=3, n_patches=4)
    with pytest.raises(TypeError, match="^mask_ratio must be a number"):
        random_patch_mask(**mask, mask_ratio="0.5")
    with pytest.raises(ValueError, match="^mask_ratio must be"):
        random_patch_mask(**mask, mask_ratio=0.0)
    with pytest.raises(TypeError, match="^batch_size must be an int"):
        random_patch_mask(batch_size=2.0, n_chans=3, n_patches=4, mask_ratio=0.5)
    with pytest.raises(TypeError, match="^Recording.subject must be a non-empty str"):
        Recording(tmp_path / "a.edf", 3)
    with pytest.raises(ValueError, match="^Recording.subject must be a non-empty str"):
        Recording(tmp_path / "a.edf", "")
    with pytest.raises(TypeError, match="^n_subjects must be an int"):
        write_synthetic_dataset(tmp_path, n_subjects=1.5)
    with pytest.raises(ValueError, match="^n_subjects must be a positive int"):
        write_synthetic_dataset(tmp_path, n_subjects=0)
    with pytest.raises(ValueError, match="^kind must be one of"):
        RunFolder(tmp_path / "run", "train")
    with pytest.raises(TypeError, match="^--device must be a device name"):
        resolve_device(["cpu"], name="--device")
    with pytest.raises(ValueError, match="is not a device"):
        resolve_device("gpu0", name="--device")
    with pytest.raises(TypeError, match="^config must be a FinetuneConfig"):
        finetune(None, [], None, config={"epochs": 1})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^model must be a codebrain.CodeBrain"):
        finetune(None, [], None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^config must be a TokenizerTrainConfig"):
        train_tokenizer([], {"steps": 1}, tmp_path / "t")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^stop_after must be an int >= 1 or None"):
        train_tokenizer([], TokenizerTrainConfig(), tmp_path / "t", stop_after=1.5)
    with pytest.raises(ValueError, match="^stop_after must be >= 1"):
        train_tokenizer([], TokenizerTrainConfig(), tmp_path / "t", stop_after=0)
