"""parse_answer: every shape of model output gives a float or NaN, never an exception."""

import math

import pytest
from hypothesis import given, strategies as st

from homework.formats import format_answer, parse_answer
from homework.data import is_answer_valid

CASES = [
    ("<answer>22.97</answer>", 22.97),              # the trained format
    ("<answer>1,234.5</answer>", 1234.5),           # thousands separator
    ("<answer>1e3</answer>", 1000.0),               # exponent
    ("<answer>2.21e9</answer>", 2.21e9),
    ("<answer>-4.5</answer>", -4.5),                # negative
    ("<answer>.5</answer>", 0.5),                   # no leading zero
    ("<answer>7", 7.0),                             # missing close tag (generation cut short)
    ("<answer>12</answer> and then junk 99", 12.0),  # junk after the answer
    ("so 3 * 4 = 12. <answer> 12 </answer>", 12.0),  # reasoning before, spaces inside
    ("<answer>5</answer><answer>6</answer>", 5.0),  # first answer wins
    ("<answer>abc</answer>", math.nan),             # no number in the tag
    ("the answer is 12", math.nan),                 # no tag
    ("", math.nan),
    ("<answer></answer>", math.nan),
    ("<answer>1e999</answer>", math.inf),           # overflows to inf; is_answer_valid rejects it
]


@pytest.mark.parametrize("text,expected", CASES)
def test_parse_answer(text, expected):
    got = parse_answer(text)
    if math.isnan(expected):
        assert math.isnan(got), text
    else:
        assert got == expected, text


@given(st.text())
def test_never_raises(text):
    assert isinstance(parse_answer(text), float)


@given(st.floats(min_value=-1e15, max_value=1e15, allow_nan=False).filter(lambda x: abs(x) > 1e-12))
def test_format_then_parse_passes_the_check(x):
    # the trained answer format rounds, but never so far that the 5 % check fails
    assert is_answer_valid(parse_answer(format_answer(x)), x)
