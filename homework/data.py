"""Datasets and the benchmark: one correctness check for the benchmark, rejection sampling and the grader.

    python -m homework.data check valid      # validate a data file and print its size
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
REL_TOL = 0.05  # an answer within 5 % relative error of the truth is correct (course rule)


class DataError(ValueError):
    """A data file is missing or malformed; the message names the file and the problem."""


def _check_rows(rows, path: Path, width: tuple[int, ...]) -> list[list]:
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected a JSON list of rows, got {type(rows).__name__}")
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) not in width:
            raise DataError(f"{path}: row {i} should be a list of {' or '.join(map(str, width))} items: {row!r:.80}")
        if not isinstance(row[0], str) or isinstance(row[1], bool) or not isinstance(row[1], (int, float)):
            raise DataError(f"{path}: row {i} should start with a question string and a number: {row!r:.80}")
        if len(row) == 4 and not isinstance(row[3], dict):
            raise DataError(f"{path}: row {i}'s fourth item should be an object of notes: {row!r:.80}")
    return rows


def load_rows(path: str | Path, width: tuple[int, ...] = (2, 3), min_rows: int = 0) -> list[list]:
    """Rows of a JSON data file, checked; DataError with the file and the problem otherwise."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a data file") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    if not text.strip():
        raise DataError(f"{path}: the file is empty")
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    rows = _check_rows(rows, path, width)
    if len(rows) < min_rows:
        raise DataError(f"{path}: has {len(rows)} rows, needs at least {min_rows}")
    return rows


def writable_dir(path: str | Path) -> Path:
    """Create `path` if needed and prove it takes a file, before any long job writes there."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise DataError(f"{path}: cannot write there ({err.strerror or err})") from None
    return path


class Dataset:
    """Rows of data/<split>.json: [question, answer] (rft.json rows add the reasoning)."""

    def __init__(self, split: str, data_dir: str | Path = DATA_DIR):
        path = Path(split) if split.endswith(".json") else Path(data_dir) / f"{split}.json"
        self.path = path
        self.data = load_rows(path, min_rows=1)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, idx):
        return self.data[idx]


def is_answer_valid(answer: float, correct: float, rel_tol: float = REL_TOL) -> bool:
    """True when `answer` is within `rel_tol` relative error of `correct` (NaN is never valid)."""
    if answer is None or math.isnan(answer) or math.isinf(answer):
        return False
    return abs(answer - correct) <= rel_tol * abs(correct)


@dataclass
class BenchmarkResult:
    accuracy: float
    answer_rate: float
    samples: list[dict] = field(default_factory=list)
    sound_accuracy: float | None = None  # right with sound reasoning (`reasoned_benchmark`); None: not checked

    def summary(self) -> str:
        sound = "" if self.sound_accuracy is None else f" benchmark_result.sound_accuracy={self.sound_accuracy:.4f}"
        return (f"benchmark_result.accuracy={self.accuracy:.4f} benchmark_result.answer_rate={self.answer_rate:.4f}"
                + sound)


def benchmark(model, dataset: Dataset, max_question: int | None = None) -> BenchmarkResult:
    """Ask `model.answer` every question (up to max_question) and score it against the truth."""
    rows = dataset.data[:max_question] if max_question else dataset.data
    if not rows:
        return BenchmarkResult(0.0, 0.0, [])
    answers = model.answer(*[row[0] for row in rows])
    samples = [
        {"question": row[0], "answer": answer, "correct_answer": row[1],
         "is_correct": is_answer_valid(answer, row[1])}
        for row, answer in zip(rows, answers)
    ]
    accuracy = sum(s["is_correct"] for s in samples) / len(samples)
    answer_rate = sum(not math.isnan(s["answer"]) for s in samples) / len(samples)
    return BenchmarkResult(accuracy, answer_rate, samples)


def reasoned_benchmark(model, dataset: Dataset, max_question: int | None = None) -> BenchmarkResult:
    """`benchmark` for a model that reasons, from the same greedy texts that `model.answer` parses: each sample
    also holds its text and whether it is right with sound steps (`soundness.reasoning_fault`), and the result
    its `sound_accuracy`."""
    from .formats import judge
    from .soundness import reasoning_fault

    rows = dataset.data[:max_question] if max_question else dataset.data
    if not rows:
        return BenchmarkResult(0.0, 0.0, [], 0.0)
    texts = model.batched_generate([model.format_prompt(row[0]) for row in rows])
    samples = []
    for row, text in zip(rows, texts):
        answer = model.parse_answer(text)
        right = is_answer_valid(answer, row[1])
        fault = reasoning_fault(row[0], judge(text, row[1])[1]) if right else "wrong"
        samples.append({"question": row[0], "answer": answer, "correct_answer": row[1], "is_correct": right,
                        "text": text, "is_sound": right and not fault, "fault": fault})
    accuracy = sum(s["is_correct"] for s in samples) / len(samples)
    answer_rate = sum(not math.isnan(s["answer"]) for s in samples) / len(samples)
    return BenchmarkResult(accuracy, answer_rate, samples, sum(s["is_sound"] for s in samples) / len(samples))


def evaluate(model, split: str = "valid", max_question: int | None = None, reasoned: bool = False) -> str:
    """Benchmark `model` on a split, print a few wrong answers and the size, return the summary line.

    reasoned: the model writes reasoning; the summary adds the share right with sound steps."""
    result = (reasoned_benchmark if reasoned else benchmark)(model, Dataset(split), max_question)
    for s in [s for s in result.samples if not s["is_correct"]][:5]:
        print(f"wrong: {s['question']!r} -> {s['answer']} (true {s['correct_answer']:.6g})")
    dtype = str(getattr(model, "dtype", "")).replace("torch.", "")
    print(f"{split}: {len(result.samples)} questions" + (f", dtype {dtype}" if dtype else ""))
    return result.summary()


def check(split: str = "valid") -> str:
    """Validate a data file: `python -m homework.data check data/train.json`."""
    return f"{Dataset(split).path}: {len(Dataset(split))} rows, well formed"


if __name__ == "__main__":
    from .cli import run_cli

    run_cli({"check": check})
