"""Rejection-sampling fine-tuning: LoRA on question + the model's own accepted reasoning + answer.

    python -m homework.rft train                # the shipped recipe: homework/rft_model from data/rft.json, then tests
    python -m homework.datagen data/rft.json    # (data/rft.json is committed) sample and filter more reasoning
    python -m homework.rft test                 # accuracy on data/valid.json
    python -m homework.rft test --calculator    # the same with calculator decoding (homework/calculator.py)
    python -m homework.rft misses data/valid_wide.json --calculator   # each wrong answer traced to its cause
    python -m homework.recipe run recipes/rft.json --plan   # the rounds of expert iteration behind data/rft.json

At test time the RFT model sees only the question; it writes the conversion fact, the multiplication
and `<answer>value</answer>` itself. The recipe is `RFTConfig`; the trainer is `homework.training`.
"""

from __future__ import annotations

import random
from pathlib import Path

from . import adapters, formats, phrasing, records, soundness, training
from .base_llm import BaseLLM
from .cli import config_command, run_cli
from .configs import RFT_MODEL_DIR as MODEL_DIR, RFTConfig
from .data import Dataset, evaluate, load_rows

TRAIN_COMMAND = "python -m homework.rft train"  # on the committed data/rft.json (homework.datagen made it)
MAX_NEW_TOKENS = 96  # a reasoning line: fact, product (in steps, the longest part), answer


def training_rows(config: RFTConfig) -> list:
    """The data file's rows, `config.reword` of them asked anew in composed phrasings (same conversion)."""
    rows = load_rows(config.data, (3, 4), min_rows=1)  # a 4th item: the row's notes
    if not 0 <= config.reword <= 1:
        raise ValueError(f"reword must be a share between 0 and 1, not {config.reword}")
    if not config.reword:
        return rows
    rng = random.Random(config.seed)
    chosen = [i for i in range(len(rows)) if rng.random() < config.reword]
    asked = phrasing.reword([rows[i] for i in chosen], config.seed, phrasing.CONSTRUCTIONS)
    out = list(rows)
    for i, row in zip(chosen, asked):
        out[i] = row
    return out


def encode_rows(tokenizer, rows: list) -> list[dict]:
    return [formats.encode(tokenizer, formats.question_prompt(q), formats.rft_completion(reasoning))
            for q, _, reasoning, *_ in rows]


def _train(config: RFTConfig, resume: bool = False, test_after: bool = True, overwrite: bool = False) -> str | None:
    training.check_output(config, overwrite)
    if config.init_adapter and not (Path(config.init_adapter) / "adapter_config.json").exists():
        raise ValueError(f"--init_adapter {config.init_adapter}: no saved adapter there (adapter_config.json)")
    rows = training_rows(config)
    data = records.portable(config.data)
    # the notes of the file's rows (rewording asks a question anew and need not carry them)
    filled = sum(1 for row in load_rows(config.data, (3, 4)) if row[3:] and row[3].get("calculator_filled"))
    stepped = sum(1 for row in rows if formats.worked_in_steps(row[2]))
    described = {"source": data, "rows": len(rows), "sha256": records.sha256(config.data),
                 "calculator_filled": filled, "product_steps": stepped,
                 "description": f"accepted reasoning rows of {data} (made by `python -m homework.datagen`; "
                                "recipes/rft.json lists the rounds)"
                                + (f", {filled} of them calculator-filled (sampled with calculator decoding: "
                                   "the digits after `A * B =` are the calculator's, the rest the model's own "
                                   "text)" if filled else "")
                                + (f", {config.reword:g} of the questions asked anew in composed phrasings"
                                   if config.reword else "")
                                + (f", {stepped} with the product worked in steps" if stepped else "")
                                + ", loss on the reasoning only"}
    previous = records.read_record(Path(config.output_dir))
    record = training.train(config, "rft", lambda tok: encode_rows(tok, rows), described, "reasoning", resume)
    return adapters.finish(record, config.output_dir, load, previous, test_after)


train_model = config_command(
    RFTConfig, _train, "Train the RFT LoRA adapter on [question, answer, reasoning] rows and save it to "
    "output_dir, then test it on data/valid.json.\n\nWith no options this is the shipped recipe (RFTConfig). "
    "Under `accelerate launch --num_processes N` the training is data parallel; the main process saves and "
    "tests.", training.RUN_OPTIONS)


