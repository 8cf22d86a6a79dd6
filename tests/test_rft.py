"""RFT: labels on the reasoning only, and a train -> save -> load round trip on the tiny model."""

import json
import os

import pytest
import torch

from homework import rft
from homework.base_llm import ModelUnavailable


def test_labels_cover_reasoning_and_eos(tiny_checkpoint):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_checkpoint)
    reasoning = "1 meter = 3.28 feet, so 7 meters = 7 * 3.28 = 22.96. <answer>22.96</answer>"
    row = rft.tokenize(tok, "How many feet are in 7 meters?", reasoning)
    labelled = [t for t, l in zip(row["input_ids"], row["labels"]) if l != -100]
    assert tok.decode(labelled) == " " + reasoning + tok.eos_token


def test_round_trip(tiny_checkpoint, tmp_path, fp32):
    data = tmp_path / "rft.json"
    data.write_text(json.dumps([["How many feet are in 7 meters?", 22.97, "7 * 3.28 = 22.96. <answer>23</answer>"]] * 16))
    out = tmp_path / "rft_model"
    rft.train_model(output_dir=str(out), data=str(data), checkpoint=tiny_checkpoint, max_steps=3, batch_size=4,
                    learning_rate=1e-2, test_after=False)
    a, b = rft.load(out, checkpoint=tiny_checkpoint), rft.load(out, checkpoint=tiny_checkpoint)
    assert a.max_new_tokens == rft.MAX_NEW_TOKENS
    card = json.loads((out / "prompt_format.json").read_text())
    assert card["kind"] == "rft" and "reasoning" in card["completion"]  # not the SFT answer-only format
    ids = a.tokenizer("Convert 3 kg to pounds.", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.equal(a.model(ids).logits, b.model(ids).logits)
    assert "rft" in (out / "README.md").read_text().lower()


def test_missing_adapter_names_the_commands(tmp_path):
    with pytest.raises(ModelUnavailable, match="python -m homework.datagen data/rft.json"):
        rft.load(tmp_path / "rft_model")


def test_sound_only_and_init_adapter(tiny_checkpoint, tmp_path, fp32):
    from safetensors.torch import load_file

    sound = "1 meter = 3.28 feet, so 7 meters = 7 * 3.28 = 22.96. <answer>22.96</answer>"
    loose = "7 * 3.28 = 23.5. <answer>23.5</answer>"  # within 5 %, product wrong: not sound
    data = tmp_path / "rft.json"
    data.write_text(json.dumps([["How many feet are in 7 meters?", 22.97, sound]] * 5
                               + [["How many feet are in 7 meters?", 22.97, loose]] * 11))
    first, second = tmp_path / "first", tmp_path / "second"
    common = dict(data=str(data), checkpoint=tiny_checkpoint, max_steps=2, batch_size=4, test_after=False)
    rft.train_model(output_dir=str(first), learning_rate=1e-2, rank=8, **common)
    rft.train_model(output_dir=str(second), learning_rate=0.0, rank=4, sound_only=True, init_adapter=str(first),
                    **common)
    card = json.loads((second / "prompt_format.json").read_text())
    assert card["rows"] == 5 and card["rank"] == 8, "only sound rows; the started adapter's rank is kept"
    a, b = load_file(first / "adapter_model.safetensors"), load_file(second / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "lr 0 must leave the started weights"
    with pytest.raises(ValueError, match="no saved adapter"):
        rft.train_model(output_dir=str(second), init_adapter=str(tmp_path / "none"), **common)
    readme = (second / "README.md").read_text()
    assert (f"Made by `python -m homework.rft train --epochs 2 --learning_rate 0 --batch_size 4 --seed 0 --init_adapter "
            f"{first} --data {os.path.relpath(data)} --sound_only`, going on") in readme
    assert "## Started from" in readme and "only the sound ones (of 16)" in readme


def test_wide_only_keeps_the_rows_beyond_1_to_10(tiny_checkpoint, tmp_path, fp32):
    reasoning = "1 meter = 3.28 feet, so {q} meters = {q} * 3.28 = {p}. <answer>{p}</answer>"
    rows = [[f"How many feet are in {q} meters?", q * 3.2808, reasoning.format(q=q, p=round(q * 3.28, 2))]
            for q in (7, 10, 2.5, 0.75, 35, 1, 420)]
    data = tmp_path / "rft.json"
    data.write_text(json.dumps(rows))
    out = tmp_path / "wide"
    rft.train_model(output_dir=str(out), data=str(data), checkpoint=tiny_checkpoint, max_steps=1, batch_size=2,
                    wide_only=True, test_after=False)
    assert json.loads((out / "prompt_format.json").read_text())["rows"] == 4  # 2.5, 0.75, 35, 420
    readme = (out / "README.md").read_text()
    assert "--wide_only`" in readme and "only the wide ones (of 7)" in readme
