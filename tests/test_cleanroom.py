"""The clean room reads an adapter as data only and refuses what could change the model behind its back;
CoT prompts that carry their question's answer are refused."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from grader.cleanroom import AdapterRefused, check_adapter, leaked_answers, untrained
from homework import training
from homework.base_llm import BaseLLM
from homework.cot import CoTModel


@pytest.fixture(scope="module")
def saved(tiny_checkpoint, tmp_path_factory):
    llm = BaseLLM(tiny_checkpoint, dtype=torch.float32)
    model = training.build_model(llm, rank=4)
    folder = tmp_path_factory.mktemp("adapter")
    model.save_pretrained(folder)
    return folder, llm.model.config


def _copy(saved, tmp_path, config_edit=None, tensor_edit=None):
    folder, _ = saved
    config = json.loads((folder / "adapter_config.json").read_text())
    tensors = load_file(folder / "adapter_model.safetensors")
    if config_edit:
        config_edit(config)
    if tensor_edit:
        tensor_edit(tensors)
    (tmp_path / "adapter_config.json").write_text(json.dumps(config))
    save_file(tensors, tmp_path / "adapter_model.safetensors")
    return tmp_path


def test_a_peft_adapter_is_accepted_with_its_fields_and_tensors(saved):
    folder, base_config = saved
    config, tensors = check_adapter(folder, base_config)
    assert config["r"] == 4 and config["peft_type"] == "LORA"
    assert len(tensors) == 2 * 7 * base_config.num_hidden_layers and untrained(tensors)  # lora_B starts at zero


@pytest.mark.parametrize("edit,reason", [
    (lambda c: c.update(modules_to_save=["lm_head"]), "modules_to_save"),  # would ship full weights
    (lambda c: c.update(r=1024), "r=1024"),
    (lambda c: c.update(peft_type="PREFIX_TUNING"), "peft_type"),
    (lambda c: c.update(target_modules=["lm_head"]), "target_modules"),
    (lambda c: c.update(use_dora=True), "use_dora"),
    (lambda c: c.update(layers_to_transform=[0]), "layers_to_transform"),
    (lambda c: c.update(some_future_field={"x": 1}), "some_future_field"),
    (lambda c: c.pop("r"), "lacks r"),
])
def test_config_outside_the_allow_list_is_refused(saved, tmp_path, edit, reason):
    with pytest.raises(AdapterRefused, match=reason):
        check_adapter(_copy(saved, tmp_path, config_edit=edit), saved[1])


def _first(tensors):
    return next(k for k in tensors if "lora_A" in k)


@pytest.mark.parametrize("edit,reason", [
    (lambda t: t.update({"base_model.model.lm_head.weight": torch.zeros(4, 4)}), "not a LoRA matrix"),
    (lambda t: t.update({_first(t): torch.zeros(8, t[_first(t)].shape[1])}), "has shape"),
    (lambda t: t.update({_first(t): torch.full_like(t[_first(t)], float("nan"))}), "NaN"),
    (lambda t: t.pop(_first(t)), "lacks 1"),
])
def test_tensors_outside_the_base_models_lora_shapes_are_refused(saved, tmp_path, edit, reason):
    with pytest.raises(AdapterRefused, match=reason):
        check_adapter(_copy(saved, tmp_path, tensor_edit=edit), saved[1])


def test_unreadable_files_are_refused(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    (folder / "adapter_model.safetensors").write_bytes(b"\x80\x04pickle, not safetensors")
    with pytest.raises(AdapterRefused, match="unreadable"):
        check_adapter(folder, saved[1])
    (folder / "adapter_config.json").write_text("{not json")
    with pytest.raises(AdapterRefused, match="adapter_config.json unreadable"):
        check_adapter(folder, saved[1])


def test_special_and_oversized_files_are_refused_before_they_are_read(saved, tmp_path):
    """A FIFO would hang the read, a link could point at /dev/zero; an oversized file is refused by its size."""
    import os

    from grader import cleanroom

    folder = _copy(saved, tmp_path)
    (folder / "adapter_config.json").unlink()
    os.mkfifo(folder / "adapter_config.json")
    with pytest.raises(AdapterRefused, match="not a regular file"):
        check_adapter(folder, saved[1])
    (folder / "adapter_config.json").unlink()
    (folder / "adapter_config.json").symlink_to("/dev/zero")
    with pytest.raises(AdapterRefused, match="not a regular file"):
        check_adapter(folder, saved[1])
    (folder / "adapter_config.json").unlink()
    (folder / "adapter_config.json").write_text(" " * (cleanroom.CONFIG_BYTES + 1) + "{}")
    with pytest.raises(AdapterRefused, match="bytes, over"):
        check_adapter(folder, saved[1])


def test_a_config_nested_past_the_parser_is_refused(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    (folder / "adapter_config.json").write_text("[" * 30_000 + "]" * 30_000)
    with pytest.raises(AdapterRefused, match="unreadable"):
        check_adapter(folder, saved[1])


def test_the_header_is_checked_before_any_tensor_is_loaded(saved, tmp_path, monkeypatch):
    """A header naming a tensor of the wrong shape is refused without a single tensor read."""
    import safetensors
    import safetensors.torch

    folder = _copy(saved, tmp_path, tensor_edit=lambda t: t.update({_first(t): torch.zeros(8, t[_first(t)].shape[1])}))
    loaded = []
    real = safetensors.safe_open

    class Spy:
        def __init__(self, *args, **kwargs):
            self.inner = real(*args, **kwargs)

        def __enter__(self):
            self.f = self.inner.__enter__()
            return self

        def __exit__(self, *exc):
            return self.inner.__exit__(*exc)

        def keys(self):
            return self.f.keys()

        def get_slice(self, name):
            return self.f.get_slice(name)

        def get_tensor(self, name):
            loaded.append(name)
            return self.f.get_tensor(name)

    monkeypatch.setattr(safetensors, "safe_open", Spy)
    monkeypatch.setattr(safetensors.torch, "load_file", lambda *a, **k: loaded.append("every tensor") or {})
    with pytest.raises(AdapterRefused, match="has shape"):
        check_adapter(folder, saved[1])
    assert loaded == []


QUESTIONS = ["How many feet are in 7 meters?", "What is 3 hours in minutes?", "Convert 2 kilograms to grams.",
             "How many grams are in 1 kilogram?", "What is 7 days expressed in weeks?"]
TRUTHS = [22.9659, 180.0, 2000.0, 1000.0, 1.0]


def test_the_projects_cot_prompts_carry_no_answer(tiny_checkpoint):
    model = CoTModel(tiny_checkpoint)
    assert leaked_answers(QUESTIONS, [model.format_prompt(q) for q in QUESTIONS], TRUTHS) == []


def test_a_prompt_with_the_answer_in_it_is_refused(tiny_checkpoint):
    model = CoTModel(tiny_checkpoint)
    prompts = [model.format_prompt(q) for q in QUESTIONS]
    leaky = [p.replace(q, f"{q} (it is {t:.4g})") for p, q, t in zip(prompts, QUESTIONS, TRUTHS)]
    # the last two answers equal their fact's numbers (1 kilogram = 1000 grams, 1 week = 7 days): nothing can be
    # told there
    assert leaked_answers(QUESTIONS, leaky, TRUTHS) == QUESTIONS[:3]
    in_words = [p + f"<answer>{t}</answer>" for p, t in zip(prompts, TRUTHS)]
    assert leaked_answers(QUESTIONS, in_words, TRUTHS) == QUESTIONS[:3]


def test_the_clean_room_loads_the_base_the_package_loads(tiny_checkpoint, monkeypatch):
    """HOMEWORK_CHECKPOINT reaches the worker (the sandbox keeps HOMEWORK_*), so the clean room reads it too."""
    from grader.cleanroom import CleanRoom

    monkeypatch.setenv("HOMEWORK_CHECKPOINT", tiny_checkpoint)
    room = CleanRoom()
    assert room.checkpoint == tiny_checkpoint
    assert room.params == sum(p.numel() for p in BaseLLM(tiny_checkpoint).model.parameters())


@pytest.mark.parametrize("text,value", [
    (" <answer>22.97</answer>", 22.97), ("<answer> 1,500 </answer> and 3", 1500.0), ("<answer>2.5e-3", 0.0025),
    ("so 7 * 3.28 = 22.96. <answer>23</answer><answer>5</answer>", 23.0), ("It is 23 feet.", None),
    ("<answer>about</answer> 23", None), ("", None),
])
def test_the_grader_reads_an_answer_with_its_own_code(text, value):
    from grader.reference import read_answer

    got = read_answer(text)
    assert (got != got) if value is None else got == value


def test_the_clean_room_imports_none_of_the_graded_code():
    """In folder mode the graded folder is this repository's homework/: the modules that turn a prompt into a
    scored answer (formats, base_llm, sft, rft, cot, data, scores) must never load in the grader's process."""
    import subprocess
    import sys

    code = ("import sys, grader.grader, grader.cleanroom, grader.reference; "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('homework'))))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1])).stdout.split())
    graded = {f"homework.{m}" for m in ("formats", "base_llm", "sft", "rft", "cot", "data", "scores", "adapters",
                                        "decode", "calculator", "training")}
    assert "homework.units" in loaded and not loaded & graded, sorted(loaded)


