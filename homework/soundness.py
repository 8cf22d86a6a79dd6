"""The strict soundness check of a reasoning: every step it writes is true, and its steps carry the question's
quantity through a true conversion fact to the answer.

    python -m homework.soundness rows data/rft.json      # the causes over a file of reasoning rows
    python -m homework.soundness check "How many feet are in 3.5 meters?" "1 meter = 3.28 feet, so 3.5 meters = 3.5 * 3.28 = 11.5. <answer>11.5</answer>"

Sound means all of these hold (each within TOLERANCE):
- every equality the text writes is true: a unit fact for the units it names ("1 quart = 2 pints"), an
  arithmetic step ("3.5 * 3.28 = 11.48", "3 * 3.28 + 0.5 * 3.28 = 9.84 + 1.64"), a quantity restated in
  another unit ("3.5 meters = 11.48 feet"); a number written without its unit counts in the question's target
  unit, or in a unit the text names, whichever makes it true, and a bare number equated to a quantity with a
  unit ("1e3 = 1e3 meters") is a fact without its unit;
- a product multiplies the question's quantity, restated in digits, by the factor from the question's source
  unit to its target unit (a quantity of 1 may state the fact alone: "1 gallon = 8 pints");
- the answer is the value that product's chain of equalities ends in.
Any wording passes that writes its steps as equalities; `reasoning_fault` says which step fails and why.
"""

from __future__ import annotations

import ast
import math
import operator
import re

from .formats import CLOSE, NUMBER, OPEN, parse_answer
from .units import BY_NAME, Conversion, UnitError, factor, parse_question, unit_mentions

TOLERANCE = 0.01  # a fact or product written to 3 significant digits is within 0.5 % of the exact one
_RUN = re.compile(rf"\(*\s*{NUMBER}(?:\s*\)*\s*[-+*/]\s*\(*\s*{NUMBER})*\s*\)*")
# Where one chain of equalities ends and the next begins: a clause break or a joining word.
_BREAK = re.compile(r"[,;:]\s|\.(?:\s|$)|\b(?:so|and|then|thus|therefore|hence|which|since|because)\b", re.I)
_COMPOUND = re.compile(r"[A-Za-z]+(?:/[A-Za-z]+|\^\d|\*\*\d)")  # "km/s", "in^2": a unit-like word
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
CAUSES = ("no answer", "question not understood", "unreadable", "unknown unit", "fact", "product", "quantity",
          "no product", "answer is not the product")  # what `reasoning_fault` names, before its ": detail"


class _Item:
    """One side of an "=": its text, value, the unit it names (None: no unit) and, for a product of numbers
    alone, its factors."""

    def __init__(self, text: str, value: float, unit: str | None, factors: tuple[float, ...] | None, bare: bool):
        self.text, self.value, self.unit, self.factors, self.bare = text, value, unit, factors, bare


