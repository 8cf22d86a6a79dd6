"""The question generator: determinism, disjoint splits, and questions that parse back to their truth."""

import json
import random

import pytest
from hypothesis import given, settings, strategies as st

from homework.questions import HELD_OUT_TEMPLATES, HIGH, LOW, TEMPLATES, generate, make, make_question
from homework.units import parse_question


def is_wide(question: str) -> bool:
    """True when the question's quantity is not one of the course's whole numbers LOW..HIGH."""
    quantity = parse_question(question).quantity
    return not (quantity.is_integer() and LOW <= quantity <= HIGH)


def test_same_seed_same_bytes(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    make(str(a), n=200, seed=5, exclude_valid=False)
    make(str(b), n=200, seed=5, exclude_valid=False)
    assert a.read_bytes() == b.read_bytes()


def test_exclusion_keeps_splits_disjoint():
    valid = generate(300, seed=1)
    train = generate(2000, seed=2, exclude={q for q, _ in valid})
    assert not {q for q, _ in valid} & {q for q, _ in train}
    assert len({q for q, _ in train}) == len(train), "duplicate questions inside one split"


def test_shipped_splits_are_disjoint_and_sized():
    from homework.data import DATA_DIR

    valid = json.loads((DATA_DIR / "valid.json").read_text())
    train = json.loads((DATA_DIR / "train.json").read_text())
    assert len(valid) == len(train) == 1000
    assert not {q for q, _ in valid} & {q for q, _ in train}


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32), st.booleans(), st.booleans())
def test_question_parses_back_to_its_answer(seed, wide, held_out):
    templates = HELD_OUT_TEMPLATES if held_out else TEMPLATES
    question, answer = make_question(random.Random(seed), wide, templates=templates)
    conv = parse_question(question)
    assert conv.answer == pytest.approx(answer, rel=1e-6), question
    if not wide:
        assert conv.quantity in range(1, 11), question


@pytest.mark.parametrize("question, wide", [
    ("How many feet are in 7 meters?", False),
    ("How many feet are in 10 meters?", False),
    ("How many feet are in 1 meter?", False),
    ("How many feet are in 11 meters?", True),
    ("How many feet are in 2.5 meters?", True),
    ("What is 0.75 kg in pounds?", True),
    ("Convert 1,000 grams to kilograms.", True),
])
def test_is_wide_means_outside_the_whole_numbers_1_to_10(question, wide):
    assert is_wide(question) is wide


def test_shipped_validation_splits_are_in_and_beyond_1_to_10():
    from homework.data import DATA_DIR

    valid = json.loads((DATA_DIR / "valid.json").read_text())
    wide = json.loads((DATA_DIR / "valid_wide.json").read_text())
    assert not any(is_wide(q) for q, _ in valid)
    assert sum(is_wide(q) for q, _ in wide) > 0.9 * len(wide)  # a drawn 3.0 or 7.0 is in range


def _wording(templates):
    """A regex per template: the units and the quantity may be anything, the words around them may not."""
    import re

    def pattern(template):
        text = template[0].upper() + template[1:]
        return re.compile(re.escape(text).replace(r"\{q\}", ".+").replace(r"\{src\}", ".+")
                          .replace(r"\{dst\}", ".+") + "$")
    return [pattern(t) for t in templates]


def test_shipped_reworded_split_uses_only_wordings_no_training_row_has():
    from homework.data import DATA_DIR

    reworded = json.loads((DATA_DIR / "valid_reworded.json").read_text())
    assert len(reworded) == 1000 and not any(is_wide(q) for q, _ in reworded)
    train_like, held_out = _wording(TEMPLATES), _wording(HELD_OUT_TEMPLATES)
    for question, answer in reworded:
        assert any(p.match(question) for p in held_out), question
        assert not any(p.match(question) for p in train_like), question
        assert parse_question(question).answer == pytest.approx(answer, rel=1e-6), question
    used = {next(t for t, p in zip(HELD_OUT_TEMPLATES, held_out) if p.match(q)) for q, _ in reworded}
    assert used == set(HELD_OUT_TEMPLATES)
    # and the check itself can fail: a training-style question is caught
    question = generate(1, seed=9)[0][0]
    assert any(p.match(question) for p in train_like) and not any(p.match(question) for p in held_out)


def _dimension(question: str) -> str:
    from homework.units import BY_NAME

    return BY_NAME[parse_question(question).src].dimension


