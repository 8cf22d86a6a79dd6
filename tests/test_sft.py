"""SFT: label masking, a full LoRA run on the tiny model, and the load() round trip."""

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from homework import sft
from homework.base_llm import ModelUnavailable, embedded_model_dir


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(embedded_model_dir())


def test_labels_cover_only_answer_and_eos(tokenizer):
    row = sft.tokenize(tokenizer, "How many feet are in 7 meters?", 22.9659)
    labelled = [t for t, l in zip(row["input_ids"], row["labels"]) if l != -100]
    assert tokenizer.decode(labelled) == " <answer>23</answer>" + tokenizer.eos_token
    prompt_len = row["labels"].index(next(l for l in row["labels"] if l != -100))
    assert tokenizer.decode(row["input_ids"][:prompt_len]) == "How many feet are in 7 meters?"
    assert row["labels"][prompt_len:] == row["input_ids"][prompt_len:]


def test_collator_pads_right_and_masks_padding(tokenizer):
    rows = [sft.tokenize(tokenizer, "Convert 1 m to ft.", 3.28), sft.tokenize(tokenizer, "How many grams are in 3 metric tons?", 3e6)]
    batch = sft.PadCollator(tokenizer.pad_token_id)(rows)
    short = len(rows[0]["input_ids"])
    assert batch["input_ids"].shape[1] == max(len(r["input_ids"]) for r in rows)
    assert (batch["labels"][0, short:] == -100).all() and (batch["attention_mask"][0, short:] == 0).all()


@pytest.fixture(scope="module")
def trained(tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("sft") / "sft_model"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOMEWORK_DTYPE", "float32")
        sft.train_model(output_dir=str(out), checkpoint=tiny_checkpoint, n_rows=64, batch_size=8,
                        max_steps=4, learning_rate=1e-2, test_after=False)
    return out


def test_training_writes_adapter_card_and_curve(trained):
    names = {p.name for p in trained.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", sft.FORMAT_FILE, "loss.png", "runs"} <= names
    assert not any(n.startswith("checkpoint-") for n in names)
    assert not trained.with_name(f".{trained.name}_work").exists(), "checkpoints left behind"
    fmt = json.loads((trained / sft.FORMAT_FILE).read_text())
    assert fmt["steps"] == 4 and fmt["rank"] == sft.LORA_RANK


def test_lora_semantics_and_round_trip(trained, tiny_checkpoint, fp32):
    llm = sft.load_adapter(trained, sft.TRAIN_COMMAND, checkpoint=tiny_checkpoint)
    base = AutoModelForCausalLM.from_pretrained(tiny_checkpoint, dtype=torch.float32)
    base_sd = base.state_dict()
    loaded = dict(llm.model.named_parameters())
    # base weights unchanged
    for name, value in loaded.items():
        if "lora_" not in name:
            key = name.replace("base_model.model.", "").replace(".base_layer", "")
            assert torch.equal(value, base_sd[key]), name
    # LoRA B starts at zero; training must have moved it
    lora_b = [v for n, v in loaded.items() if "lora_B" in n]
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b)
    # the loaded adapter holds exactly the saved tensors
    saved = load_file(trained / "adapter_model.safetensors")
    assert len(saved) == len([n for n in loaded if "lora_" in n])
    # reload gives identical logits
    ids = llm.tokenizer("How many feet are in 7 meters?", return_tensors="pt").input_ids
    again = sft.load_adapter(trained, sft.TRAIN_COMMAND, checkpoint=tiny_checkpoint)
    with torch.no_grad():
        assert torch.equal(llm.model(ids).logits, again.model(ids).logits)
        assert not torch.equal(llm.model(ids).logits, base(ids).logits), "adapter has no effect"


def test_missing_adapter_names_train_command(tmp_path):
    with pytest.raises(ModelUnavailable, match="python -m homework.sft train"):
        sft.load_adapter(tmp_path / "sft_model", sft.TRAIN_COMMAND)


def test_adapter_for_another_base_is_refused(trained, tmp_path):
    # the tiny model's adapter has the wrong shapes for the embedded 135M model
    with pytest.raises(ModelUnavailable, match="does not fit this base model.*python -m homework.sft train"):
        sft.load_adapter(trained, sft.TRAIN_COMMAND)
