"""Question generator: unit-conversion questions in many phrasings, with true answers from the units registry.

Writes the course-format data files (a JSON list of [question, answer]) deterministically from a seed:

    python -m homework.questions write   # data/valid.json, valid_wide.json, valid_reworded.json, train.json
    python -m homework.questions make data/big.json --n 20000 --seed 3
    python -m homework.questions make data/valid_wide.json --n 1000 --seed 11 --wide   # quantities beyond 1..10
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

from . import phrasing
from .units import BY_NAME, DIMENSIONS, UNITS, Conversion, UnitError, parse_question, parse_strict

DATA_DIR = Path(__file__).resolve().parent.parent / "data"

# {q} quantity, {src} source unit as written, {dst} target unit as written.
TEMPLATES = (
    "How many {dst} are in {q} {src}?",
    "How many {dst} are there in {q} {src}?",
    "How many {dst} is {q} {src}?",
    "How many {dst} in {q} {src}?",
    "Convert {q} {src} to {dst}.",
    "Convert {q} {src} into {dst}.",
    "Please convert {q} {src} to {dst}.",
    "What is {q} {src} in {dst}?",
    "What is {q} {src} expressed in {dst}?",
    "What's {q} {src} in {dst}?",
    "How much is {q} {src} in {dst}?",
    "Express {q} {src} in {dst}.",
    "{q} {src} equals how many {dst}?",
    "{q} {src} is how many {dst}?",
    "If I have {q} {src}, how many {dst} is that?",
    "Could you tell me how many {dst} there are in {q} {src}?",
    "I need {q} {src} in {dst}. What do I get?",
    "Change {q} {src} into {dst}.",
    "Give the number of {dst} in {q} {src}.",
    "What does {q} {src} come to in {dst}?",
    "Turn {q} {src} into {dst}, please.",
    "{q} {src} to {dst}?",
    "Tell me what {q} {src} is in {dst}.",
    "Find how many {dst} make up {q} {src}.",
    "A box holds {q} {src}. How many {dst} is that?",
)
# Wordings no training row uses: data/valid_reworded.json asks the validation conversions in these, to see
# whether a model answers the question or fits our phrasings (people outside the project word things their way).
HELD_OUT_TEMPLATES = (
    "I have {q} {src}. What is that in {dst}?",
    "How many {dst} does {q} {src} make?",
    "Can you convert {q} {src} into {dst} for me?",
    "What would {q} {src} be in {dst}?",
    "Quick question: {q} {src} in {dst}?",
    "Calculate the number of {dst} in {q} {src}.",
    "How many {dst} would I get from {q} {src}?",
    "Please tell me {q} {src} in {dst}.",
    "Work out {q} {src} in {dst}.",
    "{q} {src} - how many {dst}?",
    "Roughly how many {dst} are in {q} {src}?",
    "what do {q} {src} make in {dst}",
)


def _form(unit_name: str, quantity: float, rng: random.Random) -> str:
    unit = BY_NAME[unit_name]
    if rng.random() < 0.65:
        return unit.name if quantity == 1 else unit.plural
    # Plain "ounce" is a fluid ounce only beside a volume, so it is a fine spelling there and only there.
    return rng.choice(unit.aliases or (unit.plural,))


LOW, HIGH = 1, 10  # the course's quantities: the whole numbers LOW..HIGH; wide ones lie beyond


def _quantity(rng: random.Random, wide: bool) -> float:
    if not wide:
        return float(rng.randint(LOW, HIGH))
    kind = rng.random()
    if kind < 0.35:
        return rng.choice([0.25, 0.5, 0.75, 1.5, 2.5, 3.5, 4.5, 7.5, 0.1, 0.2])
    if kind < 0.6:
        return round(rng.uniform(0.1, 20), 1)
    return float(rng.randint(11, 1000))


def decimal_quantity(rng: random.Random) -> float:
    """A half (0.5, 2.5, ... 9.5) or, as often, a tenth (0.1 ... 9.9) that is not a half or whole: 0.1 to 10."""
    if rng.random() < 0.5:
        return rng.randint(0, 9) + 0.5
    return rng.choice([t / 10 for t in range(1, 100) if t % 5])


# Units with more than one name, asked from one name to another ("9 ml in cc", "3 h in hours"): the factor is 1.
# An alias that another unit also has ("oz": ounce or fluid ounce) does not name one unit, so it is no synonym.
SYNONYM_UNITS = tuple(u.name for u in UNITS
                      if any(all(a not in v.forms for v in UNITS if v is not u) for a in u.aliases))


def _write_quantity(q: float) -> str:
    return f"{q:g}" if q < 1e6 else f"{q:,.0f}"


def _pair(rng: random.Random) -> tuple[str, str]:
    dimension = rng.choice(DIMENSIONS)
    src, dst = rng.sample([u.name for u in UNITS if u.dimension == dimension], 2)
    return src, dst


def all_conversions() -> list[Conversion]:
    """Every (source, target, quantity 1..10) the course-style data can ask: 244 unit pairs x 10."""
    return [Conversion(float(q), a.name, b.name) for a in UNITS for b in UNITS
            if a is not b and a.dimension == b.dimension for q in range(LOW, HIGH + 1)]


def make_question(rng: random.Random, wide: bool = False, conv: Conversion | None = None,
                  templates: tuple[str, ...] = TEMPLATES) -> tuple[str, float]:
    """One (question, answer) pair; the question always parses back to the conversion it was made from.

    Without `conv`, a dimension, a unit pair and a quantity are drawn at random; `templates` are the wordings.
    """
    while True:
        src, dst = (conv.src, conv.dst) if conv else _pair(rng)
        q = conv.quantity if conv and not wide else _quantity(rng, wide)  # wide: the pair from conv, a wide quantity
        text = rng.choice(templates).format(
            q=_write_quantity(q), src=_form(src, q, rng), dst=_form(dst, 2, rng))
        text = text[0].upper() + text[1:]
        try:
            if parse_strict(text) == Conversion(q, src, dst) == parse_question(text):
                return text, float(f"{Conversion(q, src, dst).answer:.8g}")
        except UnitError:
            pass  # a spelling that reads ambiguously in this template: draw again


def generate(n: int, seed: int, wide: bool = False, exclude: set[str] = frozenset(),
             balanced: bool = False, dimensions: tuple[str, ...] = (),
             templates: tuple[str, ...] = TEMPLATES, composed: bool | float = False,
             constructions: tuple[str, ...] = phrasing.CONSTRUCTIONS, decimals: float = 0.0,
             same_unit: float = 0.0) -> list[list]:
    """n distinct (question, answer) rows.

    composed: phrase each question from parts (`homework.phrasing`, from `constructions`) instead of filling
        one of `templates`; a share between 0 and 1 phrases that share of the rows so, the rest from templates.
    decimals: with balanced, the share of rows whose quantity is a half or a tenth between 0.5 and 10 (2.5, 0.7)
        instead of a whole number.
    same_unit: the share of rows converting between two names of one unit ("9 ml in cc"), always composed; the
        unit is drawn over every unit with two names (SYNONYM_UNITS), whatever `dimensions` says.
    Shares of 0 draw nothing extra, so the committed data files stay byte-identical.

    balanced: draw the dimension at random as usual, then cycle through that dimension's unit pairs and
    quantities 1..10 in shuffled passes, so no conversion is left with few or no rows by chance.
    dimensions: with balanced, draw only these dimensions (e.g. the ones a model gets wrong most); a name
        given twice is drawn twice as often.
    """
    unknown = set(dimensions) - set(DIMENSIONS)
    if unknown or (dimensions and not balanced):
        raise ValueError(f"dimensions must be some of {', '.join(DIMENSIONS)} and come with balanced"
                         + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else ""))
    rng = random.Random(seed)
    rows, seen = [], set(exclude)
    pools: dict[str, list[Conversion]] = {d: [] for d in DIMENSIONS}
    while len(rows) < n:
        conv = None
        if balanced:
            dimension = rng.choice(dimensions or DIMENSIONS)
            pool = pools[dimension]
            if not pool:
                pool.extend(c for c in all_conversions() if BY_NAME[c.src].dimension == dimension)
                rng.shuffle(pool)
            conv = pool.pop()
            if decimals and rng.random() < decimals:
                conv = Conversion(decimal_quantity(rng), conv.src, conv.dst)
        varied = bool(decimals or same_unit or 0 < composed < 1)  # the shipped recipe's draws; 0: the old ones
        if same_unit and rng.random() < same_unit:
            unit = rng.choice(SYNONYM_UNITS)
            conv = Conversion(conv.quantity if conv else float(rng.randint(LOW, HIGH)), unit, unit)
        for _ in range(20):  # a few redraws of the wording if this one is taken
            as_composed = composed >= 1 or (0 < composed and rng.random() < composed) or (conv and conv.src == conv.dst)
            if as_composed:
                draw = conv or Conversion(0.0, *_pair(rng))
                draw = Conversion(_quantity(rng, wide) if wide or not conv else conv.quantity, draw.src, draw.dst)
                question = phrasing.compose(draw, rng, constructions, varied)
                answer = float(f"{draw.answer:.8g}")
            else:
                question, answer = make_question(rng, wide, conv, templates)
            if question not in seen:
                seen.add(question)
                rows.append([question, answer])
                break
    return rows


def save_rows(rows: list, path: str | Path) -> Path:
    """Write JSON atomically (beside, then rename): an interrupted write never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(rows, indent=1) + "\n")
    os.replace(tmp, path)
    return path


