"""The question families the shipped recipes train on (both units first, two names of one unit, decimal
quantities): drawn at their shares, read back right, and held out in wordings no training row uses."""

import json
import re
from pathlib import Path

import pytest

from homework import datafiles, phrasing, questions, rft, sft
from homework.units import parse_question

DATA = Path(__file__).resolve().parent.parent / "data"
FAMILY_FILES = ("valid_units_first.json", "valid_same_unit.json", "valid_decimal.json", "valid_natural.json")


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
    assert not set(phrasing.HELD_OUT_UNITS_FIRST) & set(phrasing.CONSTRUCTIONS)
    held = (phrasing.HELD_OUT_UNITS_FIRST + datafiles.SAME_UNIT_CONSTRUCTIONS + datafiles.DECIMAL_TEMPLATES
            + tuple(c for cs in phrasing.HELD_OUT_STORIES.values() for c in cs))
    for construction in held:
        pattern = _pattern(construction)
        assert not any(pattern.match(q) for q, _ in sft_rows), construction
    for context in phrasing.HELD_OUT_CONTEXTS:
        assert not any(context.lower() in q.lower() for q, _ in sft_rows), context
    held_questions = datafiles.held_out_questions()
    assert not held_questions & {q for q, _ in sft_rows}, "a held-out question in the training rows"


def test_sft_rows_ask_as_people_write(sft_rows):
    """Articles, number words, "half a", a sentence of context first: each in the training rows."""
    text = [q.lower() for q, _ in sft_rows]
    assert sum(bool(re.search(r"\b(a|an|one) (?!box)[a-z]", q.lower())) and parse_question(q).quantity == 1
               for q, _ in sft_rows) > 30
    assert sum("half a" in q for q in text) > 10
    assert sum(any(re.search(rf"\b{w}\b", q) for w in phrasing.WORDS[2:11]) for q in text) > 30
    assert sum(any(c.lower() in q for c in phrasing.CONTEXTS) for q in text) > 30


def test_a_new_held_out_file_changes_no_training_row(tmp_path, monkeypatch):
    """SFT's rows exclude the files its config names, not whatever data/ holds."""
    before = sft.training_rows(sft.SFTConfig(n_rows=300))
    for name in datafiles.HELD_OUT_FILES:
        (tmp_path / name).write_bytes((DATA / name).read_bytes())
    (tmp_path / "valid_zz_new_family.json").write_text(json.dumps(before[:50]))
    monkeypatch.setattr(datafiles, "DATA_DIR", tmp_path)
    monkeypatch.setattr(datafiles, "HELD_OUT_FILES", datafiles.HELD_OUT_FILES + ("valid_zz_new_family.json",))
    assert sft.training_rows(sft.SFTConfig(n_rows=300)) == before
    assert datafiles.held_out_questions() >= {q for q, _ in before[:50]}, "the new file is held out of the others"


def test_each_family_draws_from_its_own_generator(monkeypatch):
    """Adding a family (or changing one) changes no other family's file."""
    files = datafiles.family_files(n=40)
    monkeypatch.setattr(datafiles, "_decimal", lambda n, seed: [["How many feet are in 2.5 meters?", 8.2020997]])
    changed = datafiles.family_files(n=40)
    assert changed["valid_decimal.json"] != files["valid_decimal.json"]
    for name in ("valid_units_first.json", "valid_same_unit.json", "valid_natural.json"):
        assert changed[name] == files[name], name


def test_valid_natural_asks_the_natural_forms_in_held_out_wordings_only():
    rows = json.loads((DATA / "valid_natural.json").read_text())
    convs = [parse_question(q) for q, _ in rows]
    small = sum(c.quantity <= 10 for c in convs) / len(rows)
    assert 0.65 < small < 0.85, small
    assert any("," in q and c.quantity >= 1000 for (q, _), c in zip(rows, convs)), "thousands with a comma"
    assert any(re.search(r"\bhalf an? ", q.lower()) for q, _ in rows)
    assert sum(any(c.lower() in q.lower() for c in phrasing.HELD_OUT_CONTEXTS) for q, _ in rows) > 20
    held = phrasing.HELD_OUT_CONSTRUCTIONS + tuple(c for cs in phrasing.HELD_OUT_STORIES.values() for c in cs)
    patterns = [_pattern(c) for c in held]
    assert all(any(p.match(q) for p in patterns) for q, _ in rows)


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
