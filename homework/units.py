"""Units registry: the units questions use, the words people write for them, and the true conversions.

Truth comes from pint, with the conventions of docs/units.md layered on top where pint differs (pint's `ton` is the
short ton, its `year` the Julian year, its `decade` a logarithmic unit and it has no `KB`), so every unit
below is written as an explicit pint expression. Try it: `python -m homework.units convert 7 meter foot`.
"""

from __future__ import annotations

import re
from decimal import Decimal
from dataclasses import dataclass
from functools import lru_cache

import pint

_UREG = pint.UnitRegistry()
_YEAR = "365.24219878125 * day"  # mean tropical year (docs/units.md)


@dataclass(frozen=True)
class Unit:
    name: str  # canonical singular name, as written in prompts and facts
    plural: str
    dimension: str  # time, length, mass, volume, speed, data
    expr: str  # pint expression of one unit
    aliases: tuple[str, ...] = ()  # other spellings and abbreviations people write

    @property
    def forms(self) -> tuple[str, ...]:
        return (self.name, self.plural, *self.aliases)


def _u(name, plural, dimension, expr, *aliases):
    return Unit(name, plural, dimension, expr, tuple(aliases))


UNITS: tuple[Unit, ...] = (
    _u("second", "seconds", "time", "second", "s", "sec", "secs"),
    _u("minute", "minutes", "time", "minute", "min", "mins"),
    _u("hour", "hours", "time", "hour", "h", "hr", "hrs"),
    _u("day", "days", "time", "day"),
    _u("week", "weeks", "time", "week"),
    _u("month", "months", "time", f"({_YEAR}) / 12"),
    _u("year", "years", "time", _YEAR, "yr", "yrs"),
    _u("decade", "decades", "time", f"10 * {_YEAR}"),
    _u("century", "centuries", "time", f"100 * {_YEAR}"),
    _u("millimeter", "millimeters", "length", "millimeter", "mm", "millimetre", "millimetres"),
    _u("centimeter", "centimeters", "length", "centimeter", "cm", "centimetre", "centimetres"),
    _u("meter", "meters", "length", "meter", "m", "metre", "metres"),
    _u("kilometer", "kilometers", "length", "kilometer", "km", "kilometre", "kilometres"),
    _u("inch", "inches", "length", "inch", "in"),
    _u("foot", "feet", "length", "foot", "ft"),
    _u("yard", "yards", "length", "yard", "yd", "yds"),
    _u("mile", "miles", "length", "mile", "mi"),
    _u("gram", "grams", "mass", "gram", "g"),
    _u("kilogram", "kilograms", "mass", "kilogram", "kg", "kgs", "kilo", "kilos"),
    _u("pound", "pounds", "mass", "453.59237 * gram", "lb", "lbs"),
    _u("ounce", "ounces", "mass", "453.59237 / 16 * gram", "oz"),
    _u("metric ton", "metric tons", "mass", "1000 * kilogram", "ton", "tons", "tonne", "tonnes"),
    _u("milliliter", "milliliters", "volume", "milliliter", "ml", "mL", "millilitre", "millilitres", "cc",
       "cm^3", "cm**3", "cubic centimeter", "cubic centimeters"),
    _u("liter", "liters", "volume", "liter", "l", "L", "litre", "litres"),
    _u("cubic millimeter", "cubic millimeters", "volume", "millimeter ** 3", "mm^3", "mm**3"),
    _u("cubic meter", "cubic meters", "volume", "meter ** 3", "m^3", "m**3", "cubic metre", "cubic metres"),
    _u("pint", "pints", "volume", "473.176473 * milliliter", "US pint", "US pints", "pt"),
    _u("quart", "quarts", "volume", "2 * 473.176473 * milliliter", "US quart", "US quarts", "qt"),
    _u("gallon", "gallons", "volume", "8 * 473.176473 * milliliter", "US gallon", "US gallons", "gal"),
    _u("fluid ounce", "fluid ounces", "volume", "473.176473 / 16 * milliliter", "US fluid ounce",
       "US fluid ounces", "fl oz", "ounce", "ounces", "oz"),
    _u("meter per second", "meters per second", "speed", "meter / second", "m/s", "metres per second"),
    _u("kilometer per hour", "kilometers per hour", "speed", "kilometer / hour", "km/h", "kmh", "kph",
       "kilometres per hour"),
    _u("mile per hour", "miles per hour", "speed", "mile / hour", "mph", "mi/h"),
    _u("foot per second", "feet per second", "speed", "foot / second", "ft/s"),
    _u("inch per second", "inches per second", "speed", "inch / second", "in/s"),
    _u("bit", "bits", "data", "bit"),
    _u("byte", "bytes", "data", "byte", "B"),
    _u("kilobyte", "kilobytes", "data", "1000 * byte", "KB", "kB", "K"),
    _u("megabyte", "megabytes", "data", "1000 ** 2 * byte", "MB", "M"),
    _u("gigabyte", "gigabytes", "data", "1000 ** 3 * byte", "GB", "G"),
)
BY_NAME = {u.name: u for u in UNITS}
DIMENSIONS = tuple(dict.fromkeys(u.dimension for u in UNITS))

