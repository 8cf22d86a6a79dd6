"""RFT: labels on the reasoning only, and a train -> save -> load round trip on the tiny model."""

import json

import pytest
import torch

from homework import rft
from homework.cli import ModelUnavailable


def test_labels_cover_reasoning_and_eos(tiny_checkpoint):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_checkpoint)
    reasoning = "1 meter = 3.28 feet, so 7 meters = 7 * 3.28 = 22.96. <answer>22.96</answer>"
    row = rft.encode_rows(tok, [("How many feet are in 7 meters?", 22.97, reasoning)])[0]
    labelled = [t for t, l in zip(row["input_ids"], row["labels"]) if l != -100]
    assert tok.decode(labelled) == " " + reasoning + tok.eos_token


def test_round_trip(tiny_checkpoint, tmp_path, fp32):
    data = tmp_path / "rft.json"
    data.write_text(json.dumps([["How many feet are in 7 meters?", 22.97, "7 * 3.28 = 22.96. <answer>23</answer>"]] * 16))
    out = tmp_path / "rft_model"
    rft.train_model(output_dir=str(out), data=str(data), checkpoint=tiny_checkpoint, max_steps=3, batch_size=4,
                    learning_rate=1e-2, test_after=False)
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    a = rft.load(out, checkpoint=tiny_checkpoint)
    assert a.max_new_tokens == rft.MAX_NEW_TOKENS
    record = json.loads((out / "record.json").read_text())
    assert record["kind"] == "rft" and record["format"]["completion"] == "reasoning"  # not the SFT answer-only format
    saved = load_file(out / "adapter_model.safetensors")
    loaded = {k.replace(".default", ""): v for k, v in a.model.state_dict().items() if "lora_" in k}
    assert set(saved) == set(loaded) and all(torch.equal(saved[k], loaded[k]) for k in saved), "the saved weights"
    assert any(v.abs().sum() > 0 for k, v in saved.items() if "lora_B" in k), "lora_B trained away from zero"
    ids = a.tokenizer("Convert 3 kg to pounds.", return_tensors="pt").input_ids
    base = AutoModelForCausalLM.from_pretrained(tiny_checkpoint, dtype=torch.float32).eval()
    with torch.no_grad():
        assert not torch.allclose(a.model(ids).logits, base(ids).logits), "the adapter is attached and active"
    assert "rft" in (out / "README.md").read_text().lower()


def test_missing_adapter_names_the_train_command(tmp_path):
    with pytest.raises(ModelUnavailable, match="run: python -m homework.rft train"):
        rft.load(tmp_path / "rft_model")


def test_init_adapter_goes_on_from_the_parent(tiny_checkpoint, tmp_path, fp32):
    from safetensors.torch import load_file

    from homework import records

    sound = "1 meter = 3.28 feet, so 7 meters = 7 * 3.28 = 22.96. <answer>22.96</answer>"
    data = tmp_path / "rft.json"
    data.write_text(json.dumps([["How many feet are in 7 meters?", 22.97, sound]] * 16))
    first, second = tmp_path / "first", tmp_path / "second"
    common = dict(data=str(data), checkpoint=tiny_checkpoint, max_steps=2, batch_size=4, test_after=False)
    rft.train_model(output_dir=str(first), learning_rate=1e-2, rank=8, **common)
    rft.train_model(output_dir=str(second), learning_rate=0.0, rank=4, init_adapter=str(first), **common)
    record = json.loads((second / "record.json").read_text())
    assert record["config"]["rank"] == 8, "the started adapter's rank is kept"
    assert record["parent"]["sha256"] == records.sha256(first / "adapter_model.safetensors")
    assert record["data"]["sha256"] == records.sha256(data) and record["data"]["rows"] == 16
    a, b = load_file(first / "adapter_model.safetensors"), load_file(second / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "lr 0 must leave the started weights"
    with pytest.raises(ValueError, match="no saved adapter"):
        rft.train_model(output_dir=str(second), init_adapter=str(tmp_path / "none"), **common)
    readme = (second / "README.md").read_text()
    assert f"--init_adapter {first}" in readme and "going on training its parent" in readme
    assert "## Parent" in readme and record["parent"]["sha256"] in readme


@pytest.mark.slow
def test_misses_counts_each_wrong_answer_once_by_cause(tmp_path, capsys):
    """`rft misses` on questions the committed adapter gets wrong and right: every wrong one gets one cause."""
    import re

    rows = [["How many feet are in 7 meters?", 22.9659],     # the adapter gets this right
            ["How many feet are in 7 meters?", 1000.0],      # a wrong truth: its answer is now a miss
            ["How many grams are in 3 kilograms?", 1.0]]     # likewise
    split = tmp_path / "probe.json"
    split.write_text(json.dumps(rows))
    summary = rft.misses(str(split), show=5)
    m = re.fullmatch(r".* \[pure\]: right ([\d.]+), right and sound ([\d.]+) of 3; wrong: (.*); right but unsound: (.*)",
                     summary)
    assert m, summary
    assert float(m[1]) == pytest.approx(1 / 3, abs=1e-3) and float(m[2]) <= float(m[1])
    assert sum(int(n) for n in re.findall(r" (\d+)(?=,|$)", m[3])) == 2, "each wrong answer counted once"
    assert len(capsys.readouterr().out.strip().splitlines()) == 2, "one example line a miss"
