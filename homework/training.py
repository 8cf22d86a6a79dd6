"""The LoRA trainer shared by the SFT and RFT recipes: config in, adapter and record out.

    python -m homework.sft train     # a recipe built on this module (see also homework/rft.py)

Steps, each a function: `build_model` (base + LoRA, set up for a fast CPU step), the collators and
`answer_loss` (loss on the completion tokens only), `train` (HF Trainer with checkpoints, resume and the
divergence guard), which saves through `adapters.save_adapter` (atomic swap of the adapter folder). Every adapter folder
holds `record.json`: the full config (every field, defaults included), the data with the hash of its rows,
the parent adapter by hash and the formats it was trained with. The card (`README.md`) and its reproduce
command are written from that record.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import torch

from . import distributed, lora_step
from .adapters import save_adapter
from .batches import PackCollator, PadCollator, packed_mask
from .base_llm import BaseLLM
from .checkpoints import DEFAULT_CHECKPOINT, cpu_has_bf16
from .data import DataError, writable_dir
from .configs import TrainConfig
from .records import PATH_FIELDS, parent_of, portable

CHECKPOINT_EVERY = 50  # steps: a checkpoint every ~1 min of CPU training, so a killed run loses little
LOG_EVERY = 5  # steps between logged losses (the divergence guard reads these)


def mixed_precision(base, device: str) -> bool:
    return base.dtype == torch.bfloat16 and device in ("cpu", "cuda")


def answer_loss(model, inputs: dict, tokens=None) -> torch.Tensor:
    """Cross-entropy over labelled tokens, running the LM head only where a label exists.

    The mean over this batch's labelled tokens, or with `tokens` their sum divided by it (the labelled tokens
    of the whole optimizer step, over every accumulation pass and process: see `_trainer`).

    The head (576 x 49152) is ~20 % of the 135M model's compute; prompts carry no labels, so skipping
    their logits trains the same objective faster than the stock loss over every position. With bf16 base
    weights the forward runs under bf16 autocast (see `build_model`). Takes padded and packed batches.
    """
    base = model.get_base_model()
    device = inputs["input_ids"].device.type
    mixed = mixed_precision(base, device)
    if "segments" in inputs:
        dtype = torch.bfloat16 if mixed else base.dtype
        extra = {"attention_mask": packed_mask(inputs["segments"], dtype), "position_ids": inputs["position_ids"]}
    else:
        extra = {"attention_mask": inputs["attention_mask"]}
    with torch.autocast(device, dtype=torch.bfloat16, enabled=mixed):
        hidden = base.model(input_ids=inputs["input_ids"], **extra).last_hidden_state
        targets = inputs["labels"][:, 1:]
        keep = targets != -100
        logits = base.lm_head(hidden[:, :-1][keep])
    if tokens is None:
        return torch.nn.functional.cross_entropy(logits.float(), targets[keep])
    return torch.nn.functional.cross_entropy(logits.float(), targets[keep], reduction="sum") / tokens


class TrainingDiverged(ValueError):
    """The training loss blew up; a ValueError so the CLI reports it in one line (the fix is a flag)."""


class DivergenceGuard:
    """Watches the logged training loss and calls a run diverged when it stays far above its best.

    `patience` logged losses in a row above `factor` x the lowest so far (or not finite) is divergence: a
    diverged run climbs far above its best and stays there, a healthy one never did (docs/decisions.md,
    "DivergenceGuard"). A loss under `floor` is never a strike: near the end of a long run the loss is tiny
    and noisy.
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


def build_model(llm: BaseLLM, rank: int, alpha: int | None = None, init_adapter: str | Path | None = None,
                fused: bool = True):
    """The base model with a trainable LoRA adapter on every linear layer, set up for a fast step here.

    Two settings, each faster on the 2-core CPU (`python -m homework.sft speed` times the whole set-up against
    the plain one; docs/decisions.md, "build_model"): eager attention instead of SDPA, whose CPU backward is
    slow on these short rows; and the adapter kept in fp32 but run in bf16 under autocast, instead of peft
    casting every activation to fp32 in front of each of the 210 adapted layers. The saved adapter is fp32
    either way. With `fused` each adapted layer trains as one autograd node (`homework.lora_step`; `sft speed`
    times it against peft's).
    """
    from peft import LoraConfig, PeftModel, get_peft_model
    from peft.tuners.tuners_utils import BaseTunerLayer

    if llm.device == "cpu":
        llm.model.set_attn_implementation("eager")
    if init_adapter:
        config = LoraConfig.from_pretrained(init_adapter)
    else:
        config = LoraConfig(r=rank, lora_alpha=alpha or 4 * rank, lora_dropout=0.0, bias="none",
                            task_type="CAUSAL_LM", target_modules="all-linear")
    if fused:
        lora_step.register(config)
    if init_adapter:
        model = PeftModel.from_pretrained(llm.model, init_adapter, is_trainable=True, config=config)
        # the record's portable name is no folder peft can read while it checkpoints; the save writes it back
        model.peft_config["default"].base_model_name_or_path = llm.model.config._name_or_path
    else:
        model = get_peft_model(llm.model, config)
    if mixed_precision(llm.model, llm.device):
        for module in model.modules():
            if isinstance(module, BaseTunerLayer):
                module.cast_input_dtype_enabled = False  # autocast runs the fp32 adapter in bf16 instead
    return model


