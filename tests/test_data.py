"""Datasets, the correctness check and the benchmark."""

import json
import math

import pytest

from homework.data import BenchmarkResult, DataError, Dataset, benchmark, is_answer_valid


@pytest.mark.parametrize("answer,correct,ok", [
    (100.0, 100.0, True),
    (104.9, 100.0, True),      # inside 5 %
    (105.1, 100.0, False),     # outside 5 %
    (-95.5, -100.0, True),     # relative to |truth|
    (math.nan, 1.0, False),    # no answer
    (math.inf, 1.0, False),
    (0.0, 0.0, True),
    (1e-9, 1.05e-9, True),     # tiny values are judged relatively too
])
def test_is_answer_valid(answer, correct, ok):
    assert is_answer_valid(answer, correct) is ok


@pytest.mark.parametrize("content,problem", [
    (b"", "the file is empty"),
    (b"[1, 2", "not valid JSON"),
    (b"\xff\xfe\x00bad", "not UTF-8"),
    (b'{"a": 1}', "expected a JSON list"),
    (b'[["q"]]', "row 0 should be a list of 2 or 3 items"),
    (b'[[1, 2]]', "row 0 should start with a question string"),
    (b'[["q", "12"]]', "row 0 should start with a question string and a number"),
])
def test_malformed_files_name_file_and_problem(tmp_path, content, problem):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(DataError, match=problem) as err:
        Dataset(str(path))
    assert str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        Dataset("nope", data_dir=tmp_path)


class _Echo:
    """Answers from a fixed list, to check the benchmark's bookkeeping."""

    def __init__(self, answers):
        self.answers = answers

    def answer(self, *questions):
        return self.answers[: len(questions)]


def test_benchmark_counts(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([["a", 1.0], ["b", 2.0], ["c", 3.0], ["d", 4.0]]))
    result = benchmark(_Echo([1.0, 2.5, math.nan, 4.1]), Dataset(str(path)))
    assert (result.accuracy, result.answer_rate) == (0.5, 0.75)
    assert [s["is_correct"] for s in result.samples] == [True, False, False, True]
    assert benchmark(_Echo([1.0]), Dataset(str(path)), max_question=1).accuracy == 1.0


def test_summary_line_format():
    assert BenchmarkResult(0.5, 1.0).summary() == "benchmark_result.accuracy=0.5000 benchmark_result.answer_rate=1.0000"
