"""Calculator decoding: where it steps in, what it writes, the splice into batched generation, bad input."""

from types import SimpleNamespace

import pytest
from transformers import AutoTokenizer

from homework import calculator, formats
from homework.base_llm import BaseLLM
from homework.calculator import CalculatorLLM, calculation


@pytest.fixture(scope="module")
def tokenizer():
    from homework.checkpoints import embedded_model_dir

    return AutoTokenizer.from_pretrained(embedded_model_dir())


@pytest.mark.parametrize("text,product", [
    (" 1 cubic meter = 264 gallons, so 86 cubic meters = 86 * 264 =", "22700"),
    (" 1 day = 24 hours, so 2.5 days = 2.5 * 24 = ", "60"),
    (" 1 meter = 39.4 inches, so 48 meters = 48 * 39.4 =", "1890"),
    (" 1 gram = 1e-6 tonnes, so 7 grams = 7 * 1e-6 =", "7e-6"),
    (" 1 year = 3.15e7 seconds, so 3 years = 3 * 3.15e7 =", "9.45e7"),
    (" x = 0.5 * 2.64e-4 =", "1.32e-4"),
    (" so 8.64e4 = 8.64e4 * 3.5 =", "30.2e4"),  # the power of ten of either side carried over
    (" 2e3 * 3e-1 =", "6e2"),
    (" 8 meters = 8 * 3.28 feet =", "26.2"),  # the CoT examples' shape: the unit before "="
    (" 4 hours = 4 * 0.447 meters per second =", "1.79"),
])
def test_a_product_the_model_set_up_is_computed_as_the_model_writes_numbers(text, product):
    assert calculation(text) == f" {product}. <answer>{product}</answer>"


@pytest.mark.parametrize("text", [
    " 7 * = ",  # not two numbers
    " 1e308 * 1e308 =",  # overflows
    " 86 * 264 = 22704",  # already written by the model
    " 1 meter = 3.28 feet",  # a fact, no product
    " 3 * 4",  # not set up yet
    " 2 * 3e5x =",  # not a number the model writes
    " 2 * 3 feet 4 =",  # a number after the unit: not a product set up
])
def test_anything_else_is_left_as_the_model_wrote_it(text):
    assert calculation(text) is None


def test_the_calculation_completes_the_worked_answers_the_model_learnt():
    for q, src, dst in [(86, "cubic meter", "gallon"), (7, "gram", "metric ton"), (3, "year", "second")]:
        worked = formats.worked_answer(q, src, dst)
        setup = worked[: worked.rindex(" = ") + 2]
        assert setup + calculation(setup) == worked
        short = formats.worked_product(q, src, dst)  # the CoT examples: the same product, the answer the same
        setup = short[: short.rindex(" = ") + 2]
        assert formats.parse_answer(setup + calculation(setup)) == formats.parse_answer(short)


@pytest.mark.parametrize("text,by_calculator", [
    ("1 day = 24 hours, so 2.5 days = 2.5 * 24 = 60. <answer>60</answer>", True),     # the calculator's close
    ("1 day = 24 hours, so 2.5 days = 2.5 * 24 = 60 hours. <answer>60</answer>", False),  # the model's own words
    ("1 day = 24 hours, so 2.5 days = 2.5 * 24 = 61. <answer>61</answer>", False),    # a product it did not write
    ("7 * = <answer>7</answer>", False),                                              # no product to do
    ("<answer>60</answer>", False),
])
def test_filled_tells_the_calculator_s_products_from_the_model_s(text, by_calculator):
    assert calculator.filled(text) is by_calculator


# what a stand-in model writes after each prompt; the calculator's results are in the keys it must be handed
def test_rows_stop_at_their_own_points_and_the_others_go_on(monkeypatch):
    """The decoder stops a row where it has set up a product; the calculation closes that row's line, and rows
    that set up none keep the text they wrote to their own end (one generation call for all)."""
    written = {"A|": " 1 day = 24 hours, so 2.5 days = 2.5 * 24 =", "B|": " none to do. <answer>3</answer>",
               "C|": " 48 * 39.4 =", "D|": " 7 * = <answer>7</answer>"}
    calls = []

    def scripted(self, prompts, n, temperature, stop=None):
        calls.append((list(prompts), stop))
        return [written[p] for p in prompts for _ in range(n)]

    monkeypatch.setattr(BaseLLM, "_generate_chunk", scripted)
    loaded = SimpleNamespace(tokenizer=None, model=None, device="cpu", dtype=None, max_new_tokens=5, min_new_tokens=1)
    model = CalculatorLLM(loaded)
    out = model._generate_chunk(["A|", "B|", "C|", "D|"], 1, 0.0)
    assert out == [written["A|"] + " 60. <answer>60</answer>", written["B|"],
                   " 48 * 39.4 = 1890. <answer>1890</answer>", written["D|"]]
    assert len(calls) == 1 and calls[0][1] is calculator.StopAtProduct, "the criterion is passed with the call"
    assert model.calls == 2 and model.max_new_tokens == 5


def test_stop_criterion_flags_only_rows_ending_in_a_product(tokenizer):
    texts = ["Q? 1 m = 3.28 ft, so 7 m = 7 * 3.28 =", "Q? 1 m = 3.28 ft", "Q? 7 * ="]
    ids = tokenizer(texts, padding=True, return_tensors="pt", padding_side="left").input_ids
    flags = calculator.StopAtProduct(tokenizer, ids.shape[1] - 16)(ids, None)
    assert flags.tolist() == [True, False, False]


@pytest.mark.slow
def test_rft_calculator_mode_batched_as_one_by_one_and_the_gallons_question(fp32):
    """The RFT adapter in fp32: the calculator splices the same text into a batch as into single rows, the pure
    model stays pure, and "86 m**3 in gallons" comes out within 5 % (the pure model wrote 86 * 264 = 2128)."""
    from homework import rft

    llm = rft.load(calculator=True)
    assert isinstance(llm, CalculatorLLM) and not isinstance(rft.load(), CalculatorLLM)
    questions = ["How many gallons are there in 86 m**3?", "How many hours are in 2.5 days?",
                 "Turn 48 meters into inches", "How many days are in 4 weeks?"]
    prompts = [llm.format_prompt(q) for q in questions]
    batched = llm.batched_generate(prompts)
    single = [llm.batched_generate([p])[0] for p in prompts]
    assert batched == single
    assert llm.calls >= 2 * 3  # products done in both runs
    gallons = formats.parse_answer(batched[0])
    assert abs(gallons - 22718.8) <= 0.05 * 22718.8, batched[0]


def test_the_calculator_keeps_the_prompt_format_of_the_model_it_wraps(tiny_checkpoint):
    """CoT + calculator asks the CoT chat, not the bare question (the RFT prompt); the pure CoT model stays pure."""
    from homework import cot

    chat = cot.CoTModel(tiny_checkpoint)
    wrapped = calculator.with_calculator(chat)
    question = "How many feet are in 7 meters?"
    assert wrapped.format_prompt(question) == chat.format_prompt(question) != BaseLLM.format_prompt(chat, question)
    assert wrapped.max_new_tokens == cot.CoTModel.max_new_tokens and not isinstance(chat, CalculatorLLM)
