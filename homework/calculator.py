"""Calculator decoding for the RFT and CoT models, in the manner of GSM8K's calculator annotations (Cobbe et al.
2021).

    python -m homework.rft test --calculator                      # the benchmark with the calculator on
    python -m homework.cot test --calculator                      # the untrained model's CoT, likewise
    python -m homework.ask --calculator "How many gallons are there in 86 m**3?"

The model writes the fact and sets up the product itself ("... = 86 * 264 ="). There decoding stops for
that row, the product of the two numbers the model wrote is computed and written as the model writes
numbers (`formats.product_text`: three significant digits, the factor's power of ten carried over), and the
line is closed as the trained reasoning closes it (". <answer>22700</answer>": there the answer is always the
product, and the model's turn ends after it; going on from there, the model wrote stray tokens such as
"3</answer>"). Rows stop at their own points in one batch, and the others go on to their own end. Only a product the model wrote is ever computed: a
wrong fact stays wrong, and a product that is not two numbers ("7 * =") or not finite is left as the model
wrote it. This is an opt-in mode of the RFT and CoT models (`rft.load(calculator=True)`, `cot.load(calculator=True)`);
`load_rft()`, `load_cot()` and the grader use the pure models.
"""

from __future__ import annotations

import re

from transformers import StoppingCriteria

from .base_llm import BaseLLM
from .formats import CLOSE, NUMBER, OPEN, product_text

# "A * B =", or "A * B feet =" as the CoT examples write it (a unit: no digit, "=" or "*", at most 40 characters)
PRODUCT = re.compile(rf"(?<![\w.])({NUMBER}) \* ({NUMBER})(?: [^\d=*]{{1,40}}?)? =$")


def calculation(text: str) -> str | None:
    """What the calculator writes after `text` (" 22700. <answer>22700</answer>"), or None when text does not end
    in a product to do.

    The result closes the line as the trained reasoning closes it: the product, then the answer, which that
    reasoning always states equal to the product. Left open, the model carried the result on into the number
    it had in mind: "= 9" became "= 9.5", "= 9." became "= 9.5.", "= 1." became "= 1. warning".
    """
    m = PRODUCT.search(text.rstrip())
    if not m or not text.rstrip().endswith("="):
        return None
    try:
        product = product_text(m[1], m[2])
    except (ValueError, OverflowError):
        return None
    return f" {product}. {OPEN}{product}{CLOSE}"


def filled(text: str) -> bool:
    """Whether `text`, decoded with the calculator, holds a product the calculator wrote: its first "A * B ="
    is followed by exactly what `calculation` writes there. Decoding stops at the first such point, so under
    the calculator nothing after it is the model's."""
    for i, char in enumerate(text):
        if char == "=":
            result = calculation(text[:i + 1])
            if result is not None:
                return text[i + 1:].startswith(result)
    return False


class StopAtProduct(StoppingCriteria):
    """Ends a row of a batch once its new text ends in "A * B =" (the other rows go on)."""

    def __init__(self, tokenizer, prompt_width: int):
        self.tokenizer, self.prompt_width = tokenizer, prompt_width

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        tails = self.tokenizer.batch_decode(input_ids[:, self.prompt_width:][:, -16:], skip_special_tokens=True)
        return torch.tensor([calculation(t) is not None for t in tails], device=input_ids.device)


class CalculatorLLM(BaseLLM):
    """A loaded model whose generation hands each product it sets up to the calculator (see the module).

    Built from a loaded BaseLLM, whose model and tokenizer it shares (nothing is loaded again)."""

    def __init__(self, llm: BaseLLM):  # not BaseLLM.__init__: the model is loaded already
        self.tokenizer, self.model, self.device, self.dtype = llm.tokenizer, llm.model, llm.device, llm.dtype
        self.max_new_tokens, self.min_new_tokens = llm.max_new_tokens, llm.min_new_tokens
        self.prompted = llm  # the loaded model whose prompt format this one keeps (the CoT chat, or the question)
        self.calls = 0  # products computed since load (the tests read it)

    def format_prompt(self, question: str) -> str:
        return self.prompted.format_prompt(question)

    def _generate_chunk(self, prompts: list[str], n: int, temperature: float, stop=None) -> list[str]:
        texts = super()._generate_chunk(prompts, n, temperature, stop=StopAtProduct)
        out = []
        for text in texts:
            result = calculation(text)
            self.calls += result is not None
            out.append(text + (result or ""))
        return out


def with_calculator(llm: BaseLLM) -> CalculatorLLM:
    """The same loaded model and tokenizer, decoding with the calculator."""
    return CalculatorLLM(llm)
