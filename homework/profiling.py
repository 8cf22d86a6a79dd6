"""Training-step timing: our set-up against the code before it and the plain one, and the step's matmul floor.

    python -m homework.sft speed      # the command that runs `speed` below with the SFT recipe's rows
    python -m homework.sft profile    # one step under torch.profiler: time by operator and by module

Ours: bf16 weights where the CPU has native bf16 (the fp32 adapter under bf16 autocast), eager attention,
each adapted layer one autograd node (`homework.lora_step`), rows packed end to end, 3 in 4 ending at "</",
loss on completion positions only, fused AdamW (the trainer's default), the recipe's batch. Before: the same
with peft's own LoRA forward. Plain: fp32, gradient checkpointing, SDPA attention, batch 32, every row padded
to 128 tokens.
"""

from __future__ import annotations

import statistics
import time

import torch

from . import batches, training
from .base_llm import BaseLLM


def speed(rows: list, config: training.TrainConfig, steps: int, encode) -> str:
    """Three lines: the headline step/floor ratio, then rows/s and seconds a step of each set-up.

    `encode(tokenizer, rows, trim)` tokenizes the rows, trimming endings as the recipe does when `trim`.
    The set-ups take turns on the same batches, so a CPU that slows down mid-run slows all of them.
    """
    setups = {"ours": dict(fused=True), "before": dict(fused=False),
              "plain": dict(dtype=torch.float32, pad_to=128, checkpointing=True, batch_size=32, fused=False)}
    timed = {name: _Timed(config, rows, encode, **kw) for name, kw in setups.items()}
    for step in range(steps + 1):
        for t in timed.values():
            t.step(step)
    ours, before, plain = (timed[n] for n in ("ours", "before", "plain"))
    floor, gflops = matmul_floor(ours.model, round(ours.tokens_per_step()), ours.llm.dtype)
    per_step = ours.seconds_per_step()
    return (f"step/floor: ours {per_step / floor:.2f}x, before {before.seconds_per_step() / floor:.2f}x "
            f"(our step {per_step:.3f} s for {ours.tokens_per_step():.0f} tokens; its frozen matrix products need "
            f"at least {floor:.3f} s at {gflops:.0f} GFLOPS, median of 5 timings)\n"
            + "\n".join(f"{name}: {t.rows_per_second():.1f} rows/s, {t.seconds_per_step():.3f} s a step ({t.label})"
                        for name, t in timed.items())
            + f"\nours against plain {ours.rows_per_second() / plain.rows_per_second():.2f}x, "
              f"against before {before.seconds_per_step() / per_step:.2f}x")


def matmul_floor(model, tokens: int, dtype: torch.dtype, timings: int = 5) -> tuple[float, float]:
    """(seconds, GFLOPS): the least time one LoRA training step of `tokens` tokens spends in frozen matrix products.

    Each frozen linear layer of the decoder blocks runs twice a step: forward (x W^T) and backward for its
    input's gradient (g W): 4 x in x out FLOPs a token (the adapter, attention scores and the LM head come on
    top). Both products are timed for every distinct weight shape with `tokens` rows in `dtype`, on fresh
    tensors; each figure is the median of `timings` timings, so one lucky or unlucky burst does not move it.
    """
    blocks = model.get_base_model().model.layers
    shapes: dict[tuple, int] = {}
    for name, m in blocks.named_modules():
        if isinstance(m, torch.nn.Linear) and "lora_" not in name:
            shapes[tuple(m.weight.shape)] = shapes.get(tuple(m.weight.shape), 0) + 1
    seconds = 0.0
    for (out, inp), count in shapes.items():
        w, x, g = (torch.randn(out, inp, dtype=dtype), torch.randn(tokens, inp, dtype=dtype),
                   torch.randn(tokens, out, dtype=dtype))
        seconds += count * (_median_time(lambda: torch.nn.functional.linear(x, w), timings)
                            + _median_time(lambda: g @ w, timings))
    flops = sum(4 * out * inp * count for (out, inp), count in shapes.items()) * tokens
    return seconds, flops / seconds / 1e9


