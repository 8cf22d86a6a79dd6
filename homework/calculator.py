"""Calculator decoding for the RFT and CoT models, in the manner of GSM8K's calculator annotations (Cobbe et al.
2021).

    python -m homework.rft test --calculator                      # the benchmark with the calculator on
    python -m homework.cot test --calculator                      # the untrained model's CoT, likewise
    python -m homework.ask --calculator "How many gallons are there in 86 m**3?"

    python -m homework.calculator steps runs/rft_sound/rft_sound.json   # its products rewritten in steps

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
from .formats import CLOSE, NUMBER, OPEN, product_steps, product_text

# "A * B =", or "A * B feet =" as the CoT examples write it (a unit: no digit, "=" or "*", at most 40 characters)
PRODUCT = re.compile(rf"(?<![\w.])({NUMBER}) \* ({NUMBER})(?: [^\d=*]{{1,40}}?)? =$")


def calculation(text: str, steps: bool = False) -> str | None:
    """What the calculator writes after `text` (" 22700. <answer>22700</answer>"), or None when text does not end
    in a product to do.

    The result closes the line as the trained reasoning closes it: the product, then the answer, which that
    reasoning always states equal to the product. Left open, the model carried the result on into the number
    it had in mind: "= 9" became "= 9.5", "= 9." became "= 9.5.", "= 1." became "= 1. warning".

    With `steps`, a product with a factor of several digits is worked as `formats.product_steps` works it
    (" 21 + 1.4 + 0.56 = 22.96. <answer>23</answer>"): the shape a model trained on such rows then writes itself.
    """
    m = PRODUCT.search(text.rstrip())
    if not m or not text.rstrip().endswith("="):
        return None
    try:
        product = product_text(m[1], m[2])
    except (ValueError, OverflowError):
        return None
    worked = product_steps(m[1], m[2]) if steps else None
    return f" {worked or product}. {OPEN}{product}{CLOSE}"


def filled(text: str, steps: bool = False) -> bool:
    """Whether `text`, decoded with the calculator, holds a product the calculator wrote: its first "A * B ="
    is followed by exactly what `calculation` writes there. Decoding stops at the first such point, so under
    the calculator nothing after it is the model's."""
    i = _first_product(text)
    return i is not None and text[i:].startswith(calculation(text[:i], steps))


def _first_product(text: str) -> int | None:
    """Where the calculator first steps in: the end of the first "A * B =" it would compute, or None."""
    for i, char in enumerate(text):
        if char == "=" and calculation(text[:i + 1]) is not None:
            return i + 1
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
    """A loaded model whose generation hands each product it sets up to the calculator (see the module).

    Built from a loaded BaseLLM, whose model and tokenizer it shares (nothing is loaded again)."""

    def __init__(self, llm: BaseLLM, steps: bool = False):  # not BaseLLM.__init__: the model is loaded already
        self.tokenizer, self.model, self.device, self.dtype = llm.tokenizer, llm.model, llm.device, llm.dtype
        self.max_new_tokens, self.min_new_tokens = llm.max_new_tokens, llm.min_new_tokens
        self.prompted = llm  # the loaded model whose prompt format this one keeps (the CoT chat, or the question)
        self.calls = 0  # products computed since load (the tests read it)
        self.steps = steps  # products of a factor of several digits written in steps (`formats.product_steps`)

    def format_prompt(self, question: str) -> str:
        return self.prompted.format_prompt(question)

    def _generate_chunk(self, prompts: list[str], n: int, temperature: float, stop=None) -> list[str]:
        texts = super()._generate_chunk(prompts, n, temperature, stop=StopAtProduct)
        out = []
        for text in texts:
            result = calculation(text, self.steps)
            self.calls += result is not None
            out.append(text + (result or ""))
        return out


def with_calculator(llm: BaseLLM, steps: bool = False) -> CalculatorLLM:
    """The same loaded model and tokenizer, decoding with the calculator (with `steps`, products in steps)."""
    return CalculatorLLM(llm, steps)


def in_steps(text: str) -> str:
    """A calculator-filled reasoning with the calculator's part written again in steps (`calculation(...,
    steps=True)`); the model's own text before it is kept. Under the calculator decoding stopped at the first
    "A * B =", so this is what the stepped calculator would have written after the same sampled text."""
    if not filled(text):
        raise ValueError(f"not a calculator-filled reasoning: {text!r}")
    i = _first_product(text)
    return text[:i] + calculation(text[:i], steps=True)


def steps_command(data: str, output: str = "", overwrite: bool = False) -> str:
    """Rewrite the products of a rows file's calculator-filled rows in steps; the other rows stay as they are.

    Args:
        data: [question, answer, reasoning, notes] rows (`homework.datagen` wrote them with --calculator).
        output: where to write (default: data itself).
        overwrite: write into a committed file pinned in manifest.json.
    """
    from .data import load_rows
    from .questions import save_rows
    from .soundness import reasoning_fault

    rows = load_rows(data, (3, 4), min_rows=1)
    changed = 0
    for row in rows:
        if row[3:] and row[3].get("calculator_filled"):
            text = in_steps(row[2])
            fault = reasoning_fault(row[0], text)
            if fault:  # cannot happen for a sound row: the steps are exact
                raise ValueError(f"{row[0]!r}: the reasoning in steps is not sound ({fault}): {text!r}")
            changed += text != row[2]
            row[2] = text
    save_rows(rows, output or data, overwrite=overwrite)
    return f"wrote {len(rows)} rows to {output or data}: {changed} products now in steps"


if __name__ == "__main__":
    from .cli import run_cli

    run_cli({"steps": steps_command})