# Never a training question: the validation files and the question-family files (`family_files`).
HELD_OUT_FILES = ("valid.json", "valid_wide.json", "people.json", "valid_constructions.json",
                  "valid_units_first.json", "valid_same_unit.json", "valid_decimal.json")


def held_out_questions(skip: Path | None = None) -> set[str]:
    """Every question of the held-out files present in data/ (but `skip`, the file being written)."""
    out = set()
    for name in HELD_OUT_FILES:
        path = DATA_DIR / name
        if path.exists() and (skip is None or path.resolve() != skip.resolve()):
            out |= {row[0] for row in json.loads(path.read_text())}
    return out


def make(path: str, n: int = 1000, seed: int = 0, wide: bool = False, exclude_valid: bool = True,
         balanced: bool = False, dimensions: str | tuple[str, ...] = (), composed: float = 0.0,
         units_first: bool = False, decimals: float = 0.0, same_unit: float = 0.0) -> str:
    """Write `n` generated questions to `path`.

    Args:
        path: output JSON file.
        n: number of rows.
        seed: random seed; the same seed gives a byte-identical file.
        wide: quantities beyond 1..10 (decimals like 2.5 or 0.75, whole numbers up to 1000).
        exclude_valid: never emit a question that is in data/valid.json or data/valid_wide.json.
        balanced: every unit pair (and, unless wide, quantity 1..10) equally often, instead of random draws.
        dimensions: with balanced, only these dimensions, comma-separated (e.g. time,length,volume); a name
            given twice is drawn twice as often (time,time,length: two time questions for each length one).
        composed: phrase questions from parts (homework/phrasing.py) instead of the 25 templates; a share
            between 0 and 1 phrases that share so, the rest from the templates.
        units_first: composed questions may also name both units before the quantity
            (phrasing.TRAINING_CONSTRUCTIONS, as the shipped SFT recipe draws them).
        decimals: with balanced, the share of rows with a half or tenth quantity (0.1 to 9.9).
        same_unit: the share of rows between two names of one unit ("9 ml in cc"), always composed.
    """
    from .cli import comma_list

    dimensions = comma_list(dimensions)
    exclude = held_out_questions(skip=Path(path)) if exclude_valid else set()
    constructions = phrasing.TRAINING_CONSTRUCTIONS if units_first else phrasing.CONSTRUCTIONS
    out = save_rows(generate(n, seed, wide, exclude, balanced, tuple(dimensions), composed=composed,
                             constructions=constructions, decimals=decimals, same_unit=same_unit), path)
    return f"wrote {n} rows to {out}"


