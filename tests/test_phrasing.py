"""Composed phrasings: seeded, read back right, varied, as people write, and held-out constructions kept out."""

import json
import random
import re
from pathlib import Path

import pytest

from homework import phrasing
from homework.questions import generate, save_rows
from homework.units import Conversion, parse_question

DATA = Path(__file__).resolve().parent.parent / "data"


def _construction_pattern(construction: str) -> re.Pattern:
    """A regex matching any question made from `construction`, whatever its units, quantity and wrapper."""
    parts = re.split(r"\{(?:q|src|dst)\}", construction)
    body = ".+?".join(re.escape(p) for p in parts)
    return re.compile(rf"^(?:.*?){body}(?:.*)$", re.IGNORECASE)


def test_composed_rows_are_byte_identical_for_a_seed(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    save_rows(generate(300, seed=5, balanced=True, composed=True), a)
    save_rows(generate(300, seed=5, balanced=True, composed=True), b)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != (save_rows(generate(300, seed=6, balanced=True, composed=True), tmp_path / "c.json")
                              .read_bytes())


def test_every_composed_question_reads_back_to_its_conversion():
    rng = random.Random(0)
    for conv in [Conversion(7.0, "meter", "foot"), Conversion(1.0, "pound", "ounce"), Conversion(3.0, "gallon", "fluid ounce"),
                 Conversion(2.5, "hour", "second"), Conversion(5.0, "megabyte", "bit"), Conversion(9.0, "mile per hour", "meter per second")]:
        for _ in range(40):
            assert parse_question(phrasing.compose(conv, rng)) == conv


def test_thousands_of_distinct_surface_forms_with_the_quantity_in_both_places():
    rows = generate(4000, seed=1, balanced=True, composed=True)
    shapes = {re.sub(r"\d+(\.\d+)?", "#", q.lower()) for q, _ in rows}
    assert len(shapes) > 2500, len(shapes)
    apart = sum(bool(re.search(r"[a-z]\W*\s\d+(\.\d+)?\W*(of them|please)?\W*$", q.lower())) for q, _ in rows)
    assert apart > 200, "the quantity after both units must be common in training rows"


def test_held_out_constructions_never_reach_training_rows():
    rows = generate(4000, seed=2, balanced=True, composed=True)
    for construction in phrasing.HELD_OUT_CONSTRUCTIONS:
        pattern = _construction_pattern(construction)
        assert not any(pattern.match(q) for q, _ in rows), construction
    assert not set(phrasing.HELD_OUT_CONSTRUCTIONS) & set(phrasing.CONSTRUCTIONS)


def test_valid_constructions_asks_the_validation_conversions_in_held_out_constructions_only():
    valid = json.loads((DATA / "valid.json").read_text())
    held = json.loads((DATA / "valid_constructions.json").read_text())
    assert [a for _, a in held] == [a for _, a in valid]
    patterns = [_construction_pattern(c) for c in phrasing.HELD_OUT_CONSTRUCTIONS]
    assert all(any(p.match(q) for p in patterns) for q, _ in held)
    assert all(parse_question(h) == parse_question(v) for (h, _), (v, _) in zip(held, valid))


def test_reword_keeps_answers_and_reasoning():
    rows = [["How many feet are in 7 meters?", 22.965879, "1 meter = 3.28 feet, so 7 meters = 7 * 3.28 = 23. <answer>23</answer>"],
            ["Convert 3 kg into pound.", 6.6138679, "some reasoning <answer>6.6</answer>"]]
    new = phrasing.reword(rows, seed=0)
    assert [r[1:] for r in new] == [r[1:] for r in rows]
    assert all(parse_question(n[0]) == parse_question(o[0]) for n, o in zip(new, rows))
    assert new == phrasing.reword(rows, seed=0) and [r[0] for r in new] != [r[0] for r in rows]


@pytest.mark.parametrize("q, unit, expected", [
    (7.0, "meters", {"7", "seven"}),
    (1.0, "meter", {"1", "one", "a"}),
    (1.0, "hour", {"1", "one", "an"}),        # "an hour"
    (1.0, "m", {"1", "one"}),                 # no article before a symbol
    (2.5, "meters", {"2.5"}),
    (2500.0, "meters", {"2500", "2,500"}),    # thousands with a comma, as people write them
    (15.0, "feet", {"15", "fifteen"}),
])
def test_quantity_forms(q, unit, expected):
    rng = random.Random(0)
    assert {phrasing.quantity_form(q, unit, rng) for _ in range(600)} == expected
    assert {phrasing.quantity_form(q, unit, rng, natural=True) for _ in range(200)} == expected


@pytest.mark.parametrize("q, name, expected", [
    (0.5, "inch", {("0.5", "inches"), ("half an", "inch")}),   # "half" takes the singular
    (0.5, "hour", {("0.5", "hours"), ("half an", "hour")}),
    (0.5, "mile", {("0.5", "miles"), ("half a", "mile")}),
])
def test_half_takes_the_singular_unit(q, name, expected):
    rng = random.Random(0)
    plural = phrasing.BY_NAME[name].plural
    forms = {phrasing.spelled(q, plural, rng, True, name)[0] for _ in range(300)}
    assert forms == expected
    assert phrasing.spelled(q, plural, random.Random(1), True, name)[-1] == ("0.5", plural), "digits last"

def test_natural_questions_read_back_and_vary():
    rng = random.Random(3)
    convs = [Conversion(1.0, "gallon", "pint"), Conversion(0.5, "day", "hour"), Conversion(3.0, "foot", "inch"),
             Conversion(2500.0, "meter", "mile"), Conversion(23.0, "kilogram", "pound")]
    texts = [phrasing.compose(c, rng, natural=True) for c in convs for _ in range(30)]
    assert all(parse_question(t) == c for t, c in zip(texts, [c for c in convs for _ in range(30)]))
    lowered = [t.lower() for t in texts]
    assert any("a gallon" in t or "one gallon" in t for t in lowered)
    assert any("half a day" in t for t in lowered)
    assert any("three f" in t for t in lowered)
    assert any("2,500" in t for t in lowered)
    assert any(t.startswith(c.lower()) for t in lowered for c in phrasing.CONTEXTS)
