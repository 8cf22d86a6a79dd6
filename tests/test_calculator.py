"""Calculator decoding: where it steps in, what it writes, the splice into batched generation, bad input."""

import pytest

from homework import formats
from homework.base_llm import BaseLLM
from homework.calculator import CalculatorLLM, calculation


@pytest.mark.parametrize("text,written", [
    (" 1 cubic meter = 264 gallons, so 86 cubic meters = 86 * 264 =", " 22700"),
    (" 1 day = 24 hours, so 2.5 days = 2.5 * 24 = ", " 60"),
    (" 1 meter = 39.4 inches, so 48 meters = 48 * 39.4 =", " 1890"),
    (" 1 gram = 1e-6 tonnes, so 7 grams = 7 * 1e-6 =", " 7e-6"),
    (" 1 year = 3.15e7 seconds, so 3 years = 3 * 3.15e7 =", " 9.45e7"),
    (" x = 0.5 * 2.64e-4 =", " 1.32e-4"),
])
def test_a_product_the_model_set_up_is_computed_as_the_model_writes_numbers(text, written):
    assert calculation(text) == written


@pytest.mark.parametrize("text", [
    " 7 * = ",  # not two numbers
    " 1e308 * 1e308 =",  # overflows
    " 86 * 264 = 22704",  # already written by the model
    " 1 meter = 3.28 feet",  # a fact, no product
    " 3 * 4",  # not set up yet
    " 2 * 3e5x =",  # not a number the model writes
])
def test_anything_else_is_left_as_the_model_wrote_it(text):
    assert calculation(text) is None


def test_product_text_matches_the_worked_answers_the_model_learnt():
    for q, src, dst in [(86, "cubic meter", "gallon"), (7, "gram", "metric ton"), (3, "year", "second")]:
        worked = formats.worked_answer(q, src, dst)
        product = worked.split(" = ")[-1].split(". ")[0]
        setup = worked[: worked.rindex(" = ") + 2]
        assert calculation(setup) == " " + product


# what a stand-in model writes after each prompt; the calculator's results are in the keys it must be handed
SCRIPT = {"A|": " 2.5 * 24 =", "A| 2.5 * 24 = 60": ". <answer>60</answer>",
          "B|": " none to do. <answer>3</answer>",
          "C|": " 48 * 39.4 =", "C| 48 * 39.4 = 1890": ". And 2 * 3 =", "C| 48 * 39.4 = 1890. And 2 * 3 = 6": " <answer>6</answer>"}


def test_rows_stop_at_their_own_points_and_go_on_after_the_calculation(monkeypatch):
    calls = []

    def scripted(self, prompts, n, temperature):
        calls.append(list(prompts))
        return [SCRIPT[p] for p in prompts]

    monkeypatch.setattr(BaseLLM, "_generate_chunk", scripted)
    model = CalculatorLLM.__new__(CalculatorLLM)
    model.max_new_tokens = 64
    out = model._generate_chunk(["A|", "B|", "C|"], 1, 0.0)
    assert out == [" 2.5 * 24 = 60. <answer>60</answer>", " none to do. <answer>3</answer>",
                   " 48 * 39.4 = 1890. And 2 * 3 = 6 <answer>6</answer>"]
    assert [len(c) for c in calls] == [3, 2, 1]  # only rows that set up a product go on, each at its own step
    assert model.calls == 3 and model.stop is None and model.max_new_tokens == 64


@pytest.mark.slow
def test_batched_and_one_by_one_calculator_decoding_agree(fp32):
    """The RFT adapter in fp32: the calculator splices the same text into a batch as into single rows."""
    from homework import rft

    llm = rft.load(calculator=True)
    questions = ["How many gallons are there in 86 m**3?", "How many hours are in 2.5 days?",
                 "Turn 48 meters into inches", "How many days are in 4 weeks?"]
    prompts = [llm.format_prompt(q) for q in questions]
    batched = llm.batched_generate(prompts)
    single = [llm.batched_generate([p])[0] for p in prompts]
    assert batched == single
    assert llm.calls >= 2 * len(questions) * 0.75 and llm.stop is None


@pytest.mark.slow
def test_the_rft_calculator_mode_answers_the_gallons_question():
    from homework import rft

    llm = rft.load(calculator=True)
    assert isinstance(llm, CalculatorLLM) and not isinstance(rft.load(), CalculatorLLM)
    (value,) = llm.answer("How many gallons are there in 86 m**3?")
    assert abs(value - 22718.8) <= 0.05 * 22718.8, value
