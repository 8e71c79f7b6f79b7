"""The settings of :func:`codebrain.training.finetune.finetune`: :class:`FinetuneConfig`.

The shared loop vocabulary (``lr``, ``min_lr``, ``grad_clip``, ``device``, ``seed``, ...) comes
from :class:`~codebrain.training.loop_config.LoopConfig`; this module adds the fine-tuning
fields, their checks and the deprecated spellings (``min_lr_ratio``, ``grad_clip=None``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar, Literal

from codebrain.models.probe import Pooling
from codebrain.training.loop_config import LoopConfig
from codebrain.training.metrics import PRIMARY_METRIC
from codebrain.utils.check import check_int, check_number, check_option, check_type, check_value

__all__ = ["FinetuneConfig", "Mode"]

Mode = Literal["full", "linear", "mlp"]


@dataclass
class FinetuneConfig(LoopConfig):
    """Hyper-parameters of :func:`finetune` (JSON-able: :meth:`to_dict` / :meth:`from_dict`).

    The shared fields (``batch_size``, ``lr``, ``min_lr``, ``weight_decay``, ``grad_clip``,
    ``seed``, ``device``, ``num_workers``, ``progress``) mean what
    :class:`~codebrain.training.loop_config.LoopConfig` says, with these specifics: ``lr`` is
    the peak learning rate of the head (``final_layer`` or the linear probe); ``min_lr``
    (default ``lr / 100``) is the head's cosine floor, and every other group ends at the same
    fraction of its own peak; ``weight_decay`` is not applied to norms, biases, gains, SGConv
    kernels and skip weights (:mod:`codebrain.training.optim`); ``device`` defaults to ``"cpu"`` (``None`` or ``"auto"``: CUDA when available);
    ``seed`` seeds Python, NumPy and torch, and the data order.

    Parameters
    ----------
    mode : {"full", "linear", "mlp"}
        What is trained (see the module docstring).
    task : {"classification", "regression"}
        Cross-entropy on class indices, or MSE on one output.
    epochs : int
        Maximum number of epochs.
    backbone_lr : float
        Peak learning rate of the backbone in ``"full"`` mode.
    layer_decay : float
        Layer-wise decay in ``"full"`` mode: block ``i`` of ``N`` residual blocks gets
        ``backbone_lr * layer_decay ** (N - i)``; the patch embedding and ``init_conv``
        ``layer_decay ** (N + 1)``; ``final_conv``/``norm`` ``backbone_lr``. 1.0 disables.
    warmup_epochs : float
        Linear warm-up length in epochs (fractions allowed).
    class_weight : None, "balanced" or list of float
        Per-class loss weights; ``"balanced"`` uses ``n_samples / (n_classes * count)``.
    balanced_sampling : bool
        Classification only: draw every training batch with replacement so that each class is
        equally likely (``len(train_ds)`` draws per epoch), instead of shuffling. On EEGMAT
        (3 rest windows per task window) a from-scratch CodeBrain otherwise learns to answer
        "rest" (see ``benchmarks/results/eegmat_recipe_study.md``). Use it *or* ``class_weight``.
    label_smoothing : float
    patience : int or None
        Stop after this many epochs without improvement of ``monitor`` on the validation set.
    monitor : str
        ``"auto"`` (balanced accuracy for classification, R² for regression), ``"loss"``, or
        any key of the validation metrics (``"cohen_kappa"``, ``"auroc"``, ...).
    pooling : {"mean_patches", "mean", "flatten"}
        Feature pooling of the linear probe (``"linear"`` mode only).
    resume : bool or str
        With a run folder (``finetune(..., out_dir=...)``): ``False`` starts fresh; ``True``
        continues from the newest checkpoint of the folder (fresh when there is none); a path
        continues from that checkpoint. A resumed run ends as the uninterrupted one would.
    keep_checkpoints : int
        Newest per-epoch checkpoints kept in ``out_dir/checkpoints`` (each holds the best
        epoch's weights too).
    ema_decay : float
        0 (default) trains as usual. In ``[0, 1)`` otherwise: an exponential moving average
        of the trained weights, ``ema = decay * ema + (1 - decay) * w`` after every optimizer
        step, is what is validated, selected and returned (the raw weights only train).
    augment : bool
        ``"full"`` mode only: transform every training window as it is drawn with
        :class:`~codebrain.training.augment.WindowAugment` (circular time shift, gain
        σ 0.1, every frequency moved by up to ±1.5 Hz; the model's ``sfreq`` is the sampling
        rate); validation windows are never changed. The draws follow ``seed`` (and, with
        ``num_workers > 0``, the number of workers). On EEGMAT it raised a from-scratch
        CodeBrain's AUROC by 0.035 over 18 subject folds (``benchmarks/results/eegmat_bench_cv.md``).

    Notes
    -----
    Deprecated (a ``DeprecationWarning``; also read from saved configs): ``min_lr_ratio``
    (now ``min_lr = lr * min_lr_ratio``) and ``grad_clip=None`` (now ``0``, no clipping).
    """

    _deprecated_fields: ClassVar[dict[str, str]] = {"min_lr_ratio": "min_lr"}

    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    device: str | None = "cpu"
    mode: Mode = "full"
    task: Literal["classification", "regression"] = "classification"
    epochs: int = 10
    backbone_lr: float = 1e-4
    layer_decay: float = 1.0
    warmup_epochs: float = 1.0
    class_weight: None | str | list[float] = None
    balanced_sampling: bool = False
    label_smoothing: float = 0.0
    patience: int | None = None
    monitor: str = "auto"
    pooling: Pooling = "mean_patches"
    resume: bool | str = False
    keep_checkpoints: int = 1
    ema_decay: float = 0.0
    augment: bool = False

    def __post_init__(self) -> None:
        if self.grad_clip is None:
            warnings.warn(
                "FinetuneConfig.grad_clip=None is deprecated; use grad_clip=0 (no clipping).",
                DeprecationWarning,
                stacklevel=4,
            )
            self.grad_clip = 0.0
        super().__post_init__()
        check_option(self._label("mode"), self.mode, ("full", "linear", "mlp"))
        check_option(self._label("task"), self.task, ("classification", "regression"))
        check_option(self._label("pooling"), self.pooling, ("mean_patches", "mean", "flatten"))
        check_int(self._label("epochs"), self.epochs)
        for name in ("backbone_lr", "layer_decay"):
            check_number(self._label(name), getattr(self, name), greater=0)
        check_number(self._label("warmup_epochs"), self.warmup_epochs, minimum=0)
        check_number(self._label("label_smoothing"), self.label_smoothing, minimum=0, less=1)
        patience = "a positive int or None"
        check_type(self._label("patience"), self.patience, (int, type(None)), patience)
        ok = self.patience is None or self.patience >= 1
        check_value(self._label("patience"), self.patience, ok, patience)
        if isinstance(self.class_weight, str):
            weights = "None, 'balanced' or a list of floats"
            ok = self.class_weight == "balanced"
            check_value(self._label("class_weight"), self.class_weight, ok, weights)
        check_type(self._label("balanced_sampling"), self.balanced_sampling, bool, "True or False")
        if self.balanced_sampling and self.task != "classification":
            raise ValueError("balanced_sampling needs task='classification' (class labels).")
        resume = "True, False or a checkpoint path"
        check_type(self._label("resume"), self.resume, (bool, str), resume)
        check_value(self._label("resume"), self.resume, self.resume != "", resume)
        check_int(self._label("keep_checkpoints"), self.keep_checkpoints)
        check_number(self._label("ema_decay"), self.ema_decay, minimum=0, less=1)
        check_type(self._label("augment"), self.augment, bool, "True or False")
        if self.augment and self.mode != "full":
            raise ValueError(
                f"augment needs mode='full', got mode={self.mode!r}: a frozen backbone's "
                "features are computed once, so no window could be transformed."
            )
        if isinstance(self.class_weight, tuple):
            self.class_weight = list(self.class_weight)

    @property
    def monitor_key(self) -> str:
        """The validation quantity used for early stopping and best-epoch selection."""
        return PRIMARY_METRIC[self.task] if self.monitor == "auto" else self.monitor
