"""The committed adapters' records: portable, complete, and matching the code and the data they name."""

import dataclasses
import json
from pathlib import Path

import pytest

from homework import records, rft, sft, training
from homework.base_llm import DEFAULT_CHECKPOINT, ModelUnavailable

REPO = Path(__file__).resolve().parent.parent


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


def test_rft_record_names_its_data_and_parents_by_hash():
    record = records.read_record(REPO / "homework" / "rft_model")
    data = REPO / record["config"]["data"]
    assert record["data"]["sha256"] == records.sha256(data)
    assert record["data"]["rows"] == len(json.loads(data.read_text()))
    lineage = record["parent"]["lineage"]
    assert [p.get("round") for p in lineage] == list(range(9, 20)), "rounds 9-19 behind the committed adapter"
    assert lineage[-1]["sha256"] == record["parent"]["sha256"]
    rounds = json.loads((REPO / "data" / "rft.rounds.json").read_text())["rounds"]
    assert len(rounds) == len(json.loads((REPO / "data" / "rft.json").read_text())) and all(rounds.values())


def test_sft_record_names_its_parent_and_how_to_get_it():
    record = records.read_record(REPO / "homework" / "sft_model")
    assert record["config"]["phrasing"] == "composed" and record["parent"]["command"].endswith("--phrasing templates")
    assert record["config"]["init_adapter"] == "runs/sft/templates/sft_model", "the path recipes/sft.json trains it to"


def test_an_unknown_format_is_refused(tmp_path):
    folder = tmp_path / "sft_model"
    folder.mkdir()
    (folder / "adapter_model.safetensors").write_bytes(b"")
    (folder / records.RECORD_FILE).write_text(json.dumps({"format": {"prompt": "question", "completion": "haiku"}}))
    with pytest.raises(ModelUnavailable, match="completion format 'haiku'"):
        training.load_adapter(folder, sft.TRAIN_COMMAND)
