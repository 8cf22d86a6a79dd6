"""Ask the models unit-conversion questions and see how they reason.

    python -m homework.ask "How many feet are in 3.5 meters?"     # best model present: RFT, else SFT, else CoT
    python -m homework.ask "Convert 2 hours to seconds." "5 kg in pounds?" --model sft
    python -m homework.ask - < questions.txt                       # one question per line, answered in chunks
    python -m homework.ask --calculator "How many gallons are there in 86 m**3?"   # RFT + calculator decoding

Each answer is shown with the model's own text and, beside it, the exact value from the units registry
(pint), so you can see at a glance whether the model is within the 5 % tolerance. The exact value is only
displayed; the model never sees it. A question the registry cannot read is answered all the same, with
"exact: unknown" beside it.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable, Iterator

from .base_llm import BaseLLM
from .cli import ModelUnavailable
from .data import is_answer_valid
from .formats import MAX_QUESTION_CHARS, question_prompt
from .units import BY_NAME, Conversion, UnitError, format_number, parse_question

MODELS = ("rft", "sft", "cot")
CHUNK = 64  # questions per generation call: a 10,000-line stdin is streamed, never held in memory at once


def load_named(name: str) -> BaseLLM:
    """The `load()` of homework.<name> (cot, sft or rft)."""
    return importlib.import_module(f"homework.{name}").load()


def load_model(name: str = "auto") -> tuple[str, BaseLLM]:
    """(name, model): the one asked for, or with 'auto' the best trained one present (RFT, SFT, then CoT)."""
    if name not in ("auto", *MODELS):
        raise ValueError(f"--model must be auto, {', '.join(MODELS)}; not {name!r}")
    candidates = MODELS if name == "auto" else (name,)
    for candidate in candidates:
        if candidate != "cot" and name == "auto" and not (
                importlib.import_module(f"homework.{candidate}").MODEL_DIR / "adapter_model.safetensors").exists():
            continue
        try:
            return candidate, load_named(candidate)
        except ModelUnavailable as err:
            if name != "auto":
                raise
            print(f"note: skipping {candidate}: {err}", file=sys.stderr)
    raise ModelUnavailable("no model could be loaded")  # unreachable: CoT needs no adapter


def read_questions(args: Iterable[str], stdin=None) -> Iterator[str]:
    """Questions from the command line; '-' reads one per line from stdin (blank lines skipped)."""
    for arg in args:
        if str(arg) != "-":
            yield str(arg)
            continue
        stream = stdin if stdin is not None else sys.stdin.buffer
        for number, raw in enumerate(stream, 1):
            if isinstance(raw, bytes):
                try:
                    raw = raw.decode("utf-8")
                except UnicodeDecodeError:
                    print(f"skipped stdin line {number}: not UTF-8 text", file=sys.stderr)
                    continue
            if raw.strip():
                yield raw.strip()


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def check_question(question: str) -> tuple[str, Conversion | None, str]:
    """The question as the model will see it, its conversion by the registry (None if it cannot read it), and
    the registry's one-line reason when it cannot."""
    shown = question_prompt(question)
    try:
        return shown, parse_question(shown), ""
    except UnitError as err:
        return shown, None, str(err)


def answer_questions(llm: BaseLLM, questions: Iterable[str], chunk: int = CHUNK) -> Iterator[dict]:
    """Answer every question with the model, lazily, `chunk` at a time.

    The registry only supplies the exact value shown beside the answer; a question it cannot read is still
    answered, with `exact` None and the registry's reason in `exact_unknown`.
    """
    for batch in _chunks(enumerate(questions, 1), chunk):
        ready = [(number, question, *check_question(question)) for number, question in batch]
        texts = llm.batched_generate([llm.format_prompt(shown) for _, _, shown, _, _ in ready])
        for (number, question, shown, conv, reason), text in zip(ready, texts):
            value = llm.parse_answer(text)
            yield {"number": number, "question": question, "truncated": len(question.strip()) > len(shown),
                   "text": text.strip(), "answer": value, "unit": BY_NAME[conv.dst].plural if conv else "",
                   "exact": conv.answer if conv else None, "exact_unknown": reason,
                   "within_5pct": is_answer_valid(value, conv.answer) if conv else None}


