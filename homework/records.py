"""Adapter records: what `homework.training` writes beside each adapter, and the card made from it.

    python -m homework.records show homework/rft_model    # the record's reproduce command and lineage
    python -m homework.records check                      # every committed file against manifest.json

`record.json` holds the kind, the portable base-model name, the prompt and completion formats (names in
`formats.FORMATS`), the full config (every field, defaults included), the data (source, rows, sha256), the
parent adapter by the sha256 of its weights, and the run (steps, minutes, device, dtype). The card
(`README.md`) and its reproduce command are written from it and nothing else.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

RECORD_FILE = "record.json"
REPO = Path(__file__).resolve().parent.parent
PATH_FIELDS = ("output_dir", "data", "init_adapter")  # recorded relative to the repository when inside it
# Config fields that say where or how to run, not what is trained: the reproduce command leaves them out.
RUN_FIELDS = ("output_dir", "device_batch")


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def portable(path: str) -> str:
    """A path as a record keeps it: relative to the repository when inside it, so no record names this machine."""
    if not path:
        return path
    resolved = Path(path).resolve()
    return str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else str(path)


def parent_of(init_adapter: str) -> dict | None:
    """The adapter a run went on training, by the hash of its weights, with its command and `lineage`: every
    adapter of the chain up to and including it, oldest first, so rounds read as one flat list, not a nest."""
    if not init_adapter:
        return None
    parent = {"path": portable(init_adapter), "sha256": sha256(Path(init_adapter) / "adapter_model.safetensors")}
    record = Path(init_adapter) / RECORD_FILE
    if record.exists():
        made = json.loads(record.read_text())
        grand = made.get("parent") or {}
        lineage = list(grand.get("lineage", []))
        if grand.get("sha256") and all(p["sha256"] != grand["sha256"] for p in lineage):
            lineage.append({"sha256": grand["sha256"], "command": grand.get("command")})
        parent.update(command=reproduce_command(made))
        parent["lineage"] = lineage + [{"sha256": parent["sha256"], "command": parent["command"]}]
    return parent


def portable_base(adapter_dir: Path, base_model: str) -> None:
    """peft writes the base's folder (a path in this user's cache); the record's portable name goes there, and
    the target modules in a fixed order, so a run that makes the same adapter leaves the same file."""
    path = adapter_dir / "adapter_config.json"
    config = json.loads(path.read_text())
    config["base_model_name_or_path"] = base_model
    if isinstance(config.get("target_modules"), list):  # peft writes a set's order, different each run
        config["target_modules"] = sorted(config["target_modules"])
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def write_record(adapter_dir: Path, record: dict) -> None:
    """record.json and the card written from it."""
    (adapter_dir / RECORD_FILE).write_text(json.dumps(record, indent=1) + "\n")
    (adapter_dir / "README.md").write_text(card(record))


def reproduce_command(record: dict) -> str:
    """The train command with every config field spelled out, so it reproduces the adapter after a default changes."""
    options = [f"--{key} {_cli_value(value)}" for key, value in record["config"].items()
               if key not in RUN_FIELDS and value not in ("", None)]
    return f"python -m homework.{record['kind']} train " + " ".join(options)


def short_command(record: dict) -> str:
    """The train command with only the options whose value differs from the recipe's default in this code:
    `python -m homework.sft train` itself for an adapter made by the shipped recipe."""
    import dataclasses

    from . import configs  # the recipes' defaults, without the trainers (and torch) behind them

    config_cls = getattr(configs, f"{record['kind'].upper()}Config")
    defaults = {f.name: f.default for f in dataclasses.fields(config_cls)}
    from .checkpoints import DEFAULT_CHECKPOINT

    defaults["checkpoint"] = DEFAULT_CHECKPOINT
    options = []
    for key, value in record["config"].items():
        default = defaults.get(key)
        default = portable(default) if key in PATH_FIELDS else default
        if key in RUN_FIELDS or value in ("", None) and default in ("", None):
            continue
        if _cli_value(value) != _cli_value(default):
            options.append(f"--{key} {_cli_value(value)}")
    return " ".join([f"python -m homework.{record['kind']} train", *options])


def _cli_value(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def card(record: dict) -> str:
    """The adapter's model card: how it was made and, once tested, how well it does."""
    c, run, data = record["config"], record["run"], record["data"]
    lines = [f"# {record['kind'].upper()} LoRA adapter for {record['base_model']}", "",
             f"Made by `{short_command(record)}`" + (", going on training its parent (below)" if record["parent"]
                                                     else ", in one run from the base model")
             + ", from a checkout of this repository. Every setting spelled out, should a default change: "
             f"`{reproduce_command(record)}`. Every setting is also in `record.json`.", "",
             f"- data: {data.get('rows')} {data['description']}" + (f" (sha256 {data['sha256'][:12]})"
                                                                     if data.get("sha256") else ""),
             f"- LoRA: rank {c['rank']}, alpha {c['rank'] * c['alpha_per_rank']}, all linear layers; AdamW lr "
             f"{c['learning_rate']:g} (beta2 {c['adam_beta2']:g}), cosine, batch {c['batch_size']}"
             + (" (rows packed end to end)" if c.get("pack") else "") + f", {c['epochs']:g} epoch(s), "
             f"{run['steps']} steps",
             f"- training: {run['train_minutes']} min on {_where(run)}, {run['dtype']}"]
    if record.get("test"):
        lines.append(f"- `python -m homework.{record['kind']} test` on data/valid.json (1000 questions, "
                     f"{run['dtype']}" + (", without the calculator" if data.get("calculator_filled") else "")
                     + f"): `{record['test']}`")
    if record.get("parent"):
        p = record["parent"]
        lines += ["", "## Parent", "", f"Trained on from the adapter with sha256 `{p['sha256']}`"
                  + (f", made by `{p['command']}`" if p.get("command") else "") + "."]
        lines += [f"{p['note']}"] if p.get("note") else []
    return "\n".join(lines) + "\n"


