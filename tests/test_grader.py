"""The grader catches each way of faking a model, passes honest work, and grades a bundle like its folder."""

import shutil
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import bundle
from grader import BundleError, grade, report, safe_extract
from homework.questions import generate

REPO = Path(__file__).resolve().parent.parent
N = 6  # questions per model case: enough to exercise every check in seconds


def _copy_package(dest: Path) -> Path:
    shutil.copytree(REPO / "homework", dest / "homework",
                    ignore=shutil.ignore_patterns("__pycache__", "sft_model", "rft_model", ".*"))
    return dest


@pytest.fixture(scope="module")
def honest(tmp_path_factory):
    """A copy of the package with the committed SFT adapter: the honest work this repository ships.

    Earlier this fixture trained an 80-step adapter of its own (~70 s); the committed one is a real trained
    adapter too, and grading it here also checks that what we ship passes every check.
    """
    root = _copy_package(tmp_path_factory.mktemp("honest"))
    shutil.copytree(REPO / "homework" / "sft_model", root / "homework" / "sft_model")
    return root


def _variant(honest: Path, tmp_path: Path, patch: str, file: str = "sft.py") -> Path:
    root = tmp_path / "variant"
    shutil.copytree(honest, root, ignore=shutil.ignore_patterns("__pycache__"))
    path = root / "homework" / file
    path.write_text(path.read_text() + "\n" + patch)
    return root


def _sft(root, **kw):
    (result,) = grade(root, n_questions=N, cases=("sft",), seed=7, **kw)
    return result


# the table a cheat would carry: every validation answer, keyed by question
LOOKUP = f"{{q: a for q, a in __import__('json').load(open({str(REPO / 'data' / 'valid.json')!r}))}}"


@pytest.mark.slow
def test_honest_package_passes_every_check(honest):
    result = _sft(honest)
    assert result.checks and not [c for c in result.checks if c.startswith("FAIL")], result.checks
    assert any(c.startswith("ok: every prompt is its question") for c in result.checks), "no second run needed"
    assert 0 < result.course_seconds < result.seconds and not result.course_warning()


def test_a_case_over_the_course_s_limit_is_warned_of():
    from grader.grader import CaseResult

    over = CaseResult("generate", 10.0, 10, "loss 6.00", 70.0, course_seconds=56.0)
    under = CaseResult("sft", 25.0, 25, "accuracy 0.97, fresh 0.98", 9.0, course_seconds=6.0)
    untimed = CaseResult("cot", 0.0, 25, "-", 1.0, ["FAIL: no homework/cot.py"])
    text = report([over, under, untimed])
    assert "    WARNING: generate took 56 s where the course's grader allows 40 s" in text
    assert text.count("WARNING") == 1 and "56s of 40" in text and "6s of 60" in text


def test_the_worker_times_the_load_and_the_file_s_questions_not_the_fresh_ones():
    """The course times the model's load and its 100 questions; the fresh ones are ours, asked after."""
    import time
    from types import SimpleNamespace

    from grader import worker

    class Model:
        def answer(self, *questions):
            time.sleep(0.1 if questions == ("a", "b") else 1.0)
            return [1.0] * len(questions)

        def format_prompt(self, question):
            return f"Q: {question}"

    homework = SimpleNamespace(load_sft=lambda: time.sleep(0.2) or Model())
    out = worker.case_model(homework, {"kind": "sft", "valid": ["a", "b"], "fresh": ["c"]})
    assert out["answers"] == [1.0, 1.0, 1.0] and 0.3 <= out["seconds"] < 1.0
    assert out["prompts"] == ["Q: a", "Q: b", "Q: c"], "the clean room decodes the package's own prompt texts"


