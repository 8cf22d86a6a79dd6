"""Past one process: the batch plan, sharded datagen, and real `accelerate launch` runs on the CPU.

`pytest -k "accelerate or distributed or shard"` selects every test here. The slow ones launch two (or three)
processes on the tiny random Llama through `accelerate launch --multi_gpu`, which starts them through torchrun;
with no GPU they form one gloo group on the CPU. (accelerate's own `--cpu --num_processes N` starts a single
process unless given an MPI hostfile.)
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from homework import datagen, distributed, records, scaling, sft

from test_datagen import FakeSampler, questions  # noqa: F401  (the fixture is used by name)

REPO = Path(__file__).resolve().parent.parent

PLANS = [
    (16, 1, 0, (16, 1)),   # one process takes the whole batch in one pass
    (16, 2, 0, (8, 1)),    # two processes take half each: the global batch stays 16
    (16, 4, 0, (4, 1)),    # four take a quarter each
    (16, 1, 4, (4, 4)),    # a small device: 4 rows a pass, 4 passes accumulated
    (16, 2, 4, (4, 2)),    # two small devices: 8 rows each in 2 passes
    (16, 2, 8, (8, 1)),    # a device batch as large as the share needs no accumulation
    (16, 2, 32, (8, 1)),   # nor a larger one
]


@pytest.mark.parametrize("batch,processes,device_batch,plan", PLANS)
def test_distributed_batch_plan(batch, processes, device_batch, plan):
    per_device, accumulation = distributed.batch_plan(batch, processes, device_batch)
    assert (per_device, accumulation) == plan
    assert per_device * accumulation * processes == batch, "the global batch must not change with the processes"


@pytest.mark.parametrize("batch,processes,device_batch", [
    (16, 3, 0),   # 16 rows do not split over 3 processes
    (16, 32, 0),  # more processes than rows
    (16, 2, 3),   # 3 does not divide a share of 8
    (0, 1, 0),    # no batch at all
])
def test_distributed_batch_plan_refuses(batch, processes, device_batch):
    with pytest.raises(ValueError):
        distributed.batch_plan(batch, processes, device_batch)


def test_distributed_world_reads_the_launcher(monkeypatch):
    for name in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.world() == (0, 1) and distributed.is_main()
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert distributed.world() == (1, 2) and not distributed.is_main()
    assert distributed.gather("x") == ["x"], "with no process group, gather is this process's value alone"


def test_distributed_note_for_a_cpu_launch_that_started_one_process(monkeypatch, capsys):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")  # what `accelerate launch --cpu` sets, with no WORLD_SIZE
    distributed.warn_single_cpu_launch()
    assert "--multi_gpu --num_processes N" in capsys.readouterr().err
    monkeypatch.setenv("WORLD_SIZE", "2")  # really several processes: nothing to say
    distributed.warn_single_cpu_launch()
    monkeypatch.delenv("ACCELERATE_USE_CPU")
    monkeypatch.delenv("WORLD_SIZE")  # a plain run: nothing to say
    distributed.warn_single_cpu_launch()
    assert capsys.readouterr().err == ""


RUN = {"steps": 16, "train_minutes": 0.5, "dtype": "float32", "device": "cpu", "threads": 1, "machine": "x86_64"}


@pytest.mark.parametrize("run,expected", [
    (RUN, "on cpu (1 threads, x86_64), float32"),  # a plain run reads as it always did
    ({**RUN, "processes": 1, "devices": ["cpu"], "device_batch": 4, "accumulation": 4},
     "on cpu (1 threads, x86_64) in 4 passes of 4 rows"),  # accumulation is said
    ({**RUN, "processes": 2, "devices": ["cpu", "cpu"], "device_batch": 8, "accumulation": 1},
     "on 2 data-parallel processes (2 x cpu; 1 threads each, x86_64), 8 rows of each step per process"),
    ({**RUN, "device": "cuda", "processes": 2, "devices": ["cuda (NVIDIA T4)"] * 2, "device_batch": 4,
      "accumulation": 2}, "2 x cuda (NVIDIA T4)"),  # the devices by name
])
def test_distributed_card_names_processes(run, expected):
    record = {"kind": "sft", "base_model": "tiny", "config": {"rank": 16, "alpha_per_rank": 4, "learning_rate": 1e-3,
              "adam_beta2": 0.95, "batch_size": 16, "epochs": 1.0}, "data": {"rows": 256, "description": "rows"},
              "parent": None, "run": run}
    assert expected in records.card(record)


def _as_rank(monkeypatch, rank: int, processes: int) -> None:
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("WORLD_SIZE", str(processes))
    monkeypatch.setattr(distributed, "join", lambda: None)  # no process group: each rank runs in turn here


def test_shard_datagen_merges_every_process_file(tmp_path, questions, monkeypatch, capsys):  # noqa: F811
    """Rank 1 of 2 samples its half and leaves its files; rank 0 samples the other half and merges both."""
    path, truth = questions
    out = tmp_path / "rft.json"
    samplers = {}
    for rank in (1, 0):
        _as_rank(monkeypatch, rank, 2)
        samplers[rank] = FakeSampler(truth)
        monkeypatch.setattr(datagen, "_sampler", lambda *args, s=samplers[rank]: s)
        result = datagen.generate_dataset(str(out), oversample=3, questions=str(path))
        if rank == 1:
            assert result is None and not out.exists(), "only the main process writes the output"
            assert (tmp_path / "rft.json.cot.progress.rank1.jsonl").exists()
    seen0, seen1 = set(samplers[0].seen), set(samplers[1].seen)
    assert seen0 | seen1 == set(truth) and not seen0 & seen1, "each question goes to exactly one process"
    assert len(seen1) == 20, "question i goes to process i mod 2"
    rows = json.loads(out.read_text())
    assert sorted(r[0] for r in rows) == sorted(truth), "the merge took every process's rows"
    assert not list(tmp_path.glob("*progress*")), "progress files left after the merge"
    assert {p.name for p in tmp_path.glob("*rejected*")} == {"rft.json.rejected.rank0.jsonl",
                                                             "rft.json.rejected.rank1.jsonl"}


def test_shard_datagen_resumes_with_another_number_of_processes(tmp_path, questions, monkeypatch):  # noqa: F811
    """Two processes' progress files, one process's run dies: a plain run samples only what is left."""
    path, truth = questions
    monkeypatch.setattr("homework.base_llm.SAMPLE_CHUNK", 16)  # 8 questions x 2 samples per step
    out = tmp_path / "rft.json"
    _as_rank(monkeypatch, 1, 2)
    first = FakeSampler(truth, fail_after=8)  # rank 1 dies on its second chunk
    monkeypatch.setattr(datagen, "_sampler", lambda *args: first)
    with pytest.raises(KeyboardInterrupt):
        datagen.generate_dataset(str(out), oversample=2, questions=str(path))
    _as_rank(monkeypatch, 0, 1)
    second = FakeSampler(truth)
    monkeypatch.setattr(datagen, "_sampler", lambda *args: second)
    datagen.generate_dataset(str(out), oversample=2, questions=str(path))
    assert len(first.seen) == 8 and not set(first.seen) & set(second.seen), "a finished question was sampled twice"
    assert len(second.seen) == 32 and len(json.loads(out.read_text())) == 40


def test_distributed_accumulated_passes_train_the_one_pass_adapter(tmp_path, tiny_checkpoint, fp32):
    """--device_batch 4 on one process: 4 passes of 4 rows a step, the same steps and adapter as 1 pass of 16."""
    adapters, runs = {}, {}
    for device_batch in (0, 4):
        out = tmp_path / f"db{device_batch}" / "sft_model"
        sft.train_model(output_dir=str(out), checkpoint=tiny_checkpoint, n_rows=128, device_batch=device_batch,
                        test_after=False)
        adapters[device_batch] = load_file(out / "adapter_model.safetensors")
        runs[device_batch] = json.loads((out / "record.json").read_text())["run"]
    assert (runs[4]["device_batch"], runs[4]["accumulation"]) == (4, 4)
    assert runs[0]["steps"] == runs[4]["steps"] == 8
    for name, weight in adapters[0].items():
        torch.testing.assert_close(adapters[4][name], weight, atol=1e-5, rtol=1e-4, msg=lambda m: f"{name}: {m}")


# --- real launches: two processes on the CPU ---------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(processes: int, module: str, *args: str, **popen) -> subprocess.Popen:
    env = {**os.environ, "HOMEWORK_DTYPE": "float32"}
    command = scaling.launch_command(processes, module, list(args), port=_free_port())
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, **popen)


def _finish(process: subprocess.Popen, timeout: int = 300) -> str:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"launch failed ({process.returncode}):\n{output[-3000:]}"
    return output


def _kill_when(process: subprocess.Popen, ready, timeout: float = 240) -> None:
    """SIGKILL the whole launch once ready() holds: launcher and every worker (torchrun starts each worker in a
    session of its own, so killing the launcher's process group alone would leave them running)."""
    import psutil

    deadline = time.time() + timeout
    while not ready():
        assert process.poll() is None, "the run finished before it could be killed"
        assert time.time() < deadline, "the run never got to the point of the kill"
        time.sleep(0.05)
    tree = psutil.Process(process.pid).children(recursive=True)
    os.killpg(process.pid, signal.SIGKILL)
    for child in tree:
        child.kill()
    psutil.wait_procs(tree, timeout=30)
    process.communicate()


def _sft_args(tiny_checkpoint: str, output_dir: Path, *extra: str, n_rows: int = 256) -> list[str]:
    return ["train", "--checkpoint", tiny_checkpoint, "--n_rows", str(n_rows), "--test_after", "False",
            "--output_dir", str(output_dir), *extra]


@pytest.mark.slow
def test_accelerate_sft_train_two_processes_matches_one(tmp_path, tiny_checkpoint, fp32):
    """Same global batch, same steps, and (fp32, same data order) the same adapter as one process trains."""
    two, one = tmp_path / "two" / "sft_model", tmp_path / "one" / "sft_model"
    _finish(_launch(2, "homework.sft", *_sft_args(tiny_checkpoint, two)))
    subprocess.run([sys.executable, "-m", "homework.sft", *_sft_args(tiny_checkpoint, one)], cwd=REPO, check=True,
                   env={**os.environ, "HOMEWORK_DTYPE": "float32"}, capture_output=True)
    assert sorted(p.name for p in two.parent.iterdir()) == ["sft_model"], "one adapter, no work or temporary folder"
    run2, run1 = (json.loads((d / "record.json").read_text())["run"] for d in (two, one))
    assert (run2["processes"], run2["devices"], run2["device_batch"]) == (2, ["cpu", "cpu"], 8)
    assert run1["processes"] == 1 and run2["steps"] == run1["steps"] == 16, "the step count must not change"
    assert "2 data-parallel processes" in (two / "README.md").read_text()
    a, b = load_file(two / "adapter_model.safetensors"), load_file(one / "adapter_model.safetensors")
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-5, rtol=1e-4, msg=lambda m: f"{name}: {m}")
    llm = sft.load(two, checkpoint=tiny_checkpoint)
    assert type(llm.model).__name__ == "PeftModelForCausalLM"
    assert llm.answer("How many feet are in 7 meters?")  # the saved adapter decodes