def _where(run: dict) -> str:
    """What trained: one device, or the processes of a data-parallel run (`accelerate launch`) and their devices."""

    machine = (run.get("machine") or "machine not recorded") + (", native bf16" if run.get("cpu_bf16") else "")
    passes = f" in {run['accumulation']} passes of {run['device_batch']} rows" if run.get("accumulation", 1) > 1 else ""
    if run.get("processes", 1) == 1:
        return f"{run['device']} ({run['threads']} threads, {machine}){passes}"
    devices = run.get("devices") or [run["device"]] * run["processes"]
    named = ", ".join(f"{devices.count(d)} x {d}" for d in dict.fromkeys(devices))
    share = run["device_batch"] * run.get("accumulation", 1)
    return (f"{run['processes']} data-parallel processes ({named}; {run['threads']} threads each, {machine}), "
            f"{share} rows of each step per process{passes}")


def read_record(model_dir: Path) -> dict:
    path = Path(model_dir) / RECORD_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def plot_loss(history: list, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot([h[0] for h in history], [h[1] for h in history])
    ax.set(xlabel="step", ylabel="training loss (completion tokens)", title=f"{title} LoRA", yscale="log")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)




def _read(model_dir: str) -> dict:
    record = read_record(Path(model_dir))
    if not record:
        raise ValueError(f"{model_dir}: no {RECORD_FILE}")
    return record


def show(model_dir: str) -> str:
    """Print an adapter's reproduce command, its data, its test figure and its parents by hash.

    Args:
        model_dir: an adapter folder (homework/sft_model, homework/rft_model).
    """
    record = _read(model_dir)
    data = record["data"]
    lines = [short_command(record), f"every setting: {reproduce_command(record)}",
             f"data: {data.get('source')} ({data.get('rows')} rows" + (f", sha256 {data['sha256'][:12]}"
                                                                      if data.get("sha256") else "") + ")",
             f"trained: {record['run']['train_minutes']} min, {record['run']['steps']} steps on {_where(record['run'])}, "
             f"{record['run']['dtype']}",
             f"test: {record.get('test') or 'not tested'}"]
    parent = record.get("parent") or {}
    lines += [f"parent: {parent['sha256']}"] if parent else ["parent: none (trained from the base model)"]
    lines += [f"  {p['sha256']}: {p.get('command') or 'command not recorded'}" for p in parent.get("lineage", [])]
    return "\n".join(lines)


def render(model_dir: str) -> str:
    """Write an adapter's card (README.md) anew from its record.json, which is left as it is.

    Args:
        model_dir: an adapter folder.
    """
    record = _read(model_dir)
    (Path(model_dir) / "README.md").write_text(card(record))
    return f"wrote {Path(model_dir) / 'README.md'} from its {RECORD_FILE}"


def check() -> str:
    """Verify every file manifest.json pins (data files, adapter weights) against its sha256: one line per
    mismatch and exit status 1, else one line and 0."""
    from . import manifest

    bad = manifest.mismatches()
    if bad:
        print("\n".join(bad))
        raise SystemExit(1)
    return f"{len(manifest.entries())} pinned files match manifest.json"


def pin(*paths: str, command: str) -> str:
    """Pin files in manifest.json with their sha256, the command that made them and the current commit.

    Args:
        paths: the files (e.g. data/valid_natural.json homework/sft_model/adapter_model.safetensors).
        command: the command that made them.
    """
    from . import manifest

    if not paths:
        raise ValueError("name the files to pin")
    return "pinned " + ", ".join(manifest.pin(list(paths), command))


if __name__ == "__main__":
    from .cli import run_cli

    run_cli({"show": show, "render": render, "check": check, "pin": pin})