@pytest.mark.slow
@pytest.mark.parametrize("name,patch,file,expected", [
    ("lookup subclass in load()",
     f"_real_load = load\ndef load():\n    llm = _real_load()\n    table = {LOOKUP}\n"
     "    class Lookup(type(llm)):\n        def answer(self, *qs):\n            return [table.get(q, 1.0) for q in qs]\n"
     "    llm.__class__ = Lookup\n    return llm\n", "sft.py", "answers match the clean room"),
    ("answer replaced on the instance",
     f"_real_load = load\ndef load():\n    llm = _real_load()\n    table = {LOOKUP}\n"
     "    llm.answer = lambda *qs: [table.get(q, 1.0) for q in qs]\n    return llm\n", "sft.py",
     "answers match the clean room"),
    ("lookup inside the package's own BaseLLM.answer",
     f"_TABLE = {LOOKUP}\n"
     "BaseLLM.answer = lambda self, *qs: [_TABLE.get(q, 1.0) for q in qs]\n", "base_llm.py",
     "answers match the clean room"),
])
def test_cheats_are_caught(honest, tmp_path, name, patch, file, expected):
    result = _sft(_variant(honest, tmp_path, patch, file))
    fails = [c for c in result.checks if c.startswith("FAIL")]
    assert any(expected in c for c in fails), (name, result.checks)
    assert result.score == 0.0, name