@pytest.mark.slow
def test_accelerate_sft_resume_two_processes(tmp_path, tiny_checkpoint, fp32):
    """Killed after its first checkpoint, a two-process run goes on from it and finishes its schedule."""
    out = tmp_path / "sft_model"
    args = _sft_args(tiny_checkpoint, out, "--max_steps", "160", n_rows=4096)  # checkpoints at 50, 100, 150
    work = tmp_path / ".sft_model_work"
    first = _launch(2, "homework.sft", *args)
    _kill_when(first, lambda: any((c / "trainer_state.json").exists() for c in work.glob("checkpoint-*")))
    assert not out.exists()
    output = _finish(_launch(2, "homework.sft", *args, "--resume", "True"))
    assert "resuming from checkpoint-" in output
    record = json.loads((out / "record.json").read_text())
    assert record["run"]["steps"] == 160 and record["run"]["processes"] == 2
    assert not work.exists()


@pytest.mark.slow
def test_accelerate_shard_datagen_killed_and_resumed(tmp_path, tiny_checkpoint):
    """Two processes killed mid-run; three resume, sample only what is left, and report per process."""
    rows = json.loads((REPO / "data" / "valid.json").read_text())[:48]
    questions_file = tmp_path / "q.json"
    questions_file.write_text(json.dumps(rows))
    out = tmp_path / "rft.json"
    args = [str(out), "--model", "cot", "--checkpoint", tiny_checkpoint, "--questions", str(questions_file)]

    def progress_lines() -> int:
        return sum(len(p.read_text().splitlines()) for p in tmp_path.glob("rft.json.cot.progress*.jsonl"))

    first = _launch(2, "homework.datagen", *args)
    _kill_when(first, lambda: progress_lines() > 0)
    before = progress_lines()
    assert 0 < before < 48 and not out.exists(), "a killed run leaves its progress and no output"
    output = _finish(_launch(3, "homework.datagen", *args))
    sampled = [int(line.split(" of ")[1].split()[0]) for line in output.splitlines() if line.startswith("process ")]
    assert len(sampled) == 3, output[-2000:]
    assert before + sum(sampled) == 48, "every question sampled once over the two runs"
    assert "all processes: samples" in output and out.exists()
    assert not list(tmp_path.glob("*progress*")), "progress files left after the merge"
