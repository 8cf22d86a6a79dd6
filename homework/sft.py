"""LoRA supervised fine-tuning: the model learns to answer a question with `<answer>value</answer>`.

    python -m homework.sft train              # trains homework/sft_model (about 40 min on a 2-core CPU), then tests
    python -m homework.sft train --resume     # continue an interrupted run from its last checkpoint
    python -m homework.sft test               # accuracy on data/valid.json (1000 questions)
    python -m homework.sft speed              # our training step against the plain one, and its matmul floor
    python -m homework.sft profile            # one training step under torch.profiler, by part and operator

Training rows come from the question generator (fresh quantities and phrasings, never a validation
question); only the answer tokens carry loss. The recipe is `SFTConfig`; the trainer is `homework.training`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from . import adapters, formats, records, training
from .base_llm import BaseLLM
from .cli import config_command, run_cli
from .configs import DIMENSION_MIX, SFT_MODEL_DIR as MODEL_DIR, SFTConfig  # noqa: F401 (sft.DIMENSION_MIX)
from .data import evaluate, load_rows
from .datafiles import held_out_questions
from .questions import generate
from .units import DIMENSIONS

TRAIN_COMMAND = "python -m homework.sft train"
ANSWER_TOKENS = 24  # enough for " <answer>1.23e-9</answer>" plus EOS
STEPS_TOKENS = 80  # enough for the longest stepped answer (`formats.stepped_completion`, ~65 tokens) plus EOS


def training_rows(config: SFTConfig) -> list:
    if config.data:
        return load_rows(config.data, min_rows=1)
    return generate(config.n_rows, seed=1000 + config.seed, exclude=held_out_questions(tuple(config.held_out)),
                    balanced=True, dimensions=tuple(config.dimensions), composed=config.composed,
                    decimals=config.decimals, same_unit=config.same_unit, natural=config.natural)



def completion_format(config: SFTConfig) -> str:
    """The name of the completion the recipe trains (`formats.FORMATS`)."""
    return "answer_steps" if config.decimal_steps else "answer"


def encode_rows(tokenizer, rows: list, ending_every: int = 1, completion: str = "answer") -> list[dict]:
    """Tokenized rows in the named completion format; all but one in `ending_every` stop after the first token
    of the closing tag."""
    write = formats.FORMATS["completion"][completion]
    data = [formats.encode(tokenizer, formats.question_prompt(q), write(q, a) if completion == "answer_steps"
                           else write(a)) for q, a, *_ in rows]
    if ending_every > 1:
        tail = formats.ending_tokens(tokenizer)
        data = [row if i % ending_every == 0 else formats.trim_ending(row, tail) for i, row in enumerate(data)]
    return data


def _describe(config: SFTConfig, rows: list) -> dict:
    if config.data:
        return {"source": records.portable(config.data), "rows": len(rows), "sha256": records.sha256(config.data),
                "description": f"rows of {records.portable(config.data)}, loss on the answer only"}
    return {"source": "generated", "rows": len(rows),
            "description": f"generated questions (`homework/questions.py`, {config.composed:.0%} composed, balanced over "
                           "each drawn dimension's unit pairs, no held-out question), loss on the answer only"
                           + (" (worked in steps where the quantity has a fractional part)" if config.decimal_steps
                              else "")
                           + (f"; {config.ending_every - 1} rows in {config.ending_every} end at the closing "
                              "tag's \"</\"" if config.ending_every > 1 else "")}


def _train(config: SFTConfig, resume: bool = False, test_after: bool = True, overwrite: bool = False) -> str | None:
    training.check_output(config, overwrite)
    if config.ending_every < 1:
        raise ValueError(f"ending_every must be 1 or more, got {config.ending_every}")
    config = dataclasses.replace(config, dimensions=config.dimensions or DIMENSIONS)
    rows = training_rows(config)
    previous = records.read_record(Path(config.output_dir))
    completion = completion_format(config)
    record = training.train(config, "sft", lambda tok: encode_rows(tok, rows, config.ending_every, completion),
                            _describe(config, rows), completion, resume)
    return adapters.finish(record, config.output_dir, load, previous, test_after)


train_model = config_command(
    SFTConfig, _train, "Train the SFT LoRA adapter and save it (atomically) to output_dir, then test it on "
    "data/valid.json.\n\nWith no options this is the shipped recipe (SFTConfig). Under `accelerate launch "
    "--num_processes N` the training is data parallel; the main process saves and tests.", training.RUN_OPTIONS)


def load(model_dir: str | Path = MODEL_DIR, checkpoint: str | None = None) -> BaseLLM:
    """The SFT adapter on its base model (the base named in its record, unless `checkpoint` is given)."""
    llm = adapters.load_adapter(Path(model_dir), TRAIN_COMMAND, checkpoint)
    stepped = records.read_record(Path(model_dir)).get("format", {}).get("completion") == "answer_steps"
    llm.max_new_tokens = STEPS_TOKENS if stepped else ANSWER_TOKENS
    return llm


def test(split: str = "valid", max_question: int | None = None, model_dir: str = str(MODEL_DIR)) -> str:
    """Benchmark the trained adapter; the last line is `benchmark_result.accuracy=X benchmark_result.answer_rate=Y`.

    Args:
        split: data split name (data/<split>.json) or a JSON path.
        max_question: only the first N questions (default: all).
        model_dir: adapter folder to test (default: homework/sft_model).
    """
    return evaluate(load(model_dir), split, max_question)


def speed(steps: int = 8, rows: int = 512) -> str:
    """Training throughput of our set-up against the plain one, measured in one run, and the step's matmul floor.

    Args:
        steps: optimizer steps timed per set-up (after one warm-up step).
        rows: generated rows to draw batches from.
    """
    from .profiling import speed as measure

    config = SFTConfig()
    return measure(training_rows(dataclasses.replace(config, n_rows=rows)), config, steps, _speed_encoder(config))


def profile(steps: int = 3) -> str:
    """One training step of the default recipe under torch.profiler: time by part and by operator.

    Args:
        steps: steps profiled (after two warm-up steps); the figures are per step.
    """
    from .profiling import profile_step

    config = SFTConfig()
    return profile_step(training_rows(dataclasses.replace(config, n_rows=16 * (steps + 2))), config,
                        _speed_encoder(config), steps)


def _speed_encoder(config: SFTConfig):
    return lambda tok, r, trim: encode_rows(tok, r, config.ending_every if trim else 1, completion_format(config))


def main() -> None:
    run_cli({"train": train_model, "test": test, "speed": speed, "profile": profile,
             "load": lambda: str(load().model.__class__.__name__)}, training.RESUME_HINT)


if __name__ == "__main__":
    main()
