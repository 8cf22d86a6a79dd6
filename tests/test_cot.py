"""The CoT prompt: chat template, the one fact a question needs, and nothing taken from an answer."""

import pytest
from transformers import AutoTokenizer

from homework.checkpoints import embedded_model_dir
from homework.cot import EXAMPLES, cot_messages
from homework.formats import hint, parse_answer, worked_answer


@pytest.mark.parametrize("question,fact", [
    ("How many feet are in 7 meters?", "1 meter = 3.28 feet"),
    ("Convert 3 kg into pound.", "1 kilogram = 2.2 pounds"),
    ("How many ounces in 2 gallons?", "1 gallon = 128 fluid ounces"),   # volume ounce beside a volume
    ("What is 2 years in days?", "1 year = 365 days"),                   # 3 significant digits
    ("How many seconds are in 2 decades?", "1 decade = 3.16e8 seconds"),  # big factors as mantissa e exponent
    ("How many GB is 7 bytes?", "1 byte = 1e-9 gigabytes"),
    ("Tell me a joke", ""),                                              # no units: no fact, still a prompt
])
def test_hint_is_the_needed_fact(question, fact):
    assert hint(question) == fact


def test_prompt_is_a_chat_with_examples_and_fact():
    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir())
    prompt = tokenizer.apply_chat_template(cot_messages("How many feet are in 7 meters?"),
                                           add_generation_prompt=True, tokenize=False)
    assert prompt.endswith("<|im_start|>assistant\n")
    assert prompt.count("<|im_start|>user") == len(EXAMPLES) + 1
    assert "Fact: 1 meter = 3.28 feet" in prompt
    assert "22.9" not in prompt and "23" not in prompt.split("7 meters")[1], "the answer leaked into the prompt"


def test_worked_answer_is_correct_and_parses():
    assert parse_answer(worked_answer(4.0, "foot", "inch")) == 48.0
    assert parse_answer(worked_answer(3.0, "year", "second")) == pytest.approx(9.48e7)
