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

import dataclasses
import random
from pathlib import Path

from . import adapters, formats, phrasing, records, training
from .base_llm import BaseLLM
from .cli import config_command, run_cli
from .data import DATA_DIR, Dataset, evaluate, load_rows

MODEL_DIR = Path(__file__).resolve().parent / "rft_model"
TRAIN_COMMAND = "python -m homework.rft train"  # on the committed data/rft.json (homework.datagen made it)
MAX_NEW_TOKENS = 64  # a reasoning line: fact, product, answer


@dataclasses.dataclass
class RFTConfig(training.TrainConfig):
    """The RFT recipe: these defaults are what `python -m homework.rft train` trains, in one run from the base.

    Args:
        data: [question, answer, reasoning] rows made by `python -m homework.datagen` (recipes/rft.json).
        reword: share of rows whose question is asked anew in a composed phrasing (seeded by --seed); 0 trains
            the questions as datagen wrote them.
    """

    output_dir: str = str(MODEL_DIR)
    data: str = str(DATA_DIR / "rft.json")  # [question, answer, reasoning] rows made by homework.datagen
    # One pass over ~13,400 rows is ~45 min on the 2-core CPU; the rounds' 2 epochs from the base took twice that.
    epochs: float = 1.0
    learning_rate: float = 1.5e-3  # 2e-3 (rounds 1-9) diverged at step ~150 on the 7,816 round-10 rows
    # 0.999 let SFT's loss spike (grad norm 9-54); 0.95 held it and scored higher there (docs/training.md).
    adam_beta2: float = 0.95
    batch_size: int = 16
    # Rows packed end to end, as SFT trains: reasoning rows run 40-90 tokens, so padding a batch to its longest
    # row spends about a fifth of a step on padding; the loss is the padded batch's (tests/test_sft.py).
    pack: bool = True
    # Share of rows whose question is asked anew in composed phrasings (phrasing.TRAINING_CONSTRUCTIONS, units
    # first among them) at training time; the reasoning, the model's own sampled text, depends only on the
    # conversion and stays. The rest keep datagen's template wording, as course-style questions are written.
    reword: float = 0.5


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


def _train(config: RFTConfig, resume: bool = False, test_after: bool = True) -> str | None:
    if config.init_adapter and not (Path(config.init_adapter) / "adapter_config.json").exists():
        raise ValueError(f"--init_adapter {config.init_adapter}: no saved adapter there (adapter_config.json)")
    rows = training_rows(config)
    data = records.portable(config.data)
    # the notes of the file's rows (rewording asks a question anew and need not carry them)
    filled = sum(1 for row in load_rows(config.data, (3, 4)) if row[3:] and row[3].get("calculator_filled"))
    described = {"source": data, "rows": len(rows), "sha256": records.sha256(config.data),
                 "calculator_filled": filled,
                 "description": f"accepted reasoning rows of {data} (made by `python -m homework.datagen`; "
                                "recipes/rft.json lists the rounds)"
                                + (f", {filled} of them calculator-filled (sampled with calculator decoding: "
                                   "the digits after `A * B =` are the calculator's, the rest the model's own "
                                   "text)" if filled else "")
                                + (f", {config.reword:g} of the questions asked anew in composed phrasings"
                                   if config.reword else "") + ", loss on the reasoning only"}
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

        return with_calculator(llm)
    return llm


def test(split: str = "valid", max_question: int | None = None, model_dir: str = str(MODEL_DIR),
         calculator: bool = False) -> str:
    """Benchmark the RFT adapter; the last line is `benchmark_result.accuracy=X benchmark_result.answer_rate=Y`.

    Args:
        split: data split name (data/<split>.json) or a JSON path (e.g. data/valid_wide.json).
        max_question: only the first N questions (default: all).
        model_dir: adapter folder to test (default: homework/rft_model).
        calculator: decode with the calculator (the model's own products computed; see homework/calculator.py).
    """
    return evaluate(load(model_dir, calculator=calculator), split, max_question)


def misses(split: str = "valid", max_question: int | None = None, model_dir: str = str(MODEL_DIR),
           calculator: bool = False, show: int = 3) -> str:
    """Each wrong answer traced to its cause in the reasoning (`formats.miss_cause`).

    Causes: "no answer" (no closed <answer> tag), "question not understood" (the units registry cannot parse it,
    so there is no fact to check), "quantity" (the product set up lacks the question's quantity), "fact" (the
    factor more than 1 % off the registry's), "product" (more than 1 % off the multiplication written), "no
    product" (none set up), "answer is not the product". With the calculator every product is computed, so
    its misses come from the rest.

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
    causes: Counter = Counter()
    for (question, answer, *_), text in zip(rows, texts):
        verdict, reasoning = formats.judge(text, answer)
        if verdict == "ok":
            continue
        cause = "no answer" if verdict in ("no tag", "truncated") else formats.miss_cause(question, reasoning)
        cause = cause or "sound, yet wrong"  # a sound reasoning lands within 5 %: not seen, but never hidden
        causes[cause] += 1
        if causes[cause] <= show:
            print(f"{cause}: {question!r} -> {reasoning!r} (true {answer:.6g})")
    wrong = sum(causes.values())
    return (f"{split}: {wrong} wrong of {len(rows)} ({1 - wrong / len(rows):.3f} right)"
            + ("".join(f"; {cause} {n}" for cause, n in causes.most_common())) + f" [{'calculator' if calculator else 'pure'}]")


def main() -> None:
    run_cli({"train": train_model, "test": test, "misses": misses, "load": lambda: type(load().model).__name__}, training.RESUME_HINT)


if __name__ == "__main__":
    main()
