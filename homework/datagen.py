"""Rejection sampling of chain-of-thought data for RFT.

    python -m homework.datagen data/rft.json                          # the first round's sampler: the CoT model
    python -m homework.datagen data/rft.json --model rft              # later rounds: sample the RFT model, merge
    python -m homework.datagen data/rft.json --model rft --model_dir runs/rft/round20/rft_model --hint \
        --oversample 4 --keep sound --calculator \
        --questions runs/rft/questions/rft_questions_r22_calc_wide.json   # round 22, the newest of data/rft.json
    python -m homework.datagen data/rft_sound.json --model pairs --keep only_sound --calculator \
        --questions runs/rft_sound/questions/round1_course.json    # recipes/rft_sound.json round 1
    python -m homework.recipe run recipes/rft.json --plan             # every round's exact command

The committed data/rft.json is the merged output of the 22 rounds of recipes/rft.json. With no options this
command is the first round's kind of pass: the CoT model, with the fact in its prompt, on data/train.json, 10
samples a question at temperature 0.6, a sound sample kept first (round 1 itself took 5 samples and the
shortest); the newest round, 22, is the line above it, sampling round 20's adapter (`--model_dir`), and a
second pass, `--questions rows --redo product`, over every row whose product was wrong. `python -m
homework.rft train` then trains on the file.

For each question, sample `oversample` completions; accept one only through the benchmark's own
`parse_answer` + `is_answer_valid`, cut after `</answer>`. Among the accepted ones keep, by default
(`--keep sound`), a *sound* one if there is any: every step true for the question, in any wording
(`soundness.reasoning_fault`, the strict check); the 5 % check alone also passes "7 * 25.4 = 171.6" or "1 quart
= 0.946 quarts, so 946 = 946 * 2 = 1946", and a model trained on those learns them. `--keep only_sound` never
keeps an unsound one, so every row written is sound (as `--calculator` does); `--keep shortest` keeps the
shortest accepted one (rounds 1-7 of data/rft.json). Rows are [question, answer, reasoning]. Rejected samples
go to `<output>.rejected.jsonl` with the reason.
Interrupted runs resume: finished questions are recorded in `<output>.<model>.progress.jsonl` and never
sampled again; the output JSON is only ever replaced whole (write beside, then rename).

    accelerate launch --multi_gpu --num_processes 4 -m homework.datagen data/rft.json --model rft

Under `accelerate launch` the questions are dealt out over the processes (question i to process i mod N), each
with its own progress file (`...progress.rank<r>.jsonl`) and rejected file. Once every process has finished,
the main process merges every progress file into the output and reports yield and tokens/s per process and in
all. A killed run resumes with any number of processes: every progress file counts as done, whoever wrote it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tqdm import tqdm

from . import base_llm, distributed, manifest
from .base_llm import BaseLLM
from .calculator import filled, with_calculator
from .cli import run_cli
from .data import Dataset, load_rows, writable_dir
from .formats import judge, with_hint
from .questions import DataFileError, save_rows
from .soundness import reasoning_fault

def _sampler(model: str, model_dir: str = "", checkpoint: str = "") -> BaseLLM:
    if model == "cot":
        from .cot import ReasoningCoT

        return ReasoningCoT(checkpoint or None)
    if model == "pairs":
        from .cot import CoTModel

        return CoTModel(checkpoint or None)
    if model == "rft":
        from .rft import MODEL_DIR, load

        llm = load(model_dir or MODEL_DIR, checkpoint or None)
        # Sampling only: folding the LoRA into the weights removes its extra matmuls from every decoding step.
        # load() itself keeps the adapter separate, so what is tested and graded is the adapter as saved.
        llm.model = llm.model.merge_and_unload()
        return llm
    raise ValueError(f"--model must be cot, pairs or rft, not {model!r}")


def _naive_tokens_per_second(llm: BaseLLM, questions: list[str], oversample: int, temperature: float) -> float:
    """New tokens/s of the plain way: one generate call per question and sample, full prompt every time."""
    import torch

    started, tokens = time.time(), 0
    for question in questions:
        ids = llm.tokenizer(llm.format_prompt(question), return_tensors="pt", add_special_tokens=False).input_ids
        for _ in range(oversample):
            with torch.inference_mode():
                out = llm.model.generate(ids.to(llm.device), max_new_tokens=llm.max_new_tokens, do_sample=True,
                                         temperature=temperature, top_p=None, top_k=None,
                                         pad_token_id=llm.tokenizer.pad_token_id)
            tokens += out.shape[1] - ids.shape[1]
    return tokens / max(time.time() - started, 1e-9)


def _shard_file(path: Path, rank: int, processes: int) -> Path:
    """A process's own file beside `path`: `path` itself for a plain run, `<stem>.rank<r><suffix>` under N."""
    return path if processes == 1 else path.with_name(f"{path.stem}.rank{rank}{path.suffix}")


