"""LoRA supervised fine-tuning: the model learns to answer a question with `<answer>value</answer>`.

    python -m homework.sft train              # trains homework/sft_model (about 40 min on a 2-core CPU), then tests
    python -m homework.sft train --resume     # continue an interrupted run from its last checkpoint
    python -m homework.sft test               # accuracy on data/valid.json (1000 questions)

Training rows come from the question generator (fresh quantities and phrasings, never a validation
question); only the answer tokens carry loss.
"""

from __future__ import annotations

import gc
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import torch

from .base_llm import (ANSWER_DIGITS, BaseLLM, ModelUnavailable, comma_list, format_answer, question_prompt,
                       run_cli)
from .data import DATA_DIR, DataError, Dataset, benchmark, load_rows, writable_dir
from .questions import generate
from .units import DIMENSIONS

MODEL_NAME = "sft_model"
MODEL_DIR = Path(__file__).resolve().parent / MODEL_NAME
WORK_DIR = Path(__file__).resolve().parent / f".{MODEL_NAME}_work"  # checkpoints for --resume; never shipped
FORMAT_FILE = "prompt_format.json"
TRAIN_COMMAND = "python -m homework.sft train"

# Defaults, chosen by measurement on the 2-core CPU (see sft_model/README.md).
# Generated training questions. Accuracy climbs steeply with rows seen (bf16, data/valid.json, dimensions drawn
# evenly, 2026-11-27): 12,000 rows 0.546 (14.3 min), 24,000 0.849 (27.2 min), 36,000 0.944 (37.3 min) on the
# 2-core CPU. An answer-only model has to memorise ~2,440 (unit pair, quantity) answers, so no row count both
# clears 0.85 and trains in 10 minutes there; the default takes the accuracy (README, Results).
N_ROWS = 36000
# Dimensions as drawn for each generated row: time three times as often as mass, speed and data, length and
# volume twice, close to each dimension's share of the 2,440 answers (720 time, 560 length, 560 volume, 200
# each for the rest). Drawn evenly, time's answers were seen ~8 times each in 36,000 rows against ~30 for
# mass, speed and data, and time scored 0.75; with this mix every answer is seen 13-18 times: time 0.95,
# all 0.967 against 0.944, and 0.978 against 0.956 on data/valid_reworded.json (2026-11-27). At 12,000 rows
# the mix loses (0.423 against 0.546, and a similar mix 0.469 against 0.534): there every dimension is far
# from learnt, so a quick run draws them evenly (--dimensions time,length,mass,volume,speed,data).
DIMENSION_MIX = ("time",) * 3 + ("length",) * 2 + ("volume",) * 2 + ("mass", "speed", "data")
EPOCHS = 1
LORA_RANK = 16  # 4.9 M adapter parameters, saved in fp32: 19.6 MB, under the 20 MB limit
LORA_ALPHA = 4 * LORA_RANK  # alpha = 4 x rank: a larger effective LR on the adapter for short runs
# Batch 16 at 1.5e-3 (750 steps) scored 0.534 on data/valid.json where batch 32 at 2e-3 (375 steps) scored
# 0.502, both with beta2 0.95 on the same 12,000 rows, at about the same rows per second once rows are packed;
# at batch 16, 1e-3 scored 0.554, 7e-4 0.500, and 2e-3 trailed 1.5e-3 in loss (2026-11-27; README, "What did
# not work").
LEARNING_RATE = 1e-3
BATCH_SIZE = 16  # rows per optimizer step; rows are ~22 tokens, packed end to end (PackCollator)
# AdamW's second-moment decay. With the default 0.999 the loss spiked now and then (grad norm 9-54 at lr 2e-3
# to 3e-3, rank 32 or LoRA+) and lost ground; 0.95 trained smoother on the same batches (loss 0.405 against
# 0.425 over steps 105-125) and the adapter scored 0.502 against 0.477 on data/valid.json (2026-11-27).
ADAM_BETA2 = 0.95
# One row in ENDING_EVERY keeps its whole ending ("</answer>" and EOS); the others stop after "</", the token
# that says where the number ends. The model is causal, so the cut tokens change no other token's loss; they
# are fully determined by "</" and learnt within the first steps from the rows that keep them, and cutting
# them saves ~3 of a row's ~22 tokens of compute (see `trim_ending`).
ENDING_EVERY = 4
SEED = 0


