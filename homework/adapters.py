"""An adapter folder on disk, and the end of a train run: the atomic save (`save_adapter`), the loader that
attaches an adapter to its base (`load_adapter`), and `finish`, which tests a new adapter and says what it
replaced. `homework/training.py` trains; the records and cards are `homework/records.py`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

from . import distributed, formats
from .base_llm import BaseLLM
from .cli import ModelUnavailable
from .records import plot_loss, portable_base, read_record, sha256, write_record


def finish(record: dict, output_dir: str, load, previous: dict, test_after: bool = True) -> str | None:
    """A recipe's last step: on the main process only, test the new adapter on data/valid.json, write the figure
    into its card, and say what it replaced (`previous`: the record read from output_dir before training)."""
    if not distributed.is_main():  # the main process saved; it alone reports and tests
        return None
    message = (f"saved {record['kind']} adapter to {output_dir} ({record['run']['steps']} steps, "
               f"{record['run']['train_minutes']} min)")
    if record.pop("unchanged", False):
        return (f"{record['kind']} adapter in {output_dir}: this run ({record['run']['steps']} steps, "
                f"{record['run']['train_minutes']} min) made its very bytes, so its files were left as they are")
    if test_after:
        import gc

        from .data import evaluate

        gc.collect()
        record["test"] = evaluate(load(output_dir), "valid")
        write_record(Path(output_dir), record)
        message += f"; {record['test']}"
    return message + "\n" + replaced_line(previous, record)


def replaced_line(previous: dict, record: dict) -> str:
    """One line: the new adapter's figure on data/valid.json beside that of the adapter it replaced."""
    new = _accuracy(record.get("test")) or "not tested"
    if not previous:
        return f"replaced: nothing (new {new})"
    return f"replaced: an adapter with valid accuracy {_accuracy(previous.get('test')) or 'never recorded'} (new {new})"


def _accuracy(summary: str | None) -> str:
    found = re.search(r"accuracy=([\d.]+)", summary or "")
    return found.group(1) if found else ""


def save_adapter(model, output_dir: Path, record: dict, history: list, runs: Path | None = None) -> bool:
    """Write the adapter, its record, card, loss log and curve beside output_dir, then swap it in.

    A run that made the very bytes of the adapter already in output_dir (a reproduction) changes nothing there,
    not even the card's minutes, and returns False; True when output_dir was replaced."""
    tmp = output_dir.with_name(output_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    weights = "adapter_model.safetensors"
    if (output_dir / weights).exists() and sha256(tmp / weights) == sha256(output_dir / weights):
        shutil.rmtree(tmp)
        return False
    portable_base(tmp, record["base_model"])
    (tmp / "loss.json").write_text(json.dumps(history) + "\n")
    if runs is not None and runs.exists():
        shutil.copytree(runs, tmp / "runs")
    plot_loss(history, tmp / "loss.png", record["kind"])
    write_record(tmp, record)
    old = output_dir.with_name(output_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if output_dir.exists():
        os.replace(output_dir, old)
    os.replace(tmp, output_dir)
    shutil.rmtree(old, ignore_errors=True)
    return True


def load_adapter(model_dir: Path, command: str, checkpoint: str | None = None) -> BaseLLM:
    """BaseLLM with the trained LoRA adapter in model_dir attached, and nothing else in front of it.

    The base model comes from the adapter's record (`checkpoint` overrides it); an adapter whose record names
    a prompt or completion format this code does not know is refused, since its prompts would not match.
    """
    from peft import PeftModel

    model_dir = Path(model_dir)
    old = model_dir.with_name(model_dir.name + ".old")
    if not (model_dir / "adapter_model.safetensors").exists() and (old / "adapter_model.safetensors").exists():
        # a save was cut between its two renames: the previous adapter is whole in .old
        print(f"note: {model_dir} is missing after an interrupted save; using the previous adapter in {old}",
              file=sys.stderr)
        model_dir = old
    if not (model_dir / "adapter_model.safetensors").exists():
        raise ModelUnavailable(f"no trained adapter in {model_dir}; run: {command}")
    record = read_record(model_dir)
    for part, name in record.get("format", {}).items():
        if name not in formats.FORMATS.get(part, {}):
            raise ModelUnavailable(f"the adapter in {model_dir} was trained with {part} format {name!r}, which this "
                                   f"code does not render; retrain with: {command}")
    llm = BaseLLM(checkpoint or record.get("base_model"))
    llm.min_new_tokens = 1  # a trained format ends itself (`</answer>`, EOS); the recipe sets max_new_tokens
    try:
        llm.model = PeftModel.from_pretrained(llm.model, model_dir).eval()
    except (RuntimeError, ValueError, KeyError) as err:
        raise ModelUnavailable(f"the adapter in {model_dir} does not fit this base model "
                               f"({str(err).splitlines()[0][:120]}); retrain with: {command}") from None
    return llm
