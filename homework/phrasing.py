"""Questions composed from parts: a construction, where the quantity stands, each unit's surface form, a
wrapper, case and punctuation; thousands of distinct surface forms from one seed, byte-identical every run.

    python -m homework.questions make data/big.json --n 20000 --composed      # training-style rows
    python -m homework.questions write                                         # also data/valid_constructions.json
    python -m homework.questions reword data/rft.json data/rft_reworded.json   # RFT rows asked anew

Whole constructions are held out (`HELD_OUT_CONSTRUCTIONS`): no training row uses them, and
data/valid_constructions.json asks the validation conversions in them only, so it measures a way of asking
the model has never seen, not only new words. Every composed question is read back by `units.parse_question`
and kept only if it gives the conversion it was made from.
"""

from __future__ import annotations

import random

from .units import BY_NAME, Conversion, UnitError, parse_question

# {q} quantity, {src} and {dst} the units as written. Grouped by where the quantity stands.
QUANTITY_FIRST = (
    "how many {dst} in {q} {src}", "how many {dst} are in {q} {src}", "how many {dst} are there in {q} {src}",
    "how many {dst} is {q} {src}", "how many {dst} make {q} {src}", "convert {q} {src} to {dst}",
    "convert {q} {src} into {dst}", "{q} {src} to {dst}", "{q} {src} in {dst}", "{q} {src} into {dst}",
    "what is {q} {src} in {dst}", "what's {q} {src} in {dst}", "whats {q} {src} in {dst}",
    "{q} {src} is how many {dst}", "{q} {src} equals how many {dst}", "{q} {src} in terms of {dst}",
    "what is {q} {src} in terms of {dst}", "{q} {src} -> {dst}", "express {q} {src} in {dst}",
    "express {q} {src} as {dst}", "turn {q} {src} into {dst}", "change {q} {src} to {dst}",
    "{dst} in {q} {src}", "I have {q} {src}, how many {dst} is that", "it is {q} {src}. in {dst}?",
    "the box holds {q} {src}, how many {dst}", "give me {q} {src} in {dst}", "tell me {q} {src} in {dst}",
    "how much is {q} {src} in {dst}", "find the number of {dst} in {q} {src}",
)
QUANTITY_APART = (
    "{src} to {dst}, for {q} of them", "{src} to {dst}: {q}", "{src} to {dst} {q}", "{src} into {dst} for {q}",
    "convert {src} to {dst} for {q}", "{src} -> {dst}, {q}", "how many {dst} in {src}, {q} of them",
    "{src} to {dst}, {q} please",
)
# Both units named before the quantity, the course's "the conversion from A to B for N units": the direction
# is A -> B. Training rows use UNITS_FIRST; data/valid_units_first.json asks only HELD_OUT_UNITS_FIRST.
UNITS_FIRST = (
    "the conversion from {src} to {dst} for {q} units", "what is the conversion from {src} to {dst} for {q} units",
    "could you give the conversion from {src} to {dst} for {q} units", "give the conversion from {src} to {dst} for {q} units",
    "what's the conversion from {src} to {dst} for {q} units", "conversion from {src} to {dst} for {q} units",
    "can you do the conversion from {src} to {dst} for {q} units", "{src} to {dst}, {q} units",
    "from {src} to {dst}: {q} units", "convert from {src} to {dst}, {q} units",
)
HELD_OUT_UNITS_FIRST = (
    "I need the conversion from {src} to {dst} for {q} units", "{src} into {dst} for {q} units",
    "please give me the {src} to {dst} conversion for {q} units", "the {src} to {dst} conversion of {q} units",
    "what would the conversion from {src} to {dst} be for {q} units", "from {src} into {dst}, {q} units",
)
# Never in a training row; data/valid_constructions.json uses only these.
HELD_OUT_CONSTRUCTIONS = (
    "{q} {src} = ? {dst}", "{q} {src} is equivalent to how many {dst}", "what does {q} {src} come to in {dst}",
    "the equivalent of {q} {src} in {dst}", "convert {src} into {dst}, {q} units' worth",
    "how many {dst} in {src} if I have {q}", "{src} in {dst}? I have {q}",
)
CONSTRUCTIONS = QUANTITY_FIRST + QUANTITY_APART  # what data/rft_reworded.json and the older adapters saw
TRAINING_CONSTRUCTIONS = CONSTRUCTIONS + UNITS_FIRST  # the shipped recipes' composed rows
WRAPPERS = (("", ""),) * 6 + (("please ", ""), ("quick question: ", ""), ("hey, ", ""), ("can you tell me ", ""),
                              ("q: ", ""), ("", " please"), ("", " thanks"), ("help: ", ""), ("ok so ", ""))
