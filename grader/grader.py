"""Grade a homework folder or bundle: scores by the course bands, plus integrity checks that zero cheats.

    python -m grader homework          # grade the folder
    python -m grader UTID.zip -v       # grade a bundle (extracted to a temporary folder, imported from there)

Each case runs `grader/worker.py` in its own interpreter, in the sandbox (grader/sandbox.py: no network,
one writable folder, limits), with a timeout, importing only the graded package; grader/untrusted.py bounds
everything read back from it, and the bundle zip. What the package's code returns there is data, never a
verdict: every score comes from the clean room (grader/cleanroom.py), which attaches the bundle's adapter,
read as data, to the embedded base model and decodes the package's checked prompt texts with the grader's own
code (grader/reference.py). The package's own answers must agree with the clean room's, or the case scores
nothing.
"""

from __future__ import annotations

import json
import math
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from homework.questions import generate

from . import sandbox
from .cleanroom import AdapterRefused, CleanRoom, leaked_answers, untrained
from .reference import correct
from .untrusted import GENERATION_BOUND, PROMPT_BOUND, BundleError, floats, run_worker, safe_extract, strings

# case: (points, figure at zero points, figure at full points). Loss bands fall, accuracy bands rise.
BANDS = {
    "generate": (10, 8.0, 6.2),
    "batched_generate": (15, 8.0, 6.2),
    "cot": (25, 0.0, 0.4),
    "sft": (25, 0.4, 0.6),
    "rft": (25, 0.6, 0.7),
    "rft_extra": (5, 0.7, 0.8),
}
# The course grader's time limit for each case, model load included (seconds). Our grader asks the model cases
# twice the questions and runs a clean room beside them, so it times what the course times in the worker: the
# load and the file's questions. Over a limit is a warning, not lost points: the course would score it 0.
COURSE_LIMITS = {"generate": 40, "batched_generate": 15, "cot": 60, "sft": 60, "rft": 60}
MAX_PARAMS = 380_000_000
# file accuracy this far above fresh-question accuracy flags lookup or memorising; and at least three standard
# errors of the difference, so that a handful of questions cannot flag an honest model by chance (at 100
# questions a side the bound is 0.2, 0.21 near an accuracy of 0.5; at 6 a side it is 0.87 there)
MEMORISE_GAP = 0.2
# Share of the package's answers that must match the clean room's decoding of the same model. The clean room
# decodes in the same batches as the package's own answer(), so the honest package matches all of them; the
# bar stays where it was when the grader decoded one prompt at a time (in bf16 on a CPU that alone changed
# some long chain-of-thought answers: docs/decisions.md, "AGREEMENT"). A lookup of dataset answers matches ~0 % of
# fresh questions, and forged answers match only where the model itself is right.
AGREEMENT = 0.6
N_QUESTIONS = 100  # validation questions per model case (the course's size), and as many fresh ones
N_GENERATION = 32  # the first validation questions the generation cases score, as the course's grader does
N_PROBE = 30  # fresh questions the clean room re-asks with the adapter switched off
N_PROMPT_PROBE = 10  # file questions whose prompts are asked again among other questions
# characters a prompt may add to its question (this repository's SFT and RFT prompts add a "?" at most) and still
# be taken as the question alone, without asking for the prompts again: too few for an answer key of the request
PROMPT_SLACK = 8
VALID = Path(__file__).resolve().parents[1] / "data" / "valid.json"  # the grader's copy, never the bundle's
CASE_TIMEOUT = 900  # seconds per case, model load included


def band_score(case: str, figure: float) -> float:
    points, zero, full = BANDS[case]
    if figure is None or math.isnan(figure):
        return 0.0
    return points * min(1.0, max(0.0, (figure - zero) / (full - zero)))


def model_points(case: str, file_accuracy: float, fresh_accuracy: float) -> float:
    """A model case's points: the band score of the lower accuracy. The file is public, so an adapter that had
    memorised it would score on it alone; the fresh questions are drawn at grading time."""
    return band_score(case, min(file_accuracy, fresh_accuracy))


