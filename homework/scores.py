"""The two generation scores of an untrained model's completions: ours (padding masked) and the course's."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # for the annotations only: base_llm imports this module, not the other way round
    from .base_llm import BaseLLM


@torch.inference_mode()
def generation_loss(llm: BaseLLM, questions: list[str], completions: list[str]) -> float:
    """Our generation score: mean token loss over the real tokens of question + completion, one row at a time.

    It masks padding, so it says how well the model predicts the text. The course's score does not (see
    `course_generation_loss`), and that one decides the course's points.
    """
    total, count = 0.0, 0
    for question, completion in zip(questions, completions):
        ids = llm.tokenizer(question + completion, return_tensors="pt").input_ids.to(llm.device)
        if ids.shape[1] < 2:
            continue
        logits = llm.model(ids).logits.float()
        loss = torch.nn.functional.cross_entropy(logits[0, :-1], ids[0, 1:], reduction="sum")
        total, count = total + loss.item(), count + ids.shape[1] - 1
    return total / max(count, 1)


@torch.inference_mode()
def course_generation_loss(llm: BaseLLM, questions: list[str], completions: list[str]) -> float:
    """The course's generation score, computed as its grader computes it (full marks <= 6.2, none >= 8.0).

    Question + completion texts tokenized as one padded batch by the model's own tokenizer, on its own padding
    side; one forward pass with that attention mask; cross-entropy averaged over every position, padding
    included. An empty completion leaves a row mostly padding, and padded positions cost ~25 nats each here.
    """
    batch = llm.tokenizer([q + c for q, c in zip(questions, completions)], padding=True, return_tensors="pt")
    batch = batch.to(llm.device)
    logits = llm.model(batch.input_ids, attention_mask=batch.attention_mask).logits.float()
    return torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), batch.input_ids[:, 1:].flatten()).item()