def _train_tiny_adapter(checkpoint: str, rows: list[tuple[str, str]], out: Path, steps: int = 30) -> None:
    """A rank-4 LoRA adapter on the tiny base, trained (loss on the completion only) to write each row's
    completion, then EOS, after its prompt."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32),
                           LoraConfig(r=4, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    encoded = []
    for prompt, completion in rows:
        asked = tokenizer(prompt, add_special_tokens=False).input_ids
        said = tokenizer(completion, add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
        encoded.append((asked + said, [-100] * len(asked) + said))
    width = max(len(ids) for ids, _ in encoded)
    ids = torch.tensor([i + [tokenizer.eos_token_id] * (width - len(i)) for i, _ in encoded])
    labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in encoded])
    mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in encoded])
    for _ in range(steps):
        model(ids, attention_mask=mask, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(out)


@pytest.mark.slow
def test_a_package_with_its_own_prompt_format_is_graded_on_that_format(tiny_checkpoint, tmp_path, monkeypatch):
    """An honest bundle whose prompt is not this repository's: its tiny adapter was trained on "Zq: <question>"
    and answers 7 there, 3 after the bare question. The clean room decodes the package's own prompt texts, so it
    agrees with the package and the case passes every check; a clean room that rendered this repository's
    prompt (the bare question) read 3 where the package said 7, and failed it."""
    root = _copy_package(tmp_path)
    questions = [q for q, _ in generate(16, seed=11)]
    rows = [(f"Zq: {q}", " <answer>7</answer>") for q in questions] + [(q, " <answer>3</answer>") for q in questions]
    _train_tiny_adapter(tiny_checkpoint, rows, root / "homework" / "sft_model")
    sft = root / "homework" / "sft.py"
    sft.write_text(sft.read_text() + "\n_own_load = load\ndef load():\n    llm = _own_load()\n"
                   "    llm.format_prompt = lambda question: 'Zq: ' + question\n    return llm\n")
    monkeypatch.setenv("HOMEWORK_CHECKPOINT", tiny_checkpoint)
    result = _sft(root)
    assert not [c for c in result.checks if c.startswith("FAIL")], result.checks
    assert any(c.startswith("ok: the package's own answers match") and "(100%)" in c for c in result.checks), \
        result.checks


@pytest.mark.slow
def test_untrained_adapter_is_caught(honest, tmp_path):
    root = tmp_path / "untrained"
    shutil.copytree(honest, root)
    path = root / "homework" / "sft_model" / "adapter_model.safetensors"
    tensors = {k: torch.zeros_like(v) if "lora_B" in k else v for k, v in load_file(path).items()}
    save_file(tensors, path)
    result = _sft(root)
    assert any("untrained" in c for c in result.checks if c.startswith("FAIL")), result.checks
    assert result.score == 0.0


@pytest.mark.slow
def test_missing_adapter_scores_zero_with_reason(tmp_path):
    root = _copy_package(tmp_path)
    result = _sft(root)
    assert result.score == 0.0 and "no trained adapter in homework/sft_model" in result.checks[0]


@pytest.mark.slow
def test_folder_and_bundle_grade_identically(honest, tmp_path):
    zip_path = bundle.make_bundle(honest / "homework", "UT123", out_dir=tmp_path)
    cases = ("batched_generate", "sft")
    folder = grade(honest, n_questions=N, cases=cases, seed=3)
    bundled = grade(zip_path, n_questions=N, cases=cases, seed=3)
    assert [(r.name, r.score, r.figure) for r in folder] == [(r.name, r.score, r.figure) for r in bundled]
    assert "total" in report(bundled)


def test_bundle_leaves_out_training_leftovers(tmp_path):
    pkg = tmp_path / "homework"
    (pkg / "sft_model" / "checkpoint-25").mkdir(parents=True)
    (pkg / "sft_model" / "runs").mkdir()
    (pkg / "__pycache__").mkdir()
    for rel in ["__init__.py", "sft_model/adapter_model.safetensors", "sft_model/checkpoint-25/optimizer.pt",
                "sft_model/runs/events.out", "__pycache__/x.pyc", "sft_model/optimizer.pt"]:
        (pkg / rel).write_text("x")
    names = set(zipfile.ZipFile(bundle.make_bundle(pkg, "U1", out_dir=tmp_path)).namelist())
    assert names == {"homework/__init__.py", "homework/sft_model/adapter_model.safetensors"}


def test_bundle_refuses_over_50_mb_and_names_largest(tmp_path):
    pkg = tmp_path / "homework"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    with open(pkg / "huge.bin", "wb") as f:
        f.truncate(51 * 1024 * 1024)
    with pytest.raises(SystemExit, match=r"over the 50 MB limit; largest: homework/huge.bin"):
        bundle.make_bundle(pkg, "U2", out_dir=tmp_path)
    assert not list(tmp_path.glob("U2.zip*")), "a refused bundle left a file behind"


@pytest.mark.parametrize("entry,kind", [
    ("../evil.py", "outside"),          # climbs out of the extraction folder
    ("/abs/evil.py", "outside"),        # absolute path
    ("homework/link", "link"),          # symbolic link
])
def test_extraction_refuses_unsafe_entries(tmp_path, entry, kind):
    zip_path = tmp_path / "bad.zip"
    with zipfile.ZipFile(zip_path, "w") as z:
        z.writestr("homework/__init__.py", "")
        info = zipfile.ZipInfo(entry)
        if kind == "link":
            info.external_attr = 0o120777 << 16
        z.writestr(info, "target")
    (tmp_path / "out").mkdir()
    with pytest.raises(BundleError, match=kind):
        safe_extract(zip_path, tmp_path / "out")
    assert not (tmp_path / "evil.py").exists()


def _zip_of(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("homework/__init__.py", "")
        for name, data in entries.items():
            z.writestr(name, data)
    return path


@pytest.mark.parametrize("entries,reason", [
    ({"homework/bomb.bin": b"\0" * (64 * 2**20)}, "expands"),  # 64 MB of zeros in ~64 KB
    ({f"homework/f{i}.py": b"" for i in range(2_100)}, "entries, over"),
])
def test_zip_bombs_are_refused_before_extraction(tmp_path, entries, reason):
    zip_path = _zip_of(tmp_path / "bomb.zip", entries)
    (tmp_path / "out").mkdir()
    with pytest.raises(BundleError, match=reason):
        safe_extract(zip_path, tmp_path / "out")
    assert not any((tmp_path / "out").iterdir()), "nothing is written before the checks pass"


def test_a_zip_over_the_total_size_is_refused(tmp_path, monkeypatch):
    from grader import untrusted

    monkeypatch.setattr(untrusted, "ZIP_BYTES", 2**20)
    zip_path = _zip_of(tmp_path / "big.zip", {f"homework/w{i}.bin": bytes(range(256)) * 1024 for i in range(5)})
    (tmp_path / "out").mkdir()
    with pytest.raises(BundleError, match="uncompressed, over"):
        safe_extract(zip_path, tmp_path / "out")


def test_overlapping_zip_entries_are_refused(tmp_path):
    """Two central-directory entries that point at one stored byte range (the overlapping-entry bomb)."""
    zip_path = _zip_of(tmp_path / "overlap.zip", {"homework/a.py": b"x = 1\n" * 100})
    data = bytearray(zip_path.read_bytes())
    eocd = data.rindex(b"PK\x05\x06")
    cd_offset = int.from_bytes(data[eocd + 16:eocd + 20], "little")
    cd = bytes(data[cd_offset:eocd])
    last = cd.rindex(b"PK\x01\x02")  # the central entry of homework/a.py
    twin = bytearray(cd[last:])
    name_len = int.from_bytes(twin[28:30], "little")
    twin[46:46 + name_len] = b"homework/b.py"[:name_len].ljust(name_len, b"_")
    new_cd = cd + bytes(twin)
    count = int.from_bytes(data[eocd + 10:eocd + 12], "little") + 1
    end = bytearray(data[eocd:eocd + 22])
    end[8:10] = end[10:12] = count.to_bytes(2, "little")
    end[12:16] = len(new_cd).to_bytes(4, "little")
    zip_path.write_bytes(bytes(data[:cd_offset]) + new_cd + bytes(end))
    (tmp_path / "out").mkdir()
    with pytest.raises(BundleError, match="overlaps"):
        safe_extract(zip_path, tmp_path / "out")


def test_result_lines_nested_past_the_bound_score_nothing_and_grading_goes_on():
    from grader import untrusted

    result, reason = untrusted.result_of(0, "GRADER_RESULT " + "[" * 100_000 + "]" * 100_000 + "\n", "")
    assert result is None and "nests deeper" in reason
    assert untrusted.result_of(0, 'GRADER_RESULT {"answers": [[1]]}\n', "")[0] == {"answers": [[1]]}


def test_texts_past_their_bound_are_refused_by_characters_then_tokens():
    from grader import untrusted

    class Words:  # a tokenizer of words, enough to count
        def __call__(self, texts, add_special_tokens=False):
            return type("Batch", (), {"input_ids": [t.split() for t in texts]})()

    chars, tokens = untrusted.GENERATION_BOUND
    assert untrusted.strings(["a b", "c"], 2, (chars, tokens), Words()) == (["a b", "c"], "")
    assert "characters, over" in untrusted.strings(["x" * (chars + 1), ""], 2, (chars, tokens), Words())[1]
    assert "tokens, over" in untrusted.strings(["a " * (tokens + 1), ""], 2, (chars, tokens), Words())[1]
    assert untrusted.strings(["a"], 2, (chars, tokens), Words())[0] is None


def test_without_a_sandbox_nothing_is_graded_unless_unsafe(tmp_path, monkeypatch):
    from grader import sandbox

    monkeypatch.setattr(sandbox, "probe", lambda: "no user namespaces (test)")
    with pytest.raises(BundleError, match="--unsafe"):
        grade(tmp_path)
    assert report([], verbose=False).splitlines()[0].startswith("UNSAFE: graded without a sandbox")


def test_corrupt_zip_is_a_clear_error(tmp_path):
    zip_path = tmp_path / "broken.zip"
    zip_path.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(BundleError, match="not a readable zip"):
        grade(zip_path)


@pytest.mark.slow
def test_hanging_bundle_is_stopped_by_the_case_timeout(honest, tmp_path):
    root = _variant(honest, tmp_path, "_real_load = load\ndef load():\n    import time\n    time.sleep(600)\n")
    result = _sft(root, timeout=8)
    assert result.score == 0.0 and any("timed out" in c for c in result.checks), result.checks


# Attacks on the grader itself, each appended to the honest package's homework/__init__.py. Both make the
# package's own answers the true ones; the clean room, decoding the adapter itself, does not agree.
REWRITE_RESULT = '''
import builtins as _builtins, json as _json, sys as _sys
from homework.units import parse_question as _parse
_print = _builtins.print
def _forge(*args, **kwargs):
    if args and str(args[0]).startswith("GRADER_RESULT "):
        request = _json.load(open(_sys.argv[3]))
        questions = request.get("valid", []) + request.get("fresh", [])
        result = _json.loads(str(args[0])[len("GRADER_RESULT "):])  # the rest of the line kept as it was
        if "answers" in result:
            result["answers"] = [_parse(q).answer for q in questions]
        args = ("GRADER_RESULT " + _json.dumps(result),)
    return _print(*args, **kwargs)
_builtins.print = _forge
'''
PATCH_GENERATE = '''
import torch as _torch, transformers as _transformers
from homework.checkpoints import embedded_model_dir as _model_dir
from homework.units import parse_question as _parse
def _fake_generate(self, input_ids=None, **kwargs):
    tok = _transformers.AutoTokenizer.from_pretrained(_model_dir())
    new = []
    for row in input_ids:
        try:
            answer = _parse(tok.decode(row, skip_special_tokens=True)).answer
        except ValueError:
            answer = 1.0
        new.append(tok(f" <answer>{answer:.6g}</answer>", add_special_tokens=False).input_ids + [tok.eos_token_id])
    width = max(len(n) for n in new)
    new = [n + [tok.eos_token_id] * (width - len(n)) for n in new]
    return _torch.cat([input_ids, _torch.tensor(new, device=input_ids.device)], dim=1)
_transformers.GenerationMixin.generate = _fake_generate
'''


@pytest.mark.slow
@pytest.mark.parametrize("name,patch", [("rewritten result line", REWRITE_RESULT),
                                        ("process-wide generate patch", PATCH_GENERATE)])
def test_attacks_on_the_grader_score_nothing(honest, tmp_path, name, patch):
    result = _sft(_variant(honest, tmp_path, patch, "__init__.py"))
    fails = [c for c in result.checks if c.startswith("FAIL")]
    assert any("answers match the clean room" in c for c in fails), (name, result.checks)
    assert result.score == 0.0, name


@pytest.mark.slow
def test_cot_prompt_carrying_the_answer_is_refused(tmp_path):
    root = _copy_package(tmp_path)
    cot = root / "homework" / "cot.py"
    cot.write_text(cot.read_text() + '''
_honest_prompt = CoTModel.format_prompt
def _leaky(self, question):
    from .units import parse_question
    return _honest_prompt(self, question).replace(question, f"{question} (answer: {parse_question(question).answer:.4g})")
CoTModel.format_prompt = _leaky
''')
    (result,) = grade(root, n_questions=N, cases=("cot",), seed=7)
    assert result.score == 0.0 and any("carry their question's own answer" in c for c in result.checks), result.checks


@pytest.mark.slow
def test_cot_answer_key_in_the_shared_instructions_is_refused(tmp_path):
    """The package reads its request and writes every graded question's answer into the instructions that all
    its prompts share, where the per-question leak check does not look; asked again among other questions,
    its prompts change."""
    root = _copy_package(tmp_path)
    cot = root / "homework" / "cot.py"
    cot.write_text(cot.read_text() + '''
import json as _json, sys as _sys
from .units import parse_question as _parse
_request = _json.load(open(_sys.argv[3]))
_asked = _request.get("valid", []) + _request.get("fresh", []) + _request.get("questions", [])
INSTRUCTIONS = INSTRUCTIONS + " Known results: " + "; ".join(f"{q} {_parse(q).answer:.4g}" for q in _asked)
''')
    (result,) = grade(root, n_questions=N, cases=("cot",), seed=7)
    assert result.score == 0.0 and any("changed when other questions were asked" in c for c in result.checks), \
        result.checks


@pytest.mark.slow
def test_honest_cot_passes_every_check(tmp_path):
    (result,) = grade(_copy_package(tmp_path), n_questions=N, cases=("cot",), seed=7)
    assert result.checks and not [c for c in result.checks if c.startswith("FAIL")], result.checks
    assert any("same when other questions are asked" in c for c in result.checks)


def test_model_points_come_from_the_lower_of_file_and_fresh_accuracy():
    from grader.grader import band_score, model_points

    assert model_points("rft", 0.95, 0.65) == band_score("rft", 0.65) < band_score("rft", 0.95)
    assert model_points("sft", 0.50, 0.90) == band_score("sft", 0.50)
    assert model_points("rft_extra", 0.80, 0.75) == band_score("rft_extra", 0.75) < 5


@pytest.mark.parametrize("file,fresh,n,flagged", [
    (0.95, 0.70, 100, True),    # a memorised file at the grader's size
    (0.95, 0.80, 100, False),   # within the 0.2 gap
    (0.60, 0.38, 100, True),    # 0.22 at p ~0.5: three standard errors are 0.21
    (1.00, 0.50, 6, False),     # 6 questions a side: an honest model's luck (the CoT test's size)
    (1.00, 0.00, 6, True),
])
def test_the_memorising_check_needs_a_gap_beyond_chance(file, fresh, n, flagged):
    from grader.grader import _memorised

    assert _memorised(file, fresh, n, n) == flagged
