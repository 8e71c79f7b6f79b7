"""The models of a benchmark run: CodeBrain (with the authors' head) and its peers.

* :func:`codebrain_training_settings` — THE place that decides how CodeBrain is built and
  fine-tuned in the benchmark (constructor arguments + :class:`~codebrain.training.FinetuneConfig`).
* :class:`AuthorsHead` — the authors' classification head (hidden ``P·200``, one logit for
  binary tasks), set as ``model.final_layer`` by :func:`build_codebrain`. ``CodeBrain(...)``
  itself keeps its braindecode-compatible head.
* :data:`PEERS` — braindecode models (the optional ``[benchmarks]`` extra, imported lazily) with
  the learning rate each is trained at and the unit of its input (:class:`PeerSpec`); every
  other setting is shared (:class:`TrainSettings`).

Shape legend: ``B`` batch, ``C`` channels, ``P`` patches, ``D`` feature width, ``T`` samples.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from codebrain.benchmark.recipe import PATCH_SIZE, TaskRecipe
from codebrain.utils.check import check_value

__all__ = [
    "AuthorsHead",
    "InputGain",
    "SequenceModel",
    "EpochwiseModel",
    "settings_from_finetune_config",
    "TrainSettings",
    "PeerSpec",
    "PEERS",
    "MODEL_NAMES",
    "codebrain_training_settings",
    "build_codebrain",
    "build_peer",
    "peer_settings",
    "count_parameters",
]

logger = logging.getLogger(__name__)


class AuthorsHead(nn.Module):
    """The authors' MLP head on per-patch features.

    ``(B, C, P, D)`` → flatten → Linear(C·P·D → P·200) → ELU → Dropout → Linear(P·200 → 200)
    → ELU → Dropout → Linear(200 → K), K = 1 for binary tasks. With ``two_columns`` a binary
    head returns ``[0, z]`` so that a softmax cross-entropy over the two columns equals
    ``BCEWithLogits(z)`` exactly (``softmax([0, z])[1] = sigmoid(z)``); this lets CodeBrain's
    own trainer (:func:`codebrain.training.finetune`, cross-entropy) train the authors'
    one-logit head.

    Parameters
    ----------
    n_chans, n_patches, feature_dim : int
        C, P and D of the backbone's features.
    n_outputs : int
        K (1 for binary tasks).
    dropout : float
    two_columns : bool
        Binary only: return ``(B, 2)`` = ``[0, z]`` instead of ``(B, 1)``.
    """

    def __init__(
        self,
        n_chans: int,
        n_patches: int,
        feature_dim: int,
        n_outputs: int,
        dropout: float = 0.1,
        two_columns: bool = False,
    ) -> None:
        super().__init__()
        if two_columns and n_outputs != 1:
            raise ValueError("two_columns needs a one-logit (binary) head.")
        hidden = n_patches * PATCH_SIZE
        self.two_columns = two_columns
        self.mlp = nn.Sequential(
            nn.Flatten(),
            nn.Linear(n_chans * n_patches * feature_dim, hidden),
            nn.ELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, PATCH_SIZE),
            nn.ELU(),
            nn.Dropout(dropout),
            nn.Linear(PATCH_SIZE, n_outputs),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, C, P, D)`` features → ``(B, K)`` logits (``(B, 2)`` with ``two_columns``)."""
        z = self.mlp(features)
        if self.two_columns:
            return torch.cat([torch.zeros_like(z), z], dim=1)
        return z


