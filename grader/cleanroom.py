"""The clean room: every score the grader gives comes from here, never from the graded package's process.

Nothing here imports, runs or unpickles the graded code. An SFT or RFT adapter is read as data: its
`adapter_config.json` checked against an allow-list (`check_adapter`), its `adapter_model.safetensors`
against the LoRA tensor names and shapes the base model takes. The checked tensors are attached to a fresh
copy of the base model, and the package's own prompt texts (written in the sandbox, then checked: no prompt
may carry its question's answer, nor change with the other questions asked) are decoded and read back with
the grader's own code (grader/reference.py), never the package's: in folder mode the graded folder is this
repository's `homework/`. Generation texts are scored with the base model and the grader's two losses, next
to the clean room's own decoding of the same questions.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

from homework.checkpoints import DEFAULT_CHECKPOINT, default_device, default_dtype, resolve
from homework.units import UnitError, factor, parse_question

from .reference import Model, correct, numbers

LINEARS = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn", "o_proj": "self_attn",
           "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}
MAX_RANK = 64
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")  # safetensors' names of the floating dtypes an adapter may hold
# new tokens the clean room decodes a prompt to: more than any of this project's formats needs (CoT and RFT: 64,
# SFT: 24), so a bundle that writes a little more than ours is still read whole
MAX_NEW = {"cot": 128, "sft": 128, "rft": 128}
GENERATION_TOKENS = 32  # the generation cases: the clean room's own decoding, EOS impossible before the end
# adapter_config.json fields the clean room reads, and the checks their values must pass
READ = {
    "peft_type": lambda v: v == "LORA",
    "task_type": lambda v: v == "CAUSAL_LM",
    "r": lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_RANK,
    "lora_alpha": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 16 * MAX_RANK,
    "target_modules": lambda v: v == "all-linear" or (isinstance(v, list) and v and all(
        isinstance(t, str) and (t in LINEARS or _QUALIFIED.fullmatch(t)) for t in v)),
    "use_rslora": lambda v: isinstance(v, bool),
}
# fields whose value changes nothing at inference, whatever it is (provenance, training-only settings)
IGNORED = {"base_model_name_or_path", "revision", "peft_version", "inference_mode", "init_lora_weights",
           "lora_dropout", "megatron_core", "qalora_group_size", "auto_mapping"}
# every other field must hold its inert value (off, empty, none): anything else could change the model
INERT = (None, False, {}, [], "none")
# a target peft names by its full path (it does for small models): one layer's linear
_QUALIFIED = re.compile(r"model\.layers\.(\d+)\.(?:self_attn\.(?:[qkvo])_proj|mlp\.(?:gate|up|down)_proj)")


CONFIG_BYTES = 64 * 2**10  # adapter_config.json (the honest one: ~1 KB)
ADAPTER_BYTES = 256 * 2**20  # adapter_model.safetensors (the honest one: ~10 MB; rank 64 in fp32: ~80 MB)


class AdapterRefused(ValueError):
    """The bundle's adapter is not one the clean room attaches; the message says why, in one line."""


def _regular(path: Path, limit: int) -> Path:
    """path, if it is a regular file (not a link, FIFO or device: one of those could hang or flood the read)
    of at most limit bytes, else AdapterRefused."""
    try:
        info = path.lstat()
    except OSError as err:
        raise AdapterRefused(f"{path.name} unreadable ({type(err).__name__})") from None
    if not stat.S_ISREG(info.st_mode):
        raise AdapterRefused(f"{path.name} is not a regular file")
    if info.st_size > limit:
        raise AdapterRefused(f"{path.name} has {info.st_size} bytes, over {limit}")
    return path


def check_adapter(folder: Path, base_config) -> tuple[dict, dict]:
    """(the checked config fields, the tensors) of the adapter in folder, or AdapterRefused."""
    from safetensors import SafetensorError, safe_open

    config_file = _regular(folder / "adapter_config.json", CONFIG_BYTES)
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError, RecursionError) as err:
        raise AdapterRefused(f"adapter_config.json unreadable ({type(err).__name__})") from None
    if not isinstance(config, dict):
        raise AdapterRefused("adapter_config.json is not an object")
    for key, value in config.items():
        if key in READ and not READ[key](value):
            raise AdapterRefused(f"adapter_config.json: {key}={json.dumps(value)[:60]} is not allowed")
        if key not in READ and key not in IGNORED and value not in INERT:
            raise AdapterRefused(f"adapter_config.json: {key}={json.dumps(value)[:60]} is not allowed")
    missing = [k for k in ("peft_type", "r", "lora_alpha", "target_modules") if k not in config]
    if missing:
        raise AdapterRefused(f"adapter_config.json lacks {', '.join(missing)}")
    weights = _regular(folder / "adapter_model.safetensors", ADAPTER_BYTES)
    every = range(base_config.num_hidden_layers)
    targets = {(layer, module) for layer in every for module in LINEARS}  # all-linear
    if config["target_modules"] != "all-linear":
        named = config["target_modules"]
        targets = {(layer, module) for layer, module in targets
                   if module in named or f"model.layers.{layer}.{LINEARS[module]}.{module}" in named}
    expected = {}
    head_dim = base_config.hidden_size // base_config.num_attention_heads
    shapes = {"q_proj": (base_config.hidden_size, base_config.hidden_size),
              "k_proj": (base_config.num_key_value_heads * head_dim, base_config.hidden_size),
              "v_proj": (base_config.num_key_value_heads * head_dim, base_config.hidden_size),
              "o_proj": (base_config.hidden_size, base_config.hidden_size),
              "gate_proj": (base_config.intermediate_size, base_config.hidden_size),
              "up_proj": (base_config.intermediate_size, base_config.hidden_size),
              "down_proj": (base_config.hidden_size, base_config.intermediate_size)}
    r = config["r"]
    for layer, module in targets:
        out, inp = shapes[module]
        stem = f"base_model.model.model.layers.{layer}.{LINEARS[module]}.{module}"
        expected[f"{stem}.lora_A.weight"], expected[f"{stem}.lora_B.weight"] = (r, inp), (out, r)
    tensors = {}
    try:
        with safe_open(weights, framework="pt") as f:  # the header's names and shapes first, then the data
            names = list(f.keys())
            for name in names:
                if name not in expected:
                    raise AdapterRefused(f"adapter tensor {name[:80]} is not a LoRA matrix of the base model's layers")
                view = f.get_slice(name)
                shape, dtype = tuple(view.get_shape()), view.get_dtype()
                if shape != expected[name] or dtype not in FLOAT_DTYPES:
                    raise AdapterRefused(f"adapter tensor {name[:80]} has shape {shape} {dtype}, not {expected[name]}")
            if set(names) != set(expected):
                raise AdapterRefused(f"the adapter lacks {len(set(expected) - set(names))} of its LoRA matrices")
            for name in names:
                tensors[name] = f.get_tensor(name)
    except (OSError, SafetensorError, ValueError) as err:
        if isinstance(err, AdapterRefused):
            raise
        raise AdapterRefused(f"adapter_model.safetensors unreadable ({type(err).__name__})") from None
    for name, tensor in tensors.items():
        if not bool(tensor.isfinite().all()):
            raise AdapterRefused(f"adapter tensor {name[:80]} holds NaN or infinity")
    return {k: config[k] for k in READ if k in config}, tensors


