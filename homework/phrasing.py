"""Questions composed from parts: a construction, the quantity as people write it, each unit's surface form, a
wrapper, a sentence of context, case and punctuation; thousands of distinct surface forms from one seed.

    python -m homework.questions make data/big.json --n 20000 --composed 1   # training-style rows
    python -m homework.questions reword data/rft.json data/rft_reworded.json   # RFT rows asked anew

Whole constructions are held out (`HELD_OUT_CONSTRUCTIONS`, `HELD_OUT_STORIES`, `HELD_OUT_CONTEXTS`): no training
row uses them, and the validation files built from them (data/valid_constructions.json, data/valid_natural.json)
measure a way of asking the model has never seen, not only new words. Every composed question is read back by
`units.parse_question` and kept only if it gives the conversion it was made from.
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
# is A -> B. data/valid_units_first.json asks only HELD_OUT_UNITS_FIRST.
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
CONSTRUCTIONS = QUANTITY_FIRST + QUANTITY_APART + UNITS_FIRST  # what composed training rows are made from

# The quantity told in a sentence about something, then the question ("My bag weighs 23 kg. How many pounds is
# that?"): each dimension has its own verbs. The held-out ones are data/valid_natural.json's only.
STORIES = {
    "mass": ("my bag weighs {q} {src}. how many {dst} is that", "the parcel weighs {q} {src}, what is that in {dst}"),
    "length": ("the trail is {q} {src} long. how many {dst} is that", "my desk is {q} {src} wide, in {dst}?"),
    "time": ("the trip takes {q} {src}. how many {dst} is that", "the film lasts {q} {src}, what is that in {dst}"),
    "volume": ("the tank holds {q} {src}. how many {dst} is that", "the recipe needs {q} {src}, in {dst}?"),
    "speed": ("the car goes {q} {src}. what is that in {dst}", "the wind blows at {q} {src}, in {dst}?"),
    "data": ("the file is {q} {src}. how many {dst} is that", "my photo takes up {q} {src}, in {dst}?"),
}
HELD_OUT_STORIES = {
    "mass": ("my suitcase came to {q} {src} at the airport; how heavy is that in {dst}",),
    "length": ("we walked {q} {src} today; how far is that in {dst}",),
    "time": ("I slept for {q} {src} last night; how long is that in {dst}",),
    "volume": ("there is {q} {src} of water in the jug; how much is that in {dst}",),
    "speed": ("the train was doing {q} {src}; how fast is that in {dst}",),
    "data": ("my download was {q} {src}; how big is that in {dst}",),
}
# A sentence before the question that carries no quantity and no unit.
CONTEXTS = ("I'm packing for a trip.", "I'm baking with my kids.", "Working on my homework here.",
            "My teacher asked us this.", "Settling a bet with a friend.", "I'm reading an old recipe.",
            "Just curious.", "This is for a science project.", "Sorry if this is basic.", "Quick one for you.")
HELD_OUT_CONTEXTS = ("My neighbour wants to know.", "I'm filling out a form for work.",
                     "Doing a physics exercise tonight.", "Something I wondered about on the bus.")
WRAPPERS = (("", ""),) * 6 + (("please ", ""), ("quick question: ", ""), ("hey, ", ""), ("can you tell me ", ""),
                              ("q: ", ""), ("", " please"), ("", " thanks"), ("help: ", ""), ("ok so ", ""))
ENDINGS = ("?",) * 5 + (".",) * 2 + ("",) * 3 + ("??", "!")
SINGULAR_TARGET = 0.2  # share of questions whose target unit is singular ("decades to month"), as the course writes
CONTEXT_SHARE = 0.05  # share of composed questions with a sentence of context first
STORY_SHARE = 0.03  # share of composed questions told as a story (their dimension's STORIES)
WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
         "seventeen eighteen nineteen twenty").split()


def unit_form(name: str, quantity: float, rng: random.Random) -> str:
    """A unit as people write it: its name or plural most of the time, else an alias, sometimes capitalized."""
    unit = BY_NAME[name]
    if rng.random() < 0.55:
        form = unit.name if quantity == 1 else unit.plural
    else:
        form = rng.choice(unit.aliases or (unit.name if quantity == 1 else unit.plural,))
    if rng.random() < 0.1 and form.islower() and len(form) > 3:
        form = form.capitalize()
    return form


def article(word: str) -> str:
    """'a' or 'an' before a unit's name ("an hour", "an inch", "a mile")."""
    return "an" if word[:1].lower() in "aeiou" or word.lower().startswith("hour") else "a"


