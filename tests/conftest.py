"""Shared fixtures: a tiny random-init Llama-shaped model for plumbing, the embedded model where it matters."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from homework.base_llm import BaseLLM
from homework.checkpoints import embedded_model_dir


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A 2-layer random Llama with the embedded model's tokenizer, saved like any checkpoint."""
    from transformers import AutoTokenizer

    path = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir())
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture
def fp32(monkeypatch):
    monkeypatch.setenv("HOMEWORK_DTYPE", "float32")


@pytest.fixture
def tiny_llm(tiny_checkpoint, fp32):
    return BaseLLM(tiny_checkpoint)


@pytest.fixture(scope="session")
def real_llm_fp32():
    return BaseLLM(dtype=torch.float32)
