"""The commands' --help: every option of every command is described, so the docs cannot drift from the code."""

import inspect
import os
import subprocess
import sys

import pytest

from homework import base_llm, cot, datafiles, datagen, questions, recipe, records, report, rft, scaling, sft, soundness

COMMANDS = [
    (sft.train_model, "sft train"), (sft.test, "sft test"), (sft.speed, "sft speed"),
    (rft.train_model, "rft train"), (rft.test, "rft test"), (cot.test, "cot test"),
    (datagen.generate_dataset, "datagen"), (recipe.run, "recipe run"), (report.report, "report"),
    (questions.make, "questions make"), (datafiles.write, "questions write"), (questions.reword, "questions reword"),
    (base_llm.test, "base_llm test"), (rft.misses, "rft misses"), (scaling.sft, "scaling sft"),
    (scaling.datagen, "scaling datagen"), (soundness.check, "soundness check"), (records.pin, "records pin"),
]


@pytest.mark.parametrize("command,name", COMMANDS, ids=[n for _, n in COMMANDS])
def test_every_option_has_a_line_in_args(command, name):
    doc = inspect.getdoc(command) or ""
    assert "Args:" in doc, f"{name}: no Args section for --help"
    described = doc.split("Args:", 1)[1]
    for option in inspect.signature(command).parameters:
        assert f"{option}:" in described, f"{name}: option --{option} is not described in its --help"


@pytest.mark.parametrize("config,train", [(sft.SFTConfig, sft.train_model), (rft.RFTConfig, rft.train_model)])
def test_train_takes_every_config_field(config, train):
    """The card's reproduce command spells out every config field, so train must accept each as an option."""
    import dataclasses

    fields = {f.name for f in dataclasses.fields(config)}
    assert fields <= set(inspect.signature(train).parameters), fields - set(inspect.signature(train).parameters)


def test_train_help_is_readable_without_a_model():
    out = subprocess.run([sys.executable, "-m", "homework.sft", "train", "--help"], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PAGER": "cat"})
    text = out.stdout + out.stderr
    assert "--learning_rate" in text and "peak AdamW learning rate" in text, text[-500:]
    assert "Loading weights" not in text


@pytest.mark.parametrize("config,train", [(sft.SFTConfig, sft.train_model), (rft.RFTConfig, rft.train_model)])
def test_train_options_are_the_config_fields_with_their_defaults(config, train):
    """No hand-copied signature: the options are the dataclass's fields, in order, with its defaults."""
    import dataclasses

    from homework import training

    params = inspect.signature(train).parameters
    fields = dataclasses.fields(config)
    assert list(params) == [f.name for f in fields] + [name for name, _, _ in training.RUN_OPTIONS]
    assert all(params[f.name].default == f.default for f in fields)


@pytest.mark.parametrize("value,kind,expected", [
    (1, float, 1.0),  # Fire reads `--epochs 1` as an int
    ("time,mass", tuple[str, ...], ("time", "mass")),  # a comma list as typed
    (("time", "mass"), tuple[str, ...], ("time", "mass")),  # Fire's own tuple for a comma list
    ("", tuple[str, ...], ()),  # empty: the recipe's fallback
    ("False", bool, False),  # a quoted boolean
    (None, str, ""),  # `--checkpoint None`
    (16.0, int, 16),  # a whole float is a whole number
])
def test_option_values_take_the_field_type(value, kind, expected):
    from homework.cli import _coerce

    assert _coerce(value, kind, "x") == expected


@pytest.mark.parametrize("value,kind", [("abc", float), (2.5, int), ("yes", bool), (True, int)])
def test_a_wrong_option_type_is_refused(value, kind):
    from homework.cli import _coerce

    with pytest.raises(ValueError, match="--x must be"):
        _coerce(value, kind, "x")


def test_a_bad_train_option_is_one_error_line():
    out = subprocess.run([sys.executable, "-m", "homework.rft", "train", "--epochs", "abc"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 1 and out.stderr.strip().splitlines()[-1] == "error: --epochs must be a number, not 'abc'"
    assert "Traceback" not in out.stderr


# every command-line module: the model-free ones must not import torch even to refuse a mistake
MODEL_FREE = ["questions", "units", "formats", "records", "data", "recipe", "scaling"]
WITH_MODEL = ["sft", "rft", "cot", "base_llm", "datagen", "report"]
_PROBE = """
import contextlib, io, runpy, sys
for module in sys.argv[1:]:
    argv = ["--no_such_option", "1"] if module in ("datagen", "report") else ["no_such_command"]
    sys.argv, err = ["x", *argv], io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            runpy.run_module("homework." + module, run_name="__main__")
        said = "no exit"
    except SystemExit as done:
        said = str(done.code)
    print(module, "|", said, "|", "Traceback" in err.getvalue() or "Usage:" in err.getvalue())
print("TORCH", "torch" in sys.modules)
"""


@pytest.mark.parametrize("modules", [MODEL_FREE, WITH_MODEL], ids=["model-free", "with-model"])
def test_a_mistake_is_one_error_line_and_model_free_commands_skip_torch(modules):
    """Each module in one interpreter, one after the other (torch is imported once, where it is at all)."""
    out = subprocess.run([sys.executable, "-c", _PROBE, *modules], capture_output=True, text=True, timeout=180,
                         env={**os.environ, "PAGER": "cat"})
    said = out.stdout.strip().splitlines()
    assert len(said) == len(modules) + 1, (said, out.stderr[-400:])
    for line in said[:-1]:
        module, message, noisy = line.split(" | ")
        assert message.startswith("error: unknown ") and noisy == "False", line
    if modules is MODEL_FREE:
        assert said[-1] == "TORCH False", "a model-free command imported torch to refuse a mistake"


def test_the_argv_check_lets_a_right_command_line_through():
    from homework.cli import argv_mistake

    def make(path, n: int = 3, wide: bool = False):
        return path

    commands = {"make": make}
    assert argv_mistake(commands, ["make", "q.json", "--n", "5", "--wide"]) is None
    assert argv_mistake(commands, ["make", "--path=q.json", "--nowide"]) is None
    assert argv_mistake(commands, ["make", "q.json", "--wide", "False", "--n", "2"]) is None
    assert argv_mistake(commands, ["--help"]) is None and argv_mistake(commands, ["make", "--help"]) is None
    assert "missing path" in argv_mistake(commands, ["make", "--n", "5"])
    assert "at most 3" in argv_mistake(commands, ["make", "a", "b", "c", "d"])
    assert "unknown option --m" in argv_mistake(commands, ["make", "a", "--m", "1"])
