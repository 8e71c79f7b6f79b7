"""Reading ``--config FILE`` (JSON or YAML) and the given flags into a config object.

:func:`config_from_args` builds the config with the precedence

    the config's defaults  <  ``--config FILE`` (JSON, or YAML with PyYAML)  <  explicit flags

File keys are checked against the dataclass (unknown keys and values of the wrong type raise
:class:`~codebrain.cli.CLIError` naming the file and the key), and the config's own checks
run in :func:`build_config`, whose errors also become :class:`~codebrain.cli.CLIError`.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from codebrain.cli import CLIError
from codebrain.cli._config_flags import _DEPRECATED_USED, _REGISTRY
from codebrain.cli._config_types import _config_fields, _hints, _is_tuple, coerce_value

__all__ = ["load_config_file", "config_overrides", "config_from_args", "build_config"]

logger = logging.getLogger(__name__)


def load_config_file(
    path: str | Path, *, flag: str = "--config", sections: Iterable[str] = ()
) -> dict[str, Any]:
    """The mapping in a JSON or YAML (``.yaml``/``.yml``) file.

    Parameters
    ----------
    path : path-like
    flag : str
        The option naming the file, for messages.
    sections : iterable of str
        Keys of a run folder's saved config (``"pretrain"`` in ``config.json``): when the file
        holds one of them as a mapping, that mapping is returned.

    Raises
    ------
    CLIError
        Missing or unreadable file, invalid JSON/YAML, not a mapping, or YAML without PyYAML.
    """
    p = Path(path)
    if not p.is_file():
        raise CLIError(f"{flag} {str(path)!r} does not exist.")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise CLIError(f"{flag} {str(path)!r} cannot be read: {err}") from err
    if p.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise CLIError(
                f"{flag} {str(path)!r} is YAML but PyYAML is not installed; "
                "pip install pyyaml, or give a .json file."
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise CLIError(
                f"{flag} {str(path)!r} is not valid YAML: {' '.join(str(err).split())}"
            ) from err
        kind = "YAML"
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise CLIError(f"{flag} {str(path)!r} is not valid JSON: {err}") from err
        kind = "JSON"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CLIError(
            f"{flag} {str(path)!r} must hold a {kind} mapping of field names to values, got "
            f"{type(data).__name__}."
        )
    for key in sections:
        if isinstance(data.get(key), dict):
            return dict(data[key])
    return data


def config_overrides(
    config_cls: type,
    args: argparse.Namespace,
    config_file: str | Path | None = None,
    *,
    flag: str = "--config",
    sections: Iterable[str] = (),
    ignore_file_keys: Iterable[str] = (),
) -> dict[str, Any]:
    """The fields set by ``--config FILE`` and then by explicit flags (flags win).

    Only fields that were given appear, so the result can be passed to a recipe
    (``Config.paper(n, **overrides)``) as well as to the constructor. File keys are checked:
    an unknown key or a value of the wrong type raises :class:`CLIError` naming it. Deprecated
    names (``_deprecated_fields``) are accepted and mapped to the new field, with a warning.
    """
    hints = _hints(config_cls)
    fields = {f.name for f in _config_fields(config_cls)}
    deprecated: dict[str, str] = dict(getattr(config_cls, "_deprecated_fields", {}) or {})
    values: dict[str, Any] = {}
    if config_file is not None:
        loaded = load_config_file(config_file, flag=flag, sections=sections)
        dropped = set(ignore_file_keys)
        ignored = dropped | set(getattr(config_cls, "_ignored_keys", ()))
        unknown = sorted(
            k for k in loaded if k not in fields and k not in deprecated and k not in ignored
        )
        if unknown:
            raise CLIError(
                f"{flag} {str(config_file)!r}: unknown key{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))} for {config_cls.__name__}; expected some of: "
                f"{', '.join(sorted(fields))}."
            )
        for key, value in loaded.items():
            if key in dropped or (key in ignored and key not in fields):
                continue
            name = key
            if key in deprecated:
                name = deprecated[key]
                logger.warning("%s %s: %r is deprecated; use %r.", flag, config_file, key, name)
                values[key] = value  # the config maps the old name (and its meaning) itself
                continue
            try:
                values[name] = coerce_value(value, hints.get(name, Any))
            except TypeError as err:
                raise CLIError(f"{flag} {str(config_file)!r}: key {key!r}: {err}.") from None
    given = vars(args)
    registry = given.get(_REGISTRY) or {}
    dests = registry.get(config_cls.__qualname__, ())
    for old, new in given.get(_DEPRECATED_USED, ()):
        logger.warning("%s is deprecated; use %s.", old, new)
    flags: dict[str, Any] = {}
    for name in dests:
        if name in given:
            value = given[name]
            flags[name] = (
                tuple(value) if isinstance(value, list) and _is_tuple(hints.get(name)) else value
            )
    for name in flags:  # a flag beats the file, whatever the spelling of either
        values.pop(name, None)
        values.pop(deprecated.get(name, ""), None)
        for old in (o for o, new in deprecated.items() if new == name):
            values.pop(old, None)
    values.update(flags)
    return values


def config_from_args(
    config_cls: type,
    args: argparse.Namespace,
    config_file: str | Path | None = None,
    *,
    base: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """Build ``config_cls`` from its defaults, ``base``, ``config_file``, flags and ``extra``.

    Later sources win, in that order.

    ``base`` is a starting point below the file (a recipe's settings); ``extra`` holds values
    the command derives itself (they win). ``overrides`` is what :func:`config_overrides`
    returned for this config, file and flags when the command has read them already (they are
    then not read, nor their deprecations logged, again); other keywords go to
    :func:`config_overrides`. A value the config refuses raises :class:`CLIError` with its
    message.
    """
    values = dict(base or {})
    if overrides is None:
        overrides = config_overrides(config_cls, args, config_file, **kwargs)
    deprecated: dict[str, str] = dict(getattr(config_cls, "_deprecated_fields", {}) or {})
    for old in overrides:
        if old in deprecated:  # an old spelling given beats the base's new one
            values.pop(deprecated[old], None)
    values.update(overrides)
    values.update(extra or {})
    return build_config(config_cls, values)


def build_config(config_cls: type, values: Mapping[str, Any]) -> Any:
    """``config_cls.from_dict(values)`` (or the constructor); its errors as :class:`CLIError`."""
    try:
        if hasattr(config_cls, "from_dict"):
            return config_cls.from_dict(dict(values))
        return config_cls(**values)
    except (TypeError, ValueError) as err:
        raise CLIError(str(err)) from err
