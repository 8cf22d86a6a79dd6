"""One job run with 1 process and with N under `accelerate launch`, side by side in one command, and the ratio.

    python -m homework.scaling sft --processes 1,2 --n_rows 960        # sft train on the embedded model
    python -m homework.scaling datagen --processes 1,2 --questions 64  # datagen, 10 samples a question

Each run writes to a temporary folder (never the committed adapters or data/rft.json). One process runs as a
plain `python -m ...`; N > 1 run as `accelerate launch --multi_gpu --num_processes N`, which starts them through
torchrun (on a machine without GPUs they form one gloo group on the CPU; accelerate's `--cpu` flag would start a
single process). The runs take turns, so a machine that slows down part way slows each of them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .cli import comma_list, run_cli
from .data import Dataset

REPO = Path(__file__).resolve().parent.parent


def launch_command(processes: int, module: str, args: list[str], port: int | None = None) -> list[str]:
    """The command that runs `python -m module args` on `processes` processes (plain for one); `port` for the
    group's rendezvous (default: torchrun's 29500)."""
    if processes == 1:
        return [sys.executable, "-m", module, *args]
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            *(["--main_process_port", str(port)] if port else []), "-m", module, *args]


def _run(command: list[str]) -> tuple[float, str]:
    started = time.time()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command[:8])} ... failed:\n{(done.stdout + done.stderr)[-2000:]}")
    return time.time() - started, done.stdout + done.stderr


def _table(job: str, rows: list[tuple[int, float, str]]) -> str:
    base = rows[0][1]
    lines = [f"{job}: processes, wall seconds, time against {rows[0][0]} process(es), what the job reports"]
    lines += [f"  {n}: {seconds:.1f} s, x{seconds / base:.2f}, {reported}" for n, seconds, reported in rows]
    return "\n".join(lines)


def sft(processes: str | tuple = "1,2", n_rows: int = 960, checkpoint: str = "") -> str:
    """Time `sft train` (no test after it) with each number of processes.

    Args:
        processes: process counts to run, comma-separated, in turn.
        n_rows: generated training rows (the global batch stays 16, so the steps are n_rows / 16).
        checkpoint: base model (default: the embedded SmolLM2-135M-Instruct).
    """
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in map(int, comma_list(processes)):
            out = Path(tmp) / f"p{n}" / "sft_model"
            args = ["train", "--n_rows", str(n_rows), "--test_after", "False", "--output_dir", str(out)]
            seconds, _ = _run(launch_command(n, "homework.sft", args + (["--checkpoint", checkpoint] if checkpoint
                                                                        else [])))
            run = json.loads((out / "record.json").read_text())["run"]
            rows.append((n, seconds, f"{run['steps']} steps, {run['train_minutes'] * 60:.1f} s training, "
                                     f"{run['threads']} threads a process, {run['dtype']}"))
    return _table(f"sft train, {n_rows} rows", rows)


def datagen(processes: str | tuple = "1,2", questions: int = 64, oversample: int = 10, model: str = "cot",
            checkpoint: str = "") -> str:
    """Time `datagen` over the first questions of data/train.json with each number of processes.

    Args:
        processes: process counts to run, comma-separated, in turn.
        questions: how many questions of data/train.json to sample for.
        oversample: samples a question.
        model: cot or rft (the committed RFT adapter).
        checkpoint: base model (default: the embedded SmolLM2-135M-Instruct, or the adapter's).
    """
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "questions.json"
        source.write_text(json.dumps(Dataset("train").data[:questions]))
        for n in map(int, comma_list(processes)):
            args = [str(Path(tmp) / f"rft_p{n}.json"), "--questions", str(source), "--oversample", str(oversample),
                    "--model", model] + (["--checkpoint", checkpoint] if checkpoint else [])
            seconds, output = _run(launch_command(n, "homework.datagen", args))
            summary = re.findall(r"yield .*", output)
            rows.append((n, seconds, summary[-1] if summary else "no summary line"))
    return _table(f"datagen --model {model}, {questions} questions x {oversample}", rows)


def main() -> None:
    run_cli({"sft": sft, "datagen": datagen})


if __name__ == "__main__":
    main()