def load(model_dir: str | Path = MODEL_DIR, checkpoint: str | None = None, calculator: bool = False) -> BaseLLM:
    """The RFT adapter on its base model; with `calculator`, decoding hands each product the model sets up
    to a calculator (`homework.calculator`: an opt-in mode, not the pure model that `load_rft()` returns)."""
    llm = adapters.load_adapter(Path(model_dir), TRAIN_COMMAND, checkpoint)
    llm.max_new_tokens = MAX_NEW_TOKENS
    if calculator:
        from .calculator import with_calculator

        # an adapter trained on products worked in steps gets them in steps from the calculator too
        steps = records.read_record(Path(model_dir)).get("data", {}).get("product_steps", 0) > 0
        return with_calculator(llm, steps=steps)
    return llm


def test(split: str = "valid", max_question: int | None = None, model_dir: str = str(MODEL_DIR),
         calculator: bool = False) -> str:
    """Benchmark the RFT adapter; the last line is `benchmark_result.accuracy=X benchmark_result.answer_rate=Y
    benchmark_result.sound_accuracy=Z` (Z: right with sound steps, `homework.soundness`).

    Args:
        split: data split name (data/<split>.json) or a JSON path (e.g. data/valid_wide.json).
        max_question: only the first N questions (default: all).
        model_dir: adapter folder to test (default: homework/rft_model).
        calculator: decode with the calculator (the model's own products computed; see homework/calculator.py).
    """
    return evaluate(load(model_dir, calculator=calculator), split, max_question, reasoned=True)


def misses(split: str = "valid", max_question: int | None = None, model_dir: str = str(MODEL_DIR),
           calculator: bool = False, show: int = 3) -> str:
    """Each answer's reasoning through the strict soundness check (`soundness.reasoning_fault`): the causes of
    the wrong answers, and of the right answers whose steps are not sound.

    Causes (`soundness.CAUSES`): "no answer" (no closed <answer> tag), "question not understood" (the units
    registry cannot parse it), "unknown unit", "fact" (a unit fact false for the units it names, a number without
    its unit, or a product whose factor is not the one from the question's source unit to its target), "product"
    (an arithmetic step more than 1 % off), "quantity" (no product has the question's quantity), "no product",
    "answer is not the product". With the calculator every product is computed, so its faults come from the rest.

    Args:
        split: data split name (data/<split>.json) or a JSON path (e.g. data/valid_wide.json).
        max_question: only the first N questions (default: all).
        model_dir: adapter folder to test (default: homework/rft_model).
        calculator: decode with the calculator.
        show: example reasonings printed for each cause.
    """
    from collections import Counter

    llm = load(model_dir, calculator=calculator)
    rows = Dataset(split).data[:max_question or None]
    texts = llm.batched_generate([llm.format_prompt(q) for q, *_ in rows])
    wrong: Counter = Counter()
    unsound: Counter = Counter()
    for (question, answer, *_), text in zip(rows, texts):
        verdict, reasoning = formats.judge(text, answer)
        cause = soundness.miss_cause(question, reasoning)
        if verdict in ("no tag", "truncated"):
            cause = "no answer"
        counter = unsound if verdict == "ok" else wrong
        if verdict == "ok" and cause == "sound":
            continue
        counter[cause] += 1
        if counter[cause] <= show:
            print(f"{'right' if verdict == 'ok' else 'wrong'}, {cause}: {question!r} -> {reasoning!r} "
                  f"(true {answer:.6g})")
    n, right = len(rows), len(rows) - sum(wrong.values())
    return (f"{split} [{'calculator' if calculator else 'pure'}]: right {right / n:.3f}, right and sound "
            f"{(right - sum(unsound.values())) / n:.3f} of {n}; wrong: "
            + (", ".join(f"{c} {k}" for c, k in wrong.most_common()) or "none") + "; right but unsound: "
            + (", ".join(f"{c} {k}" for c, k in unsound.most_common()) or "none"))


def main() -> None:
    run_cli({"train": train_model, "test": test, "misses": misses, "load": lambda: type(load().model).__name__}, training.RESUME_HINT)


if __name__ == "__main__":
    main()
