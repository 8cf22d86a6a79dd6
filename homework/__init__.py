"""Well-reasoned unit conversion with SmolLM2: generation, in-context CoT, LoRA SFT and RFT.

Names are imported on first use (PEP 562), so `python -m homework.base_llm` runs its module only once
and `import homework` stays cheap.
"""

import importlib

__all__ = ["BaseLLM", "data", "load_cot", "load_sft", "load_rft"]


def load_cot():
    from .cot import load

    return load()


def load_sft():
    from .sft import load

    return load()


def load_rft():
    from .rft import load

    return load()


def __getattr__(name):
    if name == "BaseLLM":
        return importlib.import_module(".base_llm", __name__).BaseLLM
    if name in ("data", "base_llm"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
