"""Surviving interruptions and bad input: killed training resumes, saves are atomic, bad paths fail early."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from homework import sft, training
from homework.data import DataError, Dataset, writable_dir


def _env(**extra):
    return {**os.environ, "HOMEWORK_DTYPE": "float32", **extra}


def test_killed_training_resumes_from_its_last_checkpoint(tiny_checkpoint, tmp_path, fp32, capsys):
    out = tmp_path / "sft_model"
    work = tmp_path / ".sft_model_work"
    cmd = [sys.executable, "-m", "homework.sft", "train", "--output_dir", str(out), "--checkpoint", tiny_checkpoint,
           "--n_rows", "400", "--batch_size", "4", "--max_steps", "100000", "--test_after", "False"]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while training.last_checkpoint(work) is None:
            assert proc.poll() is None, "training ended before it could be killed"
            assert time.time() < deadline, "no checkpoint within 4 minutes"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not out.exists(), "a killed run must not leave an adapter behind"
    reached = int(training.last_checkpoint(work).name.split("-")[1])
    message = sft.train_model(output_dir=str(out), checkpoint=tiny_checkpoint, n_rows=400, batch_size=4,
                              max_steps=reached + 5, resume=True, test_after=False)
    assert f"resuming from checkpoint-{reached}" in capsys.readouterr().err
    assert f"({reached + 5} steps" in message
    assert (out / "adapter_model.safetensors").exists() and not work.exists()
    steps = [s for s, _ in json.loads((out / "loss.json").read_text())]
    assert steps[0] <= reached < steps[-1], "the loss log should span the kill"
    sft.load(out, checkpoint=tiny_checkpoint)


def test_resume_skips_a_checkpoint_cut_short(tmp_path):
    for step, complete in ((25, True), (50, False)):
        ckpt = tmp_path / f"checkpoint-{step}"
        ckpt.mkdir()
        (ckpt / "adapter_model.safetensors").write_bytes(b"x")
        if complete:
            (ckpt / "trainer_state.json").write_text("{}")
    assert training.last_checkpoint(tmp_path).name == "checkpoint-25"


@pytest.fixture(scope="module")
def adapter(tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("atomic") / "sft_model"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOMEWORK_DTYPE", "float32")
        sft.train_model(output_dir=str(out), checkpoint=tiny_checkpoint, n_rows=32, batch_size=8, max_steps=2,
                        learning_rate=1e-2, test_after=False)
    return out


@pytest.mark.parametrize("fail_at_replace", [1, 2])  # before the old adapter moves aside / between the renames
def test_interrupted_save_never_leaves_a_half_adapter(adapter, tiny_checkpoint, fp32, monkeypatch, fail_at_replace):
    before = (adapter / "adapter_model.safetensors").read_bytes()
    real_replace, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == fail_at_replace:
            raise KeyboardInterrupt
        return real_replace(src, dst)

    monkeypatch.setattr(training.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        sft.train_model(output_dir=str(adapter), checkpoint=tiny_checkpoint, n_rows=32, batch_size=8, max_steps=2,
                        learning_rate=5e-2, seed=1, test_after=False)
    monkeypatch.setattr(training.os, "replace", real_replace)
    llm = sft.load(adapter, checkpoint=tiny_checkpoint)  # the previous adapter, whole
    old = adapter.with_name(adapter.name + ".old")
    where = adapter if (adapter / "adapter_model.safetensors").exists() else old
    assert (where / "adapter_model.safetensors").read_bytes() == before and llm is not None
    if where == old:  # put it back for the next case
        real_replace(old, adapter)


def test_unwritable_destination_fails_before_training(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(DataError, match="cannot write there"):
        writable_dir(blocker / "sft_model")
    ro = tmp_path / "read_only"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() == 0:  # root ignores permission bits: make the write fail as it would for a user
        import tempfile

        def denied(*args, **kwargs):
            raise PermissionError(13, "Permission denied")
        monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(DataError, match="Permission denied"):
        sft.train_model(output_dir=str(ro / "sft_model"), n_rows=8, test_after=False)
    assert list(ro.iterdir()) == []


@pytest.mark.parametrize("content,problem", [
    (b"", "the file is empty"),
    (b"[]", "has 0 rows"),
    (b'[["How many feet are in 7 meters?"]]', "row 0 should be a list of 2 or 3 items"),
    (b"\xff\xfe\x00", "not UTF-8"),
])
def test_train_on_a_bad_data_file_is_one_clear_line(tmp_path, content, problem):
    data = tmp_path / "rows.json"
    data.write_bytes(content)
    run = subprocess.run([sys.executable, "-m", "homework.sft", "train", "--data", str(data),
                          "--output_dir", str(tmp_path / "out")], capture_output=True, text=True, env=_env(), timeout=120)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and problem in lines[-1] and str(data) in lines[-1]
    assert not (tmp_path / "out").exists()


def test_empty_split_is_refused(tmp_path):
    (tmp_path / "empty.json").write_text("[]")
    with pytest.raises(DataError, match="has 0 rows"):
        Dataset("empty", data_dir=tmp_path)
