"""homework.report: per-dimension accuracy, the markdown table and the charts, on the tiny model."""

import json

import pytest

from homework import report
from homework.cli import ModelUnavailable


def test_by_dimension_groups_questions_by_their_source_unit():
    samples = [{"question": "How many feet are in 7 meters?", "is_correct": True},
               {"question": "Convert 3 meters to inches.", "is_correct": False},
               {"question": "How many seconds are in 2 hours?", "is_correct": True}]
    assert report.by_dimension(samples) == {"length": 0.5, "time": 1.0}


def test_report_writes_table_and_charts(tiny_llm, tmp_path, monkeypatch, capsys):
    split = tmp_path / "small.json"
    split.write_text(json.dumps([["How many feet are in 7 meters?", 22.9659],
                                 ["How many grams are in 2 kilograms?", 2000.0]]))

    def load(name):
        if name == "rft":
            raise ModelUnavailable("no trained adapter in rft_model; run: python -m homework.rft train")
        return tiny_llm

    monkeypatch.setattr(report, "_load", load)
    out = tmp_path / "out"
    line = report.report(models="sft,rft,rft_calculator", splits=str(split), out=str(out))
    assert line.startswith(f"wrote {out}/report.md") and "(2 evaluations)" in line
    assert "skipping rft" in capsys.readouterr().err
    table = (out / "report.md").read_text()
    assert "| SFT | " in table and "| RFT |" not in table and "| RFT + calculator | " in table
    results = json.loads((out / "results.json").read_text())["results"]
    assert results[0]["questions"] == 2 and set(results[0]["by_dimension"]) == {"length", "mass"}
    for png in ("accuracy_by_dimension.png", "loss_curves.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


def test_unknown_model_and_missing_split_fail_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="unknown model"):
        report.report(models="gpt", out=str(tmp_path))
    # Fire hands `--models sft,gpt` over as a tuple: each name is checked on its own, not the tuple's text
    with pytest.raises(ValueError, match=r"unknown model\(s\) \['gpt'\]"):
        report.report(models=("sft", "gpt"), out=str(tmp_path))
    with pytest.raises(ValueError, match="no such file"):
        report.report(models="sft", splits=str(tmp_path / "none.json"), out=str(tmp_path))


def test_update_keeps_the_rows_not_evaluated_now(tiny_llm, tmp_path, monkeypatch):
    split = tmp_path / "small.json"
    split.write_text(json.dumps([["How many feet are in 7 meters?", 22.9659]]))
    monkeypatch.setattr(report, "_load", lambda name: tiny_llm)
    out = tmp_path / "out"
    report.report(models="cot,sft", splits=str(split), out=str(out))
    first = json.loads((out / "results.json").read_text())
    first["results"][0]["date"] = "2026-01-01"  # the CoT row, made "earlier"
    (out / "results.json").write_text(json.dumps(first))
    report.report(models="sft", splits=str(split), out=str(out), update=True)
    rows = json.loads((out / "results.json").read_text())["results"]
    assert [(r["model"], r["date"]) for r in rows] == [("cot", "2026-01-01"), ("sft", first["date"])]
    assert "| 2026-01-01 |" in (out / "report.md").read_text()
    report.report(models="sft", splits=str(split), out=str(out))  # without --update: only what ran
    assert [r["model"] for r in json.loads((out / "results.json").read_text())["results"]] == ["sft"]
    other = json.loads((out / "results.json").read_text()) | {"machine": "another machine"}
    (out / "results.json").write_text(json.dumps(other))
    with pytest.raises(ValueError, match="another machine"):
        report.report(models="sft", splits=str(split), out=str(out), update=True)
