"""Grade a homework folder or bundle: scores by the course bands, plus integrity checks that zero cheats.

    python -m grader homework          # grade the folder
    python -m grader UTID.zip -v       # grade a bundle (extracted to a temporary folder, imported from there)

Each case runs `grader/worker.py` in its own interpreter, with a timeout, importing only the graded
package. The worker returns raw answers; scoring and every verdict happen here, with this repository's
parser, correctness check and question generator, never the graded package's.
"""

from __future__ import annotations

import json
import math
import os
import random
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from homework.base_llm import embedded_model_dir
from homework.formats import parse_answer
from homework.data import DATA_DIR, is_answer_valid, load_rows
from homework.questions import generate

# case: (points, figure at zero points, figure at full points). Loss bands fall, accuracy bands rise.
BANDS = {
    "generate": (10, 8.0, 6.2),
    "batched_generate": (15, 8.0, 6.2),
    "cot": (25, 0.0, 0.4),
    "sft": (25, 0.4, 0.6),
    "rft": (25, 0.6, 0.7),
    "rft_extra": (5, 0.7, 0.8),
}
MAX_PARAMS = 380_000_000
MEMORISE_GAP = 0.2  # file accuracy this far above fresh-question accuracy flags lookup or memorising
# Share of probe answers that must match the grader's own greedy decoding. The package decodes in padded
# batches and the grader one prompt at a time; in bf16 on a CPU that alone changes some long chain-of-thought
# answers: the honest CoT model matched 31 of 40 probes (78 %, 2026-11-26), so the old 0.8 on 10 probes
# failed it about one grading in three. A lookup of dataset answers matches ~0 % of fresh questions.
AGREEMENT = 0.6
N_QUESTIONS = 100  # validation questions per model case (the course's size), and as many fresh ones
N_GENERATION = 32  # the first validation questions the generation cases score, as the course's grader does
N_PROBE = 30  # fresh questions re-decoded by the grader and re-asked with the adapter switched off
CASE_TIMEOUT = 900  # seconds per case, model load included
WORKER = Path(__file__).resolve().parent / "worker.py"


class BundleError(ValueError):
    """A bundle that cannot be graded: not a zip, unsafe entries, no package."""


def band_score(case: str, figure: float) -> float:
    points, zero, full = BANDS[case]
    if figure is None or math.isnan(figure):
        return 0.0
    return points * min(1.0, max(0.0, (figure - zero) / (full - zero)))


@dataclass
class CaseResult:
    name: str
    score: float
    max_score: float
    figure: str
    seconds: float
    checks: list[str] = field(default_factory=list)  # integrity lines, "ok: ..." or "FAIL: ..."
    details: dict = field(default_factory=dict)


def safe_extract(zip_path: Path, target: Path) -> Path:
    """Extract an untrusted zip into target; refuse absolute paths, '..', links and special files."""
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as err:
        raise BundleError(f"{zip_path}: not a readable zip ({err})") from None
    root = target.resolve()
    with archive:
        for info in archive.infolist():
            kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the zip records no file type
            if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
                raise BundleError(f"{zip_path}: refusing link or special file {info.filename!r}")
            dest = (root / info.filename).resolve()
            if os.path.isabs(info.filename) or ".." in Path(info.filename).parts or not dest.is_relative_to(root):
                raise BundleError(f"{zip_path}: refusing entry outside the bundle {info.filename!r}")
        try:
            archive.extractall(root)
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            raise BundleError(f"{zip_path}: corrupt zip ({err})") from None
    if not (root / "homework" / "__init__.py").exists():
        raise BundleError(f"{zip_path}: no homework/ package at the top of the bundle")
    return root


