"""Every text format of the project, in one place: prompts, completions, hints, parsing and the checks.

    python -m homework.formats show "How many feet are in 7 meters?"   # each format for one question

The inference prompt, the SFT answer, the RFT reasoning shape, the conversion-fact hint, `worked_answer`,
`parse_answer`, `judge` and `encode` (token ids and the label mask of one training row)
live here; the strict check of a reasoning's steps is `homework.soundness`. Trainers, datagen, the benchmark and the grader import them and never rebuild a string.
An adapter's record names its prompt and completion formats (`FORMATS`), so `load()` can tell whether the
code it runs still renders the prompt the adapter was trained on.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

from .data import is_answer_valid
from .units import BY_NAME, UnitError, factor, format_number, parse_question

# Significant digits in a trained SFT answer. Two digits always land within the 5 % check (worst case
# 0.05/1.05 = 4.8 %) and leave the model nothing to memorise beyond what the check needs.
ANSWER_DIGITS = 2
# Significant digits of a stated conversion factor: few digits to multiply, still well inside 5 %.
FACT_DIGITS = 3
MAX_QUESTION_CHARS = 500  # longer questions are cut here: bounded prompts, bounded memory
OPEN, CLOSE = "<answer>", "</answer>"


def question_prompt(question: str) -> str:
    """The inference prompt of the base, SFT and RFT models: the question itself, continued by the model.

    A question longer than MAX_QUESTION_CHARS is cut to its start (`homework.ask` says so when it happens).
    One that ends in a letter or digit gets a "?": every training question ends in "?" or ".", and without
    it the model reads an unpunctuated question ("What do 3 lb make in g") as text to go on writing and
    answers without the opening tag (docs/decisions.md, "question_prompt").
    """
    text = question.strip()
    text = text + "?" if text and text[-1].isalnum() else text
    return text[:MAX_QUESTION_CHARS].strip()


def format_answer(value: float) -> str:
    """The answer text a model is trained to emit; `parse_answer` reads it back."""
    return f"{OPEN}{format_number(value, ANSWER_DIGITS)}{CLOSE}"


def sft_completion(answer: float) -> str:
    """What the SFT model writes after the prompt: the answer alone."""
    return " " + format_answer(answer)


def stepped_completion(question: str, answer: float) -> str:
    """SFT's answer to a question whose quantity has a fractional part, worked in steps the model knows by
    heart: the whole part and the fraction, each times the fact, then their sum ("8.5 * 33.8 = 8 * 33.8 + 0.5 *
    33.8 = 270 + 16.9 = 287. <answer>287</answer>"); the answer alone (`sft_completion`) for a whole quantity or
    a question the registry cannot read. Remembering 8.5 L in fluid ounces outright is what SFT got wrong on
    half its halves and tenths (docs/training.md)."""
    try:
        conv = parse_question(question)
    except UnitError:
        return sft_completion(answer)
    whole = math.floor(conv.quantity)
    part = round(conv.quantity - whole, 6)
    if not part or not is_answer_valid(conv.answer, answer):
        return sft_completion(answer)
    f = fact_number(factor(conv.src, conv.dst))
    q, p = format_number(conv.quantity), format_number(part)
    if not whole:
        product = product_text(p, f)
        return f" {q} * {f} = {product}. {OPEN}{product}{CLOSE}"
    a, b = product_text(whole, f), product_text(p, f)
    total = sum_text(a, b)
    return f" {q} * {f} = {whole} * {f} + {p} * {f} = {a} + {b} = {total}. {OPEN}{total}{CLOSE}"


def rft_completion(reasoning: str) -> str:
    """What the RFT model writes after the prompt: its accepted reasoning, ending in the answer tag."""
    return " " + reasoning.strip()


# The names an adapter record stores for the formats it was trained with (see `homework.training`).
FORMATS = {"prompt": {"question": question_prompt},
           "completion": {"answer": sft_completion, "answer_steps": stepped_completion, "reasoning": rft_completion}}

_ANSWER = re.compile(r"<answer>\s*([-+]?[\d,]*\.?\d+(?:[eE][-+]?\d+)?)")


def parse_answer(text: str) -> float:
    """The number inside the first <answer> tag, or NaN; never raises.

    Accepts thousands separators, exponents, signs, a missing close tag and anything after it.
    """
    match = _ANSWER.search(text or "")
    if not match:
        return float("nan")
    try:
        return float(match.group(1).replace(",", ""))
    except ValueError:
        return float("nan")


def fact_number(x: float) -> str:
    """A factor as the model multiplies best: plain between 0.1 and 1000, else mantissa and power of ten,
    because a 135M model miscounts long runs of zeros ('7 * 1000000') but copies an exponent reliably."""
    if 0.1 <= abs(x) < 1000:
        return format_number(x, FACT_DIGITS)
    mantissa, exp = f"{x:.{FACT_DIGITS - 1}e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exp)}"


def fact(src: str, dst: str) -> str:
    """The one conversion fact a question needs, as every prompt states it: '1 meter = 3.28 feet'."""
    return f"1 {src} = {fact_number(factor(src, dst))} {BY_NAME[dst].plural}"


def hint(question: str) -> str:
    """The conversion fact a question needs, read from its text alone; empty when the units are unknown."""
    try:
        conv = parse_question(question)
    except UnitError:
        return ""
    return fact(conv.src, conv.dst)


def with_hint(question: str) -> str:
    """The question with its conversion fact on a line after it ("How many meters ...?\nFact: 1 mile = 1.61e3
    meters"), as the CoT model and hinted RFT sampling see it; unchanged when the registry cannot read it.

    After the question, not before: the CoT model scored higher this way than with the fact in front
    ("1 mile = 1.61e3 meters. How many ..."; docs/decisions.md, "with_hint").
    """
    stated = hint(question)
    return f"{question.strip()}\nFact: {stated}" if stated else question.strip()


def worked_answer(quantity: float, src: str, dst: str) -> str:
    """A reasoning trace in the shape the models learn: restate the fact, multiply, answer."""
    f = fact_number(factor(src, dst))
    q = format_number(quantity)
    product = product_text(quantity, f)
    return (f"1 {src} = {f} {BY_NAME[dst].plural}, so {q} {BY_NAME[src].plural} = {q} * {f} = {product}. "
            f"{OPEN}{product}{CLOSE}")


def worked_product(quantity: float, src: str, dst: str) -> str:
    """The in-context CoT examples' shorter shape: the fact is on the question's line already, so the answer
    goes straight to the product, units kept ("8 meters = 8 * 3.28 feet = 26.2 feet. <answer>26.2</answer>")."""
    f = fact_number(factor(src, dst))
    q = format_number(quantity)
    product = product_text(quantity, f)
    unit = BY_NAME[dst].plural
    return f"{q} {BY_NAME[src].plural} = {q} * {f} {unit} = {product} {unit}. {OPEN}{product}{CLOSE}"


def product_text(a: str | float, b: str | float) -> str:
    """The product `a * b` written as the reasoning writes it: FACT_DIGITS significant digits, and a factor's
    power of ten carried over as it stands ("7 * 2.64e-4" -> "1.85e-4", "8.64e4 * 3.5" -> "30.2e4"; both
    powers add up). ValueError when either is no number or the product is not finite."""
    value = float(a) * float(b)
    if not math.isfinite(value):
        raise ValueError(f"no finite product of {a!r} and {b!r}")
    (ma, _, ea), (mb, _, eb) = (str(x).lower().partition("e") for x in (a, b))
    if ea or eb:
        scaled = format_number(float(ma) * float(mb), FACT_DIGITS)
        if "e" not in scaled:
            return f"{scaled}e{int(ea or 0) + int(eb or 0)}"
    return format_number(value, FACT_DIGITS)


def product_steps(a: str | float, b: str | float) -> str | None:
    """The product `a * b` worked in steps the model knows by heart: the quantity times each digit of the
    factor in its place, then their sum, written in full ("7 * 3.28" -> "21 + 1.4 + 0.56 = 22.96", "8 *
    3.65e4" -> "24e4 + 4.8e4 + 0.4e4 = 29.2e4"). None where there is nothing to split: a factor of one digit
    ("1e3", "8e6"), a quantity of 1 or a power of ten, or a quantity written with a power of ten. Written in
    one go, the product was the 135M model's commonest error ("6 * 25.4 = 158"; docs/experiments.md)."""
    ma, _, ea = str(a).lower().partition("e")
    mb, _, eb = str(b).lower().partition("e")
    try:
        quantity, mantissa = Decimal(ma), Decimal(mb)
    except InvalidOperation:
        return None
    if ea or not quantity.is_finite() or not mantissa.is_finite() or quantity <= 0:
        return None
    _, digits, exponent = mantissa.as_tuple()
    places = [Decimal(d).scaleb(len(digits) - 1 - i + exponent) for i, d in enumerate(digits) if d]
    if len(places) < 2 or quantity.normalize().as_tuple().digits == (1,):
        return None
    power = f"e{int(eb)}" if eb else ""

    def text(x: Decimal) -> str:
        return format(x.normalize(), "f") + power

    parts = [quantity * place for place in places]
    return " + ".join(text(p) for p in parts) + " = " + text(sum(parts))


_STEPS = re.compile(r"\d \* [^=]*=\s*[-+]?\d[\d.]*(?:e[-+]?\d+)? \+ ")


def worked_in_steps(reasoning: str) -> bool:
    """Whether a reasoning works its product in steps: "A * B = p1 + p2 ..." (`product_steps`)."""
    return bool(_STEPS.search(reasoning))


def sum_text(a: str, b: str) -> str:
    """The sum of two products as `product_text` writes them; a power of ten they share is kept as it stands
    ("28.8e3" + "1.8e3" -> "30.6e3")."""
    (ma, _, ea), (mb, _, eb) = (x.lower().partition("e") for x in (a, b))
    if ea and ea == eb:
        scaled = format_number(float(ma) + float(mb), FACT_DIGITS)
        if "e" not in scaled:
            return f"{scaled}e{int(ea)}"
    return format_number(float(a) + float(b), FACT_DIGITS)


def judge(text: str, answer: float) -> tuple[str, str]:
    """(verdict, reasoning cut after </answer>); verdict is ok, no tag, truncated or wrong value.

    "ok" means the benchmark's own parser and check accept the answer: rejection sampling uses nothing else.
    """
    if OPEN not in text:
        return "no tag", text
    end = text.find(CLOSE, text.find(OPEN))
    if end < 0:
        return "truncated", text
    reasoning = text[: end + len(CLOSE)].strip()
    return ("ok" if is_answer_valid(parse_answer(reasoning), answer) else "wrong value"), reasoning


# A number as the trained reasoning writes it (`units.format_number`: no thousands commas, a lower-case exponent);
# calculator.py and the soundness check read the steps with it. `_ANSWER` above also takes commas, since it reads
# whatever a model puts in the tag, and units.py's quantity pattern reads what people type in a question.
NUMBER = r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?"


def encode(tokenizer, prompt: str, completion: str) -> dict[str, list[int]]:
    """Token ids of prompt + completion + EOS, with labels on the completion and EOS only.

    The two parts are tokenized apart, so the label boundary is exact even where a token could merge across it.
    """
    prompt_ids = tokenizer(prompt, add_special_tokens=False).input_ids
    completion_ids = tokenizer(completion, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    ids = prompt_ids + completion_ids
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": [-100] * len(prompt_ids) + completion_ids}


def ending_tokens(tokenizer) -> list[int]:
    """Token ids of a row's ending: the closing "</answer>", then EOS."""
    return tokenizer(CLOSE, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]


def trim_ending(row: dict[str, list[int]], tail: list[int]) -> dict[str, list[int]]:
    """The row without the tokens after "</" of its ending `tail` (`ending_tokens`; unchanged if it lacks it).

    In a causal model no earlier token sees the cut ones, so every loss left in the row is unchanged.
    """
    ids = row["input_ids"]
    if len(ids) <= len(tail) or ids[-len(tail):] != tail:
        return row
    keep = len(ids) - len(tail) + 1
    return {key: value[:keep] for key, value in row.items()}


def show(question: str) -> str:
    """Print each format for one question: prompt, hinted prompt, SFT answer and the worked reasoning."""
    conv = parse_question(question)
    return "\n".join([f"prompt:      {question_prompt(question)!r}", f"with hint:   {with_hint(question)!r}",
                      f"sft answer:  {sft_completion(conv.answer)!r}",
                      f"reasoning:   {rft_completion(worked_answer(conv.quantity, conv.src, conv.dst))!r}"])


if __name__ == "__main__":
    from .cli import run_cli

    run_cli({"show": show})
