"""Replays a recipe: the rounds of expert iteration (or an SFT run) written as data, step by step, resumably.

    python -m homework.recipe run recipes/rft.json --plan      # every command, none run
    python -m homework.recipe run recipes/rft.json             # regenerate and sample all 22 rounds, then ship
    python -m homework.recipe run recipes/sft.json

A recipe file lists rounds. Each round names its fresh questions by their generator spec (n, seed, wide,
dimensions; regenerated into the work folder by today's generator, never committed), the datagen passes, and the
training options, with `"from_previous": true` to go on training the round before's adapter (`"train": null`:
the round only samples; `"in_steps": true`: the round first rewrites the rows' calculator-filled products in
steps, `python -m homework.calculator steps`). A recipe's `"ship"` step trains the shipped adapter: the train
command with its defaults, from the base, on the rows the rounds made; its options hold no default, only experiments. Every step is
one command; the runner records finished steps in `<work_dir>/state.json`, so a rerun after an interruption
skips them (datagen and training resume inside a step on their own). The last round's adapter and rows are
copied to the recipe's `install` paths when all rounds are done. Which rounds set each row is written
beside the rows as `<rows stem>.rounds.json` (data/rft.rounds.json for the committed rows).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from .cli import run_cli
from .data import DataError

REPO = Path(__file__).resolve().parent.parent
WORK_ROOT = REPO / "runs"  # ignored by git


def _flags(options: dict) -> list[str]:
    """CLI flags from an options dict: True is a bare switch, None is left out."""
    out = []
    for key, value in options.items():
        if value is True:
            out.append(f"--{key}")
        elif value is False:
            out += [f"--{key}", "False"]
        elif value is not None:
            out += [f"--{key}", ",".join(map(str, value)) if isinstance(value, list) else str(value)]
    return out


def plan(recipe: dict, work: Path, checkpoint: str = "") -> list[tuple[str, list[str]]]:
    """(step key, argv) for every step of the recipe, in order."""
    python = [sys.executable, "-m"]
    base = ["--checkpoint", checkpoint] if checkpoint else []
    kind = recipe.get("kind", "rft")
    rows = work / recipe.get("rows", "rft.json")
    steps: list[tuple[str, list[str]]] = []
    if recipe.get("start_rows"):
        steps.append(("start rows", ["copy", str(REPO / recipe["start_rows"]), str(rows)]))
    previous, last = None, ""
    for i, round_ in enumerate(recipe["rounds"], 1):
        name = last = round_.get("name", f"round{i}")
        if round_.get("in_steps"):  # the rows' calculator-filled products written again in steps, first
            steps.append((f"{name} in steps", python + ["homework.calculator", "steps", str(rows)]))
            steps.append((f"{name} rounds in steps", ["rounds", str(rows), name]))
        for spec in round_.get("questions", []):
            spec = dict(spec)
            path = work / "questions" / f"{spec.pop('name')}.json"
            steps.append((f"{name} questions {path.stem}", python + ["homework.questions", "make", str(path)]
                          + _flags(spec)))
        for j, pass_ in enumerate(round_.get("datagen", [])):
            pass_ = dict(pass_)
            questions = pass_.pop("questions", "train")
            if not questions.endswith(".json") and questions not in ("train", "valid", "rows"):
                questions = str(work / "questions" / f"{questions}.json")
            model = pass_.pop("model", "cot")  # cot is datagen's default; rft samples the round before's adapter
            sampler = (["--model", "rft", "--model_dir", str(previous)] if model == "rft"
                       else ["--model", model] if model != "cot" else [])
            steps.append((f"{name} datagen {j}", python + ["homework.datagen", str(rows), "--questions", questions]
                          + sampler + _flags(pass_) + base))
            steps.append((f"{name} rounds {j}", ["rounds", str(rows), name]))
        data = ["--data", str(rows)] if kind == "rft" else []
        if "reword" in round_:  # the rows asked anew in composed phrasings; the reasoning stays as sampled
            reworded = work / round_["reword"].get("output", f"{rows.stem}_reworded.json")
            steps.append((f"{name} reword", python + ["homework.questions", "reword", str(rows), str(reworded),
                                                      "--seed", str(round_["reword"].get("seed", 0))]))
            data = ["--data", str(reworded)]
        if "train" in round_ and round_["train"] is None:
            continue  # a sampling-only round: the next sampler is still the adapter of the round before
        options = dict(round_.get("train", {}))
        output = work / name / f"{kind}_model"
        start = ["--init_adapter", str(previous)] if options.pop("from_previous", False) else []
        steps.append((f"{name} train", python + [f"homework.{kind}", "train", "--output_dir", str(output)] + data
                      + start + _flags({"test_after": False, **options}) + base))
        previous = output
    if "ship" in recipe:  # the shipped adapter: the train command's defaults from the base, on the rows made above
        output = work / "ship" / f"{kind}_model"
        data = ["--data", str(rows)] if kind == "rft" else []
        steps.append(("ship train", python + [f"homework.{kind}", "train", "--output_dir", str(output)] + data
                      + _flags(recipe["ship"] or {}) + base))
        previous, last = output, "ship"
    # the key names the step whose output it installs, so a round added later installs its own output again
    for source, target in (("adapter", recipe.get("install")), ("rows", recipe.get("install_rows"))):
        if target and previous is not None:
            origin = previous if source == "adapter" else rows
            steps.append((f"install {source} after {last}", ["install", str(origin), str(REPO / target)]))
    return steps


def _note_rounds(rows: Path, round_name: str) -> None:
    """Add this round to the rounds of every row its datagen pass added or replaced, in `<rows stem>.rounds.json`."""
    sidecar = rows.with_name(rows.stem + ".rounds.json")
    snapshot = rows.with_name(rows.stem + ".snapshot.json")  # the rows as the step before left them
    side = json.loads(sidecar.read_text()) if sidecar.exists() else {
        "note": "The rounds of the recipe that added or replaced each row; the last one sampled its reasoning.",
        "rounds": {}}
    before = {r[0]: r[2] for r in json.loads(snapshot.read_text())} if snapshot.exists() else {}
    current = json.loads(rows.read_text()) if rows.exists() else []
    for question, _, reasoning, *_ in current:
        if before.get(question) != reasoning and round_name not in side["rounds"].setdefault(question, []):
            side["rounds"][question].append(round_name)
    sidecar.write_text(json.dumps(side, indent=0) + "\n")
    snapshot.write_text(json.dumps(current) + "\n")


def valid_accuracy(adapter: Path) -> float | None:
    """The data/valid.json accuracy an adapter's record.json holds (`test_after`), None without one."""
    try:
        test = json.loads((adapter / "record.json").read_text()).get("test") or ""
    except (OSError, json.JSONDecodeError):
        return None
    found = re.search(r"benchmark_result\.accuracy=([\d.]+)", test)
    return float(found[1]) if found else None


