"""Well-reasoned unit conversion with SmolLM2: generation, in-context CoT, LoRA SFT and RFT."""

from . import data
from .base_llm import BaseLLM


def load_cot():
    from .cot import load

    return load()


def load_sft():
    from .sft import load

    return load()


def load_rft():
    from .rft import load

    return load()


__all__ = ["BaseLLM", "data", "load_cot", "load_sft", "load_rft"]
