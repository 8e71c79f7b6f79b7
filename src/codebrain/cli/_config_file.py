"""Reading ``--config FILE`` (JSON or YAML) and the given flags into a config object.

:func:`config_from_args` builds the config with the precedence

    the config's defaults  <  ``--config FILE`` (JSON, or YAML with PyYAML)  <  explicit flags

File keys are checked against the dataclass (unknown keys and values of the wrong type raise
:class:`~codebrain.cli.CLIError` naming the file and the key), and the config's own checks
run in :func:`build_config`, whose errors also become :class:`~codebrain.cli.CLIError`; when
the value the config refuses came from the file, the message names the file too
(:func:`config_file_error`).
"""

from __future__ import annotations

import argparse
import json
import logging
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from codebrain.cli import CLIError
from codebrain.cli._config_flags import _DEPRECATED_USED, _REGISTRY
from codebrain.cli._config_types import _config_fields, _hints, _is_tuple, coerce_value

__all__ = [
    "load_config_file",
    "config_overrides",
    "config_from_args",
    "build_config",
    "config_file_error",
]

logger = logging.getLogger(__name__)


class _Overrides(dict):
    """What :func:`config_overrides` returns: a plain dict of fields, with provenance.

    It also knows which of its keys came from the ``--config`` file (``file_keys``), that file
    (``config_file``) and its flag (``flag``).
    """

    def __init__(
        self,
        values: Mapping[str, Any],
        config_file: str | Path | None,
        flag: str,
        file_keys: Iterable[str],
    ) -> None:
        super().__init__(values)
        self.config_file = config_file
        self.flag = flag
        self.file_keys = frozenset(file_keys) & set(values)


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
    from_file = set(values)
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
    return _Overrides(values, config_file, flag, from_file - set(flags))


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
    message, after the file's name when the file gave it (see :func:`config_file_error`).
    """
    if overrides is None:
        overrides = config_overrides(config_cls, args, config_file, **kwargs)

    def build(given: Mapping[str, Any]) -> Any:
        return build_config(config_cls, _merge(config_cls, base, given, extra))

    try:
        return build(overrides)
    except CLIError as err:
        blamed = config_file_error(err, overrides, build)
        if blamed is None:
            raise
        raise blamed from err.__cause__


def _merge(
    config_cls: type,
    base: Mapping[str, Any] | None,
    overrides: Mapping[str, Any],
    extra: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """``base``, then ``overrides`` (an old spelling beats the base's new one), then ``extra``."""
    values = dict(base or {})
    deprecated: dict[str, str] = dict(getattr(config_cls, "_deprecated_fields", {}) or {})
    for old in overrides:
        if old in deprecated:
            values.pop(deprecated[old], None)
    values.update(overrides)
    values.update(extra or {})
    return values


def config_file_error(
    err: Exception, overrides: Mapping[str, Any], build: Callable[[dict[str, Any]], Any]
) -> CLIError | None:
    """``err`` as a :class:`CLIError` naming the ``--config`` file, when the file is to blame.

    The file is to blame when the config builds without the values it gave: ``build`` (the
    same construction from a dict of overrides) is tried once more on ``overrides`` less the
    file's keys. The message reads ``"--config 'FILE': <the config's message>"``, which names
    the field.

    Parameters
    ----------
    err : Exception
        What building the config from ``overrides`` raised.
    overrides : mapping
        What :func:`config_overrides` returned (it knows which keys came from the file).
    build : callable
        ``build(overrides)`` builds the config (raising ``TypeError``, ``ValueError`` or
        :class:`CLIError` when it refuses the values).

    Returns
    -------
    CLIError or None
        ``None`` when no value of the file took part, or the config is refused without them too
        (then the error is the flags' or the command's, and ``err`` says so as it is).
    """
    file_keys = getattr(overrides, "file_keys", frozenset())
    if not file_keys:
        return None
    rest = {k: v for k, v in overrides.items() if k not in file_keys}
    try:
        with warnings.catch_warnings():  # the first try has warned about the same values
            warnings.simplefilter("ignore")
            build(rest)
    except (CLIError, TypeError, ValueError):
        return None
    path = str(overrides.config_file)  # type: ignore[attr-defined]
    return CLIError(f"{overrides.flag} {path!r}: {err}")  # type: ignore[attr-defined]


def build_config(config_cls: type, values: Mapping[str, Any]) -> Any:
    """``config_cls.from_dict(values)`` (or the constructor); its errors as :class:`CLIError`."""
    try:
        if hasattr(config_cls, "from_dict"):
            return config_cls.from_dict(dict(values))
        return config_cls(**values)
    except (TypeError, ValueError) as err:
        raise CLIError(str(err)) from err
