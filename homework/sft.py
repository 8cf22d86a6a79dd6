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
from .data import DATA_DIR, evaluate, load_rows
from .questions import generate, held_out_questions
from .units import DIMENSIONS

MODEL_DIR = Path(__file__).resolve().parent / "sft_model"
TRAIN_COMMAND = "python -m homework.sft train"
ANSWER_TOKENS = 24  # enough for " <answer>1.23e-9</answer>" plus EOS
# Dimensions as drawn for each generated row: time three times as often as mass, speed and data, length and
# volume twice, close to each dimension's share of the 2,440 answers (720 time, 560 length, 560 volume, 200
# each for the rest). Drawn evenly, time scored 0.75 at 36,000 rows; with this mix 0.95, all 0.967 against
# 0.944 (2026-11-27). At 12,000 rows the mix loses (0.423 against 0.546): a quick run draws them evenly
# (--dimensions time,length,mass,volume,speed,data). See docs/training.md.
DIMENSION_MIX = ("time",) * 3 + ("length",) * 2 + ("volume",) * 2 + ("mass", "speed", "data")


@dataclasses.dataclass
class SFTConfig(training.TrainConfig):
    """The SFT recipe: these defaults are what `python -m homework.sft train` trains, measured on the 2-core CPU
    (docs/training.md).

    Args:
        n_rows: generated training questions (ignored when --data is given).
        dimensions: the dimensions drawn for generated rows, comma-separated; a name given twice is drawn twice
            as often ("" or time,length,mass,volume,speed,data: all six evenly).
        ending_every: one row in this many keeps "answer>" and EOS after "</" (1: every row).
        data: a JSON file of [question, answer] rows instead of generated ones.
        composed: share of generated rows phrased from parts (homework/phrasing.py), the rest in the 25 templates.
        decimals: share of generated rows whose quantity is a half or a tenth (0.1 to 9.9).
        same_unit: share of generated rows between two names of one unit ("9 ml in cc").
        natural: share of generated rows asked as people write ("a gallon", "three feet", "half a day", a
            sentence of context first).
        held_out: data files whose questions no generated row asks, comma-separated.
    """

    output_dir: str = str(MODEL_DIR)
    # Generated training questions. Accuracy climbs steeply with rows seen (bf16, data/valid.json, drawn evenly,
    # 2026-11-27): 12,000 rows 0.546 (14.3 min), 24,000 0.849 (27.2 min), 36,000 0.944 (37.3 min).
    n_rows: int = 40000
    dimensions: tuple[str, ...] = DIMENSION_MIX  # a name given twice is drawn twice as often
    # Batch 16 at 1e-3 scored 0.554 where 1.5e-3 scored 0.534, 7e-4 0.500 and batch 32 at 2e-3 0.502
    # (12,000 rows, 2026-11-27).
    learning_rate: float = 1e-3
    batch_size: int = 16  # rows per optimizer step; rows are ~22 tokens, packed end to end
    # AdamW's beta2 at the default 0.999 let the loss spike (grad norm 9-54); 0.95 scored 0.502 against 0.477.
    adam_beta2: float = 0.95
    pack: bool = True
    # One row in ENDING_EVERY keeps its whole ending ("</answer>" and EOS); the others stop after "</", the token
    # that says where the number ends: the cut tokens change no other token's loss and save ~3 of ~22 tokens.
    ending_every: int = 4
    data: str = ""  # a JSON file of [question, answer] rows instead of generated ones
    # Share of rows phrased from parts (homework/phrasing.py: constructions with the quantity first, apart, or
    # after both units); the rest fill the 25 templates. Composed alone scored 0.933 on data/valid.json at
    # 36,000 rows, templates alone 0.967 (docs/training.md).
    composed: float = 0.5
    # Share of rows with a half or tenth quantity (0.1-9.9): without any, "0.5 kg in oz" was answered 10x.
    decimals: float = 0.18
    # Share of rows between two names of one unit ("9 ml in cc"): without any, every such question was wrong.
    same_unit: float = 0.03
    # Share of rows asked as people write: "a gallon", "three feet", "half a day", a sentence of context first.
    natural: float = 0.06
    # The files whose questions no training row asks. Named here, not read from whatever data/ holds, so a new
    # held-out file changes no training row (its wordings are held out of training by construction).
    held_out: tuple[str, ...] = ("valid.json", "valid_wide.json", "people.json", "valid_constructions.json",
                                 "valid_units_first.json", "valid_same_unit.json", "valid_decimal.json",
                                 "valid_natural.json")


def training_rows(config: SFTConfig) -> list:
    if config.data:
        return load_rows(config.data, min_rows=1)
    return generate(config.n_rows, seed=1000 + config.seed, exclude=held_out_questions(tuple(config.held_out)),
                    balanced=True, dimensions=tuple(config.dimensions), composed=config.composed,
                    decimals=config.decimals, same_unit=config.same_unit, natural=config.natural)



def encode_rows(tokenizer, rows: list, ending_every: int = 1) -> list[dict]:
    """Tokenized rows; all but one in `ending_every` stop after the first token of the closing tag."""
    data = [formats.encode(tokenizer, formats.question_prompt(q), formats.sft_completion(a)) for q, a, *_ in rows]
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
                           + (f"; {config.ending_every - 1} rows in {config.ending_every} end at the closing "
                              "tag's \"</\"" if config.ending_every > 1 else "")}


def _train(config: SFTConfig, resume: bool = False, test_after: bool = True) -> str | None:
    if config.ending_every < 1:
        raise ValueError(f"ending_every must be 1 or more, got {config.ending_every}")
    config = dataclasses.replace(config, dimensions=config.dimensions or DIMENSIONS)
    rows = training_rows(config)
    previous = records.read_record(Path(config.output_dir))
    record = training.train(config, "sft", lambda tok: encode_rows(tok, rows, config.ending_every),
                            _describe(config, rows), "answer", resume)
    return adapters.finish(record, config.output_dir, load, previous, test_after)


train_model = config_command(
    SFTConfig, _train, "Train the SFT LoRA adapter and save it (atomically) to output_dir, then test it on "
    "data/valid.json.\n\nWith no options this is the shipped recipe (SFTConfig). Under `accelerate launch "
    "--num_processes N` the training is data parallel; the main process saves and tests.", training.RUN_OPTIONS)


def load(model_dir: str | Path = MODEL_DIR, checkpoint: str | None = None) -> BaseLLM:
    """The SFT adapter on its base model (the base named in its record, unless `checkpoint` is given)."""
    llm = adapters.load_adapter(Path(model_dir), TRAIN_COMMAND, checkpoint)
    llm.max_new_tokens = ANSWER_TOKENS
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
    return lambda tok, r, trim: encode_rows(tok, r, config.ending_every if trim else 1)


def main() -> None:
    run_cli({"train": train_model, "test": test, "speed": speed, "profile": profile,
             "load": lambda: str(load().model.__class__.__name__)}, training.RESUME_HINT)


if __name__ == "__main__":
    main()
