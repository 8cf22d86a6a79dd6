"""The recipes' settings, one dataclass each, light enough to read without torch: what `python -m homework.sft
train` and `python -m homework.rft train` train with no options, every default with its reason.

    python -m homework.sft train --help     # these fields as options (homework/cli.py builds the commands)
    python -m homework.records show homework/sft_model   # an adapter's command, read against these defaults
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

HOMEWORK = Path(__file__).resolve().parent
SFT_MODEL_DIR = HOMEWORK / "sft_model"
RFT_MODEL_DIR = HOMEWORK / "rft_model"
DATA_DIR = HOMEWORK.parent / "data"


@dataclasses.dataclass
class TrainConfig:
    """What every LoRA recipe sets; SFTConfig and RFTConfig add their data fields and change defaults.

    Args:
        output_dir: folder for the adapter, its record.json, card, loss curve and tensorboard logs.
        epochs: passes over the rows.
        learning_rate: peak AdamW learning rate (linear warmup over 5 % of the steps, then cosine decay).
        rank: LoRA rank (ignored with --init_adapter, whose rank is kept).
        alpha_per_rank: LoRA alpha as a multiple of the rank.
        batch_size: rows per optimizer step, over all processes together.
        device_batch: rows per device per forward pass; a larger share of the batch accumulates in several
            passes (0: the batch split evenly over the processes, one pass each).
        adam_beta2: AdamW's second-moment decay.
        pack: pack rows end to end (True) or pad each batch to its longest row (False).
        seed: seeds the trainer (and, for SFT, the question generator: seed + 1000).
        max_steps: stop after this many optimizer steps (smoke runs); -1 trains the full schedule.
        checkpoint: base model: a transformers name or path (default: the embedded SmolLM2-135M-Instruct).
        init_adapter: folder of a saved adapter to go on training instead of a fresh LoRA (experiments; the
            shipped recipes start from the base); the record names it by the hash of its weights.
    """

    output_dir: str = ""
    epochs: float = 1.0
    learning_rate: float = 1e-3
    rank: int = 16  # 4.9 M adapter parameters, saved in fp32: 19.6 MB, under the 20 MB limit
    alpha_per_rank: int = 4  # alpha = 4 x rank: a larger effective LR on the adapter for short runs
    batch_size: int = 16  # rows per optimizer step, over all processes together (see `distributed.batch_plan`)
    device_batch: int = 0  # rows per device per forward pass (0: batch_size / processes); more accumulate
    adam_beta2: float = 0.999
    pack: bool = False  # rows packed end to end (PackCollator) instead of padded (PadCollator)
    seed: int = 0
    max_steps: int = -1  # -1: the full schedule
    checkpoint: str = ""  # base model: embedded name, hub name or path ("": HOMEWORK_CHECKPOINT, else the embedded one)
    init_adapter: str = ""  # go on training this adapter instead of a fresh LoRA

    @property
    def alpha(self) -> int:
        return self.alpha_per_rank * self.rank


# Dimensions as drawn for each generated row: time three times as often as mass, speed and data, length and
# volume twice, close to each dimension's share of the 2,440 answers (720 time, 560 length, 560 volume, 200
# each for the rest); drawn evenly, time lagged the rest. A short run draws them evenly
# (--dimensions time,length,mass,volume,speed,data). Figures: docs/decisions.md, "DIMENSION_MIX".
DIMENSION_MIX = ("time",) * 3 + ("length",) * 2 + ("volume",) * 2 + ("mass", "speed", "data")


@dataclasses.dataclass
class SFTConfig(TrainConfig):
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
        decimal_steps: a row whose quantity has a fractional part answers in steps (the whole part and the
            fraction, each times the fact, then their sum: `formats.stepped_completion`), not the answer alone.
    """

    output_dir: str = str(SFT_MODEL_DIR)
    # Generated training questions: accuracy climbs steeply with rows seen (docs/decisions.md, "n_rows").
    n_rows: int = 40000
    dimensions: tuple[str, ...] = DIMENSION_MIX  # a name given twice is drawn twice as often
    # The best of four learning rates and two batch sizes on a short run (docs/decisions.md, "learning_rate").
    learning_rate: float = 1e-3
    batch_size: int = 16  # rows per optimizer step; rows are ~22 tokens, packed end to end
    # AdamW's beta2 at the default 0.999 let the loss spike; 0.95 held it (docs/decisions.md, "adam_beta2").
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
    decimal_steps: bool = False


@dataclasses.dataclass
class RFTConfig(TrainConfig):
    """The RFT recipe: these defaults are what `python -m homework.rft train` trains, in one run from the base.

    Args:
        data: [question, answer, reasoning] rows made by `python -m homework.datagen` (recipes/rft.json).
        reword: share of rows whose question is asked anew in a composed phrasing (seeded by --seed); 0 trains
            the questions as datagen wrote them.
    """

    output_dir: str = str(RFT_MODEL_DIR)
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
    # Share of rows whose question is asked anew in composed phrasings (phrasing.CONSTRUCTIONS, units
    # first among them) at training time; the reasoning, the model's own sampled text, depends only on the
    # conversion and stays. The rest keep datagen's template wording, as course-style questions are written.
    reword: float = 0.5
