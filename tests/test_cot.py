"""The CoT prompt: chat template, the one fact a question needs, and nothing taken from an answer."""

import pytest
from transformers import AutoTokenizer

from homework.checkpoints import embedded_model_dir
from homework.cot import EXAMPLES, PAIR_EXAMPLES, SHARED_EXAMPLES, cot_messages, pair_examples, reasoning_messages
from homework.formats import hint, parse_answer, worked_answer, worked_product


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
    assert prompt.count("<|im_start|>user") == SHARED_EXAMPLES + PAIR_EXAMPLES + 1
    assert "How many feet are in 8 meters?" in prompt and "How many feet are in 3 meters?" in prompt
    assert "8 meters = 8 * 3.28 feet = 26.2 feet. <answer>26.2</answer>" in prompt
    assert "Fact: 1 meter = 3.28 feet" in prompt
    assert "22.9" not in prompt and "23" not in prompt.split("7 meters")[1], "the answer leaked into the prompt"


@pytest.mark.parametrize("worked", [worked_answer, worked_product])
def test_worked_answers_are_correct_and_parse(worked):
    assert parse_answer(worked(4.0, "foot", "inch")) == 48.0
    assert parse_answer(worked(3.0, "year", "second")) == pytest.approx(9.48e7)


def test_rft_first_round_sampler_keeps_the_reasoning_shape_of_its_data():
    """datagen's CoT sampler (data/rft.json's first round) asks the five shared examples in the RFT reasoning
    shape, whatever the course CoT prompt does."""
    messages = reasoning_messages("How many feet are in 7 meters?")
    shown = [m["content"] for m in messages if m["role"] == "assistant"]
    assert shown == [worked_answer(q, src, dst) for _, src, dst, q in EXAMPLES] and len(shown) == 5


def test_pair_examples_skip_quantities_near_the_question_s_or_its_answer():
    assert [q for *_, q in pair_examples("How many feet are in 7 meters?")] == [8.0, 3.0]
    assert [q for *_, q in pair_examples("How many feet are in 3 meters?")] == [5.0, 8.0]  # 3: the question's
    assert [q for *_, q in pair_examples("How many quarts are in 2 gallons?")] == [5.0, 3.0]  # 8 quarts: the answer
    assert pair_examples("Tell me a joke") == []


def test_no_prompt_carries_its_answer_by_the_grader_s_own_check():
    """The grader's leak check, over the first 400 validation questions: the pair examples' products and
    quantities never land within the benchmark's tolerance of the question's answer."""
    from grader.cleanroom import leaked_answers
    from homework.data import load_rows, DATA_DIR

    rows = load_rows(DATA_DIR / "valid.json")[:400]
    questions = [q for q, *_ in rows]
    prompts = ["\n".join(m["content"] for m in cot_messages(q)) for q in questions]
    assert leaked_answers(questions, prompts, [a for _, a, *_ in rows]) == []
