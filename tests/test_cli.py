"""The commands' --help: every option of every command is described, so the docs cannot drift from the code."""

import inspect
import os
import subprocess
import sys

import pytest

from homework import base_llm, cot, datagen, questions, recipe, report, rft, scaling, sft

COMMANDS = [
    (sft.train_model, "sft train"), (sft.test, "sft test"), (sft.speed, "sft speed"),
    (rft.train_model, "rft train"), (rft.test, "rft test"), (cot.test, "cot test"),
    (datagen.generate_dataset, "datagen"), (recipe.run, "recipe run"), (report.report, "report"),
    (questions.make, "questions make"), (questions.write, "questions write"), (questions.reword, "questions reword"),
    (base_llm.test, "base_llm test"), (rft.misses, "rft misses"), (scaling.sft, "scaling sft"),
    (scaling.datagen, "scaling datagen"),
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
