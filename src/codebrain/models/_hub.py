"""Hugging Face Hub persistence for the package's models (model-agnostic).

:class:`HubMixin` is :class:`huggingface_hub.PyTorchModelHubMixin` with our folder convention:
``save_pretrained``, ``from_pretrained`` and ``push_to_hub`` are the library's, and the two
hooks it calls, ``_save_pretrained`` and ``_from_pretrained``, are ours. A saved model is a
folder with

* ``model.safetensors`` -- the weights, written once;
* ``config.json`` -- what :meth:`HubMixin.get_config` returns (JSON-able), written last, plus
  the format versions of :meth:`HubMixin._format_versions` (``codebrain_version``);
* ``README.md`` -- a model card (architecture, configuration, citation), written when the folder
  has none (a card of yours is kept).

Each file is written atomically and the old config is removed first, so a folder that has a
config always holds the weights that belong to it. Loading from a repo id goes through
``huggingface_hub`` (cache, revisions, offline mode). A model class says what is its own
through class attributes and hooks: ``get_config``/``from_config`` (the config), the card
texts, ``_weight_names`` (other weight files it recognises), ``_from_weights_only`` (a folder
without a config) and ``load_pretrained_weights`` (how a state dict is loaded).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from huggingface_hub import ModelCard, ModelCardData, PyTorchModelHubMixin

from codebrain._version import __version__
from codebrain.models._paper import CITATION, PAPER_URL
from codebrain.models.checkpoints import load_checkpoint_file
from codebrain.utils.io import atomic_path, atomic_write_json
from codebrain.utils.run_layout import run_final_dir

__all__ = [
    "CITATION",
    "CONFIG_NAME",
    "HubMixin",
    "PAPER_URL",
    "WEIGHTS_NAME",
    "read_config_file",
    "write_pretrained_folder",
]

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
_HUB_ARGS = ("revision", "cache_dir", "force_download", "token", "local_files_only")

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

    folder = _check_save_directory(save_directory)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    (folder / CONFIG_NAME).unlink(missing_ok=True)
    with atomic_path(folder / WEIGHTS_NAME) as tmp_path:
        save_file(state, tmp_path, metadata={"format": "pt"})
    atomic_write_json(folder / CONFIG_NAME, dict(config))
    return folder


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a model folder's ``config.json``; a clear error names the file when it is broken.

    Raises
    ------
    ValueError
        The file is not JSON, or is JSON but not an object of constructor arguments.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        config = json.loads(text)
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not valid JSON (not UTF-8 text: {err}).") from err
    except json.JSONDecodeError as err:
        what = "empty" if not text.strip() else f"not valid JSON ({err})"
        raise ValueError(
            f"{path} is {what}; expected a JSON object of constructor arguments."
        ) from err
    if not isinstance(config, dict):
        raise ValueError(
            f"{path} holds a JSON {_json_type(config)}; expected a JSON object of constructor "
            "arguments."
        )
    return config


def _json_type(value: Any) -> str:
    return {list: "array", type(None): "null", str: "string", bool: "boolean"}.get(
        type(value), "number"
    )


def _check_save_directory(save_directory: str | os.PathLike) -> Path:
    folder = Path(save_directory)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"save_directory {str(folder)!r} exists and is not a folder.")
    return folder


class _AtomicModelCard(ModelCard):
    """A :class:`huggingface_hub.ModelCard` whose ``save`` writes atomically."""

    def save(self, filepath: str | os.PathLike) -> None:
        """Write the card to ``filepath`` atomically (``ModelCard.save`` through a temporary)."""
        with atomic_path(filepath) as tmp:
            super().save(tmp)


class HubMixin(PyTorchModelHubMixin):
    """``PyTorchModelHubMixin`` with our save convention, model card and loading errors.

    Subclasses define :meth:`get_config` and :meth:`from_config` (the config round trip) and
    the card texts ``_card_title``, ``_card_description`` and ``_card_citation``; the hooks
    :meth:`_format_versions`, :meth:`_card_rows`, :meth:`_weight_names`,
    :meth:`_from_weights_only` and :meth:`load_pretrained_weights` have defaults.
    """

    _card_title: ClassVar[str] = ""
    _card_description: ClassVar[str] = ""
    #: Markdown under the card's ``## Citation`` heading (no section when empty).
    _card_citation: ClassVar[str] = ""

    # ----------------------------------------------------------------- config
    def get_config(self) -> dict[str, Any]:  # pragma: no cover - abstract
        """The configuration saved in ``config.json``, JSON-serialisable."""
        raise NotImplementedError

    @classmethod
    def from_config(cls: type[M], config: dict[str, Any]) -> M:  # pragma: no cover - abstract
        """Build a model (fresh weights) from :meth:`get_config` output."""
        raise NotImplementedError

    @classmethod
    def _format_versions(cls) -> dict[str, str]:
        """Keys ``config.json`` holds besides :meth:`get_config`; dropped again on loading."""
        return {"codebrain_version": __version__}

    def _saved_config(self) -> dict[str, Any]:
        """What ``config.json`` holds: :meth:`get_config` plus the format versions."""
        return {**self.get_config(), **self._format_versions()}

    # ------------------------------------------------------------------- save
    def _save_pretrained(self, save_directory: Path) -> None:
        """Hook of ``ModelHubMixin.save_pretrained``: weights, then the config (atomically)."""
        write_pretrained_folder(save_directory, self.state_dict(), self._saved_config())

    def save_pretrained(
        self,
        save_directory: str | os.PathLike,
        *,
        config: dict | None = None,
        repo_id: str | None = None,
        push_to_hub: bool = False,
        model_card_kwargs: dict[str, Any] | None = None,
        safe_serialization: bool = True,
        **push_to_hub_kwargs: Any,
    ) -> Path | str:
        """Write ``model.safetensors``, ``config.json`` and a model card into ``save_directory``.

        ``huggingface_hub.ModelHubMixin.save_pretrained`` with our hook: each file is written
        atomically, the old config is removed first and the new one written last, so a folder
        with a config is always complete. ``README.md`` is written only when the folder has
        none; other files are left alone.

        Parameters
        ----------
        save_directory : path-like
            Created if needed; must not be an existing file.
        config : None
            Not supported: the model's own :meth:`get_config` is saved.
        repo_id : str, optional
            Hub repo for ``push_to_hub=True`` (default: the folder name).
        push_to_hub : bool
            Also upload the model (see :meth:`push_to_hub`).
        model_card_kwargs : dict, optional
            Passed to :meth:`generate_model_card`.
        safe_serialization : bool
            Must be True (weights are always safetensors).
        **push_to_hub_kwargs
            Passed to :meth:`push_to_hub`.

        Returns
        -------
        Path or str
            The folder; with ``push_to_hub=True``, the commit URL.
        """
        if not safe_serialization:
            raise ValueError(
                "Only safetensors serialization is supported (safe_serialization=True)."
            )
        if config is not None:
            raise TypeError(
                f"{type(self).__name__}.save_pretrained saves the model's own get_config(); "
                "config= is not supported."
            )
        folder = _check_save_directory(save_directory)
        url = super().save_pretrained(
            folder,
            repo_id=repo_id,
            push_to_hub=push_to_hub,
            model_card_kwargs=model_card_kwargs,
            **push_to_hub_kwargs,
        )
        return url if push_to_hub else folder

    def generate_model_card(self, *args: Any, **kwargs: Any) -> ModelCard:
        """The ``README.md`` written next to the weights.

        Parameters
        ----------
        repo_id : str, optional (keyword)
            Shown in the usage example (default ``"<user>/<repo>"``).
        description : str, optional (keyword)
            A paragraph about this checkpoint (data, training), placed after the title.
        **kwargs
            Other model-card metadata fields (``license``, ``datasets``, ``tags`` ...).

        Returns
        -------
        huggingface_hub.ModelCard
        """
        repo_id = kwargs.pop("repo_id", None) or "<user>/<repo>"
        description = kwargs.pop("description", None)
        data = ModelCardData(**self._hub_mixin_info.model_card_data.to_dict())
        for key, value in kwargs.items():
            if key == "tags":
                value = sorted({*(data.tags or []), *value})
            setattr(data, key, value)
        name = type(self).__name__
        n_params = sum(p.numel() for p in self.parameters())
        library = data.library_name or "codebrain"
        repo_url = self._hub_mixin_info.repo_url
        parts = [
            f"---\n{data.to_yaml()}\n---",
            f"# {self._card_title}",
            description or "",
            "## Architecture",
            self._card_description.strip(),
            f"{n_params:,} parameters.",
            "## Configuration",
            "Every constructor argument, as saved in `config.json`:\n\n"
            "| argument | value |\n|---|---|\n" + "\n".join(self._card_rows()),
            "## Usage",
            "```python\n"
            f"from {library} import {name}\n\n"
            f'model = {name}.from_pretrained("{repo_id}")\n```',
            "Library: "
            + (f"[{library}]({repo_url})" if repo_url else library)
            + f" (`pip install {library}`).",
        ]
        if self._card_citation:
            parts += ["## Citation", self._card_citation]
        return _AtomicModelCard("\n\n".join(p for p in parts if p) + "\n")

    def _card_rows(self) -> list[str]:
        """The card's configuration table rows, one per :meth:`get_config` entry."""
        return [f"| `{k}` | `{json.dumps(v)}` |" for k, v in self.get_config().items()]

    # ------------------------------------------------------------------- load
    @classmethod
    def from_pretrained(
        cls: type[M],
        pretrained_model_name_or_path: str | os.PathLike,
        *,
        force_download: bool = False,
        token: str | bool | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool = False,
        revision: str | None = None,
        **model_kwargs: Any,
    ) -> M:
        """Load a model from a local folder or a Hugging Face Hub repo id (in eval mode).

        ``huggingface_hub.ModelHubMixin.from_pretrained``, after our checks: the files are
        located first (a repo id is downloaded into the cache, then loaded like a folder) and a
        broken ``config.json`` is reported with its path.

        Parameters
        ----------
        pretrained_model_name_or_path : str or path
            A folder written by :meth:`save_pretrained` (or by braindecode), or a Hub repo id.
        force_download, token, cache_dir, local_files_only, revision
            Passed to ``huggingface_hub.hf_hub_download`` for repo ids.
        **model_kwargs
            ``map_location``, ``strict``, and constructor arguments or config fields that
            replace the saved ones (see the class's ``_from_pretrained``).

        Returns
        -------
        The model, in eval mode.
        """
        hub_kwargs = dict(
            revision=revision,
            cache_dir=cache_dir,
            force_download=force_download,
            token=token,
            local_files_only=local_files_only,
        )
        config_path, weights_path = _resolve_files(
            pretrained_model_name_or_path, cls._weight_names(), **hub_kwargs
        )
        if config_path is not None:
            read_config_file(config_path)
        return super().from_pretrained(weights_path.parent, **hub_kwargs, **model_kwargs)

    @classmethod
    def _weight_names(cls) -> tuple[str, ...]:
        """Weight files a folder may hold, in order of preference."""
        return (WEIGHTS_NAME,)

    @classmethod
    def _from_pretrained(
        cls: type[M],
        *,
        model_id: str,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        force_download: bool = False,
        local_files_only: bool = False,
        token: str | bool | None = None,
        map_location: str | torch.device = "cpu",
        strict: bool = True,
        config: dict[str, Any] | None = None,
        **model_kwargs: Any,
    ) -> M:
        """Hook of ``ModelHubMixin.from_pretrained``: build from the config, load the weights.

        Parameters
        ----------
        model_id : str
            A folder holding ``config.json`` and one of :meth:`_weight_names`, or a Hub repo id.
        revision, cache_dir, force_download, local_files_only, token
            Passed to ``huggingface_hub.hf_hub_download`` for repo ids.
        map_location : str or torch.device
            Device for the loaded weights.
        strict : bool
            Passed to :meth:`load_pretrained_weights`.
        config : dict, optional
            The saved ``config.json`` (given by ``from_pretrained``).
        **model_kwargs
            Config entries that replace the saved ones.

        Returns
        -------
        The model, in eval mode.
        """
        config_path, weights_path = _resolve_files(
            model_id,
            cls._weight_names(),
            revision=revision,
            cache_dir=cache_dir,
            force_download=force_download,
            token=token,
            local_files_only=local_files_only,
        )
        if not isinstance(config, dict):  # given by from_pretrained, or read here
            config = read_config_file(config_path) if config_path is not None else None
        if config is None:
            model = cls._from_weights_only(
                weights_path, model_kwargs, map_location=map_location, strict=strict
            )
            if model is not None:
                return model.to(map_location).eval()
        format_keys = cls._format_versions()
        merged = {k: v for k, v in (config or {}).items() if k not in format_keys}
        merged.update(model_kwargs)
        source = str(config_path) if config_path is not None else "the given arguments"
        try:
            model = cls.from_config(merged)
        except (TypeError, ValueError) as err:
            raise type(err)(f"Cannot build {cls.__name__} from {source}: {err}") from err
        model.load_pretrained_weights(
            load_checkpoint_file(weights_path), strict=strict, source=str(weights_path)
        )
        return model.to(map_location).eval()

    @classmethod
    def _from_weights_only(
        cls: type[M],
        weights_path: Path,
        model_kwargs: dict[str, Any],
        *,
        map_location: str | torch.device,
        strict: bool,
    ) -> M | None:
        """A folder with weights but no ``config.json``: the model, or None.

        None builds the model from ``model_kwargs`` alone; by default such a folder is refused
        (an interrupted save leaves one).
        """
        raise FileNotFoundError(
            f"{weights_path.parent} has {weights_path.name} but no {CONFIG_NAME} (an interrupted "
            f"save_pretrained leaves exactly this): save the {cls.__name__} again."
        )

    def load_pretrained_weights(
        self,
        state: Mapping[str, torch.Tensor],
        *,
        strict: bool = True,
        source: str = "the state dict",
    ) -> list[str]:
        """Load weights read by ``from_pretrained`` (default: :meth:`load_state_dict`).

        Parameters
        ----------
        state : mapping of str to Tensor
        strict : bool
        source : str
            Where ``state`` came from, for error messages.

        Returns
        -------
        list of str
            Keys of the model left at their fresh initialisation (none by default).
        """
        self.load_state_dict(state, strict=strict)
        return []