def test_an_edited_parser_or_decoder_in_the_graded_folder_changes_nothing(saved, tmp_path, tiny_checkpoint,
                                                                          monkeypatch):
    """The clean room's answers to the package's prompt texts stay the same when the package's parser, its
    generation and its loaders are replaced (as an edit in the graded folder would replace them)."""
    from grader.cleanroom import CleanRoom
    from homework import adapters, formats, rft, sft

    def trained(tensors):
        torch.manual_seed(1)
        for name in tensors:
            if "lora_B" in name:
                tensors[name] = torch.randn_like(tensors[name])

    folder = _copy(saved, tmp_path, tensor_edit=trained)
    monkeypatch.setenv("HOMEWORK_CHECKPOINT", tiny_checkpoint)
    room = CleanRoom()
    model, _ = room.adapter_model(folder)
    prompts = [f"Q: {q}\nA:" for q in QUESTIONS]
    before = model.greedy(prompts, 16)

    def broken(*args, **kwargs):
        raise AssertionError("the clean room ran the graded package's code")

    for module, name in [(formats, "parse_answer"), (sft, "load"), (rft, "load"), (adapters, "load_adapter")]:
        monkeypatch.setattr(module, name, broken)
    for name in ("generate", "batched_generate", "answer", "parse_answer", "__init__"):
        monkeypatch.setattr(BaseLLM, name, broken)
    model, _ = room.adapter_model(folder)
    assert model.greedy(prompts, 16) == before
    assert len(room.answers("sft", prompts, model)) == len(prompts)
    with model.adapter_off():
        assert model.greedy(prompts, 16) == room.base.greedy(prompts, 16) != before
