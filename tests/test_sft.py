"""SFT: label masking, a full LoRA run on the tiny model, and the load() round trip."""

import dataclasses
import json
import math

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from homework import batches, formats, profiling, records, sft, training
from homework.base_llm import BaseLLM
from homework.checkpoints import DEFAULT_CHECKPOINT, embedded_model_dir
from homework.cli import ModelUnavailable
from homework.units import BY_NAME, parse_question


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(embedded_model_dir())


def test_labels_cover_only_answer_and_eos(tokenizer):
    row = sft.encode_rows(tokenizer, [("How many feet are in 7 meters?", 22.9659)])[0]
    labelled = [t for t, l in zip(row["input_ids"], row["labels"]) if l != -100]
    assert tokenizer.decode(labelled) == " <answer>23</answer>" + tokenizer.eos_token
    prompt_len = row["labels"].index(next(l for l in row["labels"] if l != -100))
    assert tokenizer.decode(row["input_ids"][:prompt_len]) == "How many feet are in 7 meters?"
    assert row["labels"][prompt_len:] == row["input_ids"][prompt_len:]


def test_stepped_rows_work_a_fractional_quantity_and_answer_a_whole_one_alone(tokenizer):
    rows = [("How many feet are in 7.5 meters?", 24.6063), ("How many feet are in 7 meters?", 22.9659)]
    stepped, whole = sft.encode_rows(tokenizer, rows, completion="answer_steps")
    labelled = [t for t, l in zip(stepped["input_ids"], stepped["labels"]) if l != -100]
    assert tokenizer.decode(labelled) == (" 7.5 * 3.28 = 7 * 3.28 + 0.5 * 3.28 = 23 + 1.64 = 24.6. "
                                          "<answer>24.6</answer>" + tokenizer.eos_token)
    assert whole == sft.encode_rows(tokenizer, rows[1:])[0]
    assert sft.completion_format(sft.SFTConfig(decimal_steps=True)) == "answer_steps"
    assert sft.completion_format(sft.SFTConfig()) == "answer"


def test_collator_pads_right_and_masks_padding(tokenizer):
    rows = sft.encode_rows(tokenizer, [("Convert 1 m to ft.", 3.28), ("How many grams are in 3 metric tons?", 3e6)])
    batch = batches.PadCollator(tokenizer.pad_token_id)(rows)
    short = len(rows[0]["input_ids"])
    assert batch["input_ids"].shape[1] == max(len(r["input_ids"]) for r in rows)
    assert (batch["labels"][0, short:] == -100).all() and (batch["attention_mask"][0, short:] == 0).all()


QUESTIONS = [("Convert 1 m to ft.", 3.28), ("How many grams are in 3 metric tons?", 3e6),
             ("What is 7 hours expressed in minutes?", 420), ("6 B to gigabytes?", 6e-9), ("1 mi in km?", 1.61)]


def test_packed_batch_gives_the_padded_loss(tiny_checkpoint, tokenizer):
    """Packing rows end to end (own positions, block-diagonal mask) changes the token count, not the loss."""
    rows = sft.encode_rows(tokenizer, QUESTIONS)
    packed = batches.PackCollator(tokenizer.pad_token_id, width=40)(rows)
    lengths = [len(r["input_ids"]) for r in rows]
    n_seq, width = packed["input_ids"].shape
    assert n_seq == math.ceil(sum(lengths) / 40) < len(rows)
    fills = (packed["segments"] >= 0).sum(1)
    assert width == fills.max() and fills.max() - fills.min() <= max(lengths)  # rows dealt out evenly
    assert (packed["labels"] != -100).sum() == sum(sum(l != -100 for l in r["labels"]) for r in rows)
    assert sorted(packed["input_ids"][packed["segments"] >= 0].tolist()) == sorted(t for r in rows for t in r["input_ids"])
    torch.manual_seed(0)
    model = training.build_model(BaseLLM(tiny_checkpoint, dtype=torch.float32), rank=4)
    for name, p in model.named_parameters():
        if "lora_B" in name:  # a non-zero adapter, so the check covers it too
            torch.nn.init.normal_(p, std=0.05)
    with torch.no_grad():
        padded_loss = training.answer_loss(model, batches.PadCollator(tokenizer.pad_token_id)(rows))
        packed_loss = training.answer_loss(model, packed)
        shuffled = training.answer_loss(model, batches.PackCollator(tokenizer.pad_token_id, width=40)(rows[::-1]))
    assert packed_loss.item() == pytest.approx(padded_loss.item(), rel=1e-5)
    assert shuffled.item() == pytest.approx(padded_loss.item(), rel=1e-5)
    # and the mask matters: all rows in one sequence give the same loss, unless each row sees the rows before it
    one = batches.PackCollator(tokenizer.pad_token_id, width=1000)(rows)
    leaky = dict(one, segments=torch.zeros_like(one["segments"]))
    with torch.no_grad():
        assert one["input_ids"].shape[0] == 1
        assert training.answer_loss(model, one).item() == pytest.approx(padded_loss.item(), rel=1e-5)
        assert training.answer_loss(model, leaky).item() != pytest.approx(padded_loss.item(), rel=1e-3)