def _trainer(model, args, dataset, collator, guard: DivergenceGuard):
    from transformers import Trainer, TrainerCallback

    class AnswerLossTrainer(Trainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.through_ddp = distributed.LossThroughDDP(answer_loss)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            # The Trainer counts the step's labelled tokens over every accumulation pass and process, and then
            # does not divide the loss by the passes: each pass's sum over that count makes the step's gradient
            # the mean over all its tokens, as one pass over the whole batch on one process would.
            if isinstance(model, torch.nn.parallel.DistributedDataParallel):  # under `accelerate launch`
                # DDP averages the processes' gradients, where the token mean wants their sum
                loss = self.through_ddp(model, inputs, num_items_in_batch)
                return loss if num_items_in_batch is None else loss * self.accelerator.num_processes
            return answer_loss(model, inputs, num_items_in_batch)

    class StopOnDivergence(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs and guard.update(state.global_step, float(logs["loss"])):
                control.should_training_stop = True

    return AnswerLossTrainer(model=model, args=args, train_dataset=dataset, data_collator=collator,
                             callbacks=[StopOnDivergence()])


def work_dir_of(output_dir: Path) -> Path:
    return output_dir.with_name(f".{output_dir.name}_work")  # checkpoints for --resume; never shipped


def last_checkpoint(work_dir: Path) -> Path | None:
    """The newest complete checkpoint; one cut short by a kill (no trainer_state.json yet) is passed over."""
    found = sorted((p for p in work_dir.glob("checkpoint-*") if p.name.split("-")[1].isdigit()),
                   key=lambda p: int(p.name.split("-")[1]))
    complete = [p for p in found if (p / "trainer_state.json").exists() and (p / "adapter_model.safetensors").exists()]
    return complete[-1] if complete else None


def train(config: TrainConfig, kind: str, encode, data: dict, completion: str, resume: bool = False) -> dict:
    """Train, save the adapter atomically to config.output_dir, and return its record.

    `encode(tokenizer)` gives the tokenized rows (`formats.encode`); `data` describes them for the record
    (source, rows, hash); `completion` names the completion format (`formats.FORMATS`). Under `accelerate
    launch` every process runs this: HF Trainer makes it data parallel, each process takes its share of the
    configured batch, and only the main process writes the adapter, its record and its checkpoints.
    """
    from transformers import TrainingArguments, set_seed

    config = dataclasses.replace(config, checkpoint=config.checkpoint or os.environ.get("HOMEWORK_CHECKPOINT")
                                 or DEFAULT_CHECKPOINT)
    output_dir = Path(config.output_dir)
    writable_dir(output_dir.parent)  # a read-only destination fails now, not after the training
    _, processes = distributed.world()
    per_device, accumulation = distributed.batch_plan(config.batch_size, processes, config.device_batch)
    distributed.warn_single_cpu_launch()
    distributed.use_local_device()  # HF Trainer joins the process group itself
    set_seed(config.seed)
    llm = BaseLLM(config.checkpoint)
    encoded = encode(llm.tokenizer)
    if not encoded:
        raise DataError("no training rows")
    model = build_model(llm, config.rank, config.alpha, config.init_adapter or None)
    work_dir = work_dir_of(output_dir)
    args = TrainingArguments(
        output_dir=str(work_dir), report_to="tensorboard", per_device_train_batch_size=per_device,
        gradient_accumulation_steps=accumulation, average_tokens_across_devices=True,  # see `_trainer`
        num_train_epochs=config.epochs, max_steps=config.max_steps, learning_rate=config.learning_rate,
        lr_scheduler_type="cosine", warmup_steps=0.05,  # a float below 1 is a fraction of all steps
        weight_decay=0.0, adam_beta2=config.adam_beta2, logging_steps=LOG_EVERY, save_strategy="steps",
        save_steps=CHECKPOINT_EVERY, save_total_limit=1, seed=config.seed, data_seed=config.seed,
        dataloader_num_workers=0, remove_unused_columns=False, disable_tqdm=False,
        dataloader_pin_memory=llm.device == "cuda",  # pinning means nothing without an accelerator, and warns
        # accelerate makes processes without a GPU one data-parallel group (gloo) only when told they are CPU ones
        use_cpu=processes > 1 and llm.device == "cpu",
    )
    guard = DivergenceGuard()
    collator = (PackCollator if config.pack else PadCollator)(llm.tokenizer.pad_token_id)
    trainer = _trainer(model, args, encoded, collator, guard)
    started = time.time()
    last = last_checkpoint(work_dir) if resume else None
    if resume:
        print(f"resuming from {last.name}" if last else f"no checkpoint in {work_dir}; starting from scratch",
              file=sys.stderr)
    trainer.train(resume_from_checkpoint=str(last) if last else None)
    minutes = (time.time() - started) / 60
    devices = distributed.gather(f"{llm.device} ({distributed.device_name()})" if llm.device == "cuda" else llm.device)
    if processes > 1 and len(set(distributed.gather(distributed.fingerprint(model)))) > 1:
        raise RuntimeError("the processes ended with different adapters: their gradients were not averaged")
    if guard.reason:  # saving would replace a working adapter with a broken one; its checkpoints are no use either
        if distributed.is_main():
            shutil.rmtree(work_dir, ignore_errors=True)
        raise TrainingDiverged(f"{kind} training diverged after {minutes:.1f} min: {guard.reason}; {output_dir} was "
                               f"left as it was. Train again with a lower --learning_rate (this run: "
                               f"{config.learning_rate:g})")
    if config.init_adapter:  # the started adapter's rank and alpha are what was trained
        lora = model.peft_config["default"]
        config = dataclasses.replace(config, rank=lora.r, alpha_per_rank=lora.lora_alpha // lora.r)
    record = {
        "kind": kind, "base_model": config.checkpoint,
        "format": {"prompt": "question", "completion": completion},
        "config": {k: portable(v) if k in PATH_FIELDS else v for k, v in dataclasses.asdict(config).items()},
        "data": data, "parent": parent_of(config.init_adapter),
        "run": {"steps": trainer.state.global_step, "train_minutes": round(minutes, 2),
                "dtype": str(llm.dtype).replace("torch.", ""), "device": llm.device,
                "threads": torch.get_num_threads(),  # per process
                "machine": platform.machine(), "cpu_bf16": cpu_has_bf16(),  # recorded here, never when a card is rendered
                "processes": processes, "devices": devices, "device_batch": per_device, "accumulation": accumulation},
    }
    history = [[h["step"], h["loss"]] for h in trainer.state.log_history if "loss" in h]
    if distributed.is_main():
        if not save_adapter(model, output_dir, record, history, work_dir / "runs"):
            record["unchanged"] = True  # the same bytes as before: `adapters.finish` says so and writes nothing
        shutil.rmtree(work_dir, ignore_errors=True)
    distributed.leave()
    return record


# Options that say how to run, not what to train: `config_command` adds them after the config's fields.
RUN_OPTIONS = (
    ("resume", False, "continue from the last checkpoint of an interrupted run with the same output_dir."),
    ("test_after", True, "benchmark on data/valid.json when done, and write the figure into the card."),
    ("overwrite", False, "replace the committed adapter in output_dir with a run that is not its recipe."),
)
# Fields that say where or how to run, not what is trained: a run that differs from its recipe only in these
# still makes the committed adapter.
HOW_TO_RUN = ("output_dir", "device_batch", "checkpoint")


def check_output(config: TrainConfig, overwrite: bool = False) -> None:
    """Refuse, before any work, to replace a committed adapter (pinned in manifest.json) with a run that is not
    its recipe: a mistaken option (--max_steps 10, --n_rows 64) must not cost the shipped model."""
    from . import manifest

    if overwrite or not manifest.pinned(Path(config.output_dir) / "adapter_model.safetensors"):
        return
    recipe = type(config)()
    changed = [f.name for f in dataclasses.fields(config) if f.name not in HOW_TO_RUN
               and _plain(getattr(config, f.name)) != _plain(getattr(recipe, f.name))]
    if changed:
        raise DataError(f"refusing to replace {manifest.name(config.output_dir)}, the committed adapter, with a run "
                        f"that is not its recipe (--{changed[0]}): train into another --output_dir, or add "
                        "--overwrite")


def _plain(value):
    return list(value) if isinstance(value, (list, tuple)) else value
RESUME_HINT = "interrupted; the last checkpoint is kept: add --resume to the same train command to continue"
