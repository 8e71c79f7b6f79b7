"""Configuration and Hugging Face Hub persistence for :class:`codebrain.CodeBrain`.

A saved model is a folder with ``config.json`` (every constructor argument, JSON-able: the
activation as an import path) and ``model.safetensors`` (weights, written once). The layout is
the one braindecode writes, so folders move between the two libraries. Loading from a repo id
goes through ``huggingface_hub`` (cache, revisions, offline mode); the authors' ``CodeBrain.pth``
is recognised too.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch

from codebrain.layers.activations import activation_path
from codebrain.models._signal import serialize_chs_info
from codebrain.models.checkpoints import (
    convert_upstream_state_dict,
    is_upstream_state_dict,
    load_checkpoint_file,
)
from codebrain.utils.io import atomic_path, atomic_write_json

__all__ = [
    "HubMixin",
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "push_folder_to_hub",
    "write_pretrained_folder",
]

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
_FALLBACK_WEIGHTS = ("pytorch_model.bin", "CodeBrain.pth")
_FOREIGN_CONFIG_KEYS = ("braindecode_version", "codebrain_version")
_SIGNAL_KEYS = ("n_outputs", "n_chans", "chs_info", "n_times", "input_window_seconds", "sfreq")
_HEAD_PREFIX = "final_layer."

M = TypeVar("M", bound="HubMixin")


def write_pretrained_folder(
    save_directory: str | os.PathLike,
    state_dict: Mapping[str, torch.Tensor],
    config: Mapping[str, Any],
) -> Path:
    """Write ``model.safetensors`` then ``config.json`` into ``save_directory``.

    The folder's old ``config.json`` is removed first and the new one written last (each file
    atomically), so a folder that has a config always holds the weights that belong to it; a
    save killed half-way leaves a folder without a config, which no loader mistakes for a
    model. Other files in the folder are left alone.

    Parameters
    ----------
    save_directory : path-like
        Created if needed; must not be an existing file.
    state_dict : mapping of str to torch.Tensor
        Weights (moved to CPU, made contiguous).
    config : mapping
        JSON-serialisable configuration.

    Returns
    -------
    Path
        The folder.
    """
    from safetensors.torch import save_file

    folder = Path(save_directory)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"save_directory {str(folder)!r} exists and is not a folder.")
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    (folder / CONFIG_NAME).unlink(missing_ok=True)
    with atomic_path(folder / WEIGHTS_NAME) as tmp_path:
        save_file(state, tmp_path, metadata={"format": "pt"})
    atomic_write_json(folder / CONFIG_NAME, dict(config))
    return folder


def push_folder_to_hub(
    save: Callable[[Path], Any],
    repo_id: str,
    *,
    commit_message: str,
    private: bool | None = None,
    token: str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
) -> Any:
    """Create the Hub model repo ``repo_id`` if needed, ``save(tmp_folder)``, upload the folder.

    Returns
    -------
    huggingface_hub.CommitInfo
    """
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    with tempfile.TemporaryDirectory() as tmp:
        save(Path(tmp))
        return api.upload_folder(
            repo_id=repo_id,
            folder_path=tmp,
            commit_message=commit_message,
            revision=revision,
            create_pr=create_pr,
            repo_type="model",
        )


class HubMixin:
    """``get_config``/``from_config``, ``save_pretrained``/``from_pretrained``, ``push_to_hub``."""

    _hparams: dict[str, Any]

    # ----------------------------------------------------------------- config
    def get_config(self) -> dict[str, Any]:
        """Every constructor argument as a JSON-serialisable dict.

        Returns
        -------
        dict
            Keys are the ``__init__`` parameters; the activation class is stored as its import
            path and ``pos_kernel`` as a list. ``from_config(get_config())`` rebuilds the model
            (without weights).
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
            The config has keys that are not constructor arguments.
        """
        if not isinstance(config, dict):
            raise TypeError(f"config must be a dict, got {type(config).__name__}.")
        config = {k: v for k, v in config.items() if k not in _FOREIGN_CONFIG_KEYS}
        import inspect

        params = set(inspect.signature(cls.__init__).parameters) - {"self"}
        unknown = sorted(set(config) - params)
        if unknown:
            raise TypeError(
                f"Unknown {cls.__name__} config key(s): {unknown}; expected a subset of {sorted(params)}."
            )
        if isinstance(config.get("pos_kernel"), list):
            config["pos_kernel"] = tuple(config["pos_kernel"])
        return cls(**config)

    # ------------------------------------------------------------------- save
    def save_pretrained(
        self, save_directory: str | os.PathLike, *, safe_serialization: bool = True
    ) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``save_directory``.

        See :func:`write_pretrained_folder`: each file is written atomically, the old config is
        removed first and the new one written last, so a folder with a config is always
        complete. Existing other files are left alone.

        Returns
        -------
        Path
            The folder.
        """
        if not safe_serialization:
            raise ValueError(
                "Only safetensors serialization is supported (safe_serialization=True)."
            )
        return write_pretrained_folder(save_directory, self.state_dict(), self.get_config())

    def push_to_hub(
        self,
        repo_id: str,
        *,
        commit_message: str = "Upload CodeBrain model",
        private: bool | None = None,
        token: str | None = None,
        revision: str | None = None,
        create_pr: bool = False,
    ) -> Any:
        """Save the model to a temporary folder and upload it to the Hub repo ``repo_id``.

        Returns
        -------
        huggingface_hub.CommitInfo
        """
        return push_folder_to_hub(
            self.save_pretrained,
            repo_id,
            commit_message=commit_message,
            private=private,
            token=token,
            revision=revision,
            create_pr=create_pr,
        )

    # ------------------------------------------------------------------- load
    @classmethod
    def from_pretrained(
        cls: type[M],
        pretrained_model_name_or_path: str | os.PathLike,
        *,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        force_download: bool = False,
        token: str | bool | None = None,
        local_files_only: bool = False,
        map_location: str | torch.device = "cpu",
        strict: bool = True,
        **overrides: Any,
    ) -> M:
        """Load a model from a local folder or a Hugging Face Hub repo id.

        Parameters
        ----------
        pretrained_model_name_or_path : str or path
            Folder with ``config.json`` + ``model.safetensors`` (or ``pytorch_model.bin``, or
            the authors' ``CodeBrain.pth``), or a Hub repo id.
        revision, cache_dir, force_download, token, local_files_only
            Passed to ``huggingface_hub.hf_hub_download`` for repo ids.
        map_location : str or torch.device
            Device for the loaded weights.
        strict : bool
            Require every backbone weight to be present (the classification head may always be
            missing or re-initialised, see below).
        **overrides
            Constructor arguments that replace the saved config. Changing ``n_outputs`` (or
            anything that changes the head's input size, e.g. ``n_times``) keeps the backbone
            weights and re-initialises the classification head's affected layers.

        Returns
        -------
        CodeBrain
        """
        config_path, weights_path = _resolve_files(
            pretrained_model_name_or_path,
            revision=revision,
            cache_dir=cache_dir,
            force_download=force_download,
            token=token,
            local_files_only=local_files_only,
        )
        if config_path is None and weights_path.name == WEIGHTS_NAME and not overrides:
            raise FileNotFoundError(
                f"{weights_path.parent} has {WEIGHTS_NAME} but no {CONFIG_NAME} (an interrupted "
                "save_pretrained leaves exactly this): save the model again, or pass its "
                "constructor arguments (n_chans=..., n_times=..., ...) to from_pretrained."
            )
        config: dict[str, Any] = {}
        if config_path is not None:
            with open(config_path, encoding="utf-8") as f:
                try:
                    config = json.load(f)
                except json.JSONDecodeError as err:
                    raise ValueError(f"{config_path} is not valid JSON: {err}") from err
        config.update(overrides)
        model = cls.from_config(config)
        model.load_pretrained_weights(
            load_checkpoint_file(weights_path), strict=strict, source=str(weights_path)
        )
        return model.to(map_location)

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


