"""A mixin for the JSON-able configuration dataclasses (tokenizer, preprocessing, training).

``to_dict`` gives plain JSON types (tuples become lists); ``from_dict`` is its strict inverse:
unknown keys raise ``ValueError`` naming them, and lists are turned back into tuples for fields
whose default is a tuple.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

__all__ = ["JSONConfig"]

C = TypeVar("C", bound="JSONConfig")


class JSONConfig:
    """``to_dict`` / ``from_dict`` for a ``@dataclass`` whose fields are JSON-able."""

    #: keys written by other tools that ``from_dict`` accepts and drops
    _ignored_keys: ClassVar[frozenset[str]] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of every field (tuples as lists)."""
        d = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls: type[C], d: Mapping[str, Any]) -> C:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(d) - set(fields) - cls._ignored_keys)
        if unknown:
            raise ValueError(
                f"Unknown {cls.__name__} fields {unknown}; expected a subset of {sorted(fields)}."
            )
        kwargs = {}
        for k, v in d.items():
            if k not in fields:
                continue
            if isinstance(v, list) and isinstance(fields[k].default, tuple):
                v = tuple(v)
            kwargs[k] = v
        return cls(**kwargs)
