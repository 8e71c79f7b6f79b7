"""What :class:`codebrain.CodeBrain` adds to the model-agnostic :class:`~._hub.HubMixin`.

CodeBrain folders follow braindecode's layout (``config.json`` carries ``braindecode_version``,
so they load with ``braindecode.models.CodeBrain`` and back), the config is every constructor
argument (signal parameters included), the authors' ``CodeBrain.pth`` and ``pytorch_model.bin``
are recognised, and loading keeps the backbone while re-initialising a classification head
that does not fit.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch

from codebrain.layers.activations import activation_path
from codebrain.models._hub import CONFIG_NAME, WEIGHTS_NAME, HubMixin
from codebrain.models._paper import CARD_CITATION
from codebrain.models._signal import serialize_chs_info
from codebrain.models.checkpoints import convert_upstream_state_dict, is_upstream_state_dict
from codebrain.utils.check import check_type

__all__ = ["BRAINDECODE_FORMAT_VERSION", "CodeBrainHubMixin"]

logger = logging.getLogger(__name__)

#: The braindecode release whose ``CodeBrain`` folder layout our folders follow (braindecode
#: reads ``config.json`` files carrying this key and drops it before building the model).
BRAINDECODE_FORMAT_VERSION = "1.8.1"
_FALLBACK_WEIGHTS = ("pytorch_model.bin", "CodeBrain.pth")
_FOREIGN_CONFIG_KEYS = ("braindecode_version", "codebrain_version")
_HEAD_PREFIX = "final_layer."

M = TypeVar("M", bound="CodeBrainHubMixin")


class CodeBrainHubMixin(HubMixin):
    """Config and loading logic of :class:`codebrain.CodeBrain` (signal parameters, head reset)."""

    _hparams: dict[str, Any]
    _card_citation = CARD_CITATION

    # ----------------------------------------------------------------- config
    def get_config(self) -> dict[str, Any]:
        """Every constructor argument as a JSON-serialisable dict.

        Returns
        -------
        dict
            Keys are the ``__init__`` parameters; the activation class is stored as its import
            path and ``pos_kernel`` as a list. ``from_config(get_config())`` rebuilds the model
            (without weights). ``config.json`` holds this plus ``braindecode_version`` and
            ``codebrain_version``.
        """
        cfg: dict[str, Any] = {
            "n_outputs": self._n_outputs,
            "n_chans": self._n_chans if self._n_chans is not None else self.n_chans,
            "chs_info": serialize_chs_info(self._chs_info),
            "n_times": self._n_times if self._n_times is not None else self.n_times,
            "input_window_seconds": self._input_window_seconds,
            "sfreq": self._sfreq,
        }
        for key, value in self._hparams.items():
            if key == "activation":
                value = activation_path(value)
            elif key == "pos_kernel":
                value = list(value)
            elif key == "pretrain_mode":
                value = bool(self.pretrain_mode)
            cfg[key] = value
        return cfg

    @classmethod
    def from_config(cls: type[M], config: dict[str, Any]) -> M:
        """Build a model (fresh weights) from :meth:`get_config` output or a ``config.json``.

        Raises
        ------
        TypeError
            The config is not a dict, or has keys that are not constructor arguments.
        """
        check_type("config", config, dict)
        config = {k: v for k, v in config.items() if k not in _FOREIGN_CONFIG_KEYS}
        params = set(inspect.signature(cls.__init__).parameters) - {"self"}
        unknown = sorted(set(config) - params)
        if unknown:
            raise TypeError(
                f"Unknown {cls.__name__} config key(s): {unknown}; expected a subset of {sorted(params)}."
            )
        if isinstance(config.get("pos_kernel"), list):
            config["pos_kernel"] = tuple(config["pos_kernel"])
        return cls(**config)

    @classmethod
    def _format_versions(cls) -> dict[str, str]:
        """``braindecode_version`` (the layout braindecode reads) and ``codebrain_version``."""
        return {"braindecode_version": BRAINDECODE_FORMAT_VERSION, **super()._format_versions()}

    def _card_rows(self) -> list[str]:
        """Configuration rows; ``chs_info`` as its channel names instead of the full dicts."""
        config = self.get_config()
        chs_info = config.pop("chs_info", None)
        rows = [f"| `{k}` | `{json.dumps(v)}` |" for k, v in config.items()]
        if chs_info:
            chs = ", ".join(ch.get("ch_name", "?") for ch in chs_info)
            rows.append(f"| `chs_info` | {len(chs_info)} channels: {chs} |")
        return rows

    # ------------------------------------------------------------------- load
    @classmethod
    def _weight_names(cls) -> tuple[str, ...]:
        return (WEIGHTS_NAME, *_FALLBACK_WEIGHTS)

    @classmethod
    def _from_weights_only(
        cls: type[M],
        weights_path: Path,
        model_kwargs: dict[str, Any],
        *,
        map_location: str | torch.device,
        strict: bool,
    ) -> M | None:
        """Without ``config.json``, the constructor arguments must come from ``model_kwargs``.

        The authors' ``CodeBrain.pth`` (or a ``pytorch_model.bin``) alone is built from
        ``model_kwargs``; a lone ``model.safetensors`` without arguments is an interrupted save.
        """
        if weights_path.name == WEIGHTS_NAME and not model_kwargs:
            raise FileNotFoundError(
                f"{weights_path.parent} has {WEIGHTS_NAME} but no {CONFIG_NAME} (an interrupted "
                "save_pretrained leaves exactly this): save the model again, or pass its "
                "constructor arguments (n_chans=..., n_times=..., ...) to from_pretrained."
            )
        return None

    def load_pretrained_weights(
        self,
        state: Mapping[str, torch.Tensor],
        *,
        strict: bool = True,
        source: str = "the state dict",
    ) -> list[str]:
        """Load pretrained weights, keeping the freshly built classification head where needed.

        Upstream (authors') key names are converted first. Head tensors (``final_layer.*``)
        that are absent from ``state`` or of another shape keep their fresh initialisation.

        Parameters
        ----------
        state : mapping of str to Tensor
            Our, braindecode's or the authors' state dict.
        strict : bool
            Raise when a backbone key is missing or unexpected.
        source : str
            Where ``state`` came from, for error messages.

        Returns
        -------
        list of str
            The head keys left freshly initialised.

        Raises
        ------
        ValueError
            The weights do not fit the model (keys named in the message).
        """
        if is_upstream_state_dict(state):
            state, _ = convert_upstream_state_dict(state)
        own = self.state_dict()
        head_reset = [
            k
            for k in own
            if k.startswith(_HEAD_PREFIX) and (k not in state or state[k].shape != own[k].shape)
        ]
        state = {k: v for k, v in state.items() if k not in head_reset}
        _, report = convert_upstream_state_dict(
            state, own, allow_missing=(_HEAD_PREFIX,), strict=False
        )
        if strict and not report.ok:
            raise ValueError(f"Weights in {source} do not fit the model: {report.describe()}")
        if report.shape_mismatch:
            raise ValueError(f"Weights in {source} have the wrong shapes: {report.describe()}")
        self.load_state_dict(state, strict=False)
        if head_reset:
            logger.info(
                "Classification head re-initialised (%d tensors not in %s or of another shape).",
                len(head_reset),
                source,
            )
        return head_reset
