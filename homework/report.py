"""Evaluate every model present and write a markdown table and charts.

    python -m homework.report                          # CoT, SFT, RFT (+ calculator) on every validation and family file
    python -m homework.report --max_question 200       # a quicker look
    python -m homework.report --models sft,rft --splits valid

Writes report/report.md (accuracy, answer rate and accuracy by dimension per model and split, with the date,
machine and dtype), report/results.json, report/accuracy_by_dimension.png and report/loss_curves.png.
"""

from __future__ import annotations

import datetime
import importlib
import json
import platform
import textwrap
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from .ask import load_named
from .cli import ModelUnavailable, comma_list, run_cli
from .data import Dataset, benchmark, reasoned_benchmark, writable_dir
from .datafiles import HELD_OUT_FILES
from .units import BY_NAME, DIMENSIONS, UnitError, parse_question

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "report"
MODELS = ("cot", "cot_calculator", "sft", "rft", "rft_calculator")
# the CoT prompt and the RFT adapter decoding with homework/calculator.py
LABELS = {"cot_calculator": "CoT + calculator", "rft_calculator": "RFT + calculator"}
SPLITS = tuple(Path(name).stem for name in HELD_OUT_FILES)  # every held-out file: the validation and family files
REASONING = ("cot", "cot_calculator", "rft", "rft_calculator")  # models that write steps: their sound accuracy too
# Rows of a split reported apart as well: data/valid_natural.json's quantities 1..10 and halves (the forms the
# SFT model is trained on; its whole quantities 11..10,000 are the reasoning models' to convert).
SUBSETS = {"valid_natural": ("valid_natural<=10", lambda question: parse_question(question).quantity <= 10)}


def dimension_of(question: str) -> str:
    try:
        return BY_NAME[parse_question(question).src].dimension
    except UnitError:
        return "unknown"


def by_dimension(samples: list[dict]) -> dict[str, float]:
    """Accuracy per dimension (time, length, mass, volume, speed, data) over benchmark samples."""
    totals: dict[str, list[int]] = {}
    for s in samples:
        hit = totals.setdefault(dimension_of(s["question"]), [0, 0])
        hit[0] += s["is_correct"]
        hit[1] += 1
    return {d: totals[d][0] / totals[d][1] for d in DIMENSIONS if d in totals}


def _load(name: str):
    if name.endswith("_calculator"):
        return importlib.import_module(f".{name.removesuffix('_calculator')}", __package__).load(calculator=True)
    return load_named(name)


def evaluate(models, splits, max_question: int | None) -> list[dict]:
    results = []
    jobs = [(m, s) for m in models for s in splits]
    bar = tqdm(jobs, desc="report", unit="eval")
    loaded: dict[str, object] = {}
    for name, split in bar:
        bar.set_postfix_str(f"{name} on {split}")
        if name not in loaded:
            try:
                loaded.clear()  # one model in memory at a time
                loaded[name] = _load(name)
            except ModelUnavailable as err:
                print(f"note: skipping {name}: {err}", file=sys.stderr)
                loaded[name] = None
        llm = loaded[name]
        if llm is None:
            continue
        started = time.time()
        result = (reasoned_benchmark if name in REASONING else benchmark)(llm, Dataset(split), max_question)
        seconds = round(time.time() - started, 1)
        results.append(_row(name, split, result.samples, str(llm.dtype).replace("torch.", ""), seconds))
        if Path(split).stem in SUBSETS:
            label, keep = SUBSETS[Path(split).stem]
            results.append(_row(name, label, [s for s in result.samples if keep(s["question"])], results[-1]["dtype"],
                                seconds))
    return results


def _row(model: str, split: str, samples: list[dict], dtype: str, seconds: float) -> dict:
    n = max(len(samples), 1)
    sound = sum(s["is_sound"] for s in samples) / n if samples and "is_sound" in samples[0] else None
    return {"model": model, "split": split, "questions": len(samples),
            "accuracy": sum(s["is_correct"] for s in samples) / n, "sound_accuracy": sound,
            "answer_rate": sum(s["answer"] == s["answer"] for s in samples) / n, "by_dimension": by_dimension(samples),
            "dtype": dtype, "seconds": seconds}


def _markdown(results: list[dict], when: str, machine: str) -> str:
    lines = [f"# Results ({when}, {machine})", "",
             "Made by `python -m homework.report`; every figure is the model's own greedy answer, "
             "checked within 5 % of the exact value; sound: right, and every step of the reasoning true "
             "(`homework.soundness`; models that write no steps have none).", "",
             "| model | split | questions | accuracy | sound | answer rate | " + " | ".join(DIMENSIONS)
             + " | dtype | seconds | date |",
             "|---|---|---|---|---|---|" + "---|" * len(DIMENSIONS) + "---|---|---|"]
    for r in results:
        dims = " | ".join(f"{r['by_dimension'][d]:.2f}" if d in r["by_dimension"] else "-" for d in DIMENSIONS)
        sound = "-" if r.get("sound_accuracy") is None else f"{r['sound_accuracy']:.3f}"
        lines.append(f"| {LABELS.get(r['model'], r['model'].upper())} | {r['split']} | {r['questions']} | {r['accuracy']:.3f} | "
                     f"{sound} | {r['answer_rate']:.3f} | {dims} | {r['dtype']} | {r['seconds']:.0f} | {r.get('date', when)} |")
    return "\n".join(lines) + "\n"


