"""homework.ask: questions from arguments or stdin, every one answered by the model, bounded memory."""

import io
import math
import subprocess
import sys

import pytest

from homework import ask
from homework.formats import MAX_QUESTION_CHARS


def test_reads_arguments_and_stdin_skipping_bad_bytes(capsys):
    stdin = io.BytesIO(b"How many feet are in 7 meters?\n\n\xff\xfe broken line\nConvert 2 kg to grams.\n")
    got = list(ask.read_questions(["Convert 1 hour to minutes.", "-"], stdin=stdin))
    assert got == ["Convert 1 hour to minutes.", "How many feet are in 7 meters?", "Convert 2 kg to grams."]
    assert "stdin line 3: not UTF-8" in capsys.readouterr().err


@pytest.mark.parametrize("question,reason", [
    ("How many feet are in some meters?", "no number"),
    ("How many are in 7?", "no known unit"),
    ("How many furlongs are in 3 parsecs?", "no known unit"),
    ("Convert 7 meters to kilograms.", "cannot convert"),
])
def test_unreadable_questions_are_answered_with_the_exact_value_unknown(tiny_llm, question, reason):
    records = list(ask.answer_questions(tiny_llm, [question, "How many feet are in 7 meters?"]))
    assert "text" in records[0] and records[0]["exact"] is None and reason in records[0]["exact_unknown"]
    assert "text" in records[1] and records[1]["exact"] == pytest.approx(22.9659, rel=1e-4)


def test_long_question_is_cut_and_still_answered(tiny_llm):
    long = "How many feet are in 7 meters? " + "Please be careful. " * 300
    assert len(long) > 5000
    record = next(ask.answer_questions(tiny_llm, [long]))
    assert record["truncated"] and "text" in record and record["unit"] == "feet"
    assert len(tiny_llm.format_prompt(long)) <= MAX_QUESTION_CHARS


class CountingLLM:
    """Wraps a model to record how many prompts each generation call gets."""

    def __init__(self, llm):
        self.llm, self.calls = llm, []

    def __getattr__(self, name):
        return getattr(self.llm, name)

    def batched_generate(self, prompts):
        self.calls.append(len(prompts))
        return ["<answer>1</answer>"] * len(prompts)


def test_ten_thousand_questions_stream_in_bounded_chunks(tiny_llm):
    consumed = []

    def questions():
        for i in range(10_000):
            consumed.append(i)
            yield f"How many grams are in {i % 10 + 1} kilograms?"

    llm = CountingLLM(tiny_llm)
    records = ask.answer_questions(llm, questions(), chunk=64)
    first = next(records)
    assert first["answer"] == 1.0 and len(consumed) <= 64, "input must be read lazily, a chunk at a time"
    rest = list(records)
    assert len(rest) + 1 == 10_000 and max(llm.calls) <= 64


def test_unknown_model_name():
    with pytest.raises(ValueError, match="--model must be"):
        ask.load_model("gpt")


def test_calculator_is_a_mode_of_rft_only():
    with pytest.raises(ValueError, match="--calculator decodes the RFT model, not 'sft'"):
        ask.ask("How many feet are in 7 meters?", model="sft", calculator=True)


@pytest.mark.slow
def test_command_line_with_the_committed_sft_adapter():
    good, bad = "How many grams are in 3 kilograms?", "How many furlongs are in 3 parsecs?"
    run = subprocess.run([sys.executable, "-m", "homework.ask", good, bad, "--model", "sft"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert f"Q: {good}" in run.stdout and "SFT: <answer>" in run.stdout
    assert f"Q: {bad}" in run.stdout and "exact: unknown, the registry cannot read it (no known unit" in run.stdout
    assert run.stdout.strip().splitlines()[-1].startswith("answered 2 question(s) with the SFT model")
    assert "1 with no exact value" in run.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_command_line_answers_a_question_the_registry_cannot_read():
    run = subprocess.run([sys.executable, "-m", "homework.ask", "-", "--model", "sft"], input="hello there\n",
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "Traceback" not in run.stderr
    assert "exact: unknown, the registry cannot read it (no number in the question)" in run.stdout


@pytest.mark.parametrize("argv", [[""], ["   "], ["How many feet are in 7 meters?", ""]])
def test_an_empty_question_is_one_error_line_before_any_model_loads(argv):
    run = subprocess.run([sys.executable, "-m", "homework.ask", *argv], capture_output=True, text=True)
    assert run.returncode == 1 and run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: question ") and "is empty" in lines[0], run.stderr


def test_an_empty_prompt_gets_an_empty_completion(tiny_llm):
    """What a grader calls with "": an answer, not a torch traceback; the other prompts are unchanged."""
    tiny_llm.max_new_tokens = tiny_llm.min_new_tokens = 4
    assert tiny_llm.generate("") == ""
    assert tiny_llm.batched_generate([""]) == [""]
    alone = tiny_llm.batched_generate(["How many feet are in 7 meters?"])
    assert tiny_llm.batched_generate(["", "How many feet are in 7 meters?", ""]) == ["", *alone, ""]
    assert tiny_llm.batched_generate(["", "x"], num_return_sequences=2, temperature=0.5)[0] == ["", ""]
    assert math.isnan(tiny_llm.answer("")[0])  # no answer, never a crash
