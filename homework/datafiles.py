"""The committed data files: how each generated one is built, each from its own seeded generator, which are held
out of training, and `write`, which makes the missing ones.

    python -m homework.questions write                              # the data files that are missing
    python -m homework.questions write --only valid_natural.json    # one file (refused if it exists)

Each file is pinned by sha256 in manifest.json (`python -m homework.records check`): a file that exists is only
replaced with --overwrite, since every reported figure rests on it. Adding a family is one builder in
`family_files` and its name in GENERATED; no other file changes.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from . import phrasing
from .questions import (DATA_DIR, HELD_OUT_TEMPLATES, HIGH, LOW, SYNONYM_UNITS, TEMPLATES, DataFileError, draw_pair,
                        answer_of, decimal_quantity, generate, make_question, natural_quantity, save_rows)
from .units import Conversion

# The data files `data_files` generates, and the ones written by hand; all but train.json are held out: never a
# training question (SFTConfig.held_out names the ones SFT's rows exclude, so a new file changes no training row).
GENERATED = ("valid.json", "valid_wide.json", "train.json", "valid_reworded.json", "valid_constructions.json",
             "valid_units_first.json", "valid_same_unit.json", "valid_decimal.json", "valid_natural.json")
HAND_WRITTEN = ("people.json",)
HELD_OUT_FILES = tuple(name for name in GENERATED + HAND_WRITTEN if name != "train.json")


def held_out_questions(names: tuple[str, ...] | None = None, skip: Path | None = None) -> set[str]:
    """Every question of the files `names` (default: `HELD_OUT_FILES`) of data/ that exist (but `skip`, the file
    being written)."""
    out = set()
    for name in HELD_OUT_FILES if names is None else names:
        path = DATA_DIR / name
        if path.exists() and (skip is None or path.resolve() != skip.resolve()):
            out |= {row[0] for row in json.loads(path.read_text())}
    return out


# The held-out constructions that are no training template: "what does {q} {src} come to in {dst}" is held out
# of composed rows, and so of data/valid_constructions.json, but it is also one of the 25 TEMPLATES.
SAME_UNIT_CONSTRUCTIONS = tuple(c for c in phrasing.HELD_OUT_CONSTRUCTIONS
                                if c not in {t.lower().rstrip("?.") for t in TEMPLATES})
# The held-out templates that no composed row can write: a wrapper and a construction make "Quick question: 5 kg
# in lb?" and "Please tell me 10 mi in feet." too, so those two are no held-out wording for a composed-trained model.
DECIMAL_TEMPLATES = tuple(t for t in HELD_OUT_TEMPLATES if not any(
    t.lower().rstrip("?.") == (before + c + after).lower()
    for before, after in phrasing.WRAPPERS for c in phrasing.CONSTRUCTIONS))
FAMILY_ROWS = 400  # rows of each question-family file: a 0.95 accuracy within about +-0.011 (one s.e.)
NATURAL_SMALL = 0.75  # share of data/valid_natural.json asking 1..10 and halves; the rest whole 11..10,000


def _rng(name: str, seed: int) -> random.Random:
    """Each file its own generator, seeded by its name: adding a family changes no other file."""
    return random.Random(f"{name}:{seed}")


def _units_first(n: int, seed: int) -> list:
    return phrasing.reword(generate(n, f"valid_units_first.json:{seed}"), f"units_first:{seed}",
                           phrasing.HELD_OUT_UNITS_FIRST)


def _same_unit(n: int, seed: int) -> list:
    rng = _rng("valid_same_unit.json", seed)
    convs = [Conversion(float(rng.randint(LOW, HIGH)), u, u) for u in (rng.choice(SYNONYM_UNITS) for _ in range(n))]
    return [[phrasing.compose(c, rng, SAME_UNIT_CONSTRUCTIONS), c.quantity] for c in convs]


def _decimal(n: int, seed: int) -> list:
    rng, rows = _rng("valid_decimal.json", seed), {}
    while len(rows) < n:
        question, answer = make_question(rng, conv=Conversion(decimal_quantity(rng), *draw_pair(rng)),
                                         templates=DECIMAL_TEMPLATES)
        rows.setdefault(question, answer)
    return [list(row) for row in rows.items()]


def _natural(n: int, seed: int) -> list:
    """Natural forms ("a gallon", "three feet", "half a day", "2,500 m", a sentence first) in held-out
    constructions, stories and contexts only."""
    rng, rows = _rng("valid_natural.json", seed), {}
    while len(rows) < n:
        small = rng.random() < NATURAL_SMALL
        q = natural_quantity(rng) if small else float(rng.randint(11, 99) if rng.random() < 0.4 else
                                                      rng.randint(100, 10000))
        conv = Conversion(q, *draw_pair(rng))
        question = phrasing.compose(conv, rng, phrasing.HELD_OUT_CONSTRUCTIONS, natural=True,
                                    stories=phrasing.HELD_OUT_STORIES, contexts=phrasing.HELD_OUT_CONTEXTS)
        rows.setdefault(question, answer_of(conv))
    return [list(row) for row in rows.items()]


def family_files(n: int = FAMILY_ROWS, seed: int = 6) -> dict[str, list]:
    """The held-out question families, each asked only in wordings no training row uses, each from its own
    seeded generator.

    valid_units_first: both units before the quantity, in phrasing.HELD_OUT_UNITS_FIRST; valid_same_unit: two
    names of one unit ("9 ml in cc"), quantities 1..10, in those of phrasing.HELD_OUT_CONSTRUCTIONS that are no
    training template; valid_decimal: halves and tenths from 0.1 to 9.9 in DECIMAL_TEMPLATES; valid_natural:
    the forms people write, in held-out constructions, stories and contexts.
    """
    return {"valid_units_first.json": _units_first(n, seed), "valid_same_unit.json": _same_unit(n // 2, seed),
            "valid_decimal.json": _decimal(n, seed), "valid_natural.json": _natural(n, seed)}


def data_files(n: int = 1000, seed: int = 1) -> dict[str, list]:
    """Every generated data file by name. train shares no question with valid; valid_reworded asks quantities
    1..10 in HELD_OUT_TEMPLATES only; valid_constructions asks the conversions of valid.json in
    phrasing.HELD_OUT_CONSTRUCTIONS only; the family files are `family_files`."""
    valid = generate(n, seed)
    return {"valid.json": valid, "valid_wide.json": generate(n, f"valid_wide.json:{seed}", wide=True),
            "train.json": generate(n, f"train.json:{seed}", exclude={q for q, _ in valid}),
            "valid_reworded.json": generate(n, f"valid_reworded.json:{seed}", templates=HELD_OUT_TEMPLATES),
            "valid_constructions.json": phrasing.reword(valid, f"valid_constructions.json:{seed}",
                                                        phrasing.HELD_OUT_CONSTRUCTIONS),
            **family_files(seed=seed)}


def write(only: str | tuple[str, ...] = (), n: int = 1000, seed: int = 1, overwrite: bool = False) -> str:
    """Write the generated data files to data/ (`data_files`): the ones missing, or those named in `only`.

    The committed files are pinned by hash in manifest.json and every reported figure rests on them: a file that
    exists is only replaced with --overwrite, and then `python -m homework.records pin` records its new hash.

    Args:
        only: the files to write, comma-separated (valid_natural.json); default: every file that is missing.
        n: rows of valid, valid_wide, valid_reworded, valid_constructions and train.
        seed: seeds every file (each file draws from its own generator, seeded by its name and this).
        overwrite: replace files that exist.
    """
    from .cli import comma_list

    files = data_files(n, seed)
    names = comma_list(only) or [name for name in files if not (DATA_DIR / name).exists()]
    unknown = [name for name in names if name not in files]
    if unknown:
        raise ValueError(f"no such generated file: {', '.join(unknown)} (one of {', '.join(files)})")
    exists = [name for name in names if (DATA_DIR / name).exists()]
    if exists and not overwrite:
        raise DataFileError(f"refusing to replace {', '.join(exists)}: they exist (--overwrite to replace them)")
    for name in names:
        save_rows(files[name], DATA_DIR / name, overwrite=overwrite)
    return f"wrote {', '.join(names)} to {DATA_DIR}" if names else "every data file exists; nothing written"


