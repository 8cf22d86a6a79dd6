"""The question families the shipped recipes train on (both units first, two names of one unit, decimal
quantities): drawn at their shares, read back right, and held out in wordings no training row uses."""

import json
import re
from pathlib import Path

import pytest

from homework import phrasing, questions, rft, sft
from homework.units import parse_question

DATA = Path(__file__).resolve().parent.parent / "data"
FAMILY_FILES = ("valid_units_first.json", "valid_same_unit.json", "valid_decimal.json")


def _pattern(construction: str) -> re.Pattern:
    """Any question made from `construction`, whatever its units, quantity, wrapper and case."""
    body = ".+?".join(re.escape(p) for p in re.split(r"\{(?:q|src|dst)\}", construction))
    return re.compile(rf"^.*?{body}.*$", re.IGNORECASE)


UNITS_FIRST = [_pattern(c) for c in phrasing.UNITS_FIRST]


def _units_first(question: str) -> bool:
    return any(p.match(question) for p in UNITS_FIRST)


@pytest.fixture(scope="module")
def sft_rows():
    return sft.training_rows(sft.SFTConfig(n_rows=3000))


def test_default_sft_rows_hold_each_family_at_its_share(sft_rows):
    convs = [parse_question(q) for q, _ in sft_rows]
    decimal = sum(not c.quantity.is_integer() for c in convs) / len(convs)
    same = sum(c.src == c.dst for c in convs) / len(convs)
    first = sum(_units_first(q) for q, _ in sft_rows) / len(sft_rows)
    assert abs(decimal - sft.SFTConfig.decimals) < 0.025, decimal
    assert abs(same - sft.SFTConfig.same_unit) < 0.012, same
    assert 0.05 < first < 0.2, f"units-first rows: {first:.3f}"  # half the rows composed, 10 of 48 constructions
    for (question, answer), conv in zip(sft_rows, convs):
        assert answer == pytest.approx(conv.answer, rel=1e-6), question


def test_a_same_unit_row_writes_two_different_names(sft_rows):
    same = [q for q, _ in sft_rows if parse_question(q).src == parse_question(q).dst]
    assert same
    for question in same:
        conv = parse_question(question)
        forms = [f for f in questions.BY_NAME[conv.src].forms if re.search(rf"(?<![\w/^*]){re.escape(f)}(?![\w/^*])",
                                                                          question, re.IGNORECASE)]
        assert len({f.lower() for f in forms}) >= 2, question


def test_held_out_family_wordings_never_reach_training_rows(sft_rows):
    assert not set(phrasing.HELD_OUT_UNITS_FIRST) & set(phrasing.TRAINING_CONSTRUCTIONS)
    held = phrasing.HELD_OUT_UNITS_FIRST + questions.SAME_UNIT_CONSTRUCTIONS + questions.DECIMAL_TEMPLATES
    for construction in held:
        pattern = _pattern(construction)
        assert not any(pattern.match(q) for q, _ in sft_rows), construction
    held_questions = questions.held_out_questions()
    assert not held_questions & {q for q, _ in sft_rows}, "a held-out question in the training rows"


@pytest.mark.parametrize("name", FAMILY_FILES)
def test_family_files_read_back_to_their_answers(name):
    rows = json.loads((DATA / name).read_text())
    assert len(rows) >= 200 and len({q for q, _ in rows}) == len(rows)
    for question, answer in rows:
        assert answer == pytest.approx(parse_question(question).answer, rel=1e-6), question


def test_family_files_are_their_family_only():
    first = json.loads((DATA / "valid_units_first.json").read_text())
    patterns = [_pattern(c) for c in phrasing.HELD_OUT_UNITS_FIRST]
    assert all(any(p.match(q) for p in patterns) for q, _ in first)
    same = json.loads((DATA / "valid_same_unit.json").read_text())
    assert all(parse_question(q).src == parse_question(q).dst for q, _ in same)
    decimal = json.loads((DATA / "valid_decimal.json").read_text())
    assert all(not parse_question(q).quantity.is_integer() and parse_question(q).quantity < 10 for q, _ in decimal)


def test_family_files_regenerate_byte_for_byte(tmp_path):
    for name, rows in questions.family_files().items():
        path = questions.save_rows(rows, tmp_path / name)
        assert path.read_bytes() == (DATA / name).read_bytes(), f"{name} is not what `questions write` makes"


def test_shares_of_zero_draw_what_they_drew_before():
    """The older data files and recipes stay byte-identical: a share of 0 consumes no random draw."""
    plain = questions.generate(300, seed=3, balanced=True, composed=True)
    zero = questions.generate(300, seed=3, balanced=True, composed=True, decimals=0.0, same_unit=0.0)
    assert plain == zero


def test_rft_rewords_its_share_and_keeps_the_reasoning(tmp_path):
    rows = json.loads((DATA / "rft.json").read_text())[:400]
    data = tmp_path / "rows.json"
    data.write_text(json.dumps(rows))
    out = rft.training_rows(rft.RFTConfig(data=str(data), reword=0.5))
    assert out == rft.training_rows(rft.RFTConfig(data=str(data), reword=0.5)), "seeded"
    changed = sum(a[0] != b[0] for a, b in zip(rows, out))
    assert 150 < changed < 250, changed
    for before, after in zip(rows, out):
        assert after[1:] == before[1:], "answer and reasoning stay as sampled"
        assert parse_question(after[0]) == parse_question(before[0])
    assert rft.training_rows(rft.RFTConfig(data=str(data), reword=0.0)) == rows
    with pytest.raises(ValueError, match="reword"):
        rft.training_rows(rft.RFTConfig(data=str(data), reword=1.5))
