"""Rejection-sampling fine-tuning: LoRA on question + the model's own accepted reasoning + answer.

    python -m homework.datagen data/rft.json    # sample and filter reasoning first
    python -m homework.rft train                # trains homework/rft_model from data/rft.json, then tests
    python -m homework.rft test                 # accuracy on data/valid.json

At test time the RFT model sees only the question; it writes the conversion fact, the multiplication
and `<answer>value</answer>` itself.
"""

from __future__ import annotations

import os
from pathlib import Path

from .base_llm import BaseLLM, question_prompt, run_cli
from .data import DATA_DIR, load_rows
from .questions import is_wide
from .sft import LORA_RANK, RESUME_HINT, SEED, _test, _train, load_adapter

MODEL_DIR = Path(__file__).resolve().parent / "rft_model"
TRAIN_COMMAND = "python -m homework.datagen data/rft.json && python -m homework.rft train"
EPOCHS = 2  # passes over the accepted rows from the base (7,816 rows after ten rounds: ~54 min on the 2-core CPU)
LEARNING_RATE = 1.5e-3  # 2e-3 (rounds 1-9) diverged at step ~150 on the 7,816 round-10 rows (loss 0.25 -> 3.4)
BATCH_SIZE = 16
MAX_NEW_TOKENS = 64  # a reasoning line: fact, product, answer


def format_example(question: str, reasoning: str) -> tuple[str, str]:
    """(prompt, completion): the inference prompt, then the accepted reasoning ending in </answer>."""
    return question_prompt(question), " " + reasoning.strip()


def tokenize(tokenizer, question: str, reasoning: str) -> dict[str, list[int]]:
    """Token ids of prompt + reasoning + EOS, with labels on the reasoning and EOS only."""
    prompt, completion = format_example(question, reasoning)
    prompt_ids = tokenizer(prompt, add_special_tokens=False).input_ids
    completion_ids = tokenizer(completion, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    ids = prompt_ids + completion_ids
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": [-100] * len(prompt_ids) + completion_ids}


def _build_data(tokenizer, rows: list) -> list[dict]:
    return [tokenize(tokenizer, q, reasoning) for q, _, reasoning in rows]


def train_model(output_dir: str = str(MODEL_DIR), data: str = str(DATA_DIR / "rft.json"), epochs: float = EPOCHS,
                learning_rate: float = LEARNING_RATE, rank: int = LORA_RANK, batch_size: int = BATCH_SIZE,
                seed: int = SEED, resume: bool = False, max_steps: int = -1, checkpoint: str | None = None,
                test_after: bool = True, sound_only: bool = False, wide_only: bool = False,
                init_adapter: str | None = None) -> str:
    """Train the RFT LoRA adapter on [question, answer, reasoning] rows and save it to output_dir.

    Args:
        output_dir: where the adapter, its card, loss curve and tensorboard logs go.
        data: rows made by `python -m homework.datagen`.
        epochs: passes over the rows.
        learning_rate: peak AdamW learning rate (warmup 5 %, cosine decay).
        rank: LoRA rank (alpha = 4 x rank).
        batch_size: rows per optimizer step.
        seed: seeds the trainer.
        resume: continue from the last checkpoint of an interrupted run with the same output_dir.
        max_steps: stop after this many steps (smoke runs); -1 trains the full schedule.
        checkpoint: base model (default: the embedded SmolLM2-135M-Instruct).
        test_after: benchmark on data/valid.json when done.
        sound_only: train only on rows whose reasoning is sound (`homework.datagen.reasoning_fault`): the right
            fact, the multiplication worked out right, its product as the answer.
        wide_only: train only on rows whose quantity is not a whole number 1..10 (`homework.questions.is_wide`),
            e.g. to go on training an adapter on the longer multiplications it gets wrong most.
        init_adapter: go on training this saved adapter (e.g. homework/rft_model) instead of a fresh LoRA;
            its rank is kept and its card is copied into the new one.
    """
    from .datagen import reasoning_fault

    if init_adapter and not (Path(init_adapter) / "adapter_config.json").exists():
        raise ValueError(f"--init_adapter {init_adapter}: no saved adapter there (adapter_config.json)")
    rows = load_rows(data, (3,), min_rows=1)
    total = len(rows)
    keeps = {"sound": lambda r: not reasoning_fault(r[0], r[2]), "wide": lambda r: is_wide(r[0])}
    chosen = [name for name, on in (("sound", sound_only), ("wide", wide_only)) if on]
    rows = [r for r in rows if all(keeps[name](r) for name in chosen)]
    note = (f"accepted reasoning rows of {os.path.relpath(data)} (rounds of `python -m homework.datagen`, listed in "
            "the project README)" + "".join(f", only the {name} ones" for name in chosen)
            + (f" (of {total})" if chosen else "") + ", loss on the reasoning only")
    flags = ((f"--data {os.path.relpath(data)}" if Path(data).resolve() != DATA_DIR / "rft.json" else "")
             + "".join(f" --{name}_only" for name in chosen)).strip()
    return _train(Path(output_dir), _build_data, rows, epochs, learning_rate, rank, batch_size, seed, resume,
                  max_steps, checkpoint, test_after, "rft", load, note,
                  init_adapter=Path(init_adapter) if init_adapter else None, data_flags=flags)


def load(model_dir: str | Path = MODEL_DIR, checkpoint: str | None = None) -> BaseLLM:
    llm = load_adapter(Path(model_dir), TRAIN_COMMAND, checkpoint)
    llm.max_new_tokens = MAX_NEW_TOKENS
    return llm


def test(split: str = "valid", max_question: int | None = None, model_dir: str = str(MODEL_DIR)) -> str:
    """Benchmark the RFT adapter; the last line is `benchmark_result.accuracy=X benchmark_result.answer_rate=Y`.

    Args:
        split: data split name (data/<split>.json) or a JSON path (e.g. data/valid_wide.json).
        max_question: only the first N questions.
        model_dir: adapter folder to test (default: homework/rft_model).
    """
    return _test(load(model_dir), split, max_question)


def main() -> None:
    run_cli({"train": train_model, "test": test, "load": lambda: type(load().model).__name__}, RESUME_HINT)


if __name__ == "__main__":
    main()