ENDINGS = ("?",) * 5 + (".",) * 2 + ("",) * 3 + ("??", "!")
SINGULAR_TARGET = 0.2  # share of varied questions whose target unit is singular ("decades to month")
WORDS = "zero one two three four five six seven eight nine ten".split()


def unit_form(name: str, quantity: float, rng: random.Random) -> str:
    """A unit as people write it: its name or plural most of the time, else an alias, sometimes capitalized."""
    unit = BY_NAME[name]
    if rng.random() < 0.55:
        form = unit.name if quantity == 1 else unit.plural
    else:
        form = rng.choice(unit.aliases or (unit.plural,))
    if rng.random() < 0.1 and form.islower() and len(form) > 3:
        form = form.capitalize()
    return form


def quantity_form(q: float, rng: random.Random) -> str:
    """The quantity as written: digits, or now and then a word ('five', 'a')."""
    draw = rng.random()
    if q.is_integer() and 1 <= q <= 10 and draw < 0.06:
        return WORDS[int(q)]
    if q == 1 and draw < 0.12:
        return "a"
    return f"{q:g}" if q < 1e6 else f"{q:,.0f}"


def _case(text: str, rng: random.Random) -> str:
    draw = rng.random()
    if draw < 0.04:
        return text.upper()
    if draw < 0.5:
        return text[0].upper() + text[1:]
    return text


def compose(conv: Conversion, rng: random.Random, constructions: tuple[str, ...] = CONSTRUCTIONS,
            varied: bool = False) -> str:
    """One question asking `conv`, read back by the registry to that same conversion.

    varied: the target unit is now and then singular ("decades to month"), as course-style questions write it,
        and a conversion between two names of one unit ("ml in cc") always writes two different names. Off, the
        draws are the ones the committed data files were made with.
    """
    for _ in range(50):
        construction = rng.choice(constructions)
        before, after = rng.choice(WRAPPERS)
        q = quantity_form(conv.quantity, rng)
        if q == "a" and "{q} {src}" not in construction:
            continue  # "a" stands for 1 only right before its unit
        src = unit_form(conv.src, conv.quantity, rng)
        dst = unit_form(conv.dst, 1 if varied and rng.random() < SINGULAR_TARGET else 2, rng)
        if varied and conv.src == conv.dst and src.lower() == dst.lower():
            continue  # "5 ml in ml" asks nothing
        text = construction.format(q=q, src=src, dst=dst)
        text = _case(before + text + after, rng) + rng.choice(ENDINGS)
        try:
            if parse_question(text) == conv:
                return text
        except UnitError:
            pass  # a form that reads two ways in this construction: draw again
    raise UnitError(f"no phrasing found for {conv}")


def reword(rows: list, seed: int, constructions: tuple[str, ...] = CONSTRUCTIONS, varied: bool = False) -> list:
    """The rows with each question asked anew for the same conversion; answers and the rest stay as they are."""
    rng = random.Random(seed)
    out, seen = [], set()
    for question, *rest in rows:
        conv = parse_question(question)
        for _ in range(20):
            text = compose(conv, rng, constructions, varied)
            if text not in seen:
                break
        seen.add(text)
        out.append([text, *rest])
    return out
