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

The pieces live in their own modules: :mod:`~codebrain.cli._config_types` (hints as argparse
types and value checks), :mod:`~codebrain.cli._config_help` (help text from the docstring),
:mod:`~codebrain.cli._config_flags` (adding the flags) and :mod:`~codebrain.cli._config_file`
(``--config FILE`` and the given flags into a config); this module gathers them under one name.
"""

from __future__ import annotations

from codebrain.cli._config_file import (
    build_config,
    config_file_error,
    config_from_args,
    config_overrides,
    load_config_file,
)
from codebrain.cli._config_flags import (
    add_config_arguments,
    add_config_file_argument,
    add_precision_short_forms,
    flag_name,
    resume_arg_kwargs,
)
from codebrain.cli._config_help import field_docs
from codebrain.cli._config_types import argparse_kwargs, coerce_value, describe_type

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
    "argparse_kwargs",
    "build_config",
    "config_file_error",
    "coerce_value",
    "describe_type",
]