def _show(record: dict, label: str) -> None:
    question = record["question"]
    short = question if len(question) <= 120 else question[:117] + "..."
    if record["truncated"]:
        print(f"note: question {record['number']} is {len(question.strip())} characters; "
              f"answered from its first {MAX_QUESTION_CHARS}", file=sys.stderr)
    value = record["answer"]
    said = "no answer" if value != value else f"{format_number(value, 4)} {record['unit']}".strip()
    if record["exact"] is None:
        exact = f"exact: unknown, the registry cannot read it ({record['exact_unknown']})"
    else:
        exact = f"exact {format_number(record['exact'], 4)}; {'within 5 %' if record['within_5pct'] else 'off'}"
    print(f"Q: {short}\n{label}: {record['text']}\n=> {said}   ({exact})\n")


def ask(*questions: str, model: str = "auto", chunk: int = CHUNK, calculator: bool = False) -> str:
    """Answer unit-conversion questions with a trained model and show its reasoning.

    Args:
        questions: questions in quotes; '-' reads one question per line from stdin.
        model: auto (RFT, else SFT, else CoT), rft, sft or cot.
        chunk: questions generated together (bounds memory for long stdin lists).
        calculator: the RFT model with calculator decoding: it computes each product the model writes.
    """
    if not questions:
        raise ValueError('give a question, e.g. python -m homework.ask "How many feet are in 3.5 meters?", or - for stdin')
    blank = [i for i, q in enumerate(questions, 1) if not str(q).strip()]
    if blank:
        raise ValueError(f"question {blank[0]} is empty: ask something, e.g. \"How many feet are in 3.5 meters?\"")
    if calculator:
        if model not in ("auto", "rft"):
            raise ValueError(f"--calculator decodes the RFT model, not {model!r}")
        from .rft import load

        name, llm, label = "rft", load(calculator=True), "RFT + calculator"
    else:
        name, llm = load_model(model)
        label = name.upper()
    answered = unknown = close = 0
    for record in answer_questions(llm, read_questions(questions), chunk):
        _show(record, label)
        answered += 1
        unknown += record["exact"] is None
        close += bool(record["within_5pct"])
    summary = f"answered {answered} question(s) with the {label} model, {close} within 5 % of the exact value"
    return summary + (f"; {unknown} with no exact value (the registry cannot read them)" if unknown else "")


def main(argv: list[str] | None = None) -> None:
    # argparse, not Fire, for this one command: its arguments are free text, and Fire would read a lone "-"
    # as its chaining separator and "[1]" or "1,2" as Python literals.
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message):  # one line, as every command of the package answers a mistake
            sys.exit(f"error: {message} (see --help)")

    parser = Parser(prog="python -m homework.ask", description=__doc__.split("\n\n")[0])
    parser.add_argument("questions", nargs="*", help="questions in quotes; - reads one per line from stdin")
    parser.add_argument("--model", default="auto", help="auto (RFT, else SFT, else CoT), rft, sft or cot")
    parser.add_argument("--chunk", type=int, default=CHUNK, help="questions generated together")
    parser.add_argument("--calculator", action="store_true",
                        help="RFT with calculator decoding: the products the model writes are computed")
    args = parser.parse_args(argv)
    try:
        result = ask(*args.questions, model=args.model, chunk=max(1, args.chunk), calculator=args.calculator)
    except (ModelUnavailable, ValueError) as err:  # UnitError, DataError are ValueErrors
        sys.exit(f"error: {err}")
    print(result)


if __name__ == "__main__":
    main()
