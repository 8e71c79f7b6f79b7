"""The validation pair: ``TypeError`` for a wrong type, ``ValueError`` for a wrong value."""

from __future__ import annotations

import numpy as np
import pytest

from codebrain.utils.check import (
    check_callable,
    check_int,
    check_number,
    check_option,
    check_positive_int,
    check_type,
    check_value,
)


def test_check_type_names_the_argument_and_the_expected_type():
    assert check_type("x", 3, int) == 3
    with pytest.raises(TypeError, match=r"^n_chans must be an int, got str 'nineteen'\.$"):
        check_type("n_chans", "nineteen", int)
    with pytest.raises(TypeError, match=r"^flag must be a bool, got int 1\.$"):
        check_type("flag", 1, bool)
    with pytest.raises(TypeError, match="must be a number, got bool True"):
        check_type("sfreq", True, (int, float))  # a bool is not a number here
    assert check_type("flag", True, bool) is True
    with pytest.raises(TypeError, match=r"^x must be a list of names, got tuple"):
        check_type("x", ("a",), list, "a list of names")


def test_check_value_and_long_values_stay_one_line():
    assert check_value("x", 2, True, "> 0") == 2
    with pytest.raises(ValueError, match=r"^x must be > 0, got -1\.$"):
        check_value("x", -1, False, "> 0")
    with pytest.raises(ValueError) as info:
        check_value("x", "a" * 1000, False, "short")
    assert len(str(info.value)) < 120 and "\n" not in str(info.value)


@pytest.mark.parametrize("bad", [1.5, 2.0, 1e12, "3", True, None])
def test_check_int_wrong_type_is_a_type_error(bad):
    with pytest.raises(TypeError, match="n must be an int, got"):
        check_int("n", bad)
    with pytest.raises(TypeError, match="n must be an int, got"):
        check_positive_int("n", bad)


def test_check_int_wrong_value_is_a_value_error():
    assert check_int("n", 0, minimum=0) == 0
    with pytest.raises(ValueError, match=r"^n must be a positive int, got 0\.$"):
        check_int("n", 0)
    with pytest.raises(ValueError, match="n must be a non-negative int, got -1"):
        check_positive_int("n", -1, allow_zero=True)
    with pytest.raises(ValueError, match="n must be an int >= 3, got 2"):
        check_int("n", 2, minimum=3)
    with pytest.raises(TypeError):
        check_int("n", np.int64(3))
    assert check_int("n", np.int64(3), allow_numpy=True) == 3


def test_check_number():
    assert check_number("sfreq", 200, greater=0) == 200.0
    assert check_number("f", np.float32(2.5), minimum=0, maximum=3) == 2.5
    with pytest.raises(ValueError, match=r"^sfreq must be a finite number > 0 \(Hz\), got 0\.$"):
        check_number("sfreq", 0, greater=0, unit="Hz")
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match="must be a finite number"):
            check_number("x", bad)
    with pytest.raises(ValueError, match="must be a finite number >= 0 and <= 1, got 2"):
        check_number("p", 2, minimum=0, maximum=1)
    with pytest.raises(TypeError, match="x must be a number, got str '1'"):
        check_number("x", "1")


def test_check_option():
    assert check_option("mode", "a", ("a", "b")) == "a"
    with pytest.raises(ValueError, match=r"^mode must be one of \('a', 'b'\), got 'c'\.$"):
        check_option("mode", "c", ("a", "b"))
    with pytest.raises(ValueError, match="mode must be one of"):
        check_option("mode", ["a"], ("a", "b"))


def test_check_number_exclusive_upper_bound():
    assert check_number("dropout", 0, minimum=0, less=1) == 0.0
    assert check_number("dropout", 0.5, minimum=0, less=1) == 0.5
    with pytest.raises(
        ValueError, match=r"^dropout must be a finite number >= 0 and < 1, got 1\.$"
    ):
        check_number("dropout", 1, minimum=0, less=1)
    with pytest.raises(TypeError, match="dropout must be a number, got str"):
        check_number("dropout", "0.1", minimum=0, less=1)


def test_check_callable():
    assert check_callable("fn", len) is len
    assert check_callable("fn", None, allow_none=True) is None
    with pytest.raises(TypeError, match=r"^fn must be callable, got int 3\.$"):
        check_callable("fn", 3)
    with pytest.raises(TypeError, match=r"^fn must be callable, got NoneType None\.$"):
        check_callable("fn", None)
    with pytest.raises(TypeError, match=r"^fn must be callable or None, got str 'x'\.$"):
        check_callable("fn", "x", allow_none=True)
