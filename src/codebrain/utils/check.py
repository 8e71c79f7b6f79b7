"""Uniform argument validation (after MNE's ``_validate_type`` / ``_check_option``).

One pair does every check: :func:`check_type` raises ``TypeError`` for a value of the wrong
type, :func:`check_value` raises ``ValueError`` for a value of the right type that is out of
range; both say which argument was wrong and what was expected, in one line::

    n_chans must be an int, got str 'nineteen'.
    sfreq must be a finite number > 0 (Hz), got 0.0.

:func:`check_int`, :func:`check_positive_int`, :func:`check_number`, :func:`check_option` and
:func:`check_callable` are thin wrappers: the type check first, then the value check.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

__all__ = [
    "check_callable",
    "check_int",
    "check_number",
    "check_option",
    "check_positive_int",
    "check_type",
    "check_value",
]

_NAMES = {
    bool: "a bool",
    int: "an int",
    float: "a float",
    str: "a str",
    numbers.Integral: "an int",
    numbers.Real: "a number",
    type(None): "None",
}
_REPR_LIMIT = 80


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


def _describe(types: tuple[type, ...]) -> str:
    if set(types) in ({int, float}, {float, int}):
        return "a number"
    names = [_NAMES.get(t, f"a {t.__name__}") for t in types]
    return " or ".join(names)


def check_type(
    name: str,
    value: Any,
    types: type | tuple[type, ...],
    expected: str | None = None,
) -> Any:
    """Raise ``TypeError`` unless ``value`` is an instance of ``types``; return ``value``.

    A ``bool`` is not accepted as a number (``True`` is not an ``int`` here) unless ``bool``
    itself is among ``types``.

    Parameters
    ----------
    name : str
        The argument's name, as the caller knows it (``"n_chans"``, ``"PretrainConfig.steps"``).
    value : object
        The value to check.
    types : type or tuple of type
        Accepted types (``isinstance``).
    expected : str, optional
        What was expected, in words (default: from ``types``, e.g. ``"an int"``).

    Returns
    -------
    object
        ``value``, unchanged.

    Raises
    ------
    TypeError
        ``"{name} must be {expected}, got {type} {value!r}."``
    """
    types = types if isinstance(types, tuple) else (types,)
    is_bool_as_number = isinstance(value, bool) and bool not in types
    if is_bool_as_number or not isinstance(value, types):
        what = expected or _describe(types)
        raise TypeError(f"{name} must be {what}, got {type(value).__name__} {_show(value)}.")
    return value


def check_value(name: str, value: Any, ok: bool, expected: str) -> Any:
    """Raise ``ValueError`` unless ``ok``; return ``value``.

    Parameters
    ----------
    name : str
        The argument's name, as the caller knows it.
    value : object
        The value that was checked (shown in the message).
    ok : bool
        The outcome of the caller's check (``value > 0``, ``value in allowed`` ...).
    expected : str
        What was expected, in words (``"> 0"``, ``"below h_freq (40.0)"``).

    Returns
    -------
    object
        ``value``, unchanged.

    Raises
    ------
    ValueError
        ``"{name} must be {expected}, got {value!r}."``
    """
    if not ok:
        raise ValueError(f"{name} must be {expected}, got {_show(value)}.")
    return value


def check_option(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed``; return ``value``."""
    allowed = tuple(allowed)
    try:
        ok = value in allowed
    except TypeError:  # an unhashable or incomparable value is not an option either
        ok = False
    return check_value(name, value, ok, f"one of {allowed!r}")


def check_int(name: str, value: Any, *, minimum: int = 1, allow_numpy: bool = False) -> int:
    """Check that ``value`` is an int ``>= minimum``; return it as an ``int``.

    ``TypeError`` for a non-int (bools and floats such as ``2.0`` or ``1e12`` included; numpy
    integers pass only with ``allow_numpy=True``), ``ValueError`` below ``minimum``. The
    message says "a positive int" for ``minimum=1`` and "a non-negative int" for 0.
    """
    check_type(name, value, numbers.Integral if allow_numpy else int, "an int")
    what = {1: "a positive int", 0: "a non-negative int"}.get(minimum, f"an int >= {minimum}")
    check_value(name, value, value >= minimum, what)
    return int(value)


def check_positive_int(name: str, value: Any, *, allow_zero: bool = False) -> int:
    """``check_int`` with ``minimum=1`` (``0`` with ``allow_zero=True``); returns ``value``."""
    return check_int(name, value, minimum=0 if allow_zero else 1)


def check_number(
    name: str,
    value: Any,
    *,
    greater: float | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    less: float | None = None,
    unit: str | None = None,
) -> float:
    """Check that ``value`` is a finite real number within bounds; return it as a ``float``.

    Parameters
    ----------
    name : str
        The argument's name.
    value : object
        An ``int`` or ``float`` (numpy scalars too; not a ``bool``).
    greater : float, optional
        Exclusive lower bound (``greater=0``: "> 0").
    minimum, maximum : float, optional
        Inclusive bounds.
    less : float, optional
        Exclusive upper bound (``minimum=0, less=1``: ">= 0 and < 1", i.e. in [0, 1)).
    unit : str, optional
        Shown after the bounds, e.g. ``"Hz"``.

    Raises
    ------
    TypeError
        Not a real number.
    ValueError
        NaN, ±Inf, or outside the bounds.
    """
    check_type(name, value, numbers.Real, "a number")
    bounds = [f"> {greater:g}" if greater is not None else ""]
    bounds += [f">= {minimum:g}" if minimum is not None else ""]
    bounds += [f"<= {maximum:g}" if maximum is not None else ""]
    bounds += [f"< {less:g}" if less is not None else ""]
    what = " and ".join(b for b in bounds if b)
    expected = f"a finite number {what}".rstrip() + (f" ({unit})" if unit else "")
    v = float(value)
    ok = math.isfinite(v)
    ok = ok and (greater is None or v > greater) and (minimum is None or v >= minimum)
    ok = ok and (maximum is None or v <= maximum) and (less is None or v < less)
    check_value(name, value, ok, expected)
    return v


def check_callable(name: str, value: Any, *, allow_none: bool = False) -> Any:
    """Raise ``TypeError`` unless ``value`` is callable (or ``None`` with ``allow_none``).

    Returns ``value``, unchanged; the message reads ``"{name} must be callable[ or None], got
    {type} {value!r}."``.
    """
    if callable(value) or (allow_none and value is None):
        return value
    what = "callable or None" if allow_none else "callable"
    raise TypeError(f"{name} must be {what}, got {type(value).__name__} {_show(value)}.")
