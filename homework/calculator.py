"""Calculator decoding for the RFT model, in the manner of GSM8K's calculator annotations (Cobbe et al. 2021).

    python -m homework.rft test --calculator                      # the benchmark with the calculator on
    python -m homework.ask --calculator "How many gallons are there in 86 m**3?"

The model writes the fact and sets up the product itself ("... = 86 * 264 ="). There decoding stops for
that row, the product of the two numbers the model wrote is computed and written as the model writes
numbers (`formats.product_text`: three significant digits, the factor's power of ten carried over), and the
model goes on from there (". <answer>22700</answer>"). Rows stop at their own points in one batch; each
row is calculated at most `MAX_CALLS` times. Only a product the model wrote is ever computed: a wrong fact
stays wrong, and a product that is not two numbers ("7 * =") or not finite is left as the model wrote it.
This is an opt-in mode of the RFT model (`rft.load(calculator=True)`); `load_rft()` and the grader use the
pure model.
"""

from __future__ import annotations

import re

from transformers import StoppingCriteria

from .base_llm import BaseLLM
from .formats import product_text

_NUM = r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?"
PRODUCT = re.compile(rf"(?<![\w.])({_NUM}) \* ({_NUM}) =$")
MAX_CALLS = 2  # a reasoning line multiplies once; a second call leaves room for a restated product
CONTINUATION_TOKENS = 32  # after the product: ". <answer>p</answer>" and the end of turn


def calculation(text: str) -> str | None:
    """What the calculator writes after `text` (" 22700"), or None when text does not end in a product to do."""
    m = PRODUCT.search(text.rstrip())
    if not m or not text.rstrip().endswith("="):
        return None
    try:
        return " " + product_text(m[1], m[2])
    except (ValueError, OverflowError):
        return None


class StopAtProduct(StoppingCriteria):
    """Ends a row of a batch once its new text ends in "A * B =" (the other rows go on)."""

    def __init__(self, tokenizer, prompt_width: int):
        self.tokenizer, self.prompt_width = tokenizer, prompt_width

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        tails = self.tokenizer.batch_decode(input_ids[:, self.prompt_width:][:, -16:], skip_special_tokens=True)
        return torch.tensor([calculation(t) is not None for t in tails], device=input_ids.device)


class CalculatorLLM(BaseLLM):
    """A loaded model whose generation hands each product it sets up to the calculator (see the module)."""

    calls = 0  # products computed since load, for `ask` and the tests

    def _generate_chunk(self, prompts: list[str], n: int, temperature: float) -> list[str]:
        rows = [p for p in prompts for _ in range(n)]
        texts = [""] * len(rows)
        pending = list(range(len(rows)))
        budget, self.stop = self.max_new_tokens, StopAtProduct
        try:
            for call in range(MAX_CALLS + 1):
                if call == MAX_CALLS:
                    self.stop = None  # the last continuation runs to the row's own end
                out = BaseLLM._generate_chunk(self, [rows[i] + texts[i] for i in pending], 1, temperature)
                waiting = []
                for i, text in zip(pending, out):
                    texts[i] += text
                    result = calculation(texts[i]) if call < MAX_CALLS else None
                    if result is not None:
                        texts[i] += result
                        self.calls += 1
                        waiting.append(i)
                pending = waiting
                if not pending:
                    break
                self.max_new_tokens = CONTINUATION_TOKENS
        finally:
            self.max_new_tokens, self.stop = budget, None
        return texts


def with_calculator(llm: BaseLLM) -> CalculatorLLM:
    """The same loaded model and tokenizer, decoding with the calculator."""
    calc = CalculatorLLM.__new__(CalculatorLLM)
    calc.__dict__.update(llm.__dict__)
    return calc