def _epochs(x: torch.Tensor, seq_len: int) -> torch.Tensor:
    """``(B, C, S·T)`` → ``(B·S, C, T)``: the S epochs of each sequence as windows."""
    b, c, t = x.shape
    return x.reshape(b, c, seq_len, t // seq_len).permute(0, 2, 1, 3).reshape(-1, c, t // seq_len)


class SequenceModel(nn.Module):
    """The authors' ISRUC sequence model around a CodeBrain backbone.

    ``(B, C, S·T)`` → each 30-s epoch through ``backbone.encode`` → flatten ``C·P·D`` →
    Linear(→ 512) + GELU → one pre-norm Transformer layer (d 512, 4 heads, ff 2048) over the
    S epochs → Linear(512 → K): ``(B, S, K)``.
    """

    def __init__(self, backbone: nn.Module, seq_len: int, n_classes: int, dropout: float = 0.1):
        super().__init__()
        self.backbone = backbone
        self.seq_len = seq_len
        feat = backbone.n_chans * backbone.n_patches * backbone.out_channels
        self.proj = nn.Sequential(nn.Linear(feat, 512), nn.GELU())
        layer = nn.TransformerEncoderLayer(
            512, 4, 2048, dropout=dropout, batch_first=True, norm_first=True
        )
        self.sequence = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.out = nn.Linear(512, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, S·T)`` → ``(B, S, K)`` logits."""
        b = x.shape[0]
        feats = self.backbone.encode(_epochs(x, self.seq_len)).flatten(1)
        h = self.proj(feats).reshape(b, self.seq_len, -1)
        return self.out(self.sequence(h))


class EpochwiseModel(nn.Module):
    """A per-window model applied to every epoch of a sequence: ``(B, C, S·T)`` → ``(B, S, K)``."""

    def __init__(self, model: nn.Module, seq_len: int) -> None:
        super().__init__()
        self.model = model
        self.seq_len = seq_len

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-epoch outputs ``(batch, seq_len, n_outputs)`` of a sequence of windows."""
        out = self.model(_epochs(x, self.seq_len))
        return out.reshape(x.shape[0], self.seq_len, -1)


def settings_from_finetune_config(config: Any) -> TrainSettings:
    """The generic loop's settings from a :class:`~codebrain.training.FinetuneConfig`.

    Used where CodeBrain cannot go through :func:`codebrain.training.finetune`: sequence tasks.
    """
    return TrainSettings(
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.backbone_lr,
        weight_decay=config.weight_decay,
        min_lr=config.backbone_lr * config.min_lr_fraction,
        warmup_epochs=int(round(config.warmup_epochs)),
        clip_grad_norm=config.grad_clip or float("inf"),
        label_smoothing=config.label_smoothing,
        seed=config.seed,
        device=config.device,
        progress=config.progress,
    )


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation of the generic loop (peers): AdamW, per-step cosine, best epoch on val.

    Parameters mirror :class:`~codebrain.benchmark.FinetuneRecipe`; ``lr`` is per model.
    """

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    min_lr: float
    warmup_epochs: int
    clip_grad_norm: float
    label_smoothing: float
    seed: int = 0
    device: str = "cpu"
    progress: bool = False
    #: class-balanced batches (with replacement), as CodeBrain's fine-tuning gets them
    balanced_sampling: bool = True


#: Input gain for CodeBrain trained from scratch (not for pretrained weights, which expect
#: µV / 100): windows in µV instead of µV / 100 (the runner divides it by 100 x the recipe's
#: ``amplitude_scale``, so recipes already in raw µV, ISRUC, are left as they are). The patch embedding's time branch normalises
#: each patch, so amplitude only reaches the model through the spectral branch, which is linear
#: in the input; at µV / 100 its output RMS is 0.005 against 0.66 for the time branch and
#: band power (what separates EEGMAT's classes) is drowned at initialisation. Measured on EEGMAT
#: (``benchmarks/eegmat_recipe_study.py``, balanced sampling, width 32 x 2 blocks): training
#: loss 0.77 -> 0.68 at µV / 100 against 0.45 at µV; validation AUROC 0.82 on fold 0.
SCRATCH_INPUT_GAIN = 100.0


def codebrain_training_settings(
    recipe: TaskRecipe,
    *,
    epochs: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    width: int | None = None,
    layers: int | None = None,
    progress: bool = False,
) -> tuple[dict[str, Any], Any]:
    """How CodeBrain is built and fine-tuned in the benchmark (the one place to change it).

    The authors' fine-tuning recipe of ``recipe`` (``recipe.finetune``): full
    fine-tuning, one AdamW lr 1e-4 for backbone and head, weight decay 5e-4, per-step cosine
    to 1e-6 without warm-up, clip 5, dropout 0.1, label smoothing 0.1 for multi-class tasks
    (binary: one logit + BCE without smoothing, via :class:`AuthorsHead` ``two_columns``),
    model selection on ``recipe.selection_metric`` — plus class-balanced batches
    (``balanced_sampling``): on EEGMAT (3:1 rest vs task) a from-scratch CodeBrain otherwise
    learns only the class prior (training loss at the prior's entropy, every test window
    "rest"; ``benchmarks/results/eegmat_recipe_study.md``). From-scratch models also see their
    input multiplied by :data:`SCRATCH_INPUT_GAIN` (see there).

    Parameters
    ----------
    recipe : TaskRecipe
    epochs : int | None
        Overrides ``recipe.finetune.epochs`` (the shared epoch budget).
    seed, device, progress
        Passed to the config.
    width, layers : int | None
        From-scratch architecture: residual/skip/feature width and residual blocks (default
        the released 200 / 8).

    Returns
    -------
    (dict, FinetuneConfig)
        ``CodeBrain`` constructor keyword arguments (architecture only; signal parameters are
        added by :func:`build_codebrain`) and the fine-tuning configuration.
    """
    from codebrain.training.finetune import FinetuneConfig

    ft = recipe.finetune
    arch: dict[str, Any] = {"drop_prob": ft.dropout}
    if width is not None:
        arch.update(res_channels=width, skip_channels=width, out_channels=width)
    if layers is not None:
        arch["num_res_layers"] = layers
    config = FinetuneConfig(
        mode="full",
        task="classification",
        epochs=ft.epochs if epochs is None else epochs,
        batch_size=ft.batch_size,
        lr=ft.lr,
        backbone_lr=ft.lr,
        weight_decay=ft.weight_decay,
        warmup_epochs=float(ft.warmup_epochs),
        min_lr=ft.min_lr,
        grad_clip=ft.clip_grad_norm or 0.0,
        label_smoothing=0.0 if recipe.is_binary else ft.label_smoothing,
        monitor=recipe.selection_metric,
        balanced_sampling=True,
        seed=seed,
        device=device,
        progress=progress,
    )
    return arch, config


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    from codebrain.models.checkpoints import load_checkpoint_file

    return dict(load_checkpoint_file(path))


def build_codebrain(
    recipe: TaskRecipe,
    arch: dict[str, Any],
    *,
    pretrained: str | os.PathLike | None = None,
    seed: int = 0,
) -> nn.Module:
    """A CodeBrain for ``recipe`` with the authors' head as ``final_layer``.

    Parameters
    ----------
    recipe : TaskRecipe
    arch : dict
        Constructor arguments from :func:`codebrain_training_settings`.
    pretrained : path-like | None
        A CodeBrain model folder (``save_pretrained`` layout) or a weights file (the authors'
        ``CodeBrain.pth``, ``.safetensors``); None trains from scratch.
    seed : int
        Seeds the initial weights.

    Returns
    -------
    CodeBrain | SequenceModel
        With ``n_outputs`` 2 for binary tasks (the head returns ``[0, z]``), else K; for the
        ISRUC sequence head a :class:`SequenceModel` around the backbone.
    """
    from codebrain.models.codebrain import CodeBrain

    torch.manual_seed(seed)
    n_out = 2 if recipe.is_binary else recipe.n_classes
    signal = dict(
        n_outputs=n_out,
        chs_info=[{"ch_name": c} for c in recipe.channels],
        n_times=recipe.n_times,
        sfreq=recipe.sfreq,
    )
    if pretrained is None:
        kwargs = {"s4_lmax": recipe.n_chans * recipe.n_patches, **arch, **signal}
        model = CodeBrain(**kwargs)
    else:
        path = Path(pretrained)
        if path.is_dir():
            model = CodeBrain.from_pretrained(path, **signal, drop_prob=arch.get("drop_prob", 0.1))
        elif path.is_file():
            model = CodeBrain(**{**signal, "drop_prob": arch.get("drop_prob", 0.1)})
            model.load_pretrained_weights(_load_state(path), source=str(path))
        else:
            raise FileNotFoundError(
                f"--pretrained {path}: no such model folder or weights file (expected a "
                "CodeBrain folder with config.json, or the authors' CodeBrain.pth)."
            )
        if model.n_chans != recipe.n_chans:  # pragma: no cover - chs_info override sets it
            raise ValueError(f"{path}: model has {model.n_chans} channels, task {recipe.n_chans}.")
    if recipe.head == "isruc_sequence":
        return SequenceModel(model, recipe.sequence_length, recipe.n_classes, recipe.head_dropout)
    model.final_layer = AuthorsHead(
        recipe.n_chans,
        recipe.n_patches,
        model.out_channels,
        recipe.n_outputs,
        dropout=recipe.head_dropout,
        two_columns=recipe.is_binary,
    )
    return model


# --------------------------------------------------------------------------------- peers


class _WithChannelNames(nn.Module):
    """Calls a braindecode model that needs ``ch_names`` in ``forward`` (LaBraM)."""

    def __init__(self, model: nn.Module, ch_names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.ch_names = ch_names

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x, ch_names=self.ch_names)


def _labram_names(channels: tuple[str, ...]) -> list[str]:
    from braindecode.models.labram import LABRAM_CHANNEL_ORDER

    known = {c.upper() for c in LABRAM_CHANNEL_ORDER}
    out = []
    for ch in channels:
        name = ch.upper()
        if name not in known and "-" in name:
            name = name.split("-", 1)[0]  # a derivation: the position of its first electrode
        if name not in known:
            raise ValueError(f"LaBraM has no position for channel {ch!r}.")
        out.append(name)
    return out


def _braindecode(name: str) -> Any:
    import warnings

    try:
        with warnings.catch_warnings():
            # braindecode's model zoo builds MNE montages at import (FutureWarning in MNE 1.13)
            warnings.simplefilter("ignore", FutureWarning)
            import braindecode.models as bd
    except ImportError as err:
        raise ImportError(
            f"The peer model {name!r} comes from braindecode, an optional dependency: "
            "pip install 'codebrain[benchmarks]' (or pip install braindecode)."
        ) from err
    return bd


class InputGain(nn.Module):
    """``model(gain · x)``: feeds a model its inputs in other units than the recipe's.

    Parameters
    ----------
    model : nn.Module
        ``(B, C, T) -> (B, K)``.
    gain : float
        Multiplies the ``(B, C, T)`` input.
    """

    def __init__(self, model: nn.Module, gain: float) -> None:
        super().__init__()
        self.model = model
        self.gain = float(gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T)`` → the wrapped model's output on ``gain · x``."""
        return self.model(x * self.gain)


@dataclass(frozen=True)
class PeerSpec:
    """A peer model: how to build it, its learning rate and the unit of its input.

    Parameters
    ----------
    title : str
        Display name.
    build : callable
        ``build(recipe) -> nn.Module`` mapping ``(B, C, T)`` windows to ``(B, recipe.n_outputs)``.
    lr : float
        Peak learning rate (the usual one for the model; everything else is shared).
    input_unit : {"recipe", "uV"}
        ``"recipe"``: the recipe's windows as they are (µV / 100 for most tasks, what the
        CBraMod and LaBraM authors feed); ``"uV"``: in µV (``x / recipe.amplitude_scale``),
        the unit braindecode's examples train its convolutional models with.
    """

    title: str
    build: Callable[[TaskRecipe], nn.Module]
    lr: float
    input_unit: str = "recipe"

    def __post_init__(self) -> None:
        ok = self.input_unit in ("recipe", "uV")
        check_value("PeerSpec.input_unit", self.input_unit, ok, "'recipe' or 'uV'")


def _eegnet(r: TaskRecipe) -> nn.Module:
    return _braindecode("eegnet").EEGNet(
        n_chans=r.n_chans, n_outputs=r.n_outputs, n_times=r.n_times
    )


def _shallow(r: TaskRecipe) -> nn.Module:
    return _braindecode("shallow").ShallowFBCSPNet(
        n_chans=r.n_chans, n_outputs=r.n_outputs, n_times=r.n_times
    )


def _cbramod(r: TaskRecipe) -> nn.Module:
    return _braindecode("cbramod").CBraMod(
        n_chans=r.n_chans, n_outputs=r.n_outputs, n_times=r.n_times, sfreq=r.sfreq
    )


def _biot(r: TaskRecipe) -> nn.Module:
    return _braindecode("biot").BIOT(
        n_chans=r.n_chans, n_outputs=r.n_outputs, n_times=r.n_times, sfreq=r.sfreq
    )


def _labram(r: TaskRecipe) -> nn.Module:
    bd = _braindecode("labram")
    model = bd.Labram(n_chans=r.n_chans, n_outputs=r.n_outputs, n_times=r.n_times, sfreq=r.sfreq)
    return _WithChannelNames(model, _labram_names(r.channels))


#: Peer models (from scratch; braindecode). Learning rates: EEGNet and ShallowFBCSPNet at the
#: rates braindecode's examples train them with, the foundation-model architectures at the
#: authors' 1e-4. EEGNet sees µV (braindecode's unit): its batch norms keep running statistics
#: with momentum 0.01 from an initial variance of 1, and the first one's input has variance
#: 0.004 at µV / 100, so after the ~130 steps of a 10-epoch EEGNet run the evaluation-mode
#: activations were 8x smaller than in training and EEGNet scored at chance (AUROC 0.51-0.54
#: over 3 EEGMAT folds, 0.55-0.66 in µV; ``benchmarks/results/eegmat_bench_cv.md``).
PEERS: dict[str, PeerSpec] = {
    "eegnet": PeerSpec("EEGNet", _eegnet, 1e-3, input_unit="uV"),
    "shallow": PeerSpec("ShallowFBCSPNet", _shallow, 6.25e-4),
    "cbramod": PeerSpec("CBraMod", _cbramod, 1e-4),
    "labram": PeerSpec("LaBraM", _labram, 1e-4),
    "biot": PeerSpec("BIOT", _biot, 1e-4),
}

#: Every model name ``--models`` accepts.
MODEL_NAMES: tuple[str, ...] = ("codebrain", "codebrain_pt", "logbandpower", *PEERS)


def build_peer(name: str, recipe: TaskRecipe, seed: int = 0) -> nn.Module:
    """A freshly initialised peer (seeded); per epoch for sequence tasks."""
    if name not in PEERS:
        raise KeyError(f"Unknown peer {name!r}; known: {', '.join(PEERS)}.")
    torch.manual_seed(seed)
    spec = PEERS[name]
    model = spec.build(recipe)
    if spec.input_unit == "uV" and recipe.amplitude_scale != 1:
        model = InputGain(model, 1.0 / recipe.amplitude_scale)
    if recipe.sequence_length > 1:
        model = EpochwiseModel(model, recipe.sequence_length)
    return model


def peer_settings(
    name: str,
    recipe: TaskRecipe,
    *,
    epochs: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
) -> TrainSettings:
    """The shared budget of ``recipe.finetune`` with the peer's learning rate."""
    ft = recipe.finetune
    lr = PEERS[name].lr
    return TrainSettings(
        epochs=ft.epochs if epochs is None else epochs,
        batch_size=ft.batch_size,
        lr=lr,
        weight_decay=ft.weight_decay,
        min_lr=lr * ft.min_lr / ft.lr,  # the authors' final/peak ratio
        warmup_epochs=ft.warmup_epochs,
        clip_grad_norm=ft.clip_grad_norm,
        label_smoothing=0.0 if recipe.is_binary else ft.label_smoothing,
        seed=seed,
        device=device,
        progress=progress,
    )


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (the pretraining token heads of CodeBrain excluded)."""
    return sum(
        p.numel()
        for n, p in model.named_parameters()
        if p.requires_grad and not n.startswith(("lm_head_t.", "lm_head_f."))
    )
