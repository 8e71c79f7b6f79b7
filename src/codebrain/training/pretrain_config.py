"""Settings of Stage 2 masked-token pretraining: :class:`PretrainConfig` and its paper preset.

:func:`codebrain.training.pretrain.pretrain` runs a pretraining loop with these settings; the
shared fields come from :class:`~codebrain.training.loop_config.StepLoopConfig`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from codebrain.training.loop_config import StepLoopConfig, _check_betas
from codebrain.training.masking import DEFAULT_MASK_RATIO, MASK_STRATEGIES
from codebrain.utils.check import check_int, check_number, check_option, check_type, check_value

__all__ = ["PretrainConfig"]


def _resume_value(resume: Any) -> bool | str:
    """``resume`` in the current vocabulary (``None`` and ``"auto"`` are deprecated)."""
    if resume is None or resume == "auto":
        new = resume == "auto"
        warnings.warn(
            f"PretrainConfig.resume={resume!r} is deprecated; use resume={new}.",
            DeprecationWarning,
            stacklevel=4,
        )
        return new
    return resume


@dataclass
class PretrainConfig(StepLoopConfig):
    """Hyper-parameters of a pretraining run (JSON-able; CLI flags map onto the fields).

    Defaults are codebrain's recipe, which follows LaBraM's masked-token pretraining (AdamW,
    betas (0.9, 0.98), weight decay 0.05 on weight matrices, warm-up then cosine decay, mask
    ratio 0.5 with a fixed count per sample, gradient clipping 3.0). :meth:`paper` gives the
    authors' settings (``Pretrain/pretrain_EEGSSM.py``); the README tabulates both.

    The shared fields (``steps``, ``batch_size``, ``lr``, ``min_lr``, ``warmup_steps``,
    ``weight_decay``, ``grad_clip``, ``precision``, ``seed``, ``device``, ``resume``,
    ``num_workers``, ``progress``, ``log_every``, ``checkpoint_every``,
    ``keep_checkpoints``) mean what :class:`~codebrain.training.loop_config.StepLoopConfig`
    says, with these specifics: ``batch_size`` is per process and micro-batch (global batch
    ``G = batch_size * accum_steps * world_size``); ``precision`` applies to the backbone
    forward (the tokenizer and the loss always run in float32); ``seed`` seeds data order,
    masks and the model's dropout; ``log_every`` rows average the interval over all ranks;
    ``resume=False`` refuses to overwrite existing checkpoints.

    Parameters
    ----------
    accum_steps : int
        Micro-batches accumulated per optimizer step.
    schedule_steps : int
        Length of the cosine in optimizer steps (``0``: ``steps``, the cosine ends with the
        run). The authors' schedule is 40 epochs long for a 10-epoch run.
    decay_all_params : bool
        Apply ``weight_decay`` to every parameter (the authors'); otherwise SGConv kernels and
        skip weights, norms, biases, weight-norm magnitudes and every 0/1-d parameter get none.
    betas : tuple of float
        AdamW betas, two numbers in [0, 1).
    eps : float
        AdamW epsilon.
    mask_ratio : float
        Fraction of patches masked (see :mod:`codebrain.training.masking`).
    mask_strategy : {"random", "channel_block", "time_block"}
    mask_block_size : int
        Run length (patches) for ``"time_block"``.
    val_every : int
        Steps between validations (``0``: only at the end, when ``val_ds`` is given).
    val_batches : int or None
        Cap on validation micro-batches per rank (``None``: the whole set).
    tensorboard : bool
        Also log to TensorBoard (needs the ``tensorboard`` package; skipped with a log message
        otherwise).
    compile : bool
        ``torch.compile`` the training module.

    Notes
    -----
    Deprecated values (a ``DeprecationWarning``): ``resume=None`` (now ``False``) and
    ``resume="auto"`` (now ``True``).
    """

    steps: int = 10_000
    batch_size: int = 32
    lr: float = 5e-4
    min_lr: float | None = 1e-5
    warmup_steps: int = 500
    weight_decay: float = 0.05
    grad_clip: float = 3.0
    keep_checkpoints: int = 2
    accum_steps: int = 1
    schedule_steps: int = 0
    decay_all_params: bool = False
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-8
    mask_ratio: float = DEFAULT_MASK_RATIO
    mask_strategy: str = "random"
    mask_block_size: int = 1
    val_every: int = 0
    val_batches: int | None = None
    tensorboard: bool = False
    compile: bool = False

    def __post_init__(self) -> None:
        self.betas = _check_betas(self._label("betas"), self.betas)  # JSON gives a list
        self.resume = _resume_value(self.resume)
        super().__post_init__()
        check_int("PretrainConfig.accum_steps", self.accum_steps, minimum=1)
        for name in ("schedule_steps", "val_every", "mask_block_size"):
            check_int(f"PretrainConfig.{name}", getattr(self, name), minimum=0)
        val_batches = "a positive int or None"
        check_type(self._label("val_batches"), self.val_batches, (int, type(None)), val_batches)
        ok = self.val_batches is None or self.val_batches >= 1
        check_value(self._label("val_batches"), self.val_batches, ok, val_batches)
        check_number(self._label("mask_ratio"), self.mask_ratio, greater=0, maximum=1)
        check_option(self._label("mask_strategy"), self.mask_strategy, MASK_STRATEGIES)

    @classmethod
    def paper(cls, n_windows: int, world_size: int = 1, **overrides: Any) -> PretrainConfig:
        """The authors' Stage 2 settings (``Pretrain/pretrain_EEGSSM.py``, ``EEGSSM_Trainer``).

        10 epochs at a global batch of 256 (``steps = 10 * (n_windows // 256)``), AdamW
        (lr 1e-4, default betas (0.9, 0.999), weight decay 5e-3 on every parameter), no warm-up,
        a per-step cosine to 1e-5 over **40** epochs' worth of steps (so it ends near 0.87e-4),
        gradient clipping 5, fp32, masks drawn as an independent Bernoulli(0.5) per channel ×
        patch, seed 42.

        Parameters
        ----------
        n_windows : int
            Training windows (one epoch).
        world_size : int
            Processes; the per-process batch is ``256 // world_size``.
        **overrides
            Any field, applied last.

        Returns
        -------
        PretrainConfig

        Raises
        ------
        TypeError
            ``n_windows``, ``world_size`` or a ``batch_size`` override is not an int.
        ValueError
            ``n_windows``, ``world_size`` or ``batch_size`` is below 1 (checked before the
            steps are computed from them), ``world_size`` does not divide 256, the corpus is
            smaller than one global batch (without a ``steps`` override), or a field is refused.
        """
        check_int("n_windows", n_windows, minimum=1)
        check_int("world_size", world_size, minimum=1)
        if 256 % world_size:
            raise ValueError(f"world_size ({world_size}) must divide the global batch of 256.")
        batch = check_int("batch_size", overrides.get("batch_size", 256 // world_size))
        per_epoch = n_windows // (batch * world_size)
        if per_epoch < 1 and "steps" not in overrides:
            raise ValueError(
                f"the paper recipe's global batch is {batch * world_size} windows; the corpus "
                f"has {n_windows}."
            )
        per_epoch = max(1, per_epoch)
        base = dict(
            steps=10 * per_epoch,
            batch_size=batch,
            accum_steps=1,
            lr=1e-4,
            min_lr=1e-5,
            warmup_steps=0,
            schedule_steps=40 * per_epoch,
            weight_decay=5e-3,
            decay_all_params=True,
            betas=(0.9, 0.999),
            eps=1e-8,
            grad_clip=5.0,
            precision="fp32",
            mask_ratio=0.5,
            mask_strategy="bernoulli",
            seed=42,
        )
        base.update(overrides)
        return cls(**base)
