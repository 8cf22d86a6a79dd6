"""The training batches: rows right-padded (`PadCollator`), or packed end to end with no padding between
(`PackCollator`) and the block-diagonal causal mask that keeps each packed row to itself (`packed_mask`).
`training.answer_loss` takes either.
"""

from __future__ import annotations

import math

import torch


class PadCollator:
    """Right-pads a batch to its longest row (no fixed max length: most rows are ~30 tokens)."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)

        def pad(key, value):
            return torch.tensor([r[key] + [value] * (width - len(r[key])) for r in rows])

        return {"input_ids": pad("input_ids", self.pad_id), "attention_mask": pad("attention_mask", 0),
                "labels": pad("labels", -100)}


class PackCollator:
    """Packs a batch's rows end to end into a few sequences of about `width` tokens, with no padding between.

    Each row keeps its own positions (0, 1, ...) and attends only to itself: `segments` numbers the rows of
    a sequence, and `answer_loss` turns it into a block-diagonal causal mask. The loss is the padded batch's
    loss (a test compares them), on about a fifth fewer tokens. Rows are dealt out longest first, each to the
    emptiest sequence, so the sequences come out about equally long and little padding is left at their ends.
    """

    def __init__(self, pad_id: int, width: int = 128):
        self.pad_id, self.width = pad_id, width

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        total = sum(len(r["input_ids"]) for r in rows)
        bins: list[list[dict]] = [[] for _ in range(max(1, math.ceil(total / self.width)))]
        fill = [0] * len(bins)
        for row in sorted(rows, key=lambda r: -len(r["input_ids"])):
            i = fill.index(min(fill))
            bins[i].append(row)
            fill[i] += len(row["input_ids"])
        batch = {key: torch.full((len(bins), max(fill)), value) for key, value in
                 (("input_ids", self.pad_id), ("labels", -100), ("position_ids", 0), ("segments", -1))}
        for i, packed in enumerate(bins):
            start = 0
            for j, row in enumerate(packed):
                n = len(row["input_ids"])
                batch["input_ids"][i, start:start + n] = torch.tensor(row["input_ids"])
                batch["labels"][i, start:start + n] = torch.tensor(row["labels"])
                batch["position_ids"][i, start:start + n] = torch.arange(n)
                batch["segments"][i, start:start + n] = j
                start += n
        return batch


def packed_mask(segments: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive 4-D attention mask: a token sees the earlier tokens of its own row (padding sees itself)."""
    n = segments.shape[1]
    same = segments[:, :, None] == segments[:, None, :]
    causal = torch.ones(n, n, dtype=torch.bool, device=segments.device).tril()
    allowed = (same & causal) | torch.eye(n, dtype=torch.bool, device=segments.device)
    return torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)[:, None]
