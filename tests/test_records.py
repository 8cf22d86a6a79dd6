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


def test_rft_record_names_its_data_and_parent_by_hash():
    record = records.read_record(REPO / "homework" / "rft_model")
    assert record["data"]["sha256"] == records.sha256(REPO / "data" / "rft.json")
    assert record["data"]["rows"] == len(json.loads((REPO / "data" / "rft.json").read_text()))
    lineage = record["parent"]["lineage"]
    assert [p["round"] for p in lineage] == list(range(9, 19)) and lineage[-1]["sha256"] == record["parent"]["sha256"]
    rounds = json.loads((REPO / "data" / "rft.rounds.json").read_text())["rounds"]
    assert len(rounds) == record["data"]["rows"] and all(rounds.values()), "every row has its rounds"


def test_an_unknown_format_is_refused(tmp_path):
    folder = tmp_path / "sft_model"
    folder.mkdir()
    (folder / "adapter_model.safetensors").write_bytes(b"")
    (folder / records.RECORD_FILE).write_text(json.dumps({"format": {"prompt": "question", "completion": "haiku"}}))
    with pytest.raises(ModelUnavailable, match="completion format 'haiku'"):
        training.load_adapter(folder, sft.TRAIN_COMMAND)