def quantity_form(q: float, unit: str, rng: random.Random, natural: bool = False, name: str = "") -> str:
    """The quantity as written before `unit` (the unit's written form): digits, or as people also write it.

    A 1 before a unit's singular name is now and then "a"/"an"/"one", a whole number up to twenty a word
    ("three feet"), one from 1,000 a number with a thousands comma ("2,500 m"). Given the unit's registry
    `name`, a 0.5 is now and then "half a"/"half an", and the caller writes the unit's singular name after it
    (`spelled` does both). `natural` makes those forms the rule rather than the exception (the rows of
    `questions.generate(natural=...)`). The draws of `rng` do not depend on `name`, so naming it moves no other
    draw.
    """
    draw = rng.random()
    named = unit.lower() in {BY_NAME[n].name for n in BY_NAME}
    if q == 1 and named and draw < (0.7 if natural else 0.12):
        return rng.choice((article(unit), article(unit), "one"))
    if q == 0.5 and (named or name) and draw < (0.7 if natural else 0.12):
        return f"half {article(BY_NAME[name].name if name else unit)}"
    if q.is_integer() and 1 <= q < len(WORDS) and draw < (0.6 if natural else 0.06):
        return WORDS[int(q)]
    if q.is_integer() and q >= 1000 and draw < 0.5:
        return f"{q:,.0f}"
    return f"{q:g}" if q < 1e6 else f"{q:,.0f}"


def spelled(q: float, unit: str, rng: random.Random, natural: bool, name: str) -> list[tuple[str, str]]:
    """The (quantity, unit) texts to try, in order, for `q` before `unit` (the unit's written form, `name` its
    registry name): "half a" with the singular name first when `quantity_form` draws it, then the digits and
    `unit`, which every construction reads. The same draws of `rng` as `quantity_form`."""
    text = quantity_form(q, unit, rng, natural, name)
    if text.startswith("half "):
        return [(text, BY_NAME[name].name), (f"{q:g}", unit)]
    return [(text, unit)]


def _case(text: str, draw: float) -> str:
    if draw < 0.04:
        return text.upper()
    if draw < 0.5:
        return text[0].upper() + text[1:]
    return text


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:]


def compose(conv: Conversion, rng: random.Random, constructions: tuple[str, ...] = CONSTRUCTIONS,
            natural: bool = False, stories: dict = STORIES, contexts: tuple[str, ...] = CONTEXTS) -> str:
    """One question asking `conv`, read back by the registry to that same conversion.

    The target unit is now and then singular ("decades to month"); a conversion between two names of one unit
    ("ml in cc") always writes two different names. `natural`: the quantity as people write it (`quantity_form`)
    and a sentence of context or a story more often; `stories` and `contexts` are the ones to draw from.
    """
    dimension = BY_NAME[conv.src].dimension
    for _ in range(50):
        story = rng.random() < (0.3 if natural else STORY_SHARE) and stories.get(dimension)
        construction = rng.choice(stories[dimension] if story else constructions)
        before, after = ("", "") if story else rng.choice(WRAPPERS)
        src = unit_form(conv.src, conv.quantity, rng)
        dst = unit_form(conv.dst, 1 if rng.random() < SINGULAR_TARGET else 2, rng)
        forms = spelled(conv.quantity, src, rng, natural, conv.src)
        if conv.src == conv.dst:  # two names of one unit: the quantity in digits, and "5 ml in ml" asks nothing
            forms = [] if src.lower() == dst.lower() else forms[-1:]
        forms = [(q, unit) for q, unit in forms if q[0].isdigit() or "{q} {src}" in construction]
        if not forms:  # a word stands for a quantity only right before its unit
            continue
        case = rng.random()
        ending = rng.choice(ENDINGS)
        context = rng.choice(contexts) if not story and rng.random() < (0.3 if natural else CONTEXT_SHARE) else ""
        for q, unit in forms:  # "half a day" first where drawn, else (or where it reads two ways) "0.5 days"
            text = _case(before + construction.format(q=q, src=unit, dst=dst) + after, case) + ending
            text = f"{context} {_sentence(text)}" if context else text
            try:
                if parse_question(text) == conv:
                    return text
            except UnitError:
                pass  # a form that reads two ways in this construction: the next, or draw again
    raise UnitError(f"no phrasing found for {conv}")


def reword(rows: list, seed: int | str, constructions: tuple[str, ...] = CONSTRUCTIONS) -> list:
    """The rows with each question asked anew for the same conversion; answers and the rest stay as they are."""
    rng = random.Random(seed)
    out, seen = [], set()
    for question, *rest in rows:
        conv = parse_question(question)
        for _ in range(20):
            text = compose(conv, rng, constructions)
            if text not in seen:
                break
        seen.add(text)
        out.append([text, *rest])
    return out
