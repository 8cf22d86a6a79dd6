"""The grader's own model code: the base model, a checked adapter attached to it, greedy decoding, the answer
read back, and the two generation losses.

In folder mode the graded folder is this repository's `homework/`, so the clean room must not run it: an edited
`parse_answer`, prompt format or decoding loop there would change the score. Everything that turns a prompt
text into a scored answer is here instead, written against transformers and peft alone. What the clean room
still takes from `homework/` is listed in docs/grading.md ("What the clean room imports").
"""

from __future__ import annotations

import copy
import json
import math
import re
import tempfile
import warnings
from pathlib import Path

import torch
from torch.nn import functional as F

# peft calls a transformers property that warns on every adapter load; the warning is not the grader's to act on
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

TOLERANCE = 0.05  # relative error of a correct answer, the benchmark's rule
CHUNK = 64  # prompts decoded together
SHARED_MIN = 32  # tokens every prompt of a chunk must share before their common start is computed once
# the one pattern the grader reads numbers with: answers, leak checks, questions (over-reads on purpose:
# "1,000", ".5", "3e-4")
NUMBER = re.compile(r"[-+]?(?:\d[\d,]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_TAG = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.S)


def numbers(text: str) -> list[float]:
    """Every finite number written in text, in order."""
    values = []
    for match in NUMBER.finditer(text):
        try:
            value = float(match.group().replace(",", ""))
        except ValueError:
            continue
        if math.isfinite(value):
            values.append(value)
    return values


def read_answer(text: str) -> float:
    """The first number inside the first <answer> tag (the close tag may be missing), else NaN."""
    tag = _TAG.search(text or "")
    found = numbers(tag.group(1)) if tag else []
    return found[0] if found else float("nan")


def correct(answer: float, truth: float, tolerance: float = TOLERANCE) -> bool:
    return answer is not None and math.isfinite(answer) and abs(answer - truth) <= tolerance * abs(truth)


def _contiguous(module, args):
    # a frozen LM head handed the strided last-position slice runs a per-row copy of its weight; contiguous folds
    return (args[0].contiguous(),) + tuple(args[1:])


class Model:
    """A causal LM loaded from a local folder, for greedy decoding and scoring; optionally with a LoRA adapter."""

    def __init__(self, path: str, device: str, dtype: torch.dtype, adapter: tuple[dict, dict] | None = None):
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging

        level, bar = logging.get_verbosity(), logging.is_progress_bar_enabled()
        logging.set_verbosity_error()
        logging.disable_progress_bar()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device)
        finally:
            logging.set_verbosity(level)
            if bar:
                logging.enable_progress_bar()
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if adapter is not None:
            model = _attach(model, path, *adapter)
        model.eval()
        model.get_output_embeddings().register_forward_pre_hook(_contiguous)
        self.model, self.device = model, device
        self._prefix: tuple[tuple[int, ...], object] | None = None

    def adapter_off(self):
        """A context in which the attached adapter does nothing."""
        return self.model.disable_adapter()

    @torch.inference_mode()
    def greedy(self, prompts: list[str], max_new: int, min_new: int = 1) -> list[str]:
        """Each prompt's greedy completion, up to max_new tokens, EOS impossible before min_new."""
        texts: list[str] = []
        for start in range(0, len(prompts), CHUNK):
            texts += self._chunk(prompts[start:start + CHUNK], max_new, min_new)
        return texts

    def _chunk(self, prompts: list[str], max_new: int, min_new: int) -> list[str]:
        rows = [self.tokenizer(p, add_special_tokens=False).input_ids for p in prompts]
        shared = 0
        limit = min(map(len, rows)) - 1  # every row keeps a token of its own
        while shared < limit and len({r[shared] for r in rows}) == 1:
            shared += 1
        head, cache = [], None
        if shared >= SHARED_MIN:
            head = rows[0][:shared]
            cache = self._cache(tuple(head), len(rows))
        tails = [r[len(head):] for r in rows]
        width = max(map(len, tails))
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([head + [pad] * (width - len(t)) + t for t in tails], device=self.device)
        mask = torch.tensor([[1] * len(head) + [0] * (width - len(t)) + [1] * len(t) for t in tails],
                            device=self.device)
        out = self.model.generate(input_ids=ids, attention_mask=mask, past_key_values=cache, do_sample=False,
                                  max_new_tokens=max_new, min_new_tokens=min(min_new, max_new),
                                  temperature=None, top_p=None, top_k=None, pad_token_id=pad,
                                  eos_token_id=self.tokenizer.eos_token_id)
        return self.tokenizer.batch_decode(out[:, ids.shape[1]:], skip_special_tokens=True)

    def _cache(self, head: tuple[int, ...], copies: int):
        """The keys and values of the prompts' shared start, computed once, repeated for each row."""
        from transformers import DynamicCache

        if self._prefix is None or self._prefix[0] != head:
            cache = DynamicCache(config=self.model.config)
            self.model(torch.tensor([head], device=self.device), past_key_values=cache, use_cache=True)
            self._prefix = (head, cache)
        cache = copy.deepcopy(self._prefix[1])
        cache.batch_repeat_interleave(copies)
        return cache

    def answers(self, prompts: list[str], max_new: int) -> list[float]:
        return [read_answer(t) for t in self.greedy(prompts, max_new)]

    @torch.inference_mode()
    def losses(self, questions: list[str], texts: list[str]) -> tuple[float, float]:
        """(the course's loss, ours) on question + text. The course's: one padded batch, the mean over every
        position, padding included. Ours: each row alone, padding never there."""
        joined = [q + t for q, t in zip(questions, texts)]
        batch = self.tokenizer(joined, padding=True, return_tensors="pt").to(self.device)
        logits = self.model(batch.input_ids, attention_mask=batch.attention_mask).logits.float()
        course = F.cross_entropy(logits[:, :-1].flatten(0, 1), batch.input_ids[:, 1:].flatten()).item()
        nats, tokens = 0.0, 0
        for text in joined:
            ids = self.tokenizer(text, return_tensors="pt").input_ids.to(self.device)
            if ids.shape[1] > 1:
                row = self.model(ids).logits.float()[0, :-1]
                nats += F.cross_entropy(row, ids[0, 1:], reduction="sum").item()
                tokens += ids.shape[1] - 1
        return course, nats / max(tokens, 1)


def _attach(model, base_path: str, config: dict, tensors: dict):
    """model with a LoRA adapter of exactly these checked config fields and tensors, through peft."""
    from peft import PeftModel
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory(prefix="cleanroom-") as tmp:
        folder = Path(tmp)
        full = dict(config, base_model_name_or_path=base_path, bias="none")
        full.setdefault("task_type", "CAUSAL_LM")
        (folder / "adapter_config.json").write_text(json.dumps(full))
        save_file(tensors, folder / "adapter_model.safetensors")
        return PeftModel.from_pretrained(model, folder)