# Aliases that are also ordinary words or single letters ("in", "m", "s"): trusted only right after a
# number ("7 in") or as the last word after to/into/in ("... to m?"), never in the middle of a sentence.
_WEAK = {"in", "s", "h", "m", "g", "l", "L", "B", "K", "M", "G", "min", "mi", "pt", "gal", "kilo"}
_CASE_SENSITIVE = {"B", "K", "M", "G", "KB", "kB", "MB", "GB", "mL", "L", "l", "m", "g"}


class UnitError(ValueError):
    """A question names no unit we know, or units that cannot be converted into each other."""


@lru_cache(maxsize=None)
def factor(src: str, dst: str) -> float:
    """How many `dst` are in one `src` (canonical names), by pint."""
    a, b = BY_NAME[src], BY_NAME[dst]
    if a.dimension != b.dimension:
        raise UnitError(f"cannot convert {a.dimension} ({src}) to {b.dimension} ({dst})")
    return float((_UREG(a.expr) / _UREG(b.expr)).to("dimensionless").magnitude)


def convert(value: float, src: str, dst: str) -> float:
    return value * factor(src, dst)


def _alias_pattern(alias: str) -> str:
    # a digit may touch the unit ("7m", "5kg"); a letter or a unit operator may not ("mm" is no "m", "m/s" no "m")
    body = re.escape(alias).replace(r"\ ", r"\s+")
    return rf"(?<![A-Za-z_/^*]){body}(?![\w/^*])"


@lru_cache(maxsize=None)
def _alias_table(shouted: bool = False) -> list[tuple[re.Pattern, str, tuple[str, ...]]]:
    """(pattern, alias, candidate unit names), longest alias first so 'fluid ounce' beats 'ounce'.

    In a question typed all in capitals ("CONVERT 5 M TO FT") case says nothing, so `shouted` matches every
    alias in any case and an alias then stands for each unit it could be ("M": megabyte or meter); the other
    unit's dimension decides between them.
    """
    owners: dict[str, list[str]] = {}
    for u in UNITS:
        for form in u.forms:
            key = form.lower() if shouted else form
            if u.name not in owners.setdefault(key, []):
                owners[key].append(u.name)
    table = []
    for alias in sorted(owners, key=len, reverse=True):
        flags = 0 if alias in _CASE_SENSITIVE and not shouted else re.IGNORECASE
        table.append((re.compile(_alias_pattern(alias), flags), alias, tuple(owners[alias])))
    return table


_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class Conversion:
    quantity: float
    src: str
    dst: str

    @property
    def answer(self) -> float:
        return convert(self.quantity, self.src, self.dst)


def unit_mentions(text: str) -> list[tuple[int, int, str, tuple[str, ...]]]:
    """Non-overlapping unit mentions (start, end, alias, candidate names), in text order."""
    shouted = any(c.isalpha() for c in text) and text == text.upper()
    taken = [False] * len(text)
    found = []
    for pattern, alias, names in _alias_table(shouted):
        for m in pattern.finditer(text):
            if any(taken[m.start():m.end()]):
                continue
            for i in range(m.start(), m.end()):
                taken[i] = True
            found.append((m.start(), m.end(), alias, names))
    return sorted(found)


# Spelled-out quantities people type ("how many feet in a mile", "five kg to lb"); only ever read right before a
# unit, and "a"/"an" only when the question has no numeral at all.
_WORDS = {w: float(i) for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve "
                                            "thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty"
                                            .split())} | {"a": 1.0, "an": 1.0, "half a": 0.5, "half an": 0.5}
_WORD = re.compile(r"\b(half an?|an?|" + "|".join(w for w in _WORDS if " " not in w and len(w) > 2) + r")\s+",
                   re.IGNORECASE)


def _numbers(text: str, mentions) -> list[tuple[int, int, float]]:
    """Quantities written as numerals, outside unit mentions (the 3 of "cm^3" is part of its unit)."""
    inside = [(m[0], m[1]) for m in mentions]
    out = []
    for m in _NUMBER.finditer(text):
        if re.search(r"\d", m.group()) and not any(a <= m.start() < b for a, b in inside):
            out.append((m.start(), m.end(), float(m.group().replace(",", ""))))
    return out


def _word_numbers(text: str, mentions) -> list[tuple[int, int, float]]:
    """Spelled-out quantities directly followed by a unit mention."""
    starts = {m[0] for m in mentions}
    return [(m.start(), m.end(), _WORDS[m.group(1).lower()]) for m in _WORD.finditer(text) if m.end() in starts]


