"""Type hints of config dataclass fields: as argparse types, as words, and as checks.

:func:`argparse_kwargs` turns a field's hint into ``add_argument`` keywords (``type``,
``choices``, ``nargs``, ``action``); :func:`describe_type` says a hint in words for messages;
:func:`coerce_value` checks (and converts) a value read from a JSON/YAML config file. Used by
:mod:`codebrain.cli._config_flags` and :mod:`codebrain.cli._config_file`.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, Union

__all__ = ["describe_type", "coerce_value", "argparse_kwargs"]

_NONE_WORDS = ("none", "null")
_TRUE_WORDS = ("true", "yes", "on", "1")
_FALSE_WORDS = ("false", "no", "off", "0")
#: namespace attribute listing the dests each config class registered


# ------------------------------------------------------------------------------ type hints


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (Union, types.UnionType)


def _split_optional(hint: Any) -> tuple[Any, bool]:
    """``X | None`` -> ``(X, True)``; anything else -> ``(hint, False)``."""
    if not _is_union(hint):
        return hint, False
    members = [a for a in typing.get_args(hint) if a is not type(None)]
    optional = len(members) < len(typing.get_args(hint))
    if len(members) == 1:
        return members[0], optional
    return Union[tuple(members)], optional  # noqa: UP007 (a runtime union of a tuple)


def _members(hint: Any) -> tuple[Any, ...]:
    return typing.get_args(hint) if _is_union(hint) else (hint,)


def describe_type(hint: Any) -> str:
    """The type ``hint`` in words, for messages (``"an integer"``, ``"one of 'a', 'b'"``)."""
    inner, optional = _split_optional(hint)
    if _is_union(inner):
        text = " or ".join(describe_type(m) for m in typing.get_args(inner))
    else:
        origin, args = typing.get_origin(inner), typing.get_args(inner)
        if inner is bool:
            text = "true or false"
        elif inner is int:
            text = "an integer"
        elif inner is float:
            text = "a number"
        elif inner is str:
            text = "a string"
        elif origin is Literal:
            text = "one of " + ", ".join(repr(a) for a in args)
        elif origin in (tuple, list) and args and args[-1] is not Ellipsis and origin is tuple:
            text = f"a list of {len(args)} values ({', '.join(describe_type(a) for a in args)})"
        elif origin in (tuple, list):
            item = args[0] if args else Any
            text = f"a list of values ({describe_type(item)} each)"
        elif origin is dict or inner is dict:
            text = "a mapping"
        elif inner is Any:
            text = "any value"
        else:
            text = getattr(inner, "__name__", str(inner))
    return text + (" or null" if optional else "")


class _Mismatch(Exception):
    pass


def coerce_value(value: Any, hint: Any) -> Any:
    """``value`` (from JSON/YAML) checked against ``hint`` and converted.

    Lists become tuples and ints floats; raises ``TypeError`` when it does not fit.
    """
    try:
        return _coerce(value, hint)
    except _Mismatch:
        raise TypeError(
            f"expected {describe_type(hint)}, got {value!r} ({type(value).__name__})"
        ) from None


def _coerce(value: Any, hint: Any) -> Any:
    inner, optional = _split_optional(hint)
    if value is None:
        if optional or inner is Any:
            return None
        raise _Mismatch
    if _is_union(inner):
        for member in typing.get_args(inner):
            try:
                return _coerce(value, member)
            except _Mismatch:
                continue
        raise _Mismatch
    origin, args = typing.get_origin(inner), typing.get_args(inner)
    if inner is Any:
        return value
    if origin is Literal:
        if value in args and not (isinstance(value, bool) and not any(a is value for a in args)):
            return value
        raise _Mismatch
    if inner is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if inner is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch
    if inner is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise _Mismatch
    if inner is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise _Mismatch
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise _Mismatch
            items = [_coerce(v, a) for v, a in zip(value, args, strict=True)]
        else:
            item = args[0] if args else Any
            items = [_coerce(v, item) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict or inner is dict:
        if isinstance(value, dict):
            return value
        raise _Mismatch
    return value  # a type this module does not know: the config validates it


# ----------------------------------------------------------------- parsing a flag's text


def _scalar_parser(hint: Any) -> Callable[[str], Any]:
    """An argparse ``type=`` for one token of type ``hint`` (no ``None`` handling)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        return _parse_bool
    if hint is int:
        return _parse_int
    if hint is float:
        return _parse_float
    if origin is Literal:
        kinds = {type(a) for a in args}
        return _scalar_parser(kinds.pop()) if len(kinds) == 1 else str
    if _is_union(hint):
        return _union_parser(typing.get_args(hint))
    if origin in (tuple, list):
        item = args[0] if args else str
        return _list_parser(_scalar_parser(item))
    return str


