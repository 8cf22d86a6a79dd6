"""Recipes: the RFT rounds as data, planned without running, and a two-round run on the tiny model."""

import json
from pathlib import Path

import pytest

from homework import recipe, records

REPO = Path(__file__).resolve().parent.parent


def test_rft_plan_chains_each_round_to_the_one_before():
    steps = recipe.plan(json.loads((REPO / "recipes" / "rft.json").read_text()), Path("/w"))
    trains = {key.split()[0]: argv for key, argv in steps if key.endswith(" train") and key.startswith("round")}
    assert list(trains) == [f"round{i}" for i in range(1, 21)] + ["round22"], "round 21 only samples"
    for name, argv in trains.items():
        i = int(name[len("round"):])
        assert argv[argv.index("--output_dir") + 1] == f"/w/{name}/rft_model"
        started = argv[argv.index("--init_adapter") + 1] if "--init_adapter" in argv else None
        before = "round20" if i == 22 else f"round{i - 1}"
        assert started == (f"/w/{before}/rft_model" if i >= 10 else None), name  # 10 on go on from the last
        assert argv[argv.index("--test_after") + 1] == "False"
    assert trains["round20"][trains["round20"].index("--data") + 1] == "/w/rft_reworded.json", "reworded rows"
    calculated = [argv for key, argv in steps if key.startswith("round22 datagen")]
    assert len(calculated) == 2 and all("--calculator" in argv for argv in calculated)
    assert calculated[1][calculated[1].index("--questions") + 1] == "rows" and "--redo" in calculated[1]
    assert not any(key == "round21 train" for key, _ in steps), "round 21 only samples"
    ship = dict(steps)["ship train"]
    assert ship[2:6] == ["homework.rft", "train", "--output_dir", "/w/ship/rft_model"] and "--init_adapter" not in ship
    assert ship[6:] == ["--data", "/w/rft.json"], "the shipped adapter: the defaults, from the base, on all rows"
    installed = dict(steps)["install adapter after ship"]
    assert installed == ["install", "/w/ship/rft_model", str(REPO / "homework" / "rft_model")]
    samplers = [argv for key, argv in steps if " datagen " in key]
    assert "--model" not in samplers[0], "round 1 samples the CoT model"
    # a pass samples either the CoT model (no --model) or an adapter of an earlier round, never data/ or homework/
    adapters = [argv[argv.index("--model_dir") + 1] for argv in samplers[1:] if "--model_dir" in argv]
    assert len(adapters) >= 20 and all(path.startswith("/w/round") for path in adapters)
    assert sum("--model" not in argv for argv in samplers) >= 2, "round 21's second pass samples the CoT model"
    # every question file is regenerated in the work folder before a pass reads it; none comes from data/
    made = {argv[4] for key, argv in steps if " questions " in key}
    read = {argv[argv.index("--questions") + 1] for argv in samplers} - {"train", "rows"}
    assert read <= made and all(p.startswith("/w/questions/") for p in made)
    assert [key for key, _ in steps[-2:]] == ["install adapter after ship", "install rows after ship"]


def test_sft_recipe_is_the_bare_train_command():
    """recipes/sft.json holds no default: its one step is `python -m homework.sft train`, then the install."""
    steps = recipe.plan(json.loads((REPO / "recipes" / "sft.json").read_text()), Path("/w"))
    assert [key for key, _ in steps] == ["ship train", "install adapter after ship"]
    assert steps[0][1][2:] == ["homework.sft", "train", "--output_dir", "/w/ship/sft_model"]


def test_plan_only_prints_every_command_and_runs_none(tmp_path):
    out = recipe.run(str(REPO / "recipes" / "rft.json"), work_dir=str(tmp_path / "w"), plan_only=True)
    assert out.count("python -m homework.rft train") == 22 and out.count("python -m homework.questions make") == 26
    assert not (tmp_path / "w").exists(), "planning must not create or run anything"


def test_a_round_added_after_the_install_installs_its_rows_again():
    """The install step is keyed by the round it installs: state.json's "done" for round 1's install must not
    skip installing round 2's rows."""
    one = {"kind": "rft", "rows": "r.json", "install_rows": "data/x.json",
           "rounds": [{"name": "a", "datagen": [{"questions": "train"}], "train": {}}]}
    two = {**one, "rounds": one["rounds"] + [{"name": "b", "datagen": [{"questions": "train", "model": "rft"}],
                                              "train": None}]}
    first, second = (dict(recipe.plan(r, Path("/w"))) for r in (one, two))
    assert [k for k in first if k.startswith("install")] == ["install rows after a"]
    assert [k for k in second if k.startswith("install")] == ["install rows after b"]


