"""In-context chain of thought with the untrained instruct model.

    python -m homework.cot test                  # 100 validation questions

The prompt is a chat: short instructions, worked examples, then the question. Because a 135M model cannot
recall conversion factors, each question comes with the one fact it needs on a line after it ("How many ...?
Fact: 1 meter = 3.28 feet"), which the units registry reads from the question text alone, never from a stored
answer (`formats.with_hint`, the same hint RFT sampling uses).
"""

from __future__ import annotations

from .base_llm import BaseLLM
from .cli import run_cli
from .data import evaluate
from .formats import question_prompt, with_hint, worked_answer

INSTRUCTIONS = ("You convert units. Use the fact given, multiply the quantity by it, and be concise. "
                "End with the result inside <answer></answer>.")
# Worked examples follow the unit conventions of docs/units.md; their quantities and units are not tied to any validation row.
EXAMPLES = (
    ("How many grams are in 3 kilograms?", "kilogram", "gram", 3.0),
    ("How many weeks is 8 days?", "day", "week", 8.0),
    ("What is 6 miles in kilometers?", "mile", "kilometer", 6.0),
    ("How many seconds are in 3 years?", "year", "second", 3.0),
    ("Convert 5 MB to gigabytes.", "megabyte", "gigabyte", 5.0),
)


def cot_messages(question: str) -> list[dict]:
    """The chat for one question: instructions, worked examples, then the question with its fact."""
    messages = [{"role": "system", "content": INSTRUCTIONS}]
    for q, src, dst, quantity in EXAMPLES:
        messages.append({"role": "user", "content": with_hint(q)})
        messages.append({"role": "assistant", "content": worked_answer(quantity, src, dst)})
    messages.append({"role": "user", "content": with_hint(question_prompt(question))})
    return messages


class CoTModel(BaseLLM):
    max_new_tokens = 64  # "q * f = r. <answer>r</answer>" with room for a longer sentence
    min_new_tokens = 1  # stops at its own end of turn after the answer tag; never empty

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
    return evaluate(load(), split, max_question)


def main() -> None:
    run_cli({"test": test})


if __name__ == "__main__":
    main()
