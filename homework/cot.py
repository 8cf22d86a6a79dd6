"""In-context chain of thought with the untrained instruct model.

    python -m homework.cot test                  # 100 validation questions
    python -m homework.cot test --calculator     # the same, each product the model sets up computed for it

The prompt is a chat: short instructions, worked examples, then the question. Because a 135M model cannot
recall conversion factors, each question comes with the one fact it needs on a line after it ("How many ...?
Fact: 1 meter = 3.28 feet"), which the units registry reads from the question text alone, never from a stored
answer (`formats.with_hint`, the same hint RFT sampling uses).

The worked examples are two of the question's own unit pair, at fixed quantities (`pair_examples`), in the
short shape `formats.worked_product` ("8 meters = 8 * 3.28 feet = 26.2 feet."); none is shared by every prompt.
It scored above shared examples in the RFT reasoning shape, in less time (docs/decisions.md, "CoT prompt").

RFT's first round samples a different chat, `ReasoningCoT`: five shared examples in the RFT reasoning shape
(`formats.worked_answer`), the prompt data/rft.json's first round was sampled with.
"""

from __future__ import annotations

from .base_llm import BaseLLM
from .cli import run_cli
from .data import evaluate
from .formats import question_prompt, with_hint, worked_answer, worked_product
from .units import BY_NAME, UnitError, factor, parse_question

INSTRUCTIONS = ("You convert units. Use the fact given, multiply the quantity by it, and be concise. "
                "End with the result inside <answer></answer>.")
# Worked examples follow the unit conventions of docs/units.md; their quantities and units are not tied to any
# validation row. RFT's first-round sampler shares all five; the CoT prompt the first SHARED_EXAMPLES.
EXAMPLES = (
    ("How many grams are in 3 kilograms?", "kilogram", "gram", 3.0),
    ("How many weeks is 8 days?", "day", "week", 8.0),
    ("What is 6 miles in kilometers?", "mile", "kilometer", 6.0),
    ("How many seconds are in 3 years?", "year", "second", 3.0),
    ("Convert 5 MB to gigabytes.", "megabyte", "gigabyte", 5.0),
)
SHARED_EXAMPLES = 0  # with two pair examples: 0.615, 1: 0.575, 2: 0.59 (first 200 of data/valid.json, bf16)
PAIR_QUANTITIES = (3.0, 8.0, 5.0, 2.0, 6.0, 4.0, 9.0)  # the pair examples' quantities, first ones first
PAIR_EXAMPLES = 2
NEAR = 0.1  # an example quantity this close to the question's quantity, or to its answer, is skipped


def pair_examples(question: str, k: int = PAIR_EXAMPLES) -> list[tuple[str, str, str, float]]:
    """k worked examples of the question's own conversion, at the first of PAIR_QUANTITIES that are not
    within NEAR of its quantity (that example's product would be the answer) nor of quantity x factor (the
    example's quantity would read as the answer); none when the registry cannot read the question.

    They depend on the question alone, never on the other questions asked, so a prompt is the same in any
    batch (the grader asks each prompt twice, among different questions, and checks this)."""
    try:
        conv = parse_question(question)
    except UnitError:
        return []
    src, dst = BY_NAME[conv.src], BY_NAME[conv.dst]
    scaled = conv.quantity * factor(conv.src, conv.dst)
    chosen = [q for q in PAIR_QUANTITIES
              if abs(q - conv.quantity) > NEAR * abs(conv.quantity) and abs(q - scaled) > NEAR * abs(scaled)][:k]
    return [(f"How many {dst.plural} are in {q:g} {src.plural}?", conv.src, conv.dst, q) for q in reversed(chosen)]


def _chat(examples, worked, question: str) -> list[dict]:
    messages = [{"role": "system", "content": INSTRUCTIONS}]
    for q, src, dst, quantity in examples:
        messages.append({"role": "user", "content": with_hint(q)})
        messages.append({"role": "assistant", "content": worked(quantity, src, dst)})
    messages.append({"role": "user", "content": with_hint(question_prompt(question))})
    return messages


def cot_messages(question: str) -> list[dict]:
    """The chat for one question: instructions, the shared worked examples (if any), the question's own pair's,
    then the question with its fact."""
    return _chat((*EXAMPLES[:SHARED_EXAMPLES], *pair_examples(question)), worked_product, question)


def reasoning_messages(question: str) -> list[dict]:
    """RFT's first-round sampling chat: instructions, the five shared examples in the RFT reasoning shape, then
    the question with its fact."""
    return _chat(EXAMPLES, worked_answer, question)


class CoTModel(BaseLLM):
    max_new_tokens = 64  # "q * f = r. <answer>r</answer>" with room for a longer sentence
    min_new_tokens = 1  # stops at its own end of turn after the answer tag; never empty
    messages = staticmethod(cot_messages)

    def format_prompt(self, question: str) -> str:
        return self.tokenizer.apply_chat_template(self.messages(question), add_generation_prompt=True,
                                                  tokenize=False)


class ReasoningCoT(CoTModel):
    """The untrained model prompted to write the RFT reasoning shape: what `homework.datagen --model cot`
    samples (data/rft.json's first round)."""
    messages = staticmethod(reasoning_messages)


def load(calculator: bool = False) -> BaseLLM:
    """The untrained base model with the CoT prompt; with `calculator`, each product it sets up ("7 * 3.28 =") is
    computed for it (`homework.calculator`: an opt-in figure, not the pure model that `load_cot()` returns)."""
    llm = CoTModel()
    if calculator:
        from .calculator import with_calculator

        return with_calculator(llm)
    return llm


def test(split: str = "valid", max_question: int = 100, calculator: bool = False) -> str:
    """Benchmark the CoT model; last line `benchmark_result.accuracy=X benchmark_result.answer_rate=Y
    benchmark_result.sound_accuracy=Z` (Z: right with sound steps, `homework.soundness`).

    Args:
        split: data split name (data/<split>.json) or a JSON path.
        max_question: how many questions (the course uses 100).
        calculator: decode with the calculator (the model's own products computed; see homework/calculator.py).
    """
    return evaluate(load(calculator), split, max_question, reasoned=True)


def main() -> None:
    run_cli({"test": test})


if __name__ == "__main__":
    main()