def test_trimmed_rows_end_at_the_closing_tag_and_keep_their_other_losses(tiny_checkpoint, tokenizer):
    """3 rows in 4 stop after "</"; what is left of a row scores as it did in the whole row."""
    whole = sft.encode_rows(tokenizer, QUESTIONS)
    rows = sft.encode_rows(tokenizer, QUESTIONS, ending_every=4)
    assert rows[0] == whole[0] and rows[4] == whole[4]  # rows 0 and 4 keep "answer>" and EOS
    for row, full in zip(rows[1:4], whole[1:4]):
        assert tokenizer.decode(full["input_ids"][len(row["input_ids"]) - 1:]) == "</answer>" + tokenizer.eos_token
        assert all(row[k] == full[k][:len(row["input_ids"])] for k in full)
        assert tokenizer.decode([row["input_ids"][-1]]) == "</" and row["labels"][-1] == row["input_ids"][-1]
    odd = {"input_ids": [5, 6, 7], "attention_mask": [1, 1, 1], "labels": [-100, 6, 7]}
    assert formats.trim_ending(odd, formats.ending_tokens(tokenizer)) == odd  # no closing tag at the end: left whole
    model = training.build_model(BaseLLM(tiny_checkpoint, dtype=torch.float32), rank=4)
    with torch.no_grad():
        for row, full in zip(rows[1:4], whole[1:4]):
            n = len(row["input_ids"])
            short = model(input_ids=torch.tensor([row["input_ids"]])).logits[0]
            long = model(input_ids=torch.tensor([full["input_ids"]])).logits[0, :n]
            assert torch.allclose(short, long, atol=1e-5)
    with pytest.raises(ValueError, match="ending_every"):
        sft.train_model(output_dir="/nonexistent/x", ending_every=0)


def test_training_rows_can_weight_dimensions():
    """The mix weights the unit pairs; same-unit rows (`same_unit`) are drawn over every unit with two names."""
    rows = sft.training_rows(sft.SFTConfig(n_rows=300, dimensions=("mass", "mass", "data")))
    convs = [parse_question(q) for q, _ in rows]
    dims = [BY_NAME[c.src].dimension for c in convs if c.src != c.dst]
    assert len(dims) > 0.95 * len(rows)
    assert set(dims) == {"mass", "data"} and 1.5 < dims.count("mass") / dims.count("data") < 2.7


def test_training_rows_follow_the_dimension_mix_by_default():
    """Each dimension's share of the generated rows is its share of the mix (time, with the most answers to
    learn, is drawn most), not the even 1 in 6."""
    rows = sft.training_rows(sft.SFTConfig(n_rows=2000))
    dims = [BY_NAME[parse_question(q).src].dimension for q, _ in rows]
    for dimension in set(sft.DIMENSION_MIX):
        expected = sft.DIMENSION_MIX.count(dimension) / len(sft.DIMENSION_MIX)
        assert abs(dims.count(dimension) / len(dims) - expected) < 0.04, dimension


