"""Training-step timing: our set-up against the plain one, and the least time a step's matrix products need.

    python -m homework.sft speed      # the command that runs `speed` below with the SFT recipe's rows

Ours: bf16 weights where the CPU has native bf16 (the fp32 adapter under bf16 autocast), eager attention,
rows packed end to end, 3 in 4 ending at "</", loss on completion positions only, the recipe's batch. Plain:
fp32, gradient checkpointing, SDPA attention, batch 32, every row padded to 128 tokens.
"""

from __future__ import annotations

import time

import torch

from . import training
from .base_llm import BaseLLM


def speed(rows: list, config: training.TrainConfig, steps: int, encode) -> str:
    """One line: rows/s of both set-ups, their ratio, our step's seconds and its matmul floor.

    `encode(tokenizer, rows, trim)` tokenizes the rows, trimming endings as the recipe does when `trim`.
    """
    ours = _rows_per_second(steps, config, None, None, False, rows, encode, floor=True)
    plain = _rows_per_second(steps, config, torch.float32, 128, True, rows, encode, batch_size=32)
    floor, gflops = ours[3]
    return (f"rows/s: ours {ours[0]:.1f} ({ours[1]}), plain {plain[0]:.1f} ({plain[1]}); "
            f"ratio {ours[0] / plain[0]:.2f}x; our step {config.batch_size / ours[0]:.2f} s for {ours[2]:.0f} tokens, "
            f"of which its frozen matrix products need at least {floor:.2f} s ({gflops:.0f} GFLOPS)")


def matmul_floor(model, tokens: int, dtype: torch.dtype, repeats: int = 10) -> tuple[float, float]:
    """(seconds, GFLOPS): the least time one LoRA training step of `tokens` tokens spends in frozen matrix products.

    Each frozen linear layer of the decoder blocks runs twice a step, forward and backward for its input's
    gradient: 4 x in x out FLOPs a token (the adapter, attention scores and the LM head come on top). The rate
    is this CPU's, timed on the largest of those layers' shapes with `tokens` rows in `dtype`.
    """
    blocks = model.get_base_model().model.layers
    weights = {id(m.weight): m.weight for name, m in blocks.named_modules()
               if isinstance(m, torch.nn.Linear) and "lora_" not in name}.values()
    flops = sum(4 * w.shape[0] * w.shape[1] for w in weights) * tokens
    largest = max(weights, key=lambda w: w.numel())
    x, w = torch.randn(tokens, largest.shape[1], dtype=dtype), torch.randn(largest.shape, dtype=dtype)
    torch.nn.functional.linear(x, w)
    started = time.perf_counter()
    for _ in range(repeats):
        torch.nn.functional.linear(x, w)
    rate = 2 * tokens * w.numel() * repeats / (time.perf_counter() - started)
    return flops / rate, rate / 1e9


def _rows_per_second(steps, config, dtype, pad_to, checkpointing, data, encode, floor=False, batch_size=None):
    """(rows/s, label, tokens a step, with `floor` also `matmul_floor` at that many tokens)."""
    batch_size = batch_size or config.batch_size
    llm = BaseLLM(dtype=dtype)
    model = training.build_model(llm, config.rank, config.alpha)
    if checkpointing:  # the plain set-up: also the stock attention
        model.get_base_model().set_attn_implementation("sdpa")
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    model.train()
    rows = encode(llm.tokenizer, data, not pad_to)
    pad = llm.tokenizer.pad_token_id
    collate = (training.PadCollator if pad_to else training.PackCollator)(pad)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    started, tokens = None, 0
    for step in range(steps + 1):
        batch = rows[step * batch_size:(step + 1) * batch_size]
        if pad_to:  # a full-width dummy row pads the batch to pad_to
            batch = batch + [{"input_ids": [pad] * pad_to, "attention_mask": [0] * pad_to, "labels": [-100] * pad_to}]
        inputs = collate(batch)
        if pad_to:
            inputs = {k: v[:-1] for k, v in inputs.items()}
            loss = model(**inputs).loss
        else:
            loss = training.answer_loss(model, inputs)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step == 0:
            started = time.perf_counter()
        else:
            tokens += inputs["input_ids"].numel()  # the token slots computed, padding included
    rate = steps * batch_size / (time.perf_counter() - started)
    per_step = tokens / steps
    label = f"{str(llm.dtype).replace('torch.', '')}, batch {batch_size}"
    return (rate, label, per_step) + ((matmul_floor(model, round(per_step), llm.dtype),) if floor else ())