def _resolve_files(
    name_or_path: str | os.PathLike,
    weight_names: tuple[str, ...],
    **hub_kwargs: Any,
) -> tuple[Path | None, Path]:
    """Find ``(config.json or None, weights file)`` in a folder or a Hub repo."""
    hub_kwargs = {k: v for k, v in hub_kwargs.items() if k in _HUB_ARGS}
    path = Path(name_or_path)
    if path.is_dir():
        path = run_final_dir(path) or path  # a run folder: its trained model
        config = path / CONFIG_NAME
        for name in weight_names:
            if (path / name).is_file():
                return (config if config.is_file() else None), path / name
        if config.is_file():
            raise FileNotFoundError(
                f"{str(path)!r} has {CONFIG_NAME} but no weights: expected one of "
                f"{list(weight_names)}."
            )
        raise FileNotFoundError(
            f"No weights in {str(path)!r}: expected {CONFIG_NAME} and one of {list(weight_names)}."
        )
    if path.is_file():
        raise ValueError(
            f"{str(path)!r} is a file; pass the folder that holds {CONFIG_NAME} and {WEIGHTS_NAME} "
            "(or use load_checkpoint_file / load_state_dict for a bare checkpoint)."
        )
    name = str(name_or_path)
    if name.strip("/").count("/") > 1 or name.startswith((".", "/", "~")) or os.sep in name[:1]:
        raise FileNotFoundError(
            f"No folder {name!r} (and it is not a Hub repo id of the form 'owner/name')."
        )
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    def fetch(filename: str) -> Path | None:
        try:
            return Path(hf_hub_download(repo_id=name, filename=filename, **hub_kwargs))
        except LocalEntryNotFoundError as err:
            if hub_kwargs.get("local_files_only") or os.environ.get("HF_HUB_OFFLINE") == "1":
                return None
            raise OSError(f"Could not reach the Hub for {name!r}/{filename}: {err}") from err
        except EntryNotFoundError:
            return None
        except (HFValidationError, RepositoryNotFoundError) as err:
            raise FileNotFoundError(
                f"{name!r} is neither a local folder nor a Hub repo: {err}"
            ) from err

    config = fetch(CONFIG_NAME)
    for filename in weight_names:
        weights = fetch(filename)
        if weights is not None:
            return config, weights
    raise FileNotFoundError(
        f"{name!r} is neither a local folder nor a Hub repo with {list(weight_names)} "
        "(offline mode only sees files already in the cache)."
    )