def _median_time(fn, timings: int, repeats: int = 10) -> float:
    fn()
    runs = []
    for _ in range(timings):
        started = time.perf_counter()
        for _ in range(repeats):
            fn()
        runs.append((time.perf_counter() - started) / repeats)
    return statistics.median(runs)


class _Timed:
    """One set-up's model and optimizer, stepped on the recipe's batches; step 0 is the untimed warm-up."""

    def __init__(self, config, data, encode, dtype=None, pad_to=None, checkpointing=False, batch_size=None,
                 fused=True):
        self.batch_size, self.pad_to = batch_size or config.batch_size, pad_to
        self.llm = BaseLLM(dtype=dtype)
        self.model = training.build_model(self.llm, config.rank, config.alpha, fused=fused)
        if checkpointing:  # the plain set-up: also the stock attention
            self.model.get_base_model().set_attn_implementation("sdpa")
            self.model.gradient_checkpointing_enable()
            self.model.enable_input_require_grads()
        self.model.train()
        self.rows = encode(self.llm.tokenizer, data, not pad_to)
        self.pad = self.llm.tokenizer.pad_token_id
        self.collate = (batches.PadCollator if pad_to else batches.PackCollator)(self.pad)
        self.optimizer = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad],
                                           lr=config.learning_rate, fused=True)
        self.seconds, self.tokens, self.steps = 0.0, 0, 0
        self.label = f"{str(self.llm.dtype).replace('torch.', '')}, batch {self.batch_size}"

    def step(self, step: int) -> None:
        batch = self.rows[step * self.batch_size:(step + 1) * self.batch_size]
        pad = self.pad
        if self.pad_to:  # a full-width dummy row pads the batch to pad_to
            width = self.pad_to
            batch = batch + [{"input_ids": [pad] * width, "attention_mask": [0] * width, "labels": [-100] * width}]
        inputs = self.collate(batch)
        started = time.perf_counter()
        if self.pad_to:
            inputs = {k: v[:-1] for k, v in inputs.items()}
            loss = self.model(**inputs).loss
        else:
            loss = training.answer_loss(self.model, inputs)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad()
        if step:
            self.seconds += time.perf_counter() - started
            self.tokens += inputs["input_ids"].numel()  # the token slots computed, padding included
            self.steps += 1

    def seconds_per_step(self) -> float:
        return self.seconds / self.steps

    def rows_per_second(self) -> float:
        return self.batch_size / self.seconds_per_step()

    def tokens_per_step(self) -> float:
        return self.tokens / self.steps


def profile_step(rows: list, config: training.TrainConfig, encode, steps: int = 3, top: int = 15) -> str:
    """Tables of one step's time under torch.profiler (mean of `steps` steps after two warm-up steps).

    By operator (self time), and by part of the step: frozen, adapter and LM-head matrix products, told
    apart by their shapes, and everything else.
    """
    from torch.profiler import ProfilerActivity, profile

    timed = _Timed(config, rows, encode)
    for step in range(2):
        timed.step(step)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for step in range(2, 2 + steps):
            timed.step(step)
    events = prof.key_averages(group_by_input_shape=True)
    parts: dict[str, float] = {}
    rank, vocab = config.rank, timed.llm.model.config.vocab_size
    for e in events:
        if e.key in ("aten::mm", "aten::addmm"):
            dims = [d for shape in e.input_shapes for d in shape]
            part = "LM head" if vocab in dims else "adapter" if rank in dims else "frozen layers"
        else:
            part = "attention scores (bmm)" if e.key == "aten::bmm" else "everything else"
        parts[part] = parts.get(part, 0.0) + e.self_cpu_time_total / 1e3 / steps
    by_op = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:top]
    total = sum(parts.values())
    lines = [f"one step, {timed.tokens_per_step():.0f} tokens: {total:.0f} ms of operator self time",
             "| part | ms a step | share |", "|---|---|---|"]
    lines += [f"| {k} | {v:.0f} | {v / total:.0%} |" for k, v in sorted(parts.items(), key=lambda kv: -kv[1])]
    lines += ["", "| operator | calls a step | ms a step |", "|---|---|---|"]
    lines += [f"| {e.key} | {e.count // steps} | {e.self_cpu_time_total / 1e3 / steps:.1f} |" for e in by_op]
    return "\n".join(lines)
