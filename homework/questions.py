"""Question generator: unit-conversion questions in many phrasings, with true answers from the units registry.

Writes course-format data files (a JSON list of [question, answer]), the same for the same seed:

    python -m homework.questions make data/big.json --n 20000 --seed 3
    python -m homework.questions make data/wide.json --n 1000 --seed 11 --wide    # quantities beyond 1..10
    python -m homework.questions write                 # the committed data files that are missing (homework.datafiles)
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

from . import phrasing
from .units import BY_NAME, DIMENSIONS, UNITS, Conversion, UnitError, parse_question

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


LOW, HIGH = 1, 10  # the course's quantities: the whole numbers LOW..HIGH; wide ones lie beyond


def _quantity(rng: random.Random, wide: bool) -> float:
    if not wide:
        return float(rng.randint(LOW, HIGH))
    kind = rng.random()
    if kind < 0.35:
        return rng.choice([0.25, 0.5, 0.75, 1.5, 2.5, 3.5, 4.5, 7.5, 0.1, 0.2])
    if kind < 0.6:
        return round(rng.uniform(0.1, 20), 1)
    if kind < 0.8:
        return float(rng.randint(11, 99))
    return float(rng.randint(100, 1000) if kind < 0.92 else rng.randint(1001, 10000))


def decimal_quantity(rng: random.Random) -> float:
    """A half (0.5, 2.5, ... 9.5) or, as often, a tenth (0.1 ... 9.9) that is not a half or whole: 0.1 to 10."""
    if rng.random() < 0.5:
        return rng.randint(0, 9) + 0.5
    return rng.choice([t / 10 for t in range(1, 100) if t % 5])


# Units with more than one name, asked from one name to another ("9 ml in cc", "3 h in hours"): the factor is 1.
# An alias that another unit also has ("oz": ounce or fluid ounce) does not name one unit, so it is no synonym.
SYNONYM_UNITS = tuple(u.name for u in UNITS
                      if any(all(a not in v.forms for v in UNITS if v is not u) for a in u.aliases))


def draw_pair(rng: random.Random) -> tuple[str, str]:
    """A dimension at random, then two different units of it: (source, target)."""
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
        src, dst = (conv.src, conv.dst) if conv else draw_pair(rng)
        q = conv.quantity if conv and not wide else _quantity(rng, wide)  # wide: the pair from conv, a wide quantity
        src_form = phrasing.unit_form(src, q, rng)
        template = rng.choice(templates)  # the draws in this order: unit, template, quantity, target unit
        forms = phrasing.spelled(q, src_form, rng, False, src)
        dst_form = phrasing.unit_form(dst, 2, rng)
        for q_form, unit in forms:  # "half a mile" where drawn, else (or where it reads two ways) "0.5 miles"
            text = template.format(q=q_form, src=unit, dst=dst_form)
            text = text[0].upper() + text[1:]
            try:
                if parse_question(text) == Conversion(q, src, dst):
                    return text, answer_of(Conversion(q, src, dst))
            except UnitError:
                pass  # a spelling that reads ambiguously in this template: the next, or draw again


def answer_of(conv: Conversion) -> float:
    """The true answer as the data files store it: 8 significant digits."""
    return float(f"{conv.answer:.8g}")


def generate(n: int, seed: int | str, wide: bool = False, exclude: set[str] = frozenset(),
             balanced: bool = False, dimensions: tuple[str, ...] = (),
             templates: tuple[str, ...] = TEMPLATES, composed: float = 0.0,
             constructions: tuple[str, ...] = phrasing.CONSTRUCTIONS, decimals: float = 0.0,
             same_unit: float = 0.0, natural: float = 0.0) -> list[list]:
    """n distinct (question, answer) rows, the same for the same arguments.

    composed: the share of rows phrased from parts (`homework.phrasing`, from `constructions`) instead of
        filling one of `templates` (1: all of them).
    decimals: with balanced, the share of rows whose quantity is a half or a tenth between 0.1 and 9.9 (2.5, 0.7)
        instead of a whole number.
    same_unit: the share of rows converting between two names of one unit ("9 ml in cc"), always composed; the
        unit is drawn over every unit with two names (SYNONYM_UNITS), whatever `dimensions` says.
    natural: the share of rows asked as people write (always composed, `phrasing.compose(natural=True)`): a 1
        as "a"/"an"/"one", a half as "half a", whole numbers as words, a sentence of context or a story.
    balanced: draw the dimension at random as usual, then cycle through that dimension's unit pairs and
        quantities 1..10 in shuffled passes, so no conversion is left with few or no rows by chance.
    dimensions: with balanced, draw only these dimensions (e.g. the ones a model gets wrong most); a name
        given twice is drawn twice as often.
    """
    unknown = set(dimensions) - set(DIMENSIONS)
    if unknown or (dimensions and not balanced):
        raise ValueError(f"dimensions must be some of {', '.join(DIMENSIONS)} and come with balanced"
                         + (f"; unknown: {', '.join(sorted(unknown))}" if unknown else ""))
    if n < 1:
        raise ValueError(f"n must be 1 or more, got {n}")
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
            if rng.random() < decimals:
                conv = Conversion(decimal_quantity(rng), conv.src, conv.dst)
        if rng.random() < same_unit:
            unit = rng.choice(SYNONYM_UNITS)
            conv = Conversion(conv.quantity if conv else float(rng.randint(LOW, HIGH)), unit, unit)
        as_natural = rng.random() < natural
        if as_natural:
            base = conv or Conversion(0.0, *draw_pair(rng))
            conv = Conversion(natural_quantity(rng), base.src, base.dst)
        for _ in range(20):  # a few redraws of the wording if this one is taken
            if as_natural or rng.random() < composed or (conv and conv.src == conv.dst):
                draw = conv or Conversion(0.0, *draw_pair(rng))
                draw = Conversion(_quantity(rng, wide) if wide or not conv else conv.quantity, draw.src, draw.dst)
                question, answer = phrasing.compose(draw, rng, constructions, as_natural), answer_of(draw)
            else:
                question, answer = make_question(rng, wide, conv, templates)
            if question not in seen:
                seen.add(question)
                rows.append([question, answer])
                break
    return rows


def natural_quantity(rng: random.Random) -> float:
    """A quantity of a natural-forms row: 1 ("a mile") two times in five, 0.5 ("half a day") one in five, else a
    whole 2..10 (written as a word by `phrasing.quantity_form`)."""
    draw = rng.random()
    return 1.0 if draw < 0.4 else 0.5 if draw < 0.6 else float(rng.randint(2, HIGH))


class DataFileError(ValueError):
    """A write that would lose or silently change a committed data file."""


def save_rows(rows: list, path: str | Path, expect: int | None = None, overwrite: bool = False,
              allow_empty: bool = False) -> Path:
    """Write JSON atomically (beside, then rename): an interrupted write never leaves half a file.

    Refused (DataFileError), before anything is written: no rows (unless `allow_empty` and no file is there yet),
    fewer rows than `expect`, or a file that `manifest.json` pins whose content would change, unless `overwrite`.
    """
    from . import manifest

    path = Path(path)
    empty_ok = allow_empty and not path.exists()
    if (not rows and not empty_ok) or (expect is not None and len(rows) < expect):
        raise DataFileError(f"refusing to write {path}: {len(rows)} rows" + (f", {expect} asked" if expect else ""))
    text = json.dumps(rows, indent=1) + "\n"
    pinned = manifest.pinned(path)
    if pinned and not overwrite and manifest.digest(text.encode()) != pinned["sha256"]:
        raise DataFileError(f"refusing to change {manifest.name(path)}: it is a committed file pinned in "
                            f"manifest.json (--overwrite to replace it, then `python -m homework.records pin`)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def make(path: str, n: int = 1000, seed: int = 0, wide: bool = False, exclude_valid: bool = True,
         balanced: bool = False, dimensions: str | tuple[str, ...] = (), composed: float = 0.0,
         decimals: float = 0.0, same_unit: float = 0.0, natural: float = 0.0, overwrite: bool = False) -> str:
    """Write `n` generated questions to `path`.

    Args:
        path: output JSON file.
        n: number of rows (1 or more).
        seed: random seed; the same seed gives the same file.
        wide: quantities beyond 1..10 (decimals like 2.5 or 0.75, whole numbers up to 10,000).
        exclude_valid: never emit a question of a held-out file (`datafiles.HELD_OUT_FILES`).
        balanced: every unit pair (and, unless wide, quantity 1..10) equally often, instead of random draws.
        dimensions: with balanced, only these dimensions, comma-separated (e.g. time,length,volume); a name
            given twice is drawn twice as often (time,time,length: two time questions for each length one).
        composed: the share of questions phrased from parts (homework/phrasing.py) instead of the 25 templates.
        decimals: with balanced, the share of rows with a half or tenth quantity (0.1 to 9.9).
        same_unit: the share of rows between two names of one unit ("9 ml in cc"), always composed.
        natural: the share of rows asked as people write ("a gallon", "three feet", "half a day", context).
        overwrite: replace a committed data file pinned in manifest.json (refused without it).
    """
    from .cli import comma_list

    from .datafiles import held_out_questions

    dimensions = comma_list(dimensions)
    exclude = held_out_questions(skip=Path(path)) if exclude_valid else set()
    rows = generate(n, seed, wide, exclude, balanced, tuple(dimensions), composed=composed,
                    decimals=decimals, same_unit=same_unit, natural=natural)
    return f"wrote {n} rows to {save_rows(rows, path, expect=n, overwrite=overwrite)}"


def reword(source: str, output: str, seed: int = 0, overwrite: bool = False) -> str:
    """Ask every row of a data file anew in composed phrasings; answers (and RFT reasoning) are kept.

    An accepted RFT row's reasoning depends only on its conversion, so its question can be reworded while the
    reasoning stays the model's own sampled text.

    Args:
        source: a data file of [question, answer, ...] rows.
        output: the file to write.
        seed: seeds the phrasing; the same seed gives the same file.
        overwrite: replace a committed data file pinned in manifest.json (refused without it).
    """
    from .data import load_rows

    rows = load_rows(source, min_rows=1)
    save_rows(phrasing.reword(rows, seed), output, expect=len(rows), overwrite=overwrite)
    return f"wrote {len(rows)} reworded rows to {output}"


if __name__ == "__main__":
    from .cli import run_cli  # one `error:` line for a bad option, not a traceback

    from .datafiles import write

    run_cli({"write": write, "make": make, "reword": reword})
