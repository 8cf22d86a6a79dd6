"""In-context chain of thought with the untrained instruct model.

    python -m homework.cot test                  # 100 validation questions

The prompt is a chat: short instructions, worked examples, then the question. Because a 135M model cannot
recall conversion factors, the prompt also states the one fact the question needs ("1 meter = 3.28084
feet"), which the units registry picks from the question text alone, never from a stored answer.
"""

from __future__ import annotations


from .base_llm import BaseLLM, question_prompt, run_cli
from .units import BY_NAME, UnitError, factor, format_number, parse_question

INSTRUCTIONS = ("You convert units. Use the fact given, multiply the quantity by it, and be concise. "
                "End with the result inside <answer></answer>.")
# Worked examples follow DOMAIN conventions; their quantities and units are not tied to any validation row.
EXAMPLES = (
    ("How many grams are in 3 kilograms?", "kilogram", "gram", 3.0),
    ("How many weeks is 8 days?", "day", "week", 8.0),
    ("What is 6 miles in kilometers?", "mile", "kilometer", 6.0),
    ("How many seconds are in 3 years?", "year", "second", 3.0),
    ("Convert 5 MB to gigabytes.", "megabyte", "gigabyte", 5.0),
)
FACT_DIGITS = 3  # significant digits of a stated factor: few digits to multiply, still well inside 5 %


def hint(question: str) -> str:
    """The conversion fact a question needs, read from its text; empty when the units are unknown."""
    try:
        conv = parse_question(question)
    except UnitError:
        return ""
    return f"1 {conv.src} = {fact_number(factor(conv.src, conv.dst))} {BY_NAME[conv.dst].plural}"


def fact_number(x: float) -> str:
    """A factor as the model multiplies best: plain between 0.1 and 1000, else mantissa and power of ten,
    because a 135M model miscounts long runs of zeros ('7 * 1000000') but copies an exponent reliably."""
    if 0.1 <= abs(x) < 1000:
        return format_number(x, FACT_DIGITS)
    mantissa, exp = f"{x:.{FACT_DIGITS - 1}e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exp)}"


def worked_answer(quantity: float, src: str, dst: str) -> str:
    """A reasoning trace in the style the model should imitate: restate the fact, multiply, answer."""
    f = fact_number(factor(src, dst))
    mantissa, _, exp = f.partition("e")
    product = format_number(quantity * float(mantissa), FACT_DIGITS) + (f"e{exp}" if exp else "")
    q = format_number(quantity)
    return (f"1 {src} = {f} {BY_NAME[dst].plural}, so {q} {BY_NAME[src].plural} = {q} * {f} = {product}. "
            f"<answer>{product}</answer>")


def cot_messages(question: str) -> list[dict]:
    """The chat for one question: instructions, worked examples, then the question with its fact."""
    messages = [{"role": "system", "content": INSTRUCTIONS}]
    for q, src, dst, quantity in EXAMPLES:
        messages.append({"role": "user", "content": f"{q}\nFact: {hint(q)}"})
        messages.append({"role": "assistant", "content": worked_answer(quantity, src, dst)})
    question = question_prompt(question)
    fact = hint(question)
    messages.append({"role": "user", "content": f"{question}\nFact: {fact}" if fact else question})
    return messages


class CoTModel(BaseLLM):
    max_new_tokens = 64  # "q * f = r. <answer>r</answer>" with room for a longer sentence

    def format_prompt(self, question: str) -> str:
        return self.tokenizer.apply_chat_template(cot_messages(question), add_generation_prompt=True,
                                                  tokenize=False)


def load() -> CoTModel:
    return CoTModel()


def test(split: str = "valid", max_question: int = 100) -> str:
    """Benchmark the CoT model; last line `benchmark_result.accuracy=X benchmark_result.answer_rate=Y`.

    Args:
        split: data split name (data/<split>.json) or a JSON path.
        max_question: how many questions (the course uses 100).
    """
    from .sft import _test

    return _test(load(), split, max_question)


def main() -> None:
    run_cli({"test": test})


if __name__ == "__main__":
    main()
