"""Uniform argument validation (after MNE's ``_validate_type`` / ``_check_option``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["check_int", "check_option", "check_positive_int"]


def check_option(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed``; return ``value``."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"Invalid value for {name}: {value!r}; expected one of {allowed!r}.")
    return value


def check_int(name: str, value: Any, *, minimum: int = 1, allow_numpy: bool = False) -> int:
    """Raise ``ValueError`` unless ``value`` is an int ``>= minimum`` (bools are rejected).

    Numpy integers pass only with ``allow_numpy=True``. The message says "a positive int" for
    ``minimum=1`` and "a non-negative int" for 0.
    """
    import numbers

    int_types = numbers.Integral if allow_numpy else int
    if isinstance(value, bool) or not isinstance(value, int_types) or value < minimum:
        what = {1: "a positive int", 0: "a non-negative int"}.get(minimum, f"an int >= {minimum}")
        raise ValueError(f"{name} must be {what}, got {value!r}.")
    return int(value)


def check_positive_int(name: str, value: Any, *, allow_zero: bool = False) -> int:
    """Raise ``TypeError``/``ValueError`` unless ``value`` is a positive int; return it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r}).")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else ">= 1"
        raise ValueError(f"{name} must be {bound}, got {value}.")
    return value