def test_balanced_covers_every_pair_of_the_chosen_dimensions():
    from collections import Counter

    from homework.units import BY_NAME, UNITS

    chosen = ("time", "volume")
    rows = generate(1200, seed=4, balanced=True, dimensions=chosen)
    wanted = {(a.name, b.name) for a in UNITS for b in UNITS
              if a is not b and a.dimension == b.dimension and a.dimension in chosen}
    pairs = Counter((parse_question(q).src, parse_question(q).dst) for q, _ in rows)
    assert set(pairs) == wanted  # every pair of the chosen dimensions, nothing else
    for dimension in chosen:  # each dimension's pairs evenly (the dimensions have 72 and 56 pairs)
        counts = [c for (src, _), c in pairs.items() if BY_NAME[src].dimension == dimension]
        assert min(counts) >= 2 and max(counts) <= 2 * min(counts) + 2, dimension
    share = sum(_dimension(q) == "time" for q, _ in rows) / len(rows)
    assert 0.4 < share < 0.6  # dimensions drawn evenly


def test_dimensions_need_balanced_and_known_names(tmp_path):
    with pytest.raises(ValueError, match="unknown: weight"):
        generate(10, seed=0, balanced=True, dimensions=("weight",))
    with pytest.raises(ValueError, match="balanced"):
        generate(10, seed=0, dimensions=("time",))
    out = tmp_path / "q.json"
    make(str(out), n=50, seed=0, balanced=True, dimensions="time, mass", exclude_valid=False)
    assert {_dimension(q) for q, _ in json.loads(out.read_text())} == {"time", "mass"}


def test_a_dimension_named_twice_is_drawn_twice_as_often():
    rows = generate(900, seed=6, balanced=True, dimensions=("time", "time", "volume"))
    share = sum(_dimension(q) == "time" for q, _ in rows) / len(rows)
    assert 0.6 < share < 0.73  # 2/3 expected


def test_make_command_reports_a_bad_dimension_in_one_line(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "q.json"
    proc = subprocess.run([sys.executable, "-m", "homework.questions", "make", str(out), "--n", "5", "--balanced",
                           "--dimensions", "weight"], capture_output=True, text=True)
    assert proc.returncode == 1 and not out.exists()
    assert proc.stderr.strip().splitlines() == [
        "error: dimensions must be some of time, length, mass, volume, speed, data and come with balanced; "
        "unknown: weight"]


def test_questions_write_fills_an_empty_folder_with_every_file_and_its_properties(tmp_path, monkeypatch):
    """What `write` makes is checked by its properties (sizes, true answers, disjoint splits), not against the
    committed bytes: those are pinned by hash in manifest.json (tests/test_manifest.py)."""
    from homework import datafiles

    monkeypatch.setattr(datafiles, "DATA_DIR", tmp_path)
    datafiles.write(n=200)
    files = {p.name: json.loads(p.read_text()) for p in tmp_path.iterdir()}
    assert sorted(files) == sorted(datafiles.GENERATED) == sorted(datafiles.data_files(n=10))
    for name, rows in files.items():
        assert len({q for q, _ in rows}) == len(rows), f"{name}: a question twice"
        for question, answer in rows:
            assert parse_question(question).answer == pytest.approx(answer, rel=1e-6), (name, question)
    assert not {q for q, _ in files["valid.json"]} & {q for q, _ in files["train.json"]}
    assert datafiles.write(n=200) == "every data file exists; nothing written"


@pytest.mark.parametrize("argv, message", [
    (["make", "data/valid.json", "--n=-1"], "error: n must be 1 or more, got -1"),
    (["make", "data/valid.json", "--n=0"], "error: n must be 1 or more, got 0"),
    (["make", "data/valid.json", "--n=5"], "error: refusing to change data/valid.json: it is a committed file pinned"),
    (["write", "--only", "valid.json"], "error: refusing to replace valid.json: they exist"),
    (["reword", "data/valid.json", "data/valid_wide.json"], "error: refusing to change data/valid_wide.json"),
])
def test_a_mistaken_option_never_touches_the_benchmark(argv, message):
    """One `error:` line, and the committed files are left as they were."""
    import subprocess
    import sys

    from homework import manifest

    proc = subprocess.run([sys.executable, "-m", "homework.questions", *argv], capture_output=True, text=True,
                          cwd=manifest.REPO)
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), proc.stderr
    assert manifest.mismatches() == []