def format_example(question: str, answer: float) -> tuple[str, str]:
    """(prompt, completion) for one training row; the prompt is exactly what inference sees."""
    return question_prompt(question), " " + format_answer(answer)


def tokenize(tokenizer, question: str, answer: float) -> dict[str, list[int]]:
    """Token ids of prompt + completion + EOS, with labels only on the completion and EOS."""
    prompt, completion = format_example(question, answer)
    prompt_ids = tokenizer(prompt, add_special_tokens=False).input_ids
    full_ids = tokenizer(prompt + completion, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    n_prompt = len(prompt_ids)
    if full_ids[:n_prompt] != prompt_ids:  # a token merged across the boundary: keep the prompt's split
        full_ids = prompt_ids + tokenizer(completion, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    labels = [-100] * n_prompt + full_ids[n_prompt:]
    return {"input_ids": full_ids, "attention_mask": [1] * len(full_ids), "labels": labels}


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
    loss (the test compares them), on about a fifth fewer tokens: generated rows are 22 tokens on average,
    and padding a batch of 32 to its longest row adds 21 % (measured over 2,000 rows). The rows are dealt out
    longest first, each to the emptiest sequence, so the sequences come out about equally long and little
    padding is left at their ends.
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


def _packed_mask(segments: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive 4-D attention mask: a token sees the earlier tokens of its own row (padding sees itself)."""
    n = segments.shape[1]
    same = segments[:, :, None] == segments[:, None, :]
    causal = torch.ones(n, n, dtype=torch.bool, device=segments.device).tril()
    allowed = (same & causal) | torch.eye(n, dtype=torch.bool, device=segments.device)
    return torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)[:, None]


def answer_loss(model, inputs: dict) -> torch.Tensor:
    """Mean cross-entropy over labelled tokens, running the LM head only where a label exists.

    The head (576 x 49152) is ~20 % of the 135M model's compute; prompts carry no labels, so skipping
    their logits trains the same objective faster than the stock loss over every position. With bf16 base
    weights the forward runs under bf16 autocast (see `_build_model`). Takes padded batches (`PadCollator`)
    and packed ones (`PackCollator`).
    """
    base = model.get_base_model()
    device = inputs["input_ids"].device.type
    mixed = _mixed_precision(base, device)
    if "segments" in inputs:
        dtype = torch.bfloat16 if mixed else base.dtype
        extra = {"attention_mask": _packed_mask(inputs["segments"], dtype), "position_ids": inputs["position_ids"]}
    else:
        extra = {"attention_mask": inputs["attention_mask"]}
    with torch.autocast(device, dtype=torch.bfloat16, enabled=mixed):
        hidden = base.model(input_ids=inputs["input_ids"], **extra).last_hidden_state
        targets = inputs["labels"][:, 1:]
        keep = targets != -100
        logits = base.lm_head(hidden[:, :-1][keep])
    return torch.nn.functional.cross_entropy(logits.float(), targets[keep])


def _mixed_precision(base, device: str) -> bool:
    return base.dtype == torch.bfloat16 and device in ("cpu", "cuda")


class TrainingDiverged(ValueError):
    """The training loss blew up; a ValueError so the CLI reports it in one line (the fix is a flag)."""


class DivergenceGuard:
    """Watches the logged training loss and calls a run diverged when it stays far above its best.

    `patience` logged losses in a row above `factor` x the lowest so far (or not finite) is divergence:
    at learning rate 2e-3 on the round-10 RFT rows the loss went 0.25 -> 2.4, 4.7, 3.7 and stayed above
    3, worse than the untrained start. In the healthy SFT and RFT runs (their loss.json) no logged loss
    rose above 2.4x the best before it. A loss under `floor` is never a strike: near the end of a long run
    the loss is tiny and noisy (the 36,000-row SFT run logged 0.011 and, later, 0.033), and a run weighted
    to time rows was stopped at its last steps for going from 0.0069 to 0.021 (2026-11-27).
    """

    factor = 3.0
    patience = 3
    floor = 0.5

    def __init__(self):
        self.best, self.best_step, self.strikes, self.reason = math.inf, 0, 0, ""

    def update(self, step: int, loss: float) -> bool:
        """Record one logged loss; True once the run has diverged (then `reason` says how)."""
        if loss < self.best:
            self.best, self.best_step = loss, step
        blown_up = not math.isfinite(loss) or loss > max(self.factor * self.best, self.floor)
        self.strikes = self.strikes + 1 if blown_up else 0
        if self.strikes >= self.patience and not self.reason:
            self.reason = f"training loss rose from {self.best:.3g} (step {self.best_step}) to {loss:.3g} (step {step})"
        return bool(self.reason)


def _guard_callback(guard: DivergenceGuard):
    from transformers import TrainerCallback

    class StopOnDivergence(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs and guard.update(state.global_step, float(logs["loss"])):
                control.should_training_stop = True

    return StopOnDivergence()


def _trainer_class():
    from transformers import Trainer

    class AnswerLossTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            return answer_loss(model, inputs)

    return AnswerLossTrainer


def _build_model(llm: BaseLLM, rank: int, init_adapter: Path | None = None, first_layer: int = 0):
    """The base model with a trainable LoRA adapter, set up for fast training on this device.

    Two settings, timed on the 2-core CPU by a scratch loop over this function and `answer_loss` (bf16, batch 32
    of ~28-token rows, 2026-11-26; `python -m homework.sft speed` times the whole set-up against the plain one):
    eager attention instead of SDPA, whose CPU backward spent 17 % of the step on these short rows (2.06 ->
    1.77 s/step); and the adapter kept in fp32 but run in bf16 under autocast, instead of peft casting every
    activation to fp32 in front of each of the 210 adapted layers (1.77 -> 1.38 s/step). The saved adapter is
    fp32 either way; inference uses the default attention.
    """
    from peft import LoraConfig, PeftModel, get_peft_model
    from peft.tuners.tuners_utils import BaseTunerLayer

    if llm.device == "cpu":
        llm.model.set_attn_implementation("eager")
    if init_adapter is not None:  # go on training a saved adapter instead of a fresh one
        model = PeftModel.from_pretrained(llm.model, init_adapter, is_trainable=True)
    else:
        config = LoraConfig(r=rank, lora_alpha=4 * rank, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
                            target_modules=_lora_targets(llm.model, first_layer))
        model = get_peft_model(llm.model, config)
    if _mixed_precision(llm.model, llm.device):
        for module in model.modules():
            if isinstance(module, BaseTunerLayer):
                module.cast_input_dtype_enabled = False  # autocast runs the fp32 adapter in bf16 instead
    return model


def _lora_targets(base, first_layer: int):
    """peft's target_modules: every linear layer of the decoder blocks first_layer.. (0: "all-linear")."""
    if first_layer == 0:
        return "all-linear"
    blocks = base.model.layers
    if not 0 < first_layer < len(blocks):
        raise ValueError(f"first_layer must lie in 0..{len(blocks) - 1}, got {first_layer}")
    return [f"model.layers.{i}.{name}" for i in range(first_layer, len(blocks))
            for name, module in blocks[i].named_modules() if isinstance(module, torch.nn.Linear)]


def _build_data(tokenizer, rows: list, ending_every: int = 1) -> list[dict]:
    """Tokenized rows; all but one in `ending_every` stop after the first token of the closing tag."""
    data = [tokenize(tokenizer, q, a) for q, a, *_ in rows]
    if ending_every > 1:
        tail = ending_tokens(tokenizer)
        data = [row if i % ending_every == 0 else trim_ending(row, tail) for i, row in enumerate(data)]
    return data


def ending_tokens(tokenizer) -> list[int]:
    """Token ids of a row's ending: the closing "</answer>", then EOS."""
    return tokenizer("</answer>", add_special_tokens=False).input_ids + [tokenizer.eos_token_id]


def trim_ending(row: dict[str, list[int]], tail: list[int]) -> dict[str, list[int]]:
    """The row without the tokens after "</" of its ending `tail` (`ending_tokens`; unchanged if it lacks it).

    In a causal model no earlier token sees the cut ones, so every loss left in the row is unchanged.
    """
    ids = row["input_ids"]
    if len(ids) <= len(tail) or ids[-len(tail):] != tail:
        return row
    keep = len(ids) - len(tail) + 1
    return {key: value[:keep] for key, value in row.items()}


def training_rows(n_rows: int, seed: int, data: str | None = None,
                  dimensions: tuple[str, ...] = DIMENSION_MIX) -> list:
    if data:
        return load_rows(data, min_rows=1)
    valid = {q for q, *_ in load_rows(DATA_DIR / "valid.json")} if (DATA_DIR / "valid.json").exists() else set()
    return generate(n_rows, seed=1000 + seed, exclude=valid, balanced=True, dimensions=dimensions)


def train_model(output_dir: str = str(MODEL_DIR), n_rows: int = N_ROWS, epochs: float = EPOCHS,
                learning_rate: float = LEARNING_RATE, rank: int = LORA_RANK, batch_size: int = BATCH_SIZE,
                seed: int = SEED, data: str | None = None, resume: bool = False, max_steps: int = -1,
                checkpoint: str | None = None, test_after: bool = True, adam_beta2: float = ADAM_BETA2,
                first_layer: int = 0, lr_ratio: float = 1.0, dimensions: str | tuple[str, ...] = DIMENSION_MIX,
                ending_every: int = ENDING_EVERY) -> str:
    """Train a LoRA adapter and save it (atomically) to output_dir.

    Args:
        output_dir: where the adapter, its card, loss curve and tensorboard logs go.
        n_rows: generated training questions (ignored when `data` is given).
        epochs: passes over the rows.
        learning_rate: peak AdamW learning rate (linear warmup 5 %, cosine decay).
        rank: LoRA rank (alpha = 4 x rank).
        batch_size: rows per optimizer step.
        seed: seeds the data generator and the trainer.
        data: optional JSON file of [question, answer] rows instead of generated ones.
        resume: continue from the last checkpoint of an interrupted run with the same output_dir.
        max_steps: stop after this many steps (smoke runs); -1 trains the full schedule.
        checkpoint: base model (default: the embedded SmolLM2-135M-Instruct).
        test_after: benchmark on data/valid.json when done.
        adam_beta2: AdamW's second-moment decay (0.95: see ADAM_BETA2).
        first_layer: put the LoRA on the linear layers of decoder blocks first_layer.. only (0: all blocks).
        lr_ratio: LoRA+ (peft's `create_loraplus_optimizer`): the B matrices learn lr_ratio x faster than A.
        dimensions: the dimensions drawn for generated rows, comma-separated; a name given twice is drawn twice
            as often (default: DIMENSION_MIX; "" or time,length,mass,volume,speed,data: all six evenly).
        ending_every: one row in this many keeps "answer>" and EOS after "</" (1: every row; see ENDING_EVERY).
    """
    if ending_every < 1:
        raise ValueError(f"ending_every must be 1 or more, got {ending_every}")
    dimensions = comma_list(dimensions) or DIMENSIONS  # none named: all six evenly
    note = (f"rows of {os.path.relpath(data)}" if data else "generated questions (`homework/questions.py`, balanced over "
            "each drawn dimension's unit pairs, no validation question)") + ", loss on the answer only" + (
        f"; {ending_every - 1} rows in {ending_every} end at the closing tag's \"</\"" if ending_every > 1 else "")
    flags = f"--data {os.path.relpath(data)}" if data else (f"--n_rows {n_rows}" if n_rows != N_ROWS else "")
    flags += f" --dimensions {','.join(dimensions)}" if not data else ""
    flags += f" --adam_beta2 {adam_beta2:g}" + (f" --first_layer {first_layer}" if first_layer else "") + (
        f" --lr_ratio {lr_ratio:g}" if lr_ratio != 1 else "") + f" --ending_every {ending_every}"

    def build_data(tokenizer, rows):
        return _build_data(tokenizer, rows, ending_every)

    return _train(Path(output_dir), build_data, training_rows(n_rows, seed, data, dimensions), epochs, learning_rate,
                  rank, batch_size, seed, resume, max_steps, checkpoint, test_after, "sft", load_adapter, note,
                  data_flags=flags.strip(), adam_beta2=adam_beta2, pack=True, first_layer=first_layer,
                  lr_ratio=lr_ratio)


def _train(output_dir: Path, build_data, rows, epochs, learning_rate, rank, batch_size, seed, resume,
           max_steps, checkpoint, test_after, kind: str, load_fn, data_note: str,
           init_adapter: Path | None = None, data_flags: str = "", adam_beta2: float = 0.999, pack: bool = False,
           first_layer: int = 0, lr_ratio: float = 1.0) -> str:
    """Shared by the SFT and RFT trainers: build model and data, train with checkpoints, save, test.

    The RFT rounds were trained with AdamW's default beta2 and padded batches, so those stay its defaults.
    """
    from transformers import TrainingArguments, set_seed

    writable_dir(output_dir.parent)  # a read-only destination fails now, not after the training
    if not rows:
        raise DataError("no training rows")
    set_seed(seed)
    llm = BaseLLM(checkpoint)
    model = _build_model(llm, rank, init_adapter, first_layer)
    if init_adapter is not None:
        rank = model.peft_config["default"].r
    work_dir = output_dir.with_name(f".{output_dir.name}_work")
    dataset = build_data(llm.tokenizer, rows)
    args = TrainingArguments(
        output_dir=str(work_dir),
        report_to="tensorboard",
        per_device_train_batch_size=batch_size,
        num_train_epochs=epochs,
        max_steps=max_steps,
        learning_rate=learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,  # a float below 1 is a fraction of all steps
        weight_decay=0.0,
        adam_beta2=adam_beta2,
        logging_steps=5,
        save_strategy="steps",
        save_steps=50,  # a checkpoint every ~1.5 min of CPU training, so a killed run loses little
        save_total_limit=1,
        seed=seed,
        data_seed=seed,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=False,
    )
    guard = DivergenceGuard()
    optimizer = None
    if lr_ratio != 1.0:
        from peft.optimizers import create_loraplus_optimizer

        optimizer = create_loraplus_optimizer(model, torch.optim.AdamW, lr=learning_rate, loraplus_lr_ratio=lr_ratio,
                                              weight_decay=0.0)
    trainer = _trainer_class()(model=model, args=args, train_dataset=dataset, callbacks=[_guard_callback(guard)],
                               data_collator=(PackCollator if pack else PadCollator)(llm.tokenizer.pad_token_id),
                               optimizers=(optimizer, None))
    started = time.time()
    last = _last_checkpoint(work_dir) if resume else None
    if resume:
        print(f"resuming from {last.name}" if last else f"no checkpoint in {work_dir}; starting from scratch",
              file=sys.stderr)
    trainer.train(resume_from_checkpoint=str(last) if last else None)
    minutes = (time.time() - started) / 60
    if guard.reason:  # saving would replace a working adapter with a broken one; its checkpoints are no use either
        shutil.rmtree(work_dir, ignore_errors=True)
        raise TrainingDiverged(f"{kind} training diverged after {minutes:.1f} min: {guard.reason}; {output_dir} was "
                               f"left as it was. Train again with a lower --learning_rate (this run: {learning_rate:g})")
    info = {
        "kind": kind, "base_model": llm.model.config._name_or_path if checkpoint else "embedded:SmolLM2-135M-Instruct",
        "rows": len(rows), "data": data_note, "epochs": epochs, "learning_rate": learning_rate, "rank": rank, "alpha": 4 * rank,
        "batch_size": batch_size, "seed": seed, "steps": trainer.state.global_step,
        "train_minutes": round(minutes, 2), "dtype": str(llm.dtype).replace("torch.", ""),
        "device": llm.device, "threads": torch.get_num_threads(),
    }
    if adam_beta2 != 0.999:
        info["adam_beta2"] = adam_beta2
    if pack:
        info["batches"] = "rows packed end to end (PackCollator)"
    if first_layer:
        info["first_layer"] = first_layer
    if data_flags:
        info["data_flags"] = data_flags
    if init_adapter is not None:
        info["init_adapter"] = str(init_adapter)
        card = Path(init_adapter) / "README.md"
        info["init_card"] = card.read_text() if card.exists() else ""
    _save(model, trainer, work_dir, output_dir, info)
    shutil.rmtree(work_dir, ignore_errors=True)
    message = f"saved {kind} adapter to {output_dir} ({trainer.state.global_step} steps, {minutes:.1f} min)"
    _write_card(output_dir, info, None)
    if not test_after:
        return message
    del trainer, model, llm  # free the training copy before the test loads the saved adapter afresh
    gc.collect()
    summary = _test(load_fn(output_dir, checkpoint=checkpoint), "valid", None)
    _write_card(output_dir, info, summary)
    return f"{message}; {summary}"


def _write_card(output_dir: Path, info: dict, summary: str | None) -> None:
    """The adapter's model card: how it was made and, once tested, how well it does."""
    import platform

    # the options spelled out, so the command still reproduces the adapter after a default changes
    command = (f"python -m homework.{info['kind']} train --epochs {info['epochs']:g} --learning_rate "
               f"{info['learning_rate']:g} --batch_size {info['batch_size']} --seed {info['seed']}"
               + (f" --init_adapter {info['init_adapter']}" if "init_adapter" in info else f" --rank {info['rank']}")
               + (f" {info['data_flags']}" if "data_flags" in info else ""))
    lines = [
        f"# {info['kind'].upper()} LoRA adapter for {info['base_model']}", "",
        f"Made by `{command}`; the same command reproduces it up to CPU/thread nondeterminism in "
        "floating-point sums.", "",
        f"- data: {info['rows']} {info['data']}",
        f"- LoRA: rank {info['rank']}, alpha {info['alpha']}, all linear layers"
        + (f" of blocks {info['first_layer']}.." if "first_layer" in info else "") + f"; AdamW lr {info['learning_rate']}"
        + (f" (beta2 {info['adam_beta2']:g})" if "adam_beta2" in info else "") + ", "
        f"cosine, batch {info['batch_size']}" + (" (rows packed end to end)" if "batches" in info else "")
        + f", {info['epochs']} epoch(s), {info['steps']} steps",
        f"- training: {info['train_minutes']} min on {info['device']} ({info['threads']} threads, "
        f"{platform.processor() or platform.machine()}), {info['dtype']}",
    ]
    if summary:
        lines.append(f"- `python -m homework.{info['kind']} test` on data/valid.json (1000 questions, {info['dtype']}): "
                     f"`{summary}`")
    if "init_adapter" in info:
        lines[2] = f"Made by `{command}`, going on training the adapter described at the end."
        lines += ["", f"## Started from {info['init_adapter']}", ""]
        lines += ["> " + line if line else ">" for line in info["init_card"].strip().splitlines()]
    (output_dir / "README.md").write_text("\n".join(lines) + "\n")


def _last_checkpoint(work_dir: Path) -> Path | None:
    """The newest complete checkpoint; one cut short by a kill (no trainer_state.json yet) is passed over."""
    found = sorted((p for p in work_dir.glob("checkpoint-*") if p.name.split("-")[1].isdigit()),
                   key=lambda p: int(p.name.split("-")[1]))
    complete = [p for p in found if (p / "trainer_state.json").exists() and (p / "adapter_model.safetensors").exists()]
    return complete[-1] if complete else None


def _save(model, trainer, work_dir: Path, output_dir: Path, info: dict) -> None:
    """Write the adapter, prompt format, loss log and curve beside output_dir, then swap it in."""
    tmp = output_dir.with_name(output_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    history = [h for h in trainer.state.log_history if "loss" in h]
    completion = {"rft": "' ' + accepted reasoning ending in '<answer>value</answer>' + EOS"}.get(
        info["kind"], f"' <answer>{{{ANSWER_DIGITS} significant digits}}</answer>' + EOS")
    prompt = "question.strip(), plus '?' when it ends in a letter or digit (base_llm.question_prompt)"
    (tmp / FORMAT_FILE).write_text(json.dumps({"prompt": prompt, "completion": completion, **info}, indent=1) + "\n")
    (tmp / "loss.json").write_text(json.dumps([[h["step"], h["loss"]] for h in history]) + "\n")
    if (work_dir / "runs").exists():
        shutil.copytree(work_dir / "runs", tmp / "runs")
    _plot_loss(history, tmp / "loss.png", info["kind"])
    old = output_dir.with_name(output_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if output_dir.exists():
        os.replace(output_dir, old)
    os.replace(tmp, output_dir)
    shutil.rmtree(old, ignore_errors=True)


def _plot_loss(history: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot([h["step"] for h in history], [h["loss"] for h in history])
    ax.set(xlabel="step", ylabel="training loss (answer tokens)", title=f"{title} LoRA", yscale="log")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def load_adapter(model_dir: Path, command: str = TRAIN_COMMAND, checkpoint: str | None = None) -> BaseLLM:
    """BaseLLM with the trained LoRA adapter in model_dir attached, and nothing else in front of it."""
    from peft import PeftModel

    old = model_dir.with_name(model_dir.name + ".old")
    if not (model_dir / "adapter_model.safetensors").exists() and (old / "adapter_model.safetensors").exists():
        # a save was cut between its two renames: the previous adapter is whole in .old
        print(f"note: {model_dir} is missing after an interrupted save; using the previous adapter in {old}",
              file=sys.stderr)
        model_dir = old
    if not (model_dir / "adapter_model.safetensors").exists():
        raise ModelUnavailable(f"no trained adapter in {model_dir}; run: {command}")
    llm = BaseLLM(checkpoint)
    try:
        llm.model = PeftModel.from_pretrained(llm.model, model_dir).eval()
    except (RuntimeError, ValueError, KeyError) as err:
        raise ModelUnavailable(f"the adapter in {model_dir} does not fit this base model "
                               f"({str(err).splitlines()[0][:120]}); retrain with: {command}") from None
    return llm


def load() -> BaseLLM:
    return load_adapter(MODEL_DIR, TRAIN_COMMAND)


def test(split: str = "valid", max_question: int | None = None, model_dir: str = str(MODEL_DIR)) -> str:
    """Benchmark the trained adapter; the last line is `benchmark_result.accuracy=X benchmark_result.answer_rate=Y`.

    Args:
        split: data split name (data/<split>.json) or a JSON path.
        max_question: only the first N questions.
        model_dir: adapter folder to test (default: homework/sft_model).
    """
    return _test(load_adapter(Path(model_dir), TRAIN_COMMAND), split, max_question)


def _test(llm: BaseLLM, split: str, max_question: int | None) -> str:
    result = benchmark(llm, Dataset(split), max_question)
    wrong = [s for s in result.samples if not s["is_correct"]][:5]
    for s in wrong:
        print(f"wrong: {s['question']!r} -> {s['answer']} (true {s['correct_answer']:.6g})")
    print(f"{split}: {len(result.samples)} questions, dtype {str(llm.dtype).replace('torch.', '')}")
    return result.summary()


def speed(steps: int = 8, rows: int = 512) -> str:
    """Training throughput of our set-up against the course's plain one, measured in one run.

    Ours: bf16 weights where the CPU has native bf16 (the fp32 adapter under bf16 autocast), eager attention,
    rows packed end to end (`PackCollator`), 3 in 4 ending at "</" (ENDING_EVERY), loss on answer positions
    only, batch 16. Plain: fp32, gradient checkpointing, SDPA attention, batch 32, every row padded to 128 tokens.
    Also prints the floor of our step: the time its frozen matrix products need at this CPU's own rate
    (`matmul_floor`), which no faster code can beat.

    Args:
        steps: optimizer steps timed per set-up (after one warm-up step).
        rows: generated rows to draw batches from.
    """
    data = training_rows(rows, SEED)
    ours = _steps_per_second(steps, BATCH_SIZE, None, pad_to=None, checkpointing=False, data=data, floor=True)
    plain = _steps_per_second(steps, 32, torch.float32, pad_to=128, checkpointing=True, data=data)
    floor, gflops = ours[3]
    return (f"rows/s: ours {ours[0]:.1f} ({ours[1]}), plain {plain[0]:.1f} ({plain[1]}); "
            f"ratio {ours[0] / plain[0]:.2f}x; our step {BATCH_SIZE / ours[0]:.2f} s for {ours[2]:.0f} tokens, "
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


def _steps_per_second(steps, batch_size, dtype, pad_to, checkpointing, data, floor=False) -> tuple:
    """(rows/s, label, tokens a step, with `floor` also `matmul_floor` at that many tokens)."""
    llm = BaseLLM(dtype=dtype)
    model = _build_model(llm, LORA_RANK)
    if checkpointing:  # the plain set-up: also the stock attention
        model.get_base_model().set_attn_implementation("sdpa")
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    model.train()
    rows = _build_data(llm.tokenizer, data, 1 if pad_to else ENDING_EVERY)
    collate = (PadCollator if pad_to else PackCollator)(llm.tokenizer.pad_token_id)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LEARNING_RATE)
    started, tokens = None, 0
    for step in range(steps + 1):
        batch = rows[step * batch_size:(step + 1) * batch_size]
        if pad_to:
            batch = batch + [{"input_ids": [llm.tokenizer.pad_token_id] * pad_to, "attention_mask": [0] * pad_to,
                              "labels": [-100] * pad_to}]  # a full-width dummy row pads the batch to pad_to
        inputs = collate(batch)
        if pad_to:
            inputs = {k: v[:-1] for k, v in inputs.items()}
            loss = model(**inputs).loss
        else:
            loss = answer_loss(model, inputs)
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


RESUME_HINT = "interrupted; the last checkpoint is kept: add --resume to the same train command to continue"


def main() -> None:
    run_cli({"train": train_model, "test": test, "speed": speed,
             "load": lambda: str(load().model.__class__.__name__)}, RESUME_HINT)


if __name__ == "__main__":
    main()
