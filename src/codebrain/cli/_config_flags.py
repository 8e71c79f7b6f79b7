"""Adding one flag per field of a config dataclass to a parser (:func:`add_config_arguments`).

Every generated flag has the argparse default :data:`argparse.SUPPRESS`: a flag that was not
given leaves no attribute, and the config classes that registered flags are listed in the
namespace, so :func:`codebrain.cli._config_file.config_overrides` can tell "given" from "left
at the default". Old field names in a config's ``_deprecated_fields`` become hidden flags that
still work and are remembered for a deprecation warning.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from typing import Any

from codebrain.cli._config_help import _help, field_docs
from codebrain.cli._config_types import (
    _config_fields,
    _field_default,
    _hints,
    _split_optional,
    _takes_no_form,
    argparse_kwargs,
)

__all__ = [
    "add_config_arguments",
    "add_config_file_argument",
    "add_precision_short_forms",
    "resume_arg_kwargs",
    "flag_name",
]

#: namespace attribute listing the dests each config class registered
_REGISTRY = "_config_dests"
#: namespace attribute listing the deprecated flags that were used
_DEPRECATED_USED = "_deprecated_flags_used"


def flag_name(field: str) -> str:
    """``"warmup_steps"`` -> ``"--warmup-steps"``."""
    return "--" + field.replace("_", "-")


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


def add_config_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    config_cls: type,
    *,
    include: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    rename: Mapping[str, str] | None = None,
    aliases: Mapping[str, Iterable[str]] | None = None,
    hidden_aliases: Mapping[str, Iterable[str]] | None = None,
    help: Mapping[str, str] | None = None,  # shadows the builtin: the documented keyword
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