def _parse_bool(text: str) -> bool:
    low = text.lower()
    if low in _TRUE_WORDS:
        return True
    if low in _FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _parse_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _list_parser(item: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    def parse(text: str) -> list[Any]:
        return [item(t.strip()) for t in text.split(",") if t.strip()]

    return parse


def _union_parser(members: tuple[Any, ...]) -> Callable[[str], Any]:
    """Try the members from the most to the least specific (``str`` last)."""

    def rank(m: Any) -> int:
        if m is bool:
            return 0
        if typing.get_origin(m) is Literal:
            return 1
        if m is int:
            return 2
        if m is float:
            return 3
        if typing.get_origin(m) in (tuple, list):
            return 4
        return 5

    ordered = sorted(members, key=rank)

    def parse(text: str) -> Any:
        for m in ordered:
            if typing.get_origin(m) is Literal and text not in typing.get_args(m):
                continue
            if typing.get_origin(m) in (tuple, list) and "," not in text:
                continue
            try:
                return _scalar_parser(m)(text)
            except (argparse.ArgumentTypeError, ValueError):
                continue
        raise argparse.ArgumentTypeError(
            f"expected {' or '.join(describe_type(m) for m in members)}, got {text!r}"
        )

    return parse


def _optional(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse_or_none(text: str) -> Any:
        return None if text.lower() in _NONE_WORDS else parse(text)

    parse_or_none.__name__ = getattr(parse, "__name__", "value")
    return parse_or_none


def argparse_kwargs(hint: Any) -> dict[str, Any]:
    """``add_argument`` keyword arguments for a value of type ``hint``.

    They are ``type``, ``choices``, ``nargs`` and ``action``.
    """
    inner, optional = _split_optional(hint)
    origin, args = typing.get_origin(inner), typing.get_args(inner)
    kw: dict[str, Any] = {}
    if inner is bool and not optional:
        return {"action": argparse.BooleanOptionalAction}
    if origin is Literal and all(isinstance(a, str) for a in args):
        kw["choices"] = list(args) + ([None] if optional else [])
        kw["metavar"] = "{" + ",".join(list(args) + (["none"] if optional else [])) + "}"
        kw["type"] = _optional(str) if optional else str
        return kw
    if origin in (tuple, list) and not _is_union(inner):
        fixed = origin is tuple and args and args[-1] is not Ellipsis
        item = args[0] if args else str
        kw["nargs"] = len(args) if fixed else "+"
        kw["type"] = _scalar_parser(item)
        return kw
    if _is_union(inner) and bool in args:  # bool | str: "--x" alone is True, "--x VALUE" a value
        kw.update(nargs="?", const=True)
    parse = _scalar_parser(inner)
    kw["type"] = _optional(parse) if optional else parse
    if inner in (int, float):
        kw["metavar"] = "N" if inner is int else "X"
    return kw


def _takes_no_form(hint: Any) -> bool:
    """A ``bool | other`` field: it also gets a ``--no-x`` flag (False)."""
    inner, _ = _split_optional(hint)
    return _is_union(inner) and bool in typing.get_args(inner)


def _config_fields(cls: type) -> list[dataclasses.Field]:
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass.")
    return [f for f in dataclasses.fields(cls) if f.init]


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # an unresolvable annotation: fall back to the raw ones
        return {f.name: f.type for f in dataclasses.fields(cls)}


def _is_tuple(hint: Any) -> bool:
    inner, _ = _split_optional(hint)
    return typing.get_origin(inner) is tuple