def _progress_files(progress: Path) -> list[Path]:
    """Every progress file of this output and model, whichever number of processes wrote them."""
    return sorted(progress.parent.glob(f"{progress.stem}*{progress.suffix}"))


def _read_progress(paths: list[Path]) -> dict[str, tuple[str | None, bool]]:  # question: (reasoning, by calculator)
    done = {}
    for path in paths:
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by the interruption: that question is sampled again
            done[record["question"]] = record["reasoning"], record.get("calculator_filled", False)
    return done


def _summary(figures: dict) -> str:
    return (f"yield {figures['accepted'] / max(figures['questions'], 1):.2f} of {figures['questions']} questions "
            f"(sound {figures['sound'] / max(figures['questions'], 1):.2f}); "
            f"{figures['tokens'] / max(figures['seconds'], 1e-9):.0f} new tokens/s over {figures['seconds'] / 60:.1f} min")


def generate_dataset(output_json: str, oversample: int = 10, temperature: float = 0.6,
                     questions: str = "train", model: str = "cot", limit: int | None = None,
                     hint: bool = False, seed: int = 0, naive_baseline: int = 0, keep: str = "sound",
                     model_dir: str = "", checkpoint: str = "", calculator: bool = False,
                     redo: str | tuple[str, ...] = (), overwrite: bool = False, steps: bool = False) -> str | None:
    """Sample, filter and merge RFT rows into output_json (sharded over the processes of `accelerate launch`).

    Args:
        output_json: rows file to write; rows already in it are kept (later rounds merge into it).
        oversample: completions sampled per question.
        temperature: sampling temperature.
        questions: split name or JSON path of [question, answer] rows to sample for; "rows": output_json's own.
        model: cot (in-context CoT with the fact in the prompt) or rft (the trained RFT model, question only).
        limit: only the first N questions.
        hint: with --model rft, put the conversion fact before the question when sampling (the CoT model
            always has it). The saved row keeps the bare question: the trained model never sees a hint.
        seed: seeds the sampler; an uninterrupted run with the same seed, model and threads repeats itself.
        naive_baseline: first time a naive loop (one `model.generate` per question and sample, no batching,
            no shared prefix) on this many questions, and report its tokens/s beside the batched run's.
        keep: sound (a sound accepted sample first, then the shortest; a question whose row in output_json
            is not sound is sampled again, and its row replaced only by a sound one), only_sound (as sound, but
            an unsound sample is never kept: every row written is sound) or shortest (the shortest accepted
            sample; questions with a row are never sampled again).
        model_dir: with --model rft, the adapter folder to sample from (default: homework/rft_model).
        checkpoint: base model: a transformers name or path (default: the adapter's record, else the embedded one).
        calculator: sample with calculator decoding (homework/calculator.py): the model writes the fact and
            sets up "A * B =", the calculator writes the product. A kept row whose product it wrote carries
            {"calculator_filled": true} as a fourth item. Only sound samples are kept (the trained shape,
            every step true: `soundness.reasoning_fault`); the others go to the rejected file.
        redo: comma-separated reasoning faults (`soundness.CAUSES`: product,quantity,fact,...): a question whose row in
            output_json has one of them is sampled again, and every other question with a row is left as it
            is. With --questions rows (output_json's own questions) this revisits the rows that teach them.
        overwrite: write into a committed data file pinned in manifest.json (data/rft.json); refused before
            any sampling without it.
        steps: with --calculator, the calculator writes a product whose factor has several digits in steps
            (`formats.product_steps`: "7 * 3.28 = 21 + 1.4 + 0.56 = 22.96"), the shape a model can then carry
            without it.
    """
    import torch

    from .cli import comma_list

    redo = tuple(comma_list(redo))
    if keep not in ("sound", "only_sound", "shortest"):
        raise ValueError(f"--keep must be sound, only_sound or shortest, not {keep!r}")
    output = Path(output_json)
    writable_dir(output.parent)
    if manifest.pinned(output) and not overwrite:
        raise DataFileError(f"refusing to change {manifest.name(output)}: it is a committed file pinned in "
                            "manifest.json (--overwrite to sample into it)")
    rank, processes = distributed.world()
    distributed.join()
    kept = {r[0]: r for r in load_rows(output, (3, 4))} if output.exists() else {}
    rows = [r[:2] for r in kept.values()][:limit] if questions == "rows" else Dataset(questions).data[:limit]
    progress = output.with_name(f"{output.name}.{model}.progress.jsonl")
    # Another process may already be appending to its own file: that only adds questions of its own shard.
    done = _read_progress(_progress_files(progress))

    def settled(question: str) -> bool:  # has a row that this run would not replace
        if question not in kept:
            return False
        fault = reasoning_fault(*kept[question][::2]).split(":")[0]
        return fault not in redo if redo else keep == "shortest" or not fault

    shard = rows[rank::processes]
    todo = [r for r in shard if not settled(r[0]) and r[0] not in done]
    llm = _sampler(model, model_dir, checkpoint)
    if calculator:
        llm = with_calculator(llm, steps)
    elif steps:
        raise ValueError("--steps is how the calculator writes a product: it needs --calculator")
    torch.manual_seed(seed + rank)  # each process its own draws
    def prompt(question: str) -> str:  # what the sampler is asked; the saved row keeps the bare question
        return with_hint(question) if hint and model == "rft" else question

    naive = _naive_tokens_per_second(llm, [prompt(q) for q, *_ in todo[:naive_baseline]], oversample,
                                     temperature) if naive_baseline and todo else None
    stats = {"no tag": 0, "truncated": 0, "wrong value": 0, "ok": 0, "sound": 0, "unsound, dropped": 0}
    started, new_tokens, mine = time.time(), 0, {}
    rejected_file = _shard_file(output.with_name(output.name + ".rejected.jsonl"), rank, processes)
    with open(_shard_file(progress, rank, processes), "a") as prog, open(rejected_file, "a") as rejected:
        per_step = max(1, base_llm.SAMPLE_CHUNK // oversample)  # one full generate call per recorded step
        for start in tqdm(range(0, len(todo), per_step), desc=f"sampling {model}" + (f" [{rank}]" if processes > 1
                          else ""), unit="chunk", position=rank):
            chunk = todo[start:start + per_step]
            samples = llm.batched_generate([llm.format_prompt(prompt(q)) for q, *_ in chunk],
                                           num_return_sequences=oversample, temperature=temperature)
            for (question, answer, *_), texts in zip(chunk, samples):
                best, best_order = None, None
                for text in texts:
                    new_tokens += len(llm.tokenizer(text, add_special_tokens=False).input_ids)
                    verdict, reasoning = judge(text, answer)
                    stats[verdict] += 1
                    if verdict != "ok":
                        rejected.write(json.dumps({"question": question, "reason": verdict, "text": text}) + "\n")
                        continue
                    loose = bool(reasoning_fault(question, reasoning))
                    stats["sound"] += not loose
                    if loose and (calculator or keep == "only_sound"):
                        stats["unsound, dropped"] += 1
                        rejected.write(json.dumps({"question": question, "reason": "unsound", "text": text}) + "\n")
                        continue
                    order = (loose and keep == "sound", len(reasoning))  # sound first, then shortest
                    if best is None or order < best_order:
                        best, best_order = reasoning, order
                record = {"question": question, "answer": answer, "reasoning": best}
                if calculator and best and filled(best, steps):
                    record["calculator_filled"] = True
                prog.write(json.dumps(record) + "\n")
                mine[question] = best
            prog.flush()
    figures = {"questions": len(mine), "accepted": sum(1 for r in mine.values() if r),
               "sound": sum(1 for q, r in mine.items() if r and not reasoning_fault(q, r)),
               "tokens": new_tokens, "seconds": time.time() - started, "samples": stats}
    every = distributed.gather(figures)  # waits here for every process to finish its shard
    if not distributed.is_main():
        distributed.leave()
        return None
    done = _read_progress(_progress_files(progress))
    answers = {r[0]: r[1] for r in rows}
    for question, (reasoning, by_calculator) in done.items():
        if not reasoning or question not in answers:
            continue
        if question not in kept or (keep in ("sound", "only_sound") and not reasoning_fault(question, reasoning)):
            kept[question] = [question, answers[question], reasoning] + [{"calculator_filled": True}] * by_calculator
    save_rows(list(kept.values()), output, overwrite=overwrite, allow_empty=True)  # a new file may record none
    by_calculator = sum(1 for r in kept.values() if r[3:] and r[3].get("calculator_filled"))
    for path in _progress_files(progress):
        path.unlink()
    distributed.leave()
    if processes > 1:
        for r, f in enumerate(every):
            print(f"process {r}: samples {f['samples']}; {_summary(f)}")
        stats = {k: sum(f["samples"][k] for f in every) for k in stats}
        figures = {k: max(f[k] for f in every) if k == "seconds" else sum(f[k] for f in every)
                   for k in ("questions", "accepted", "sound", "tokens", "seconds")}
    print(("all processes: " if processes > 1 else "") + f"samples: {stats}; {_summary(figures)}"
          + (f" (naive per-question loop: {naive:.0f} tokens/s)" if naive else ""))
    return f"wrote {len(kept)} rows to {output}" + (f" ({by_calculator} calculator-filled)" if by_calculator else "")


def main() -> None:
    run_cli(generate_dataset, "interrupted; finished questions are kept: rerun the same command to sample the rest")


if __name__ == "__main__":
    main()