def _evaluate(node) -> tuple[float, tuple[float, ...] | None]:
    """(value, factors) of an arithmetic expression; factors when it is numbers multiplied and nothing else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value), (float(node.value),)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value, _ = _evaluate(node.operand)
        return (-value if isinstance(node.op, ast.USub) else value), None
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        (a, fa), (b, fb) = _evaluate(node.left), _evaluate(node.right)
        value = _OPS[type(node.op)](a, b)
        return value, (fa + fb if isinstance(node.op, ast.Mult) and fa and fb else None)
    raise ValueError("not arithmetic")


def _normalize(text: str) -> str:
    text = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text)  # "2,500" -> "2500"
    text = re.sub(r"(?<=\d)\s*(?:[x×]|\btimes\b)\s*(?=[\d(.])", " * ", text)
    return text.replace("≈", "=").replace("−", "-")


def _item(text: str, first: bool, dimension: str) -> _Item | str:
    """The item of one side of an "=" (the run of arithmetic nearest the "="), or a fault."""
    spans = unit_mentions(text)
    masked = list(text)
    for start, end, _, _ in spans:
        masked[start:end] = "§" * (end - start)
    runs = list(_RUN.finditer("".join(masked)))
    if not runs:
        return f"unreadable: no number in {text.strip()!r} (a quantity is restated in digits)"
    run = runs[-1] if first else runs[0]
    expression = run.group().strip()
    try:
        value, factors = _evaluate(ast.parse(expression, mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError):
        return f"unreadable: {expression!r}"
    after = text[run.end():]
    unit = None
    for start, _, _, names in spans:
        if start >= run.end() and not text[run.end():start].strip():
            unit = next((n for n in names if BY_NAME[n].dimension == dimension), names[0])
            break
    else:
        word = _COMPOUND.match(after.lstrip())
        if word:
            return f"unknown unit: {word.group()!r} is no unit of the registry"
    bare = factors is not None and len(factors) == 1 and not expression.startswith("(")
    return _Item(text.strip(), value, unit, factors, bare)


def _chains(body: str, dimension: str) -> list[list[_Item]] | str:
    """The text's chains of equalities ("a = b = c"), each a list of items, or the first fault met."""
    chains = []
    for segment in _BREAK.split(_normalize(body)):
        if "=" not in segment:
            continue
        sides = segment.split("=")
        items = [_item(side, i == 0, dimension) for i, side in enumerate(sides)]
        for item in items:
            if isinstance(item, str):
                return item
        chains.append(items)
    return chains


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= TOLERANCE * max(abs(a), abs(b)) or a == b


def _equal(a: _Item, b: _Item, named: list[str], conv: Conversion) -> bool:
    """a = b holds, reading a number without its unit in the target unit or a unit the text names."""
    if a.unit and b.unit:
        return BY_NAME[a.unit].dimension == BY_NAME[b.unit].dimension and _close(b.value, a.value * factor(a.unit, b.unit))
    if a.unit or b.unit:
        known, other = (a, b) if a.unit else (b, a)
        dims = BY_NAME[known.unit].dimension
        for unit in [conv.dst, *named]:
            if BY_NAME[unit].dimension == dims:
                f = factor(known.unit, unit)
                if _close(other.value, known.value * f if known is a else known.value / f):
                    return True
        return False
    return _close(a.value, b.value)


def _step_fault(a: _Item, b: _Item, named: list[str], conv: Conversion) -> str:
    """'' when a = b holds; else "product" for arithmetic that is off (no change of unit), "quantity" for a
    conversion whose product lacks the quantity it converts, "fact" for any other conversion that is off."""
    if _equal(a, b, named, conv):
        return ""
    text = f"{a.text} = {b.text}"
    if a.unit and b.unit and BY_NAME[a.unit].dimension != BY_NAME[b.unit].dimension:
        return f"fact: {text} equates a {BY_NAME[a.unit].dimension} and a {BY_NAME[b.unit].dimension}"
    if a.unit == b.unit and not (a.bare and b.bare):
        return f"product: {text} is false"
    if b.unit and a.factors and len(a.factors) > 1:  # "10 * 3.28e3 = 31.2e3 feet": the product itself is off
        return f"product: {text} is false"
    if a.unit and b.unit is None and a.factors and len(a.factors) > 1:  # "6 * 25.4 millimeters = 158"
        return f"product: {text} is false"
    if a.unit and b.factors and len(b.factors) > 1 and a.value not in b.factors:  # "7 m = 8 * 3.28"
        return f"quantity: {text} does not multiply the {a.value:g} it converts"
    return f"fact: {text} is false"