def test_a_round_in_steps_rewrites_the_rows_before_it_samples_and_trains_on_them():
    spec = {"kind": "rft", "rows": "r.json",
            "rounds": [{"name": "a", "datagen": [{"questions": "train"}], "train": {}},
                       {"name": "b", "in_steps": True, "datagen": [{"questions": "train", "model": "rft",
                                                                   "calculator": True, "steps": True}],
                        "train": {}}]}
    keys = [key for key, _ in recipe.plan(spec, Path("/w"))]
    assert keys.index("b in steps") < keys.index("b rounds in steps") < keys.index("b datagen 0") < keys.index("b train")
    argv = dict(recipe.plan(spec, Path("/w")))
    assert argv["b in steps"][2:] == ["homework.calculator", "steps", "/w/r.json"]
    assert argv["b datagen 0"][-1] == "--steps" and "a in steps" not in keys


@pytest.mark.slow
def test_two_rounds_on_the_tiny_model_chain_and_resume(tiny_checkpoint, tmp_path):
    sound = "1 meter = 3.28 feet, so {q} meters = {q} * 3.28 = {p}. <answer>{p}</answer>"
    rows = [[f"How many feet are in {q} meters?", q * 3.28084, sound.format(q=q, p=round(q * 3.28, 2))]
            for q in range(1, 9)]
    (tmp_path / "start.json").write_text(json.dumps(rows))
    (tmp_path / "q.json").write_text(json.dumps([r[:2] for r in rows[:3]]))
    train = {"max_steps": 2, "batch_size": 4, "learning_rate": 0.01}
    spec = {"kind": "rft", "rows": "rows.json", "start_rows": str(tmp_path / "start.json"),
            "install": str(tmp_path / "final"), "rounds": [
                {"name": "a", "datagen": [{"questions": str(tmp_path / "q.json"), "model": "cot", "oversample": 2}],
                 "train": train},
                {"name": "b", "datagen": [{"questions": str(tmp_path / "q.json"), "model": "rft", "oversample": 2}],
                 "train": {"from_previous": True, **train}}]}
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(spec))
    work = tmp_path / "work"
    recipe.run(str(path), work_dir=str(work), checkpoint=tiny_checkpoint)
    first, second = work / "a" / "rft_model", work / "b" / "rft_model"
    record = records.read_record(second)
    assert record["parent"]["sha256"] == records.sha256(first / "adapter_model.safetensors"), "round b goes on from a"
    assert records.sha256(tmp_path / "final" / "adapter_model.safetensors") == records.sha256(
        second / "adapter_model.safetensors"), "the last round is installed"
    rounds = json.loads((work / "rows.rounds.json").read_text())["rounds"]
    assert set(rounds) == {r[0] for r in rows}
    done = json.loads((work / "state.json").read_text())
    assert "b train" in done and "install adapter after b" in done
    # a rerun finds every step done and runs nothing (the adapters keep their files untouched)
    stamp = (second / "adapter_model.safetensors").stat().st_mtime_ns
    assert "steps done" in recipe.run(str(path), work_dir=str(work), checkpoint=tiny_checkpoint)
    assert (second / "adapter_model.safetensors").stat().st_mtime_ns == stamp


def test_install_refuses_an_adapter_that_scored_below_the_installed_one(tmp_path):
    """The recipe never puts a worse (or untested) adapter over a tested one unless asked to."""
    from homework.data import DataError

    def adapter(name: str, test: str | None) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "record.json").write_text(json.dumps({"test": test}))
        (folder / "adapter_model.safetensors").write_text(name)
        return folder

    installed = adapter("installed", "benchmark_result.accuracy=0.9650 benchmark_result.answer_rate=1.0000")
    worse = adapter("worse", "benchmark_result.accuracy=0.8410 benchmark_result.answer_rate=1.0000")
    untested = adapter("untested", None)
    better = adapter("better", "benchmark_result.accuracy=0.9700 benchmark_result.answer_rate=1.0000")
    for candidate, shown in ((worse, "0.841"), (untested, "untested")):
        with pytest.raises(DataError, match=f"accuracy {shown} against the installed 0.965"):
            recipe._install(candidate, installed)
        assert (installed / "adapter_model.safetensors").read_text() == "installed", "nothing replaced"
    recipe._install(better, installed)
    assert (installed / "adapter_model.safetensors").read_text() == "better"
    recipe._install(worse, installed, allow_worse=True)
    assert recipe.valid_accuracy(installed) == 0.841


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "recipes").glob("*.json")))
def test_every_recipe_option_is_an_option_of_its_command(name):
    """A recipe replays only if each key it holds is still a flag of the command it is passed to."""
    import inspect

    from homework import datagen, questions

    spec = json.loads((REPO / "recipes" / name).read_text())
    make = set(inspect.signature(questions.make).parameters) | {"name"}
    sample = set(inspect.signature(datagen.generate_dataset).parameters)
    for round_ in spec.get("rounds", []):
        for q in round_.get("questions", []):
            assert set(q) <= make, (round_.get("name"), set(q) - make)
        for d in round_.get("datagen", []):
            assert set(d) <= sample, (round_.get("name"), set(d) - sample)