def parse_question(text: str) -> Conversion:
    """Find the quantity, the unit it is given in, and the unit asked for.

    Two ways of asking are read. The quantity right before a unit ("7 meters", "7m", "a mile") gives the
    source; the target is the other unit. Or the quantity stands apart from both units ("feet to inches, for 3
    of them", "kilometers to miles: 8"): then the unit after "how many" is the target, else the first unit
    named is the source and the second the target. An alias shared by two units ("ounce": mass or fluid, "M"
    in capitals: megabyte or meter) is resolved by the other unit's dimension.
    Raises UnitError with a one-line reason when the question cannot be read, or could be read two ways
    (two quantities, two target units): a refusal is better than a wrong parse.
    """
    mentions = unit_mentions(text)
    numbers = _numbers(text, mentions) or _word_numbers(text, mentions)
    if not numbers:
        raise UnitError("no number in the question")
    if len({value for _, _, value in numbers}) > 1:
        raise UnitError(f"more than one quantity ({', '.join(f'{v:g}' for _, _, v in numbers)})")
    src_mention, quantity = None, numbers[0][2]
    for start, end, value in numbers:
        after = [m for m in mentions if m[0] >= end and not text[end:m[0]].strip()]
        if after:
            src_mention = after[0]
            break
    if src_mention is not None:
        others = [m for m in mentions if m is not src_mention and _strong_enough(text, m)]
        return _resolve(quantity, src_mention, others)
    named = [m for m in mentions if _strong_enough(text, m, apart=True)]
    if len(named) < 2:
        raise UnitError("no known unit right after the number")
    asked = [m for m in named if re.search(r"\bhow\s+many\s+$", text[:m[0]], re.IGNORECASE)]
    if asked:
        return _resolve(quantity, next(m for m in named if m is not asked[0]), asked)
    return _resolve(quantity, named[0], named[1:])


def _resolve(quantity: float, src_mention, others) -> Conversion:
    """The conversion from `src_mention` into the one unit of its dimension among `others`; refused when none
    fits, or when two do ("how many meters and yards are in 2 miles")."""
    if not others:
        raise UnitError("no unit to convert into")
    pairs = {(src, dst) for m in others for src in src_mention[3] for dst in m[3]
             if BY_NAME[src].dimension == BY_NAME[dst].dimension}
    pairs = {(s, d) for s, d in pairs if s != d} or pairs  # "8 cc to ml" is a conversion too, if the only one
    if not pairs:
        raise UnitError(f"cannot convert {src_mention[2]!r} into {others[0][2]!r}")
    if len({dst for _, dst in pairs}) > 1:
        raise UnitError(f"more than one unit to convert into ({', '.join(sorted({d for _, d in pairs}))})")
    if len({src for src, _ in pairs}) > 1:
        raise UnitError(f"{src_mention[2]!r} can be read more than one way here")
    (src, dst), = pairs
    return Conversion(quantity, src, dst)


def _strong_enough(text: str, mention, apart: bool = False) -> bool:
    """A weak alias ("in", "m", "s") counts as a unit only where nothing else could be meant: as the last word
    after to/into/in/->/= ("... to m?", "3 ft -> m", "9 ft = ? m"), or right after "how many" ("how many s in
    2 h"). With the quantity apart from the units ("ft to m 9"), also right before or after to/into/->."""
    start, end, alias, _ = mention
    if alias not in _WEAK:
        return True
    before = text[:start].rstrip().lower()
    tail = text[end:].strip()
    if re.search(r"(\b(to|into|in)|->|=\s*\??)$", before) and re.fullmatch(r"[?.!]*", tail):
        return True
    if re.search(r"\bhow\s+many$", before):
        return True
    return apart and (re.search(r"(\b(to|into)|->)$", before) is not None
                      or re.match(r"(to|into)\b|->", tail, re.IGNORECASE) is not None)


def format_number(x: float, digits: int = 3) -> str:
    """`digits` significant digits: plain decimals for 1e-4 <= |x| < 1e7, else short scientific ('8e9')."""
    if x == 0 or x != x or x in (float("inf"), float("-inf")):
        return str(x)
    text = f"{x:.{digits - 1}e}"
    mantissa, exp = text.split("e")
    mantissa = mantissa.rstrip("0").rstrip(".") if "." in mantissa else mantissa
    if 1e-4 <= abs(x) < 1e7:
        return format(Decimal(f"{mantissa}e{int(exp)}").normalize(), "f")
    return f"{mantissa}e{int(exp)}"


def main_convert(quantity: float, src: str, dst: str) -> str:
    """Convert with the registry's truth: `python -m homework.units convert 7 meter foot`."""
    conv = parse_question(f"{quantity} {src} to {dst}")
    return f"{conv.quantity:g} {conv.src} = {conv.answer:.6g} {BY_NAME[conv.dst].plural}"


if __name__ == "__main__":
    from .cli import run_cli

    run_cli({"convert": main_convert})