@dataclass
class CaseResult:
    name: str
    score: float
    max_score: float
    figure: str
    seconds: float
    checks: list[str] = field(default_factory=list)  # integrity lines, "ok: ..." or "FAIL: ..."
    details: dict = field(default_factory=dict)
    course_seconds: float | None = None  # the package's own time for what the course's grader times

    def course_warning(self) -> str:
        """A line when this case would run past the course grader's limit, else ''."""
        limit = COURSE_LIMITS.get(self.name)
        if limit is None or self.course_seconds is None or self.course_seconds <= limit:
            return ""
        return (f"WARNING: {self.name} took {self.course_seconds:.0f} s where the course's grader allows {limit} s "
                "(load included): there it would time out and score 0")


def _grade_generation(parent, case, questions, timeout, room: CleanRoom) -> CaseResult:
    start = time.time()
    out, error = run_worker(parent, case, {"questions": questions}, timeout)
    texts, why = strings((out or {}).get("texts"), len(questions), GENERATION_BOUND, room.tokenizer)
    if out is not None and texts is None:
        error = f"returned {why}"
    if texts is None:
        return CaseResult(case, 0.0, BANDS[case][0], "-", time.time() - start, [f"FAIL: {error}"])
    scored = room.generation(questions, texts, batched=case == "batched_generate")
    agree = scored["same"] / len(questions)
    checks = _param_check(room.params)
    checks.append(f"{'FAIL' if agree < AGREEMENT else 'ok'}: {scored['same']} of {len(questions)} texts begin as the "
                  "clean room's own decoding of the questions")
    checks.append(f"ok: {scored['empty']} of {len(questions)} completions empty; our padding-masked loss "
                  f"{scored['masked_loss']:.2f} beside the course's {scored['loss']:.2f}")
    score = band_score(case, scored["loss"]) if not _failed(checks) else 0.0
    return CaseResult(case, score, BANDS[case][0], f"loss {scored['loss']:.2f}", time.time() - start, checks,
                      {"examples": texts[:3], "masked_loss": scored["masked_loss"]}, _seconds(out))


def _seconds(out: dict | None) -> float | None:
    """The worker's `seconds`, if it is a plain finite number (it comes from the package's process)."""
    value = (out or {}).get("seconds")
    return float(value) if type(value) in (int, float) and math.isfinite(value) and value >= 0 else None


def _param_check(params: int) -> list[str]:
    if params > MAX_PARAMS:
        return [f"FAIL: {params / 1e6:.0f} M parameters, over the {MAX_PARAMS / 1e6:.0f} M cap"]
    return [f"ok: {params / 1e6:.0f} M parameters"]


def _failed(checks: list[str]) -> bool:
    return any(c.startswith("FAIL") for c in checks)


def _accuracy(answers, truth) -> float:
    return sum(correct(a, t) for a, t in zip(answers, truth)) / max(len(truth), 1)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or correct(a, b, tolerance=1e-3)


def _memorised(acc_file: float, acc_fresh: float, n_file: int, n_fresh: int) -> bool:
    """Whether the file's accuracy is above the fresh questions' by more than MEMORISE_GAP and by more than
    three standard errors of the difference of two accuracies (pooled)."""
    pooled = (acc_file * n_file + acc_fresh * n_fresh) / max(n_file + n_fresh, 1)
    error = math.sqrt(pooled * (1 - pooled) * (1 / max(n_file, 1) + 1 / max(n_fresh, 1)))
    return acc_file - acc_fresh > max(MEMORISE_GAP, 3 * error)


