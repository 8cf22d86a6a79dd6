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


@pytest.mark.parametrize("a,b,steps", [
    ("7", "3.28", "21 + 1.4 + 0.56 = 22.96"),                 # each digit of the factor in its place
    ("8", "3.65e4", "24e4 + 4.8e4 + 0.4e4 = 29.2e4"),          # the factor's power of ten kept on each part
    ("6", "0.447", "2.4 + 0.24 + 0.042 = 2.682"),
    ("7", "3.05e-4", "21e-4 + 0.35e-4 = 21.35e-4"),           # a zero digit is no part
    ("7", "12", "70 + 14 = 84"),
    ("2500", "3.28", "7500 + 500 + 200 = 8200"),
    ("8.5", "33.8", "255 + 25.5 + 6.8 = 287.3"),
    ("5", "1e3", None),                                      # a factor of one digit: nothing to split
    ("1", "3.28", None), ("10", "3.28", None),               # a quantity of 1 or a power of ten
    ("2e3", "3.28", None),                                   # a quantity with a power of ten
])
def test_a_product_in_steps_is_the_quantity_times_each_digit_then_the_sum(a, b, steps):
    assert formats.product_steps(a, b) == steps
    if steps:
        assert float(steps.split(" = ")[-1].replace("e", "E")) == pytest.approx(float(a) * float(b))


def test_the_calculator_in_steps_writes_the_parts_and_answers_the_rounded_product():
    text = " 7 meters = 7 * 3.28 feet ="
    assert calculation(text, steps=True) == " 21 + 1.4 + 0.56 = 22.96. <answer>23</answer>"
    assert calculation(" 5 * 1e3 =", steps=True) == calculation(" 5 * 1e3 =") == " 5e3. <answer>5e3</answer>"
    worked = text + calculation(text, steps=True)
    assert calculator.filled(worked, steps=True) and not calculator.filled(worked)
    assert calculator.in_steps(text + calculation(text)) == worked
    with pytest.raises(ValueError, match="not a calculator-filled"):
        calculator.in_steps(" 7 * 3.28 = 23.5. <answer>23.5</answer>")


def test_the_steps_command_rewrites_only_calculator_filled_rows_and_keeps_them_sound(tmp_path):
    import json

    from homework import soundness

    q = "How many feet are in 7 meters?"
    own = "7 meters = 7 * 3.28 feet = 22.96 feet. <answer>22.96</answer>"  # the model's own product: kept
    rows = [[q, 22.9659, "7 meters = 7 * 3.28 feet = 23. <answer>23</answer>", {"calculator_filled": True}],
            ["How many feet are in 7.0 meters?", 22.9659, own]]
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(rows))
    assert calculator.steps_command(str(path)).endswith("1 products now in steps")
    out = json.loads(path.read_text())
    assert out[0][2] == "7 meters = 7 * 3.28 feet = 21 + 1.4 + 0.56 = 22.96. <answer>23</answer>"
    assert out[0][3] == {"calculator_filled": True} and out[1] == rows[1]
    assert soundness.reasoning_fault(q, out[0][2]) == ""


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
