"""The batch-1 greedy decoder gives model.generate's tokens, and BaseLLM.generate uses it only where it may."""

import pytest
import torch

from homework import decode
from homework.base_llm import BaseLLM
from homework.data import Dataset

PROMPTS = ["How many feet are in 7 meters?", "Convert 3 hours to seconds.", "What is 2.5 kg in pounds?"]


def _generate(llm: BaseLLM, prompt: str, new: int, least: int) -> list[int]:
    ids = llm.tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
    out = llm.model.generate(ids, max_new_tokens=new, min_new_tokens=least, do_sample=False,
                             pad_token_id=llm.tokenizer.pad_token_id, eos_token_id=llm.tokenizer.eos_token_id)
    return out[0, ids.shape[1]:].tolist()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_decoder_gives_generate_s_tokens_on_the_tiny_model(tiny_checkpoint, dtype):
    llm = BaseLLM(tiny_checkpoint, dtype=dtype)
    decoder = decode.GreedyDecoder(llm.model)
    eos = llm.tokenizer.eos_token_id
    for prompt in PROMPTS:
        ids = llm.tokenizer(prompt, add_special_tokens=False).input_ids
        for new, least in [(24, 24), (24, 0), (1, 1)]:
            got = decoder(ids, new, least, eos)
            assert got == _generate(llm, prompt, new, least), (prompt, new, least)
            assert len(got) == new or got[-1] == eos


def test_eos_ends_decoding_only_after_min_new_tokens(tiny_checkpoint):
    llm = BaseLLM(tiny_checkpoint, dtype=torch.float32)
    decoder = decode.GreedyDecoder(llm.model)
    ids = llm.tokenizer(PROMPTS[0], add_special_tokens=False).input_ids
    free = decoder(ids, 8, 0)
    first = free[0]  # make the model's first greedy token the end of its turn
    assert decoder(ids, 8, 0, eos_token_id=first) == [first]
    held = decoder(ids, 8, 3, eos_token_id=first)
    assert first not in held[:3] and len(held) >= 3


def test_only_plain_llama_models_are_supported(tiny_checkpoint):
    from peft import LoraConfig, get_peft_model

    llm = BaseLLM(tiny_checkpoint, dtype=torch.float32)
    assert decode.supports(llm.model)
    wrapped = get_peft_model(llm.model, LoraConfig(r=2, target_modules="all-linear"))
    assert not decode.supports(wrapped)
    with pytest.raises(ValueError, match="plain LlamaForCausalLM"):
        decode.GreedyDecoder(wrapped)


def test_generate_uses_the_decoder_unless_a_subclass_decodes_its_own_way(tiny_checkpoint):
    from homework.calculator import CalculatorLLM

    llm = BaseLLM(tiny_checkpoint, dtype=torch.float32)
    prompt = llm.format_prompt(PROMPTS[0])
    assert llm.generate(prompt) == llm.batched_generate([prompt])[0]
    assert isinstance(llm._decoder, decode.GreedyDecoder)
    calc = CalculatorLLM(llm)
    calc._decoder = None
    calc.generate(prompt)
    assert calc._decoder is None


@pytest.mark.skipif(not decode._prepacked(torch.bfloat16, torch.device("cpu")), reason="no oneDNN on this CPU")
def test_bf16_on_cpu_runs_the_packed_products(tiny_checkpoint):
    packed = decode.GreedyDecoder(BaseLLM(tiny_checkpoint, dtype=torch.bfloat16).model)
    plain = decode.GreedyDecoder(BaseLLM(tiny_checkpoint, dtype=torch.float32).model)
    assert packed.head.packed and all(p.packed for p in packed.layers[0][1:7] if isinstance(p, decode._Projection))
    assert not plain.head.packed
    assert packed.packed and not plain.packed
    assert isinstance(decode._compiled_step(), torch.jit.ScriptFunction)  # the step runs without Python between ops


@pytest.mark.slow
def test_real_model_in_bf16_generates_what_the_batched_path_generates():
    llm = BaseLLM(dtype=torch.bfloat16)
    prompts = [llm.format_prompt(q) for q, _ in Dataset("valid")[:3]]
    assert [llm.generate(p) for p in prompts] == [llm.batched_generate([p])[0] for p in prompts]
