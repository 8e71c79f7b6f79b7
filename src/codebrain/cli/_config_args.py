"""Command-line flags generated from configuration dataclasses (like ``HfArgumentParser``).

:func:`add_config_arguments` adds one flag per field of a config dataclass; its type, choices
and help come from the field's type hint, its default and the class docstring's numpydoc
``Parameters`` section, so a new field is a new flag without editing a command. Every
generated flag has the argparse default :data:`argparse.SUPPRESS`: a flag that was not given
leaves no attribute, so :func:`config_overrides` can tell "given" from "left at the default".
:func:`config_from_args` builds the config with the precedence

    the config's defaults  <  ``--config FILE`` (JSON, or YAML with PyYAML)  <  explicit flags

Type hints map onto flags as follows: ``int``/``float``/``str`` take one value; ``bool`` is a
``--x/--no-x`` pair; ``Literal[...]`` gives choices; ``tuple[T, T]`` takes that many values
and ``tuple[T, ...]``/``list[T]`` one or more; ``X | None`` also accepts ``none``. Old field
names listed in a config's ``_deprecated_fields = {old: new}`` become hidden flags that still
work and log a deprecation warning.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, Union

from codebrain.cli import CLIError

__all__ = [
    "add_config_arguments",
    "add_config_file_argument",
    "add_precision_short_forms",
    "resume_arg_kwargs",
    "config_overrides",
    "config_from_args",
    "load_config_file",
    "field_docs",
    "flag_name",
]

logger = logging.getLogger(__name__)

_NONE_WORDS = ("none", "null")
_TRUE_WORDS = ("true", "yes", "on", "1")
_FALSE_WORDS = ("false", "no", "off", "0")
#: namespace attribute listing the dests each config class registered
_REGISTRY = "_config_dests"
#: namespace attribute listing the deprecated flags that were used
_DEPRECATED_USED = "_deprecated_flags_used"


def flag_name(field: str) -> str:
    """``"warmup_steps"`` -> ``"--warmup-steps"``."""
    return "--" + field.replace("_", "-")


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


# ------------------------------------------------------------------------------ help text


def field_docs(cls: type) -> dict[str, str]:
    """The first paragraph of each field's numpydoc ``Parameters`` entry.

    Read from ``cls`` and its base classes (the subclass's entry wins).

    Entries may name several fields (``lr, min_lr : float``). Fields without a description
    get ``""``.
    """
    out: dict[str, str] = {}
    for klass in reversed(getattr(cls, "__mro__", (cls,))):
        if klass is object:
            continue
        found = _parameter_docs(klass.__dict__.get("__doc__") or "")
        out.update({k: v for k, v in found.items() if v or k not in out})
    return out


def _parameter_docs(doc: str) -> dict[str, str]:
    lines = doc.expandtabs().splitlines()
    out: dict[str, str] = {}
    try:
        start = next(
            i
            for i, ln in enumerate(lines)
            if ln.strip() == "Parameters"
            and i + 1 < len(lines)
            and set(lines[i + 1].strip()) == {"-"}
        )
    except StopIteration:
        return out
    names: list[str] = []
    body: list[str] = []
    entry_indent = None

    def flush() -> None:
        text = " ".join(" ".join(body).split())
        for n in names:
            out[n] = text

    for ln in lines[start + 2 :]:
        if not ln.strip():
            if body:
                body.append("\n")
            continue
        indent = len(ln) - len(ln.lstrip())
        if entry_indent is None:
            entry_indent = indent
        if indent < entry_indent:
            break
        if indent == entry_indent:
            if set(ln.strip()) == {"-"}:  # the next section's underline
                names.pop() if names else None
                break
            flush()
            head = ln.strip().split(" : ", 1)[0]
            names = [n.strip().lstrip("*") for n in head.split(",") if n.strip()]
            body = []
        elif "\n" not in body:  # the first paragraph only
            body.append(ln.strip())
    flush()
    return out


def _plain(doc: str) -> str:
    """Docstring markup as plain text: ``x`` and :role:`x` become 'x'."""
    text = " ".join(doc.split())
    text = re.sub(r":[a-z]+:`~?([^`]*)`", r"'\1'", text)
    text = re.sub(r"``([^`]*)``", r"'\1'", text)
    return re.sub(r"'\"([^\"']*)\"'", r"'\1'", text)


def _show_default(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple | list):
        return " ".join(str(v) for v in value)
    return str(value)


def _help(doc: str, default: Any, *, optional: bool, extra: str = "") -> str:
    text = _plain(doc)
    parts = [text] if text else []
    if extra:
        parts.append(extra)
    if "(default" in text:  # the text names its default itself
        return "; ".join(parts).replace("%", "%%")
    tail = f"default: {_show_default(default)}"
    if optional and default is not None:
        tail += "; 'none' for none"
    body = "; ".join(parts)
    return (f"{body} ({tail})" if body else tail).replace("%", "%%")


# ------------------------------------------------------------------------ adding the flags


class _DeprecatedFlag(argparse.Action):
    """A hidden old spelling: stores into the new field's dest and remembers its use."""

    def __init__(self, *args: Any, new_flag: str, inner: argparse.Action, **kwargs: Any):
        self.new_flag = new_flag
        self.inner = inner
        super().__init__(*args, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        used = list(getattr(namespace, _DEPRECATED_USED, []))
        used.append((option_string or self.option_strings[0], self.new_flag))
        setattr(namespace, _DEPRECATED_USED, used)
        self.inner(parser, namespace, values, option_string)


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


def add_config_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    config_cls: type,
    *,
    include: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    rename: Mapping[str, str] | None = None,
    aliases: Mapping[str, Iterable[str]] | None = None,
    hidden_aliases: Mapping[str, Iterable[str]] | None = None,
    help: Mapping[str, str] | None = None,  # noqa: A002 (the documented keyword)
    arg_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> list[str]:
    """Add one flag per field of the dataclass ``config_cls`` to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser or argument group
        Where the flags go (an argument group keeps them together in ``--help``).
    config_cls : type
        A ``@dataclass`` (``PretrainConfig``, ``FinetuneConfig``, ...).
    include : iterable of str, optional
        Only these fields (default: all).
    exclude : iterable of str
        Fields without a generated flag (the command sets them itself, or has its own flag).
    rename : mapping, optional
        ``{field: "flag-name"}``: the flag's name when it is not the field's (the ``dest``
        stays the field name).
    aliases, hidden_aliases : mapping, optional
        ``{field: ["--old", ...]}``: more spellings of the field's flag, shown or hidden.
        Hidden ones log a deprecation warning when used (see :func:`config_overrides`).
    help : mapping, optional
        ``{field: "text"}``: replaces the docstring's description.
    arg_kwargs : mapping, optional
        ``{field: {...}}``: ``add_argument`` keywords replacing the generated ones
        (``nargs``, ``const``, ``type``, ``choices``, ...).
    defaults : mapping, optional
        ``{field: value}``: the default shown in ``--help`` when the command's default is not
        the config's (the value itself still comes from the config).

    Returns
    -------
    list of str
        The fields that got a flag. Their ``dest`` is the field name and their argparse
        default :data:`argparse.SUPPRESS`, so an absent attribute means "not given".
    """
    rename, aliases, hidden = dict(rename or {}), dict(aliases or {}), dict(hidden_aliases or {})
    helps, extra_kw, shown = dict(help or {}), dict(arg_kwargs or {}), dict(defaults or {})
    wanted = None if include is None else set(include)
    skip = set(exclude)
    docs = field_docs(config_cls)
    hints = _hints(config_cls)
    deprecated: dict[str, str] = dict(getattr(config_cls, "_deprecated_fields", {}) or {})
    added: list[str] = []
    for f in _config_fields(config_cls):
        if (
            f.name.startswith("_")
            or f.name in skip
            or (wanted is not None and f.name not in wanted)
        ):
            continue
        hint = hints.get(f.name, Any)
        kw = argparse_kwargs(hint)
        kw.update(extra_kw.get(f.name, {}))
        default = shown.get(f.name, _field_default(f))
        _, optional = _split_optional(hint)
        doc = helps.get(f.name, f.metadata.get("help", docs.get(f.name, "")))
        if kw.get("action") is argparse.BooleanOptionalAction:
            kw["help"] = _help(doc, default, optional=False)
        else:
            kw.setdefault("help", _help(doc, default, optional=optional))
        names = [flag_name(rename.get(f.name, f.name)), *aliases.get(f.name, ())]
        action = parser.add_argument(*names, dest=f.name, default=argparse.SUPPRESS, **kw)
        if _takes_no_form(hint) and "nargs" not in extra_kw.get(f.name, {}):
            parser.add_argument(
                "--no-" + names[0][2:],
                dest=f.name,
                action="store_const",
                const=False,
                default=argparse.SUPPRESS,
                help=f"same as {names[0]} false",
            )
        for old in hidden.get(f.name, ()):
            _add_hidden_alias(parser, old, action)
        added.append(f.name)
        # A deprecated field name: a hidden flag passing the OLD name to the config, which
        # converts it (an old name is not always a pure rename: min_lr_ratio -> min_lr).
        for old in (o for o, new in deprecated.items() if new == f.name):
            if flag_name(old) not in _option_strings(parser):
                _add_hidden_alias(parser, flag_name(old), action, dest=old)
                added.append(old)
    # Groups share their parser's defaults, so the registry lands in the namespace either way.
    registry = dict(parser.get_default(_REGISTRY) or {})
    key = config_cls.__qualname__
    registry[key] = tuple(registry.get(key, ())) + tuple(added)
    parser.set_defaults(**{_REGISTRY: registry})
    return added


def _option_strings(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> set[str]:
    return set(parser._option_string_actions)  # shared by a parser and its groups


def _add_hidden_alias(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    flag: str,
    action: argparse.Action,
    *,
    dest: str | None = None,
) -> None:
    """A hidden ``flag`` doing what ``action`` does, into ``dest``.

    ``dest`` defaults to the action's; booleans get the ``--no-`` form too.
    """
    dest = dest or action.dest
    if isinstance(action, argparse.BooleanOptionalAction):
        for name, value, new in (
            (flag, True, action.option_strings[0]),
            ("--no-" + flag[2:], False, action.option_strings[-1]),
        ):
            parser.add_argument(
                name,
                dest=dest,
                nargs=0,
                action=_DeprecatedFlag,
                new_flag=new,
                inner=_ConstStore(dest, value),
                default=argparse.SUPPRESS,
                help=argparse.SUPPRESS,
            )
        return
    parser.add_argument(
        flag,
        dest=dest,
        nargs=action.nargs,
        const=action.const,
        type=action.type,
        choices=action.choices,
        metavar=action.metavar,
        action=_DeprecatedFlag,
        new_flag=action.option_strings[0],
        inner=_Store(dest),
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
    )


class _ConstStore:
    def __init__(self, dest: str, value: Any) -> None:
        self.dest, self.value = dest, value

    def __call__(
        self, parser: Any, namespace: argparse.Namespace, values: Any, option: Any
    ) -> None:
        setattr(namespace, self.dest, self.value)


class _Store:
    """Store an alias's values (argparse has already converted them) into ``dest``."""

    def __init__(self, dest: str) -> None:
        self.dest = dest

    def __call__(
        self, parser: Any, namespace: argparse.Namespace, values: Any, option: Any
    ) -> None:
        setattr(namespace, self.dest, values)


def add_precision_short_forms(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, dest: str = "precision"
) -> None:
    """``--bf16`` / ``--fp16``: short forms of ``--precision bf16|fp16`` (one of them)."""
    both = parser.add_mutually_exclusive_group()
    both.add_argument(
        "--bf16",
        dest=dest,
        action="store_const",
        const="bf16",
        default=argparse.SUPPRESS,
        help="short form of --precision bf16 (bf16 autocast, CPU and GPU)",
    )
    both.add_argument(
        "--fp16",
        dest=dest,
        action="store_const",
        const="fp16",
        default=argparse.SUPPRESS,
        help="short form of --precision fp16 (fp16 autocast + grad scaler, GPU)",
    )


def resume_arg_kwargs(config_cls: type) -> dict[str, Any]:
    """``arg_kwargs`` of a ``resume`` field: ``--resume [CKPT]``.

    ``--resume`` alone is "the newest checkpoint of the run folder" (``True`` for a
    ``bool | str`` field, ``"auto"`` for the earlier ``str | None``) and ``--resume CKPT``
    that file; a plain ``bool`` field keeps its ``--resume/--no-resume`` pair.
    """
    inner, _ = _split_optional(_hints(config_cls).get("resume", bool))
    if inner is bool:
        return {}
    if _takes_no_form(inner):
        return {"metavar": "CKPT"}
    return {"nargs": "?", "const": "auto", "metavar": "CKPT"}


def add_config_file_argument(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, config_cls: type
) -> None:
    """``--config FILE``: a JSON (or YAML) mapping of ``config_cls`` fields; flags override it."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=f"JSON or YAML file of {config_cls.__name__} fields (the defaults of the flags; "
        "explicit flags override it)",
    )


# ---------------------------------------------------------------------- reading the values


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


def _is_tuple(hint: Any) -> bool:
    inner, _ = _split_optional(hint)
    return typing.get_origin(inner) is tuple


def config_from_args(
    config_cls: type,
    args: argparse.Namespace,
    config_file: str | Path | None = None,
    *,
    base: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """Build ``config_cls`` from its defaults, ``base``, ``config_file``, flags and ``extra``.

    Later sources win, in that order.

    ``base`` is a starting point below the file (a recipe's settings); ``extra`` holds values
    the command derives itself (they win). Other keywords go to :func:`config_overrides`. A
    value the config refuses raises :class:`CLIError` with its message.
    """
    values = dict(base or {})
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
