"""The committed adapters' records: portable, complete, and matching the code and the data they name."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from homework import adapters, records, rft, sft
from homework.checkpoints import DEFAULT_CHECKPOINT
from homework.cli import ModelUnavailable

REPO = Path(__file__).resolve().parent.parent
# The committed RFT adapter is still round 20 of the old chain of adapters: `python -m homework.rft train` now
# trains the one-run recipe, whose run has not been committed yet. Strict: once it is, these marks must go.
PENDING_RFT = pytest.mark.xfail(strict=True, reason="homework/rft_model is round 22 of the chain, not yet the bare "
                                "`python -m homework.rft train` (issue 37)")


@pytest.mark.parametrize("kind,config", [("sft", sft.SFTConfig), ("rft", rft.RFTConfig)])
def test_committed_record_is_portable_and_complete(kind, config):
    folder = REPO / "homework" / f"{kind}_model"
    record = records.read_record(folder)
    assert record["base_model"] == DEFAULT_CHECKPOINT
    adapter_config = json.loads((folder / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == DEFAULT_CHECKPOINT, "no path of the training machine"
    text = (folder / records.RECORD_FILE).read_text() + (folder / "README.md").read_text()
    assert "/root" not in text and "/home/" not in text and "/tmp/" not in text and ".cache" not in text
    assert set(record["config"]) == {f.name for f in dataclasses.fields(config)}, "every field, defaults included"
    assert (folder / "README.md").read_text() == records.card(record), "the card is written from the record"
    assert not (folder / "prompt_format.json").exists()


@pytest.mark.parametrize("kind", ["sft", pytest.param("rft", marks=PENDING_RFT)])
def test_committed_adapter_is_the_default_command_from_the_base(kind):
    """The shipped adapter is exactly what the bare train command makes: no parent, no option off its default."""
    record = records.read_record(REPO / "homework" / f"{kind}_model")
    assert record["parent"] is None and record["config"]["init_adapter"] == ""
    assert records.short_command(record) == f"python -m homework.{kind} train"
    assert f"Made by `python -m homework.{kind} train`, in one run from the base model" in records.card(record)
    assert record["run"].get("machine"), "the machine is recorded at training time"
    assert record.get("test", "").startswith("benchmark_result.accuracy=")


def test_rft_record_names_its_data_by_hash():
    record = records.read_record(REPO / "homework" / "rft_model")
    # the rows it trained on are the committed ones: the recipe's work copy (runs/rft/rft.json) installed as data/
    data = REPO / "data" / "rft.json"
    assert record["data"]["sha256"] == records.sha256(data)
    assert record["data"]["rows"] == len(json.loads(data.read_text()))
    rounds = json.loads((REPO / "data" / "rft.rounds.json").read_text())["rounds"]
    assert len(rounds) == len(json.loads((REPO / "data" / "rft.json").read_text())) and all(rounds.values())


@pytest.mark.parametrize("kind", ["sft", "rft"])
def test_records_show_runs_on_each_committed_adapter(kind):
    out = subprocess.run([sys.executable, "-m", "homework.records", "show", f"homework/{kind}_model"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-800:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"python -m homework.{kind} train"), lines[:2]
    assert lines[1].startswith(f"every setting: python -m homework.{kind} train --epochs ")
    assert any(line.startswith("test: benchmark_result.accuracy=") for line in lines)
    assert any(line.startswith("parent: ") for line in lines)


def test_records_show_reads_a_chained_record_and_refuses_a_folder_without_one(tmp_path):
    """A record whose parent has a lineage (an experiment going on from another adapter) shows each by hash."""
    record = {"kind": "sft", "config": {"n_rows": 100, "learning_rate": 5e-4, "init_adapter": "runs/a"},
              "data": {"source": "generated", "rows": 100}, "test": "",
              "run": {"steps": 7, "train_minutes": 0.1, "dtype": "float32", "device": "cpu", "threads": 2,
                      "machine": "x86_64"},
              "parent": {"sha256": "ab" * 32, "lineage": [{"sha256": "ab" * 32, "command": "python -m homework.sft train"}]}}
    (tmp_path / records.RECORD_FILE).write_text(json.dumps(record))
    out = records.show(str(tmp_path))
    assert out.splitlines()[0] == "python -m homework.sft train --n_rows 100 --learning_rate 0.0005 --init_adapter runs/a"
    assert f"  {'ab' * 32}: python -m homework.sft train" in out and "test: not tested" in out
    with pytest.raises(ValueError, match="no record.json"):
        records.show(str(tmp_path / "none"))


@pytest.mark.parametrize("previous,record,line", [
    ({}, {"test": "benchmark_result.accuracy=0.9500 x"}, "replaced: nothing (new 0.9500)"),  # a first train
    ({"test": "benchmark_result.accuracy=0.9830 x"}, {"test": "benchmark_result.accuracy=0.9500 x"},
     "replaced: an adapter with valid accuracy 0.9830 (new 0.9500)"),  # a worse adapter replaced a better one
    ({"kind": "sft"}, {}, "replaced: an adapter with valid accuracy never recorded (new not tested)"),
])
def test_train_says_what_it_replaced(previous, record, line):
    assert adapters.replaced_line(previous, record) == line


def test_an_unknown_format_is_refused(tmp_path):
    folder = tmp_path / "sft_model"
    folder.mkdir()
    (folder / "adapter_model.safetensors").write_bytes(b"")
    (folder / records.RECORD_FILE).write_text(json.dumps({"format": {"prompt": "question", "completion": "haiku"}}))
    with pytest.raises(ModelUnavailable, match="completion format 'haiku'"):
        adapters.load_adapter(folder, sft.TRAIN_COMMAND)