def _grade_model(parent, kind, valid, fresh, timeout, room: CleanRoom) -> list[CaseResult]:
    """Score the clean room's decoding; the package's own answers only have to agree with it."""
    start = time.time()
    names = [kind] + (["rft_extra"] if kind == "rft" else [])

    def failed(reason):
        return [CaseResult(n, 0.0, BANDS[n][0], "-", time.time() - start if n == kind else 0.0, [f"FAIL: {reason}"])
                for n in names]

    questions = [q for q, _ in valid] + [q for q, _ in fresh]
    truths = [a for _, a in valid] + [a for _, a in fresh]
    checks = _param_check(room.params)
    llm = None
    if kind in ("sft", "rft"):  # read before the package runs, so nothing it does can change what is scored
        try:
            llm, tensors = room.adapter_model(parent / "homework" / f"{kind}_model")
        except AdapterRefused as err:
            return failed(f"adapter refused: {err}")
        if untrained(tensors):
            return failed("adapter is untrained (all LoRA B weights are zero)")
        checks.append("ok: adapter read as data: allowed config, LoRA tensors of the base model's shapes")
    request = {"kind": kind, "valid": [q for q, _ in valid], "fresh": [q for q, _ in fresh]}
    out, error = run_worker(parent, kind, request, timeout)
    theirs = floats((out or {}).get("answers"), len(questions))
    prompts, why = (strings((out or {}).get("prompts"), len(questions), PROMPT_BOUND, room.tokenizer)
                    if out is not None else (None, ""))
    if out is not None and theirs is None:
        error = f"returned no {len(questions)} answers"
    elif out is not None and prompts is None:
        error = f"returned, as prompts, {why}"
    if error:
        return failed(error)
    leaks = leaked_answers(questions, prompts, truths)
    if leaks:
        return failed(f"{len(leaks)} prompts carry their question's own answer, e.g. {leaks[0][:60]!r}")
    checks.append("ok: no prompt carries its question's answer")
    if all(len(p) <= len(q) + PROMPT_SLACK for p, q in zip(prompts, questions)):
        checks.append(f"ok: every prompt is its question (at most {PROMPT_SLACK} characters added): no room for "
                      "anything taken from the other questions")
    else:
        moved = _prompts_move(parent, kind, valid, prompts, timeout, room)
        if moved:
            return failed(moved)
        checks.append(f"ok: the prompts of {min(N_PROMPT_PROBE, len(valid))} questions are the same when other "
                      "questions are asked")
    # the package's prompt texts, decoded and read by the grader's code, in the two batches the worker asks in
    answers = room.answers(kind, prompts[:len(valid)], llm) + room.answers(kind, prompts[len(valid):], llm)
    agree = sum(_same(a, b) for a, b in zip(theirs, answers)) / len(questions)
    checks.append(f"{'FAIL' if agree < AGREEMENT else 'ok'}: the package's own answers match the clean room's "
                  f"decoding of the same model ({agree:.0%})")
    acc_valid = _accuracy(answers[:len(valid)], truths[:len(valid)])
    acc_fresh = _accuracy(answers[len(valid):], truths[len(valid):])
    memorised = _memorised(acc_valid, acc_fresh, len(valid), len(fresh))
    checks.append(f"{'FAIL' if memorised else 'ok'}: fresh questions {acc_fresh:.2f} vs file {acc_valid:.2f}"
                  + (" (memorising or looking up)" if memorised else ""))
    if llm is not None:
        probe = prompts[len(valid):len(valid) + N_PROBE]
        with llm.adapter_off():
            off = room.answers(kind, probe, llm)
        changed = sum(not _same(a, b) for a, b in zip(answers[len(valid):], off))
        checks.append(f"{'FAIL' if changed == 0 else 'ok'}: switching the adapter off changes {changed}/{len(off)} "
                      "answers")
        del llm
    ok = not _failed(checks)
    details = {"wrong": [(q, a, t) for (q, t), a in zip(valid, answers) if not correct(a, t)][:10]}
    figure = f"accuracy {acc_valid:.2f}, fresh {acc_fresh:.2f}"
    results = [CaseResult(kind, model_points(kind, acc_valid, acc_fresh) if ok else 0.0, BANDS[kind][0],
                          figure, time.time() - start, checks, details, _seconds(out))]
    if kind == "rft":
        results.append(CaseResult("rft_extra", model_points("rft_extra", acc_valid, acc_fresh) if ok else 0.0,
                                  BANDS["rft_extra"][0], figure, 0.0))
    return results


def _prompts_move(parent, kind, valid, prompts, timeout, room: CleanRoom) -> str:
    """Why the package's prompts depend on the other questions of its request, or "".

    The package sees every question it is graded on, so its prompts could carry an answer key for all of them
    in the text they share, where `leaked_answers` does not look. A second run asks for the prompts of the
    first N_PROMPT_PROBE file questions among as many questions drawn now: a prompt built from its own
    question alone comes back the same, and one built from the request does not.
    """
    probe = [q for q, _ in valid[:N_PROMPT_PROBE]]
    others = [q for q, _ in generate(N_PROMPT_PROBE, seed=random.SystemRandom().randrange(2**31))]
    out, error = run_worker(parent, "prompts", {"kind": kind, "questions": others + probe}, timeout)
    again, why = strings((out or {}).get("prompts"), len(others) + len(probe), PROMPT_BOUND, room.tokenizer)
    if again is None:
        return f"asked for prompts alone, {error or 'returned ' + why}"
    changed = sum(a != b for a, b in zip(again[len(others):], prompts))
    if changed:
        return (f"{changed} of {len(probe)} prompts changed when other questions were asked: a prompt must "
                "come from its own question alone (an answer key for the request, or a random prompt)")
    return ""