@pytest.fixture(scope="module")
def trained(tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("sft") / "sft_model"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOMEWORK_DTYPE", "float32")
        sft.train_model(output_dir=str(out), checkpoint=tiny_checkpoint, n_rows=64, batch_size=8,
                        max_steps=4, learning_rate=1e-2, test_after=False)
    return out


def test_a_rerun_that_makes_the_same_bytes_leaves_every_file_as_it_is(tiny_checkpoint, tmp_path, monkeypatch):
    """A reproduction changes nothing in the folder, not even the card's minutes; a different run replaces it."""
    monkeypatch.setenv("HOMEWORK_DTYPE", "float32")
    out = tmp_path / "sft_model"
    options = dict(output_dir=str(out), checkpoint=tiny_checkpoint, n_rows=32, batch_size=8, max_steps=2,
                   learning_rate=1e-2, test_after=False)
    sft.train_model(**options)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    message = sft.train_model(**options)
    assert "made its very bytes, so its files were left as they are" in message
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert "saved sft adapter" in sft.train_model(**{**options, "max_steps": 3})
    assert (out / "adapter_model.safetensors").read_bytes() != before["adapter_model.safetensors"]


def test_training_writes_adapter_card_and_curve(trained):
    names = {p.name for p in trained.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", records.RECORD_FILE, "loss.png", "runs"} <= names
    assert not any(n.startswith("checkpoint-") for n in names)
    assert not trained.with_name(f".{trained.name}_work").exists(), "checkpoints left behind"
    record = json.loads((trained / records.RECORD_FILE).read_text())
    assert record["run"]["steps"] == 4 and record["config"]["rank"] == sft.SFTConfig.rank
    assert record["format"] == {"prompt": "question", "completion": "answer"}
    # the record holds every config field, defaults included, and the card's command spells them all out,
    # so a later change of a default does not falsify it
    import dataclasses
    assert set(record["config"]) == {f.name for f in dataclasses.fields(sft.SFTConfig)}
    command = records.reproduce_command(record)
    for option in ("--n_rows 64", "--epochs 1", "--learning_rate 0.01", f"--rank {sft.SFTConfig.rank}", "--batch_size 8",
                   f"--adam_beta2 {sft.SFTConfig.adam_beta2:g}", f"--dimensions {','.join(sft.DIMENSION_MIX)}",
                   f"--ending_every {sft.SFTConfig.ending_every}", "--pack True", "--seed 0", "--max_steps 4"):
        assert f" {option} " in command + " ", option
    card = (trained / "README.md").read_text()
    assert f"Every setting spelled out, should a default change: `{command}`" in card
    assert "Made by `python -m homework.sft train --learning_rate 0.01 --batch_size 8 --max_steps 4" in card
    config = json.loads((trained / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == record["base_model"], "the record's name, not a cache folder"


def test_lora_semantics_and_round_trip(trained, tiny_checkpoint, fp32):
    llm = sft.load(trained)  # the base comes from the adapter's record: the tiny model
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
    again = sft.load(trained, checkpoint=tiny_checkpoint)
    with torch.no_grad():
        assert torch.equal(llm.model(ids).logits, again.model(ids).logits)
        assert not torch.equal(llm.model(ids).logits, base(ids).logits), "adapter has no effect"


def test_missing_adapter_names_train_command(tmp_path):
    with pytest.raises(ModelUnavailable, match="python -m homework.sft train"):
        sft.load(tmp_path / "sft_model")


def test_adapter_for_another_base_is_refused(trained, tmp_path):
    # the tiny model's adapter has the wrong shapes for the embedded 135M model
    with pytest.raises(ModelUnavailable, match="does not fit this base model.*python -m homework.sft train"):
        sft.load(trained, checkpoint=DEFAULT_CHECKPOINT)


# logged losses (every 5 steps) of the round-10 RFT run at learning rate 2e-3: healthy, then diverged
HEALTHY = [1.892, 1.189, 0.5957, 0.4518, 0.401, 0.3739, 0.4052, 0.3703, 0.3061, 0.359, 0.3533, 0.3476,
           0.3579, 0.3311, 0.3474, 0.2683, 0.2964, 0.3061, 0.3124, 0.2726, 0.2679, 0.2662, 0.2488, 0.3079,
           0.2686, 0.2451, 0.2364, 0.2687, 0.2606, 0.2541]
DIVERGED = [2.449, 4.686, 3.676, 3.426, 4.919]


@pytest.mark.parametrize("losses, stops_at", [
    (HEALTHY, None),
    (HEALTHY + DIVERGED, len(HEALTHY) + 3),                   # three logs in a row above 3x the best
    (HEALTHY + [0.9, 0.26, 0.8, 0.25, 2.0, 0.3], None),       # single spikes are noise
    ([0.5, 0.4, float("nan"), float("nan"), float("nan")], 5),
    ([0.5, 0.4, float("inf"), 0.41, float("inf"), float("inf")], None),
    ([0.3, 0.05, 0.0069, 0.021, 0.03, 0.025, 0.02], None),    # tiny losses at the end of a long run are noise
    ([0.3, 0.05, 0.0069, 0.021, 0.6, 0.7, 0.8], 7),           # but not once they pass the floor
])
def test_divergence_guard(losses, stops_at):
    guard = training.DivergenceGuard()
    stopped = [i + 1 for i, loss in enumerate(losses) if guard.update(5 * (i + 1), loss)]
    assert (stopped[0] if stopped else None) == stops_at
    if stops_at:
        assert stopped == list(range(stops_at, len(losses) + 1)), "stays stopped"
        assert guard.reason.startswith(f"training loss rose from {min(l for l in losses if l == l):.3g}")


def test_diverged_run_keeps_the_old_adapter(tiny_checkpoint, tmp_path, monkeypatch):
    out = tmp_path / "sft_model"
    out.mkdir()
    (out / "adapter_config.json").write_text("{}")
    monkeypatch.setenv("HOMEWORK_DTYPE", "float32")
    monkeypatch.setattr(training.DivergenceGuard, "factor", 0.0)  # every loss counts as blown up
    monkeypatch.setattr(training.DivergenceGuard, "patience", 1)
    monkeypatch.setattr(training.DivergenceGuard, "floor", 0.0)
    with pytest.raises(training.TrainingDiverged, match=r"diverged .*step 5.*left as it was.*--learning_rate \(this run: 0.01\)"):
        sft.train_model(output_dir=str(out), checkpoint=tiny_checkpoint, n_rows=64, batch_size=4, max_steps=40,
                        learning_rate=1e-2, test_after=False)
    assert [p.name for p in out.iterdir()] == ["adapter_config.json"] and (out / "adapter_config.json").read_text() == "{}"
    assert not out.with_name(f".{out.name}_work").exists()


def test_bf16_training_keeps_an_fp32_adapter_and_the_same_loss(tiny_checkpoint, tokenizer):
    """bf16 base weights: the adapter stays fp32 (what is saved and updated), runs under autocast, and the
    loss and adapter gradients agree with peft's own fp32 path to bf16 precision."""
    rows = sft.encode_rows(tokenizer, [("Convert 1 m to ft.", 3.28), ("How many g in 2 kg?", 2000)])
    batch = batches.PadCollator(tokenizer.pad_token_id)(rows)
    torch.manual_seed(0)
    model = training.build_model(BaseLLM(tiny_checkpoint, dtype=torch.bfloat16), rank=4, fused=False)
    adapter = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert adapter and all(p.dtype == torch.float32 for p in adapter.values())
    for p in adapter.values():  # lora_B starts at zero; give it weight so both adapter matrices get gradients
        torch.nn.init.normal_(p, std=0.05)
    assert model.get_base_model().config._attn_implementation == "eager"

    def loss_and_grads(autocast: bool):
        model.zero_grad()
        if autocast:
            loss = training.answer_loss(model, batch)
        else:  # the stock path: peft casts each input to the fp32 adapter, no autocast
            for m in model.modules():
                if hasattr(m, "cast_input_dtype_enabled"):
                    m.cast_input_dtype_enabled = True
            base = model.get_base_model()
            hidden = base.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
            keep = batch["labels"][:, 1:] != -100
            loss = torch.nn.functional.cross_entropy(base.lm_head(hidden[:, :-1][keep]).float(),
                                                     batch["labels"][:, 1:][keep])
        loss.backward()
        return loss.item(), {n: p.grad.clone() for n, p in adapter.items()}

    fast, fast_grads = loss_and_grads(autocast=True)
    stock, stock_grads = loss_and_grads(autocast=False)
    assert fast == pytest.approx(stock, rel=0.02)
    for name, grad in fast_grads.items():
        assert grad.dtype == torch.float32 and grad.abs().sum() > 0, name
        assert torch.nn.functional.cosine_similarity(grad.flatten(), stock_grads[name].flatten(), dim=0) > 0.95, name


def test_matmul_floor_counts_each_frozen_linear_twice(tiny_checkpoint):
    """4 x in x out FLOPs a token for every frozen linear layer of the blocks; the adapter's own are not counted."""
    llm = BaseLLM(tiny_checkpoint, dtype=torch.float32)
    model = training.build_model(llm, rank=4)
    config = llm.model.config
    per_layer = 2 * config.hidden_size * config.hidden_size  # q and o
    per_layer += 2 * config.hidden_size * config.num_key_value_heads * (config.hidden_size // config.num_attention_heads)
    per_layer += 3 * config.hidden_size * config.intermediate_size  # gate, up, down
    seconds, gflops = profiling.matmul_floor(model, tokens=64, dtype=torch.float32, timings=3)
    assert gflops > 0 and seconds == pytest.approx(4 * per_layer * config.num_hidden_layers * 64 / (gflops * 1e9))


def test_speed_and_profile_print_their_tables(tiny_checkpoint, monkeypatch):
    """`sft speed`: the step/floor line, a line per set-up, the ratios; `sft profile`: its two tables."""
    import re

    monkeypatch.setenv("HOMEWORK_CHECKPOINT", tiny_checkpoint)
    monkeypatch.setenv("HOMEWORK_DTYPE", "float32")
    config = dataclasses.replace(sft.SFTConfig(), batch_size=4)
    rows = sft.training_rows(dataclasses.replace(config, n_rows=100))  # plain: 3 steps of 32
    lines = profiling.speed(rows, config, 2, sft._speed_encoder(config)).splitlines()
    assert re.fullmatch(r"step/floor: ours [\d.]+x, before [\d.]+x \(our step [\d.]+ s for \d+ tokens; its frozen "
                        r"matrix products need at least [\d.]+ s at \d+ GFLOPS, median of 5 timings\)", lines[0]), lines[0]
    for line, name in zip(lines[1:4], ("ours", "before", "plain")):
        assert re.fullmatch(rf"{name}: [\d.]+ rows/s, [\d.]+ s a step \(float32, batch (4|32)\)", line), line
    assert re.fullmatch(r"ours against plain [\d.]+x, against before [\d.]+x", lines[4]) and len(lines) == 5
    table = profiling.profile_step(rows, config, sft._speed_encoder(config), steps=1, top=5).splitlines()
    assert re.fullmatch(r"one step, \d+ tokens: \d+ ms of operator self time", table[0])
    parts = table[3:table.index("")]
    assert {row.split(" | ")[0][2:] for row in parts} <= {"frozen layers", "adapter", "LM head",
                                                           "attention scores (bmm)", "everything else"}
    assert any(row.startswith("| frozen layers | ") for row in parts), parts
    assert table[table.index("") + 1] == "| operator | calls a step | ms a step |" and len(table) == table.index("") + 3 + 5


@pytest.mark.parametrize("kind, option", [("sft", "--max_steps=5"), ("sft", "--n_rows=64"), ("rft", "--epochs=0.1")])
def test_a_mistaken_option_never_replaces_the_committed_adapter(kind, option):
    """Refused in one line before any work; the committed adapter and its hash stay."""
    import subprocess
    import sys

    from homework import manifest

    run = subprocess.run([sys.executable, "-m", f"homework.{kind}", "train", option], capture_output=True, text=True,
                         cwd=manifest.REPO)
    assert run.returncode == 1, run.stderr[-500:]
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: refusing to replace homework/{kind}_model"), run.stderr
    assert manifest.mismatches() == []