def untrained(tensors: dict) -> bool:
    return all(float(v.abs().sum()) == 0 for k, v in tensors.items() if "lora_B" in k)


class CleanRoom:
    """The base model and the grader's own decoding (grader/reference.py), loaded once per grading."""

    def __init__(self):
        # every module the clean room uses is imported now, before any bundle code has run: without a sandbox a
        # bundle could otherwise rewrite one on disk, or plant a .pth file, before a lazy import read it
        import peft  # noqa: F401
        import safetensors.torch  # noqa: F401
        from transformers import DynamicCache  # noqa: F401

        # the base model the package's own BaseLLM() loads in the worker: HOMEWORK_CHECKPOINT passes the sandbox
        self.checkpoint = os.environ.get("HOMEWORK_CHECKPOINT") or DEFAULT_CHECKPOINT
        self.path = resolve(self.checkpoint)
        self.device = default_device()
        self.dtype = default_dtype(self.device)
        self.base = Model(self.path, self.device, self.dtype)
        self.tokenizer = self.base.tokenizer
        self.params = sum(p.numel() for p in self.base.model.parameters())

    def adapter_model(self, folder: Path) -> tuple[Model, dict]:
        """(a fresh base model with the bundle's checked adapter attached, its tensors)."""
        config, tensors = check_adapter(folder, self.base.model.config)
        return Model(self.path, self.device, self.dtype, adapter=(config, tensors)), tensors

    def answers(self, kind: str, prompts: list[str], model: Model | None = None) -> list[float]:
        """The answers `model` (default: the base, as CoT uses it) gives to the package's own prompt texts."""
        return (model or self.base).answers(prompts, MAX_NEW[kind])

    def generation(self, questions: list[str], texts: list[str], batched: bool) -> dict:
        """The course's loss and ours on the package's texts, and how many match the clean room's own decoding."""
        if batched:
            own = self.base.greedy(questions, GENERATION_TOKENS, GENERATION_TOKENS)
        else:
            own = [self.base.greedy([q], GENERATION_TOKENS, GENERATION_TOKENS)[0] for q in questions]
        same = sum(_words(a) == _words(b) for a, b in zip(own, texts))
        course, ours = self.base.losses(questions, texts)
        return {"loss": course, "masked_loss": ours, "same": same, "empty": sum(not t.strip() for t in texts)}


def _words(text: str, n: int = 4) -> list[str]:
    return text.split()[:n]


def leaked_answers(questions: list[str], prompts: list[str], truths: list[float]) -> list[str]:
    """The questions whose prompt carries their own answer as a number, where no fact explains it.

    The part of each prompt that differs between questions is what the package added for that question (the
    instructions and examples are shared). A number there that is within the benchmark's tolerance of the
    question's answer is a leak, unless the question itself, the conversion factor (a hint states it: "1 week
    = 7 days"), its inverse or that fact's 1 explains it; where the answer equals one of those, nothing can be told and the question is passed.
    """
    if len(prompts) < 2:
        return []
    start = len(_common_prefix(prompts))
    end = len(_common_prefix([p[::-1] for p in prompts]))
    leaks = []
    for question, prompt, truth in zip(questions, prompts, truths):
        own = prompt[start:len(prompt) - end if end else None]
        allowed = numbers(question) + [1.0]  # a hint states "1 <unit> = f <units>"
        try:
            conv = parse_question(question)
            f = factor(conv.src, conv.dst)
            allowed += [f, 1 / f]
        except (UnitError, ValueError, ZeroDivisionError):
            pass
        if any(correct(truth, a) for a in allowed if a):
            continue
        if any(correct(n, truth) for n in numbers(own)):
            leaks.append(question)
    return leaks


def _common_prefix(texts: list[str]) -> str:
    first, last = min(texts), max(texts)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]