# The held-out constructions that are no training template: "what does {q} {src} come to in {dst}" is held out
# of composed rows, and so of data/valid_constructions.json, but it is also one of the 25 TEMPLATES.
SAME_UNIT_CONSTRUCTIONS = tuple(c for c in phrasing.HELD_OUT_CONSTRUCTIONS
                                if c not in {t.lower().rstrip("?.") for t in TEMPLATES})
# The held-out templates that no composed row can write: a wrapper and a construction make "Quick question: 5 kg
# in lb?" and "Please tell me 10 mi in feet." too, so those two are no held-out wording for a composed-trained model.
DECIMAL_TEMPLATES = tuple(t for t in HELD_OUT_TEMPLATES if not any(
    t.lower().rstrip("?.") == (before + c + after).lower()
    for before, after in phrasing.WRAPPERS for c in phrasing.TRAINING_CONSTRUCTIONS))
FAMILY_ROWS = 400  # rows of each question-family file: a 0.95 accuracy within about +-0.011 (one s.e.)


def family_files(n: int = FAMILY_ROWS, seed: int = 6) -> dict[str, list]:
    """The held-out question families, each asked only in wordings no training row uses.

    valid_units_first: both units before the quantity ("the {src} to {dst} conversion of {q} units"), in
        phrasing.HELD_OUT_UNITS_FIRST; valid_same_unit: two names of one unit ("9 ml in cc"), quantities 1..10,
        in those of phrasing.HELD_OUT_CONSTRUCTIONS that are no training template; valid_decimal: halves and tenths from 0.1 to 9.9 in DECIMAL_TEMPLATES.
    """
    rng = random.Random(seed)
    units_first = phrasing.reword(generate(n, seed), seed, phrasing.HELD_OUT_UNITS_FIRST, varied=True)
    same = [[Conversion(float(rng.randint(LOW, HIGH)), u, u), None] for u in
            (rng.choice(SYNONYM_UNITS) for _ in range(n // 2))]
    same_unit = [[phrasing.compose(c, rng, SAME_UNIT_CONSTRUCTIONS, varied=True), c.quantity] for c, _ in same]
    decimal = []
    while len(decimal) < n:
        src, dst = _pair(rng)
        question, answer = make_question(rng, conv=Conversion(decimal_quantity(rng), src, dst),
                                         templates=DECIMAL_TEMPLATES)
        if question not in {q for q, _ in decimal}:
            decimal.append([question, answer])
    return {"valid_units_first.json": units_first, "valid_same_unit.json": same_unit, "valid_decimal.json": decimal}


def write(n: int = 1000, valid_seed: int = 1, train_seed: int = 2, wide_seed: int = 3,
          reworded_seed: int = 4, constructions_seed: int = 5, family_seed: int = 6) -> str:
    """Write data/valid.json, valid_wide.json, valid_reworded.json, valid_constructions.json, train.json and
    the question-family files valid_units_first.json, valid_same_unit.json, valid_decimal.json.

    train shares no question with valid; valid_reworded asks quantities 1..10 in HELD_OUT_TEMPLATES only;
    valid_constructions asks the conversions of valid.json in phrasing.HELD_OUT_CONSTRUCTIONS only; the family
    files are `family_files`.

    Args:
        n: rows per file.
        valid_seed: seed of data/valid.json.
        train_seed: seed of data/train.json.
        wide_seed: seed of data/valid_wide.json.
        reworded_seed: seed of data/valid_reworded.json.
        constructions_seed: seed of data/valid_constructions.json.
        family_seed: seed of the question-family files.
    """
    valid = generate(n, valid_seed)
    save_rows(valid, DATA_DIR / "valid.json")
    save_rows(generate(n, wide_seed, wide=True), DATA_DIR / "valid_wide.json")
    save_rows(generate(n, train_seed, exclude={q for q, _ in valid}), DATA_DIR / "train.json")
    save_rows(generate(n, reworded_seed, templates=HELD_OUT_TEMPLATES), DATA_DIR / "valid_reworded.json")
    save_rows(phrasing.reword(valid, constructions_seed, phrasing.HELD_OUT_CONSTRUCTIONS),
              DATA_DIR / "valid_constructions.json")
    for name, rows in family_files(seed=family_seed).items():
        save_rows(rows, DATA_DIR / name)
    return (f"wrote valid.json, valid_wide.json, valid_reworded.json, valid_constructions.json, train.json ({n} rows "
            f"each) and the family files valid_units_first.json, valid_same_unit.json, valid_decimal.json "
            f"({FAMILY_ROWS}, {FAMILY_ROWS // 2}, {FAMILY_ROWS} rows) to {DATA_DIR}")


def reword(source: str, output: str, seed: int = 0) -> str:
    """Ask every row of a data file anew in composed phrasings; answers (and RFT reasoning) are kept.

    An accepted RFT row's reasoning depends only on its conversion, so its question can be reworded while the
    reasoning stays the model's own sampled text.

    Args:
        source: a data file of [question, answer, ...] rows.
        output: the file to write.
        seed: seeds the phrasing; the same seed gives a byte-identical file.
    """
    from .data import load_rows

    rows = phrasing.reword(load_rows(source), seed)
    save_rows(rows, output)
    return f"wrote {len(rows)} reworded rows to {output}"


if __name__ == "__main__":
    from .cli import run_cli  # one `error:` line for a bad option, not a traceback

    run_cli({"write": write, "make": make, "reword": reword})