def _resolve_files(
    name_or_path: str | os.PathLike,
    **hub_kwargs: Any,
) -> tuple[Path | None, Path]:
    """Find ``(config.json or None, weights file)`` in a folder or a Hub repo."""
    path = Path(name_or_path)
    if path.is_dir():
        config = path / CONFIG_NAME
        for name in (WEIGHTS_NAME, *_FALLBACK_WEIGHTS):
            if (path / name).is_file():
                return (config if config.is_file() else None), path / name
        raise FileNotFoundError(
            f"No weights in {str(path)!r}: expected one of {[WEIGHTS_NAME, *_FALLBACK_WEIGHTS]}."
        )
    if path.is_file():
        raise ValueError(
            f"{str(path)!r} is a file; pass the folder that holds config.json and {WEIGHTS_NAME} "
            "(or use load_checkpoint_file / CodeBrain.load_state_dict for a bare checkpoint)."
        )
    name = str(name_or_path)
    if os.sep in name.strip("/") and name.count("/") > 1 or name.startswith((".", "/", "~")):
        raise FileNotFoundError(
            f"No folder {name!r} (and it is not a Hub repo id of the form 'owner/name')."
        )
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    def fetch(filename: str) -> Path | None:
        try:
            return Path(hf_hub_download(repo_id=name, filename=filename, **hub_kwargs))
        except EntryNotFoundError:
            return None
        except LocalEntryNotFoundError as err:
            if hub_kwargs.get("local_files_only") or os.environ.get("HF_HUB_OFFLINE") == "1":
                return None
            raise OSError(f"Could not reach the Hub for {name!r}/{filename}: {err}") from err

    config = fetch(CONFIG_NAME)
    for filename in (WEIGHTS_NAME, *_FALLBACK_WEIGHTS):
        weights = fetch(filename)
        if weights is not None:
            return config, weights
    raise FileNotFoundError(
        f"{name!r} is neither a local folder nor a Hub repo with {[WEIGHTS_NAME, *_FALLBACK_WEIGHTS]} "
        "(offline mode only sees files already in the cache)."
    )
