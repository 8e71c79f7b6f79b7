"""Settings of Stage 1 TFDual-Tokenizer training: :class:`TokenizerTrainConfig` and its paper preset.

:func:`codebrain.training.tokenizer_trainer.train_tokenizer` runs the loop with these settings;
the shared fields come from :class:`~codebrain.training.loop_config.StepLoopConfig`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from codebrain.training.loop_config import StepLoopConfig, _check_betas
from codebrain.utils.check import check_int

__all__ = ["TokenizerTrainConfig"]


@dataclass
class TokenizerTrainConfig(StepLoopConfig):
    """Settings of :func:`~codebrain.training.tokenizer_trainer.train_tokenizer` (JSON-serialisable).

    The shared fields (``steps``, ``batch_size``, ``lr``, ``min_lr``, ``warmup_steps``,
    ``weight_decay``, ``grad_clip``, ``precision``, ``seed``, ``device``, ``resume``,
    ``num_workers``, ``progress``, ``log_every``, ``checkpoint_every``,
    ``keep_checkpoints``) mean what :class:`~codebrain.training.loop_config.StepLoopConfig`
    says; the defaults here are the tokenizer's. ``steps`` is also the length of the cosine
    schedule; ``min_lr`` defaults to ``lr / 100``; ``resume`` defaults to ``True`` (continue
    the run folder's newest checkpoint); ``precision="fp16"`` is the authors' (CUDA, with a
    gradient scaler); FFTs, task heads, codebooks and losses stay in float32.

    Parameters
    ----------
    decay_all_params : bool
        Apply ``weight_decay`` to every parameter (the authors'); otherwise biases, norms and
        1-D parameters get none.
    betas : tuple of float
        AdamW betas, two numbers in [0, 1).

    Notes
    -----
    Deprecated spellings (a ``DeprecationWarning``; also read from saved configs):
    ``max_steps`` (now ``steps``) and ``min_lr_ratio`` (now ``min_lr = lr * min_lr_ratio``).
    """

    _deprecated_fields: ClassVar[dict[str, str]] = {"max_steps": "steps", "min_lr_ratio": "min_lr"}

    steps: int = 100_000
    batch_size: int = 64
    lr: float = 5e-4
    min_lr: float | None = None
    warmup_steps: int = 1000
    weight_decay: float = 1e-4
    grad_clip: float = 3.0
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    resume: bool | str = True
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    decay_all_params: bool = False
    betas: tuple[float, float] = (0.9, 0.99)

    def __post_init__(self) -> None:
        self.betas = _check_betas(self._label("betas"), self.betas)  # JSON gives a list
        super().__post_init__()
        check_int(self._label("seed"), self.seed, minimum=0)

    @property
    def max_steps(self) -> int:
        """Deprecated: :attr:`steps`."""
        warnings.warn(
            "TokenizerTrainConfig.max_steps is deprecated; use steps.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.steps

    @classmethod
    def paper(cls, n_windows: int, world_size: int = 1, **overrides: Any) -> TokenizerTrainConfig:
        """The authors' Stage 1 settings (``Pretrain/pretrain_TFDual.py``, ``TFDual_Trainer``).

        20 epochs of batch 256 per process (``steps = 20 * (n_windows // (256 *
        world_size))``; another ``batch_size`` override enters this and the lr rule); AdamW
        with default betas (0.9, 0.999) and weight decay 1e-4 on every parameter; the learning
        rate 1e-4 scaled by ``total_batch / 128`` (6e-4 on their 3 GPUs); a per-step cosine to
        1e-5 after one warm-up step; no gradient clipping; fp16 autocast with a gradient
        scaler; seed 42.

        Parameters
        ----------
        n_windows : int
            Training windows (one epoch).
        world_size : int
            Processes (GPUs) sharing the data.
        **overrides
            Any field, applied last (e.g. ``precision="fp32"`` on a CPU).

        Returns
        -------
        TokenizerTrainConfig

        Raises
        ------
        TypeError
            ``n_windows``, ``world_size`` or a ``batch_size`` override is not an int.
        ValueError
            ``n_windows``, ``world_size`` or ``batch_size`` is below 1 (checked before the
            steps are computed from them), the corpus is smaller than one batch per process
            (without a ``steps`` override), or a field is refused.

        Notes
        -----
        The authors' first step runs at lr 0 (their warm-up is ``linspace(0, lr, 1)``); here the
        one warm-up step runs at the full rate. Their DataParallel run divides the steps per
        epoch by the GPU count for the schedule only; the schedule here spans the steps run.
        """
        check_int("n_windows", n_windows, minimum=1)
        check_int("world_size", world_size, minimum=1)
        batch = check_int("batch_size", overrides.get("batch_size", 256))
        total_batch = batch * world_size
        per_epoch = n_windows // total_batch
        if per_epoch < 1 and not {"steps", "max_steps"} & set(overrides):
            raise ValueError(
                f"the paper recipe's batch is {batch} windows per process x {world_size} "
                f"process(es) = {total_batch}; the corpus has {n_windows}."
            )
        lr = 1e-4 * total_batch / 128
        base: dict[str, Any] = dict(
            steps=20 * max(1, per_epoch),
            batch_size=batch,
            lr=lr,
            weight_decay=1e-4,
            decay_all_params=True,
            betas=(0.9, 0.999),
            warmup_steps=1,
            min_lr=min(lr, 1e-5),
            grad_clip=0.0,
            precision="fp16",
            seed=42,
        )
        for old, new in cls._deprecated_fields.items():
            if old in overrides:  # an old spelling replaces the recipe's value of the new one
                base.pop(new)
        base.update(overrides)
        return cls(**base)