def _install(origin: Path, target: Path, allow_worse: bool = False) -> None:
    if origin.is_dir():
        new, old = valid_accuracy(origin), valid_accuracy(target)
        if old is not None and (new is None or new < old) and not allow_worse:
            raise DataError(f"refusing to install {_relative(str(origin))} over {_relative(str(target))}: valid "
                            f"accuracy {'untested' if new is None else f'{new:.3f}'} against the installed "
                            f"{old:.3f} (--allow_worse to install it anyway)")
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(origin, tmp, ignore=shutil.ignore_patterns("runs"))
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
        return
    shutil.copyfile(origin, target)
    sidecar = origin.with_name(origin.stem + ".rounds.json")
    if sidecar.exists():
        shutil.copyfile(sidecar, target.with_name(target.stem + ".rounds.json"))


def _shown(argv: list[str]) -> str:
    """A step as a user would type it: `python`, paths relative to the repository; internal steps say so."""
    if argv[0] in ("rounds", "copy", "install"):
        return f"({argv[0]}: " + " ".join(_relative(a) for a in argv[1:]) + ")"
    return shlex.join(["python" if a == sys.executable else _relative(a) for a in argv])


def _relative(arg: str) -> str:
    return arg[len(str(REPO)) + 1:] if arg.startswith(str(REPO) + "/") else arg


def run(recipe: str, work_dir: str = "", plan_only: bool = False, checkpoint: str = "",
        allow_worse: bool = False) -> str:
    """Run (or with --plan_only, print) every step of a recipe, skipping the steps already done.

    Args:
        recipe: a recipe JSON file (recipes/rft.json, recipes/sft.json).
        work_dir: folder for regenerated questions, rows, adapters and state (default: runs/<recipe name>).
        plan_only: print each step's command and whether it is done, and run nothing (alias: --plan).
        checkpoint: base model for every step (a transformers name or path; default: the embedded model).
        allow_worse: install the last adapter even when its card's data/valid.json accuracy is below the
            installed one's, or missing (refused otherwise, before anything is replaced).
    """
    path = Path(recipe)
    try:
        spec = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: cannot read the recipe ({err})") from None
    work = Path(work_dir) if work_dir else WORK_ROOT / path.stem
    state_file = work / "state.json"
    done = set(json.loads(state_file.read_text())) if state_file.exists() else set()
    steps = plan(spec, work, checkpoint)
    if plan_only:
        return "\n".join(f"# {key}{' (done)' if key in done else ''}\n{_shown(argv)}" for key, argv in steps)
    work.mkdir(parents=True, exist_ok=True)
    for key, argv in steps:
        if key in done:
            continue
        print(f"== {key}: {shlex.join(argv)}", file=sys.stderr, flush=True)
        if argv[0] == "rounds":
            _note_rounds(Path(argv[1]), argv[2])
        elif argv[0] == "copy":
            shutil.copyfile(argv[1], argv[2])
        elif argv[0] == "install":
            _install(Path(argv[1]), Path(argv[2]), allow_worse)
        else:
            if key.endswith(" train"):
                output = Path(argv[argv.index("--output_dir") + 1])
                if (output.parent / f".{output.name}_work").exists():
                    argv = argv + ["--resume"]  # an interrupted training step goes on from its checkpoint
            if subprocess.run(argv, cwd=REPO).returncode:
                raise RuntimeError(f"step {key!r} failed; fix it and run the same command again to go on")
        done.add(key)
        state_file.write_text(json.dumps(sorted(done), indent=0) + "\n")
    return f"{path.name}: {len(steps)} steps done in {work}"


def main() -> None:
    args = ["--plan_only" if a == "--plan" else a for a in sys.argv[1:]]
    sys.argv = [sys.argv[0]] + args
    run_cli({"run": run}, "interrupted; finished steps are kept: run the same command again to go on")


if __name__ == "__main__":
    main()