def _missing(parent: Path, kind: str) -> str | None:
    if kind in ("sft", "rft") and not (parent / "homework" / f"{kind}_model" / "adapter_model.safetensors").exists():
        return f"no trained adapter in homework/{kind}_model"
    if not (parent / "homework" / f"{kind}.py").exists():
        return f"no homework/{kind}.py"
    return None


ALL_CASES = ("generate", "batched_generate", "cot", "sft", "rft")


def grade(target: str | Path, n_questions: int = N_QUESTIONS, timeout: float = CASE_TIMEOUT,
          seed: int | None = None, cases: tuple[str, ...] = ALL_CASES, unsafe: bool = False) -> list[CaseResult]:
    """Grade a folder holding homework/ (or the homework folder itself), or a bundle zip.

    seed fixes the fresh questions (default: a new random draw per grading); cases picks a subset. Where the
    sandbox cannot isolate, nothing is graded (BundleError) unless unsafe is set: the bundle's code would run
    with the grader's rights.
    """
    reason = sandbox.probe()
    if reason and not unsafe:
        raise BundleError(f"no sandbox on this machine ({reason}); the bundle's code would run with your rights. "
                          "Grade where the sandbox works, or pass --unsafe to run it anyway")
    target = Path(target)
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
        if target.suffix == ".zip":
            parent = safe_extract(target, Path(tmp))
        else:
            parent = target.resolve().parent if target.name == "homework" else target.resolve()
            if not (parent / "homework" / "__init__.py").exists():
                raise BundleError(f"{target}: no homework package here")
        valid = [tuple(row[:2]) for row in json.loads(VALID.read_text())[:n_questions]]
        # fresh questions: drawn now with a random seed, so never in a file the package shipped with; a case's
        # request.json in the sandbox holds the ones that case asks
        fresh = generate(n_questions, seed=random.SystemRandom().randrange(2**31) if seed is None else seed)
        results = []
        stages = [c for c in ("generate", "batched_generate", "cot", "sft", "rft") if c in cases]
        room = CleanRoom()
        for kind in tqdm(stages, desc="grading", unit="case"):
            if kind in ("generate", "batched_generate"):
                results.append(_grade_generation(parent, kind, [q for q, _ in valid[:N_GENERATION]], timeout, room))
                continue
            reason = _missing(parent, kind)
            if reason:
                results += [CaseResult(n, 0.0, BANDS[n][0], "-", 0.0, [f"FAIL: {reason}"])
                            for n in [kind] + (["rft_extra"] if kind == "rft" else [])]
            else:
                results += _grade_model(parent, kind, valid, fresh, timeout, room)
    return results


def report(results: list[CaseResult], verbose: bool = False) -> str:
    unsafe = sandbox.probe()
    first = f"UNSAFE: graded without a sandbox, the bundle ran with your rights ({unsafe})" if unsafe else ""
    lines = [first or sandbox.status_line(),
             f"{'case':<18}{'score':>12}  {'figure':<30}{'time':>8}{'course-timed':>14}"]
    for r in results:
        timed = f"{r.course_seconds:.0f}s of {COURSE_LIMITS[r.name]}" if r.course_seconds is not None else ""
        lines.append(f"{r.name:<18}{r.score:>6.1f} / {r.max_score:<3g}  {r.figure:<30}{r.seconds:>7.0f}s{timed:>14}")
        if r.course_warning():
            lines.append(f"    {r.course_warning()}")
        for check in r.checks if verbose else [c for c in r.checks if c.startswith("FAIL")]:
            lines.append(f"    {check}")
        if verbose and r.details:
            lines.append(f"    details: {json.dumps(r.details)[:600]}")
    total = sum(r.score for r in results)
    lines.append(f"total {total:.1f} / {sum(r.max_score for r in results):g}")
    return "\n".join(lines)
