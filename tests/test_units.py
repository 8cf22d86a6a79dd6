"""The units registry: hand-checked truth, aliases, question parsing."""


import pytest
from hypothesis import given, strategies as st

from homework.units import BY_NAME, UNITS, UnitError, convert, factor, format_number, parse_question

# (quantity, src, dst, value worked out by hand from the conventions of docs/units.md)
TRUTH = [
    (7, "meter", "foot", 7 / 0.3048),                         # foot = 0.3048 m exactly
    (3, "kilogram", "pound", 3000 / 453.59237),               # pound = 453.59237 g
    (2, "pound", "ounce", 32),                                # ounce = pound / 16
    (1, "metric ton", "kilogram", 1000),                      # metric, not pint's short ton
    (1, "year", "day", 365.24219878125),                      # mean tropical year
    (1, "month", "day", 365.24219878125 / 12),                # month = year / 12
    (1, "century", "decade", 10),                             # pint's decade is logarithmic; ours is 10 years
    (2, "decade", "week", 20 * 365.24219878125 / 7),
    (3, "hour", "second", 10800),
    (1, "gallon", "pint", 8),                                 # US gallon = 8 US pints
    (1, "quart", "milliliter", 2 * 473.176473),
    (1, "pint", "fluid ounce", 16),
    (1, "liter", "cubic millimeter", 1e6),
    (1, "cubic meter", "liter", 1000),
    (5, "megabyte", "kilobyte", 5000),                        # decimal prefixes
    (1, "gigabyte", "bit", 8e9),                              # byte = 8 bits
    (10, "mile per hour", "meter per second", 4.4704),
    (36, "kilometer per hour", "meter per second", 10),
    (1, "foot per second", "inch per second", 12),
    (1, "mile", "yard", 1760),
    (1, "inch", "millimeter", 25.4),
]


@pytest.mark.parametrize("q,src,dst,expected", TRUTH)
def test_truth_table(q, src, dst, expected):
    assert convert(q, src, dst) == pytest.approx(expected, rel=1e-9), (src, dst)


PARSES = [
    ("How many feet are in 7 meters?", (7, "meter", "foot")),            # 'in' is a word here, not inches
    ("Convert 3 kg into pound.", (3, "kilogram", "pound")),
    ("How many ounces are in 2 pounds?", (2, "pound", "ounce")),         # ounce beside a mass: mass ounce
    ("How many ounces in 2 gallons?", (2, "gallon", "fluid ounce")),     # beside a volume: fluid ounce
    ("What is 5 MB in KB?", (5, "megabyte", "kilobyte")),
    ("Convert 3 ft to in", (3, "foot", "inch")),                         # trailing 'in' is inches
    ("How many m/s is 10 mph?", (10, "mile per hour", "meter per second")),
    ("What is 1,000 mL in liters?", (1000, "milliliter", "liter")),      # thousands separator
    ("Convert 2.5 cm^3 to mm^3.", (2.5, "milliliter", "cubic millimeter")),
    ("How many bits are in 4 B?", (4, "byte", "bit")),
    ("convert 4 h to s", (4, "hour", "second")),
    ("How many fluid ounces are in 3 US quarts?", (3, "quart", "fluid ounce")),
    ("How many metric tons is 2500 kg?", (2500, "kilogram", "metric ton")),
]


@pytest.mark.parametrize("text,expected", PARSES)
def test_parse_question(text, expected):
    c = parse_question(text)
    assert (c.quantity, c.src, c.dst) == expected


@pytest.mark.parametrize("text,reason", [
    ("hello there", "no number"),                        # nothing to convert
    ("How many feet in meters?", "no number"),
    ("Convert 7 to feet", "no known unit"),               # number without a unit
    ("Convert 7 parsecs to feet", "no known unit"),       # unknown unit
    ("7 meters to kg", "cannot convert"),                 # different dimensions
    ("What is 7 meters?", "no unit to convert into"),
])
def test_parse_question_errors(text, reason):
    with pytest.raises(UnitError, match=reason):
        parse_question(text)


def test_every_unit_has_a_dimension_and_positive_factor():
    for u in UNITS:
        assert factor(u.name, u.name) == pytest.approx(1.0), u.name


@given(st.sampled_from(UNITS), st.data())
def test_round_trip(unit, data):
    other = data.draw(st.sampled_from([u for u in UNITS if u.dimension == unit.dimension]))
    assert factor(unit.name, other.name) * factor(other.name, unit.name) == pytest.approx(1.0, rel=1e-12)


@given(st.sampled_from(UNITS), st.data(), st.integers(1, 1000))
def test_every_alias_parses_as_source(unit, data, q):
    form = data.draw(st.sampled_from(unit.forms))
    other = next(u for u in UNITS if u.dimension == unit.dimension and u is not unit)
    c = parse_question(f"How many {other.plural} are in {q} {form}?")
    # a shared spelling ('ounce') may name another unit of the same word; it must still be a valid reading
    assert c.quantity == q and (c.src == unit.name or form in BY_NAME[c.src].forms)


@given(st.floats(min_value=1e-12, max_value=1e12, allow_nan=False), st.integers(2, 6))
def test_format_number_keeps_relative_error_small(x, digits):
    # rounding to `digits` significant digits loses at most half a unit in the last place
    assert abs(float(format_number(x, digits)) - x) <= 0.5 * 10 ** (1 - digits) * x * 1.0000001