def _run_worker(package_parent: Path, case: str, request: dict, timeout: float) -> tuple[dict | None, str]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(request, f)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    try:
        run = subprocess.run([sys.executable, str(WORKER), str(package_parent), case, f.name], cwd=package_parent,
                             capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s"
    finally:
        os.unlink(f.name)
    for line in reversed(run.stdout.splitlines()):
        if line.startswith("GRADER_RESULT "):
            return json.loads(line[len("GRADER_RESULT "):]), ""
    last = (run.stderr.strip().splitlines() or ["no output"])[-1]
    return None, f"failed: {last[:200]}"


def _grade_generation(parent, case, questions, timeout) -> CaseResult:
    start = time.time()
    out, error = _run_worker(parent, case, {"questions": questions}, timeout)
    seconds = time.time() - start
    if out is None:
        return CaseResult(case, 0.0, BANDS[case][0], "-", seconds, [f"FAIL: {error}"])
    checks = _param_check(out["params"])
    checks.append(f"ok: {out['empty']} of {len(questions)} completions empty; our padding-masked loss "
                  f"{out['masked_loss']:.2f} beside the course's {out['loss']:.2f}")
    score = band_score(case, out["loss"]) if not _failed(checks) else 0.0
    return CaseResult(case, score, BANDS[case][0], f"loss {out['loss']:.2f}", seconds, checks,
                      {"examples": out["examples"], "masked_loss": out["masked_loss"]})


def _param_check(params: int) -> list[str]:
    if params > MAX_PARAMS:
        return [f"FAIL: {params / 1e6:.0f} M parameters, over the {MAX_PARAMS / 1e6:.0f} M cap"]
    return [f"ok: {params / 1e6:.0f} M parameters"]


def _failed(checks: list[str]) -> bool:
    return any(c.startswith("FAIL") for c in checks)


def _accuracy(answers, truth) -> float:
    return sum(is_answer_valid(a, t) for a, t in zip(answers, truth)) / max(len(truth), 1)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or is_answer_valid(a, b, rel_tol=1e-3)


def _grade_model(parent, kind, valid, fresh, timeout) -> list[CaseResult]:
    start = time.time()
    request = {"kind": kind, "valid": [q for q, _ in valid], "fresh": [q for q, _ in fresh], "probe": N_PROBE,
               "adapter_file": str(parent / "homework" / f"{kind}_model" / "adapter_model.safetensors"),
               "base_dir": str(embedded_model_dir())}
    out, error = _run_worker(parent, kind, request, timeout)
    seconds = time.time() - start
    names = [kind] + (["rft_extra"] if kind == "rft" else [])
    if out is None:
        return [CaseResult(n, 0.0, BANDS[n][0], "-", seconds if n == kind else 0.0, [f"FAIL: {error}"])
                for n in names]
    answers = out["answers"]
    acc_valid = _accuracy(answers[:len(valid)], [a for _, a in valid])
    acc_fresh = _accuracy(answers[len(valid):], [a for _, a in fresh])
    checks = _param_check(out["params"])
    checks += [f"FAIL: shortcut: {o}" for o in out["overrides"]] or ["ok: answer/generate are the package's own"]
    gap = acc_valid - acc_fresh
    checks.append(f"{'FAIL' if gap > MEMORISE_GAP else 'ok'}: fresh questions {acc_fresh:.2f} vs file {acc_valid:.2f}"
                  + (" (memorising or looking up)" if gap > MEMORISE_GAP else ""))
    probe_answers = answers[len(valid):len(valid) + N_PROBE]
    regenerated = [parse_answer(t) for t in out["regenerated"]]
    agree = sum(_same(a, b) for a, b in zip(probe_answers, regenerated)) / max(len(regenerated), 1)
    checks.append(f"{'FAIL' if agree < AGREEMENT else 'ok'}: answers match the grader's own decoding of the model "
                  f"({agree:.0%})")
    if "adapter_problems" in out:
        checks += [f"FAIL: {p}" for p in out["adapter_problems"]] or [
            "ok: adapter in the model equals the bundle's file, is trained, base weights untouched"]
    if "adapter_off" in out:
        changed = sum(not _same(a, b) for a, b in zip(probe_answers, out["adapter_off"]))
        checks.append(f"{'FAIL' if changed == 0 else 'ok'}: switching the adapter off changes {changed}/"
                      f"{len(out['adapter_off'])} answers")
    ok = not _failed(checks)
    details = {"wrong": [(q, a, t) for (q, t), a in zip(valid, answers) if not is_answer_valid(a, t)][:10]}
    results = [CaseResult(kind, band_score(kind, acc_valid) if ok else 0.0, BANDS[kind][0],
                          f"accuracy {acc_valid:.2f}", seconds, checks, details)]
    if kind == "rft":
        results.append(CaseResult("rft_extra", band_score("rft_extra", acc_valid) if ok else 0.0,
                                  BANDS["rft_extra"][0], f"accuracy {acc_valid:.2f}", 0.0))
    return results


def _missing(parent: Path, kind: str) -> str | None:
    if kind in ("sft", "rft") and not (parent / "homework" / f"{kind}_model" / "adapter_model.safetensors").exists():
        return f"no trained adapter in homework/{kind}_model"
    if not (parent / "homework" / f"{kind}.py").exists():
        return f"no homework/{kind}.py"
    return None


ALL_CASES = ("generate", "batched_generate", "cot", "sft", "rft")


def grade(target: str | Path, n_questions: int = N_QUESTIONS, timeout: float = CASE_TIMEOUT,
          seed: int | None = None, cases: tuple[str, ...] = ALL_CASES) -> list[CaseResult]:
    """Grade a folder holding homework/ (or the homework folder itself), or a bundle zip.

    seed fixes the fresh questions (default: a new random draw per grading); cases picks a subset.
    """
    target = Path(target)
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
        if target.suffix == ".zip":
            parent = safe_extract(target, Path(tmp))
        else:
            parent = target.resolve().parent if target.name == "homework" else target.resolve()
            if not (parent / "homework" / "__init__.py").exists():
                raise BundleError(f"{target}: no homework package here")
        valid = [row[:2] for row in load_rows(DATA_DIR / "valid.json")[:n_questions]]
        # fresh questions: drawn now with a random seed, never written to disk, never seen by the package
        fresh = generate(n_questions, seed=random.SystemRandom().randrange(2**31) if seed is None else seed)
        results = []
        stages = [c for c in ("generate", "batched_generate", "cot", "sft", "rft") if c in cases]
        for kind in tqdm(stages, desc="grading", unit="case"):
            if kind in ("generate", "batched_generate"):
                results.append(_grade_generation(parent, kind, [q for q, _ in valid[:N_GENERATION]], timeout))
                continue
            reason = _missing(parent, kind)
            if reason:
                results += [CaseResult(n, 0.0, BANDS[n][0], "-", 0.0, [f"FAIL: {reason}"])
                            for n in [kind] + (["rft_extra"] if kind == "rft" else [])]
            else:
                results += _grade_model(parent, kind, valid, fresh, timeout)
    return results


def report(results: list[CaseResult], verbose: bool = False) -> str:
    lines = [f"{'case':<18}{'score':>12}  {'figure':<16}{'time':>8}"]
    for r in results:
        lines.append(f"{r.name:<18}{r.score:>6.1f} / {r.max_score:<3g}  {r.figure:<16}{r.seconds:>7.0f}s")
        for check in r.checks if verbose else [c for c in r.checks if c.startswith("FAIL")]:
            lines.append(f"    {check}")
        if verbose and r.details:
            lines.append(f"    details: {json.dumps(r.details)[:600]}")
    total = sum(r.score for r in results)
    lines.append(f"total {total:.1f} / {sum(r.max_score for r in results):g}")
    return "\n".join(lines)