CHART_COLUMNS = 3  # panels a row: up to nine splits fit a 3 x 3 grid that reads at the README's width
TITLE_CHARS = 48  # characters a title line: about a 4.2-inch panel's width at 8 points


def _plot_dimensions(results: list[dict], path: Path) -> None:
    """One panel a split, in a grid, bars by dimension for each model, each model's accuracy under the split's
    name; one legend for all, below the panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits = list(dict.fromkeys(r["split"] for r in results)) or ["(none)"]
    models = list(dict.fromkeys(r["model"] for r in results))
    columns = min(CHART_COLUMNS, len(splits))
    rows_n = -(-len(splits) // columns)
    fig, axes = plt.subplots(rows_n, columns, figsize=(4.2 * columns, 3.0 * rows_n + 0.8), squeeze=False,
                             sharey=True)
    colors = {m: plt.get_cmap("tab10")(i) for i, m in enumerate(models)}
    width = 0.8 / max(len(models), 1)
    for ax, split in zip(axes.flat, splits):
        overall = []
        for i, model in enumerate(models):
            found = [r for r in results if r["split"] == split and r["model"] == model]
            if not found:
                continue
            r = found[0]
            xs = [j + i * width for j in range(len(DIMENSIONS))]
            ax.bar(xs, [r["by_dimension"].get(d, 0) for d in DIMENSIONS], width, color=colors[model])
            overall.append(f"{LABELS.get(model, model.upper())} {r['accuracy']:.2f}")
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(DIMENSIONS))], DIMENSIONS, fontsize=7)
        ax.set_ylim(0, 1.05)
        # wrapped to the panel's width, so a title never runs into its neighbour's
        ax.set_title(f"{split}\n" + textwrap.fill(", ".join(overall), TITLE_CHARS), fontsize=8)
    for ax in axes.flat[len(splits):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy", fontsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[m]) for m in models]
    fig.legend(handles, [LABELS.get(m, m.upper()) for m in models], loc="lower center", ncol=len(models),
               fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.5 / (3.0 * rows_n + 0.8), 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_losses(path: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    shown = []
    for name in ("sft", "rft"):
        log = Path(__file__).resolve().parent / f"{name}_model" / "loss.json"
        if not log.exists():
            continue
        points = json.loads(log.read_text())
        ax.plot([p[0] for p in points], [p[1] for p in points], label=name.upper())
        shown.append(name)
    ax.set(xlabel="optimizer step", ylabel="training loss", yscale="log", title="training loss")
    if shown:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return shown


def _merge(old: dict, new: list[dict]) -> list[dict]:
    """The new rows, plus the old rows of (model, split) pairs not evaluated now, each with its own date."""
    done = {(r["model"], r["split"]) for r in new}
    kept = [{**r, "date": r.get("date", old["date"])} for r in old["results"] if (r["model"], r["split"]) not in done]
    order = {m: i for i, m in enumerate(MODELS)}
    return sorted(kept + new, key=lambda r: order.get(r["model"], len(order)))


def report(models: str = ",".join(MODELS), splits: str = ",".join(SPLITS), max_question: int | None = None,
           out: str = str(OUT_DIR), update: bool = False) -> str:
    """Benchmark the models present and write report.md, results.json and two PNG charts.

    Args:
        models: comma-separated subset of cot,sft,rft (missing adapters are skipped with a note).
        splits: comma-separated data splits or JSON paths.
        max_question: only the first N questions of each split (default: all).
        out: output folder.
        update: keep the rows of out/results.json for the models and splits not evaluated now (same
            machine only), e.g. `--models rft --update` after retraining RFT; every row carries its date.
    """
    names = list(comma_list(models))
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
    split_names = list(comma_list(splits))
    for split in split_names:
        Dataset(split)  # a missing or malformed file fails now, not after an hour of evaluation
    out_dir = writable_dir(out)
    when = datetime.date.today().isoformat()
    machine = (f"{platform.machine()} {'GPU ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU'}, "
               f"{torch.get_num_threads()} threads")
    previous = out_dir / "results.json"
    old = json.loads(previous.read_text()) if update and previous.exists() else None
    if old is not None and old.get("machine") != machine:  # checked before an hour of evaluation, not after
        raise ValueError(f"the results to update were made on {old.get('machine')!r}, not {machine!r}; "
                         "rerun without --update")
    results = [{**r, "date": when} for r in evaluate(names, split_names, max_question)]
    if old is not None:
        results = _merge(old, results)
    (out_dir / "results.json").write_text(json.dumps({"date": when, "machine": machine, "results": results}, indent=1) + "\n")
    (out_dir / "report.md").write_text(_markdown(results, when, machine))
    _plot_dimensions(results, out_dir / "accuracy_by_dimension.png")
    _plot_losses(out_dir / "loss_curves.png")
    return (f"wrote {out_dir}/report.md, results.json, accuracy_by_dimension.png and loss_curves.png "
            f"({len(results)} evaluations)")


def main() -> None:
    run_cli(report)


if __name__ == "__main__":
    main()