def reasoning_fault(question: str, reasoning: str) -> str:
    """What is wrong with a reasoning, or '' when it is sound (the module's docstring says what sound means).

    The fault is one of CAUSES, then ": " and the step that fails ("fact: 1 pint = 2 pints is false").
    """
    text = reasoning.split(CLOSE)[0]
    answer = parse_answer(text)
    if math.isnan(answer):
        return "no answer: no <answer> tag with a number"
    try:
        conv = parse_question(question)
    except UnitError as err:
        return f"question not understood: {err}"
    dimension = BY_NAME[conv.src].dimension
    chains = _chains(text.split(OPEN)[0], dimension)
    if isinstance(chains, str):
        return chains
    named = list(dict.fromkeys(i.unit for chain in chains for i in chain if i.unit))
    for unit in named:
        if BY_NAME[unit].dimension != dimension:
            return f"fact: {BY_NAME[unit].plural} are no {dimension}, the question's dimension"
    for chain in chains:
        if chain[0].bare and chain[0].unit is None and any(i.unit for i in chain[1:]):
            return f"fact: {chain[0].text} = {chain[1].text} states a number without its unit"
        for a, b in zip(chain, chain[1:]):
            fault = _step_fault(a, b, named, conv)
            if fault:
                return fault
    true = factor(conv.src, conv.dst)
    products = [(chain, item) for chain in chains for item in chain if item.factors and len(item.factors) > 1]
    with_quantity = [(chain, item) for chain, item in products if conv.quantity in item.factors]
    for chain, item in with_quantity:
        rest = list(item.factors)
        rest.remove(conv.quantity)
        if _close(math.prod(rest), true):
            return _answer_fault(chain, answer, conv)
    if conv.quantity == 1:  # the fact alone answers a quantity of 1
        for chain in chains:
            for a, b in zip(chain, chain[1:]):
                if a.unit == conv.src and a.value == 1 and b.unit in (conv.dst, None) and _close(b.value, true):
                    return _answer_fault(chain, answer, conv)
    if with_quantity:
        return (f"fact: {with_quantity[0][1].text} does not multiply by the factor from {conv.src} to {conv.dst} "
                f"({true:.4g})")
    if products:
        return f"quantity: no product has the question's quantity {conv.quantity:g}"
    return f"no product: nothing multiplies {conv.quantity:g} by the factor from {conv.src} to {conv.dst}"


def _answer_fault(chain: list[_Item], answer: float, conv: Conversion) -> str:
    last = chain[-1]
    value = last.value * factor(last.unit, conv.dst) if last.unit else last.value
    if last.unit and BY_NAME[last.unit].dimension != BY_NAME[conv.dst].dimension:
        return f"answer is not the product: the chain ends in {last.unit}"
    return "" if _close(answer, value) else f"answer is not the product: {answer:g} after {last.text}"


def miss_cause(question: str, reasoning: str) -> str:
    """The cause (one of CAUSES) of a reasoning's fault; "sound" when it has none."""
    return reasoning_fault(question, reasoning).split(":")[0] or "sound"


def is_sound(question: str, reasoning: str) -> bool:
    return not reasoning_fault(question, reasoning)


def check(question: str, reasoning: str) -> str:
    """Print the strict check's verdict on one reasoning: "sound", or the step that fails and why.

    Args:
        question: the question asked.
        reasoning: the model's text, ending in <answer>...</answer>.
    """
    return reasoning_fault(question, reasoning) or "sound"


def rows(path: str, show: int = 0) -> str:
    """Count the causes over a file of [question, answer, reasoning, ...] rows (data/rft.json).

    Args:
        path: the rows file.
        show: example rows printed for each cause other than sound.
    """
    from collections import Counter

    from .data import load_rows

    causes: Counter = Counter()
    for question, _, reasoning, *_ in load_rows(path, (3, 4)):
        cause = miss_cause(question, reasoning)
        causes[cause] += 1
        if cause != "sound" and causes[cause] <= show:
            print(f"{cause}: {question!r} -> {reasoning!r}")
    return f"{path}: {sum(causes.values())} rows; " + ", ".join(f"{c} {k}" for c, k in causes.most_common())


if __name__ == "__main__":
    from .cli import run_cli

    run_cli({"check": check, "rows": rows})
