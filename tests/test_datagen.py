"""Rejection sampling: the acceptance filter, merging, and resumption after an interruption."""

import json

import pytest

from homework import datagen, formats, soundness

JUDGE = [
    ("1 m = 3.28 ft, so 7 * 3.28 = 22.96. <answer>22.96</answer>", 22.9659, "ok"),         # right
    ("7 * 3.28 = 23. <answer>23</answer> and more text", 22.9659, "ok"),                  # junk after: cut
    ("7 * 3.28 = 30. <answer>30</answer>", 22.9659, "wrong value"),                       # outside 5 %
    ("7 * 3.28 = 22.96", 22.9659, "no tag"),                                              # never answered
    ("7 * 3.28 = 22.96 <answer>22.9", 22.9659, "truncated"),                              # cut by the token limit
    ("<answer>abc</answer>", 1.0, "wrong value"),                                         # tag without a number
    ("<answer>2.21e9</answer>", 2208984800.0, "ok"),                                     # exponent form
]


@pytest.mark.parametrize("text,answer,verdict", JUDGE)
def test_judge(text, answer, verdict):
    got, reasoning = formats.judge(text, answer)
    assert got == verdict
    if verdict == "ok":
        assert reasoning.endswith("</answer>")


class FakeSampler:
    """Answers each question with two samples, one right (longer or shorter) and one wrong."""

    max_new_tokens = 8

    def __init__(self, truth, fail_after=None):
        self.truth, self.fail_after, self.seen = truth, fail_after, []

        class Tok:
            def __call__(self, text, add_special_tokens=False):
                return type("Enc", (), {"input_ids": text.split()})()
        self.tokenizer = Tok()

    def format_prompt(self, q):
        return q

    def batched_generate(self, prompts, num_return_sequences=None, temperature=0):
        if self.fail_after is not None and len(self.seen) >= self.fail_after:
            raise KeyboardInterrupt
        self.seen += prompts
        return [[f"long way round. <answer>{self.truth[p]}</answer>", f"<answer>{self.truth[p]}</answer>",
                 "<answer>-1</answer>"][:num_return_sequences] for p in prompts]


@pytest.fixture
def questions(tmp_path):
    rows = [[f"How many feet are in {i} meters?", round(i * 3.28084, 4)] for i in range(1, 41)]
    path = tmp_path / "q.json"
    path.write_text(json.dumps(rows))
    return path, dict(rows)


def test_keeps_shortest_correct_and_logs_rejects(tmp_path, questions, monkeypatch):
    path, truth = questions
    monkeypatch.setattr(datagen, "_sampler", lambda *args: FakeSampler(truth))
    out = tmp_path / "rft.json"
    datagen.generate_dataset(str(out), oversample=3, questions=str(path))
    rows = json.loads(out.read_text())
    assert len(rows) == 40 and all(r[2] == f"<answer>{r[1]}</answer>" for r in rows)
    rejected = [json.loads(line) for line in (tmp_path / "rft.json.rejected.jsonl").read_text().splitlines()]
    assert len(rejected) == 40 and {r["reason"] for r in rejected} == {"wrong value"}
    assert not list(tmp_path.glob("*.progress.jsonl")), "progress file left after a finished run"


def test_interrupted_run_resumes_without_resampling(tmp_path, questions, monkeypatch):
    path, truth = questions
    monkeypatch.setattr("homework.base_llm.SAMPLE_CHUNK", 32)  # 16 questions x 2 samples per step
    first = FakeSampler(truth, fail_after=16)  # dies on the second chunk
    monkeypatch.setattr(datagen, "_sampler", lambda *args: first)
    out = tmp_path / "rft.json"
    with pytest.raises(KeyboardInterrupt):
        datagen.generate_dataset(str(out), oversample=2, questions=str(path))
    assert not out.exists(), "an interrupted run must not leave a half-written output"
    second = FakeSampler(truth)
    monkeypatch.setattr(datagen, "_sampler", lambda *args: second)
    datagen.generate_dataset(str(out), oversample=2, questions=str(path))
    assert not set(first.seen) & set(second.seen), "a finished question was sampled twice"
    assert len(json.loads(out.read_text())) == 40


def test_later_round_only_samples_questions_without_a_row(tmp_path, questions, monkeypatch):
    path, truth = questions
    out = tmp_path / "rft.json"
    q0 = next(iter(truth))
    out.write_text(json.dumps([[q0, truth[q0], f"<answer>{truth[q0]}</answer>"]]))
    sampler = FakeSampler(truth)
    monkeypatch.setattr(datagen, "_sampler", lambda *args: sampler)
    datagen.generate_dataset(str(out), oversample=2, questions=str(path), model="rft", keep="shortest")
    assert q0 not in sampler.seen and len(json.loads(out.read_text())) == 40


Q = "How many feet are in 7 meters?"  # truth 22.9659; registry fact 1 meter = 3.28084 feet
# (the strict check's own table of cases is tests/test_soundness.py)


class SoundSampler(FakeSampler):
    """First a short loose sample (right within 5 %, product not worked out), then a longer sound one."""

    def batched_generate(self, prompts, num_return_sequences=None, temperature=0):
        self.seen += prompts
        out = []
        for p in prompts:
            n = int(p.split()[-2])
            out.append([f"<answer>{self.truth[p]}</answer>",
                        f"1 meter = 3.28 feet, so {n} meters = {n} * 3.28 = {n * 3.28:.4g}. <answer>{n * 3.28:.4g}</answer>"])
        return out


def test_keep_sound_prefers_and_upgrades_rows(tmp_path, questions, monkeypatch):
    path, truth = questions
    out = tmp_path / "rft.json"
    q_loose, q_sound = list(truth)[:2]
    sound_row = [q_sound, truth[q_sound], "1 meter = 3.28 feet, so 2 meters = 2 * 3.28 = 6.56. <answer>6.56</answer>"]
    out.write_text(json.dumps([[q_loose, truth[q_loose], f"<answer>{truth[q_loose]}</answer>"], sound_row]))
    sampler = SoundSampler(truth)
    monkeypatch.setattr(datagen, "_sampler", lambda *args: sampler)
    datagen.generate_dataset(str(out), oversample=2, questions=str(path), model="rft")
    rows = {r[0]: r for r in json.loads(out.read_text())}
    assert q_loose in sampler.seen, "a row that is not sound is sampled again"
    assert q_sound not in sampler.seen and rows[q_sound] == sound_row
    assert len(rows) == 40 and all(soundness.is_sound(q, r[2]) for q, r in rows.items())


def test_keep_shortest_keeps_the_old_choice(tmp_path, questions, monkeypatch):
    path, truth = questions
    monkeypatch.setattr(datagen, "_sampler", lambda *args: SoundSampler(truth))
    out = tmp_path / "rft.json"
    datagen.generate_dataset(str(out), oversample=2, questions=str(path), keep="shortest")
    assert all(r[2] == f"<answer>{r[1]}</answer>" for r in json.loads(out.read_text()))
    with pytest.raises(ValueError, match="--keep"):
        datagen.generate_dataset(str(out), questions=str(path), keep="longest")


def test_hint_is_in_the_sampling_prompt_but_not_in_the_rows(tmp_path, questions, monkeypatch):
    path, truth = questions
    sampler = FakeSampler({formats.with_hint(q): a for q, a in truth.items()})
    monkeypatch.setattr(datagen, "_sampler", lambda *args: sampler)
    out = tmp_path / "rft.json"
    datagen.generate_dataset(str(out), oversample=2, questions=str(path), model="rft", hint=True)
    assert all(p.startswith("How many feet") and p.endswith("\nFact: 1 meter = 3.28 feet") for p in sampler.seen)
    assert {r[0] for r in json.loads(out.read_text())} == set(truth), "rows must keep the bare question"


def test_calculator_rows_are_marked_and_train_like_the_others(tmp_path, questions, monkeypatch):
    """With --calculator, a kept row whose product the calculator wrote carries the mark; one the model worked
    out in its own words does not, and neither does any row of a run without the calculator."""
    from homework import calculator, rft

    path, truth = questions

    class CalculatorSampler(FakeSampler):  # odd quantities: the calculator's close; even: the model's own words
        def batched_generate(self, prompts, num_return_sequences=None, temperature=0):
            out = []
            for p in prompts:
                n = int(p.split()[-2])
                setup = f"1 meter = 3.28 feet, so {n} meters = {n} * 3.28 ="
                out.append([setup + (calculator.calculation(setup) if n % 2 else
                                     f" {n * 3.28:.4g} feet. <answer>{n * 3.28:.4g}</answer>")])
            return out

    monkeypatch.setattr(datagen, "_sampler", lambda *args: CalculatorSampler(truth))
    monkeypatch.setattr(datagen, "with_calculator", lambda llm, steps=False: llm)
    out = tmp_path / "rft.json"
    assert "(20 calculator-filled)" in datagen.generate_dataset(str(out), oversample=1, questions=str(path),
                                                                 model="rft", calculator=True)
    rows = json.loads(out.read_text())
    marked = {int(r[0].split()[-2]) for r in rows if r[3:] == [{"calculator_filled": True}]}
    assert len(rows) == 40 and marked == set(range(1, 41, 2))
    assert len(rft.training_rows(rft.RFTConfig(data=str(out), reword=0))) == 40
    plain = tmp_path / "plain.json"
    datagen.generate_dataset(str(plain), oversample=1, questions=str(path), model="rft")
    assert all(len(r) == 3 for r in json.loads(plain.read_text()))


def test_calculator_keeps_only_sound_rows_and_redo_revisits_the_faulty_ones(tmp_path, questions, monkeypatch):
    """Under the calculator a right but loose sample is dropped, not kept; --redo product with --questions rows
    samples again exactly the rows whose product is wrong, and replaces them with sound ones."""
    path, truth = questions
    q_loose, q_product, q_sound = list(truth)[:3]
    out = tmp_path / "rft.json"
    product_row = [q_product, truth[q_product], "1 meter = 3.28 feet, so 2 meters = 2 * 3.28 = 6.7. <answer>6.7</answer>"]
    sound_row = [q_sound, truth[q_sound], "1 meter = 3.28 feet, so 3 meters = 3 * 3.28 = 9.84. <answer>9.84</answer>"]
    loose_row = [q_loose, truth[q_loose], f"<answer>{truth[q_loose]}</answer>"]
    out.write_text(json.dumps([loose_row, product_row, sound_row]))
    sampler = SoundSampler(truth)  # a loose sample first, then a sound one
    monkeypatch.setattr(datagen, "_sampler", lambda *args: sampler)
    monkeypatch.setattr(datagen, "with_calculator", lambda llm, steps=False: llm)
    datagen.generate_dataset(str(out), oversample=2, questions="rows", model="rft", calculator=True, redo="product")
    assert sampler.seen == [q_product], "only the row with a wrong product is sampled again"
    rows = {r[0]: r for r in json.loads(out.read_text())}
    assert rows[q_loose] == loose_row and rows[q_sound] == sound_row and len(rows) == 3
    assert rows[q_product][2].endswith("= 6.56. <answer>6.56</answer>")
    loose_only = tmp_path / "loose.json"

    class LooseSampler(FakeSampler):
        def batched_generate(self, prompts, num_return_sequences=None, temperature=0):
            return [[f"<answer>{self.truth[p]}</answer>"] * num_return_sequences for p in prompts]

    monkeypatch.setattr(datagen, "_sampler", lambda *args: LooseSampler(truth))
    datagen.generate_dataset(str(loose_only), oversample=2, questions=str(path), model="rft", calculator=True)
    assert json.loads(loose_only.read_text()) == []


def test_only_sound_writes_sound_rows_only(tmp_path, questions, monkeypatch):
    """--keep only_sound, without the calculator: a question whose samples are all loose gets no row; the
    others get their sound sample, so every row written passes the strict check."""
    path, truth = questions
    loose_first = list(truth)[:5]

    class MixedSampler(FakeSampler):  # five questions get loose samples only; the rest a loose then a sound one
        def batched_generate(self, prompts, num_return_sequences=None, temperature=0):
            out = []
            for p in prompts:
                n = int(p.split()[-2])
                sound = f"1 meter = 3.28 feet, so {n} meters = {n} * 3.28 = {n * 3.28:.4g}. <answer>{n * 3.28:.4g}</answer>"
                loose = f"<answer>{self.truth[p]}</answer>"
                out.append([loose, loose] if p in loose_first else [loose, sound])
            return out

    monkeypatch.setattr(datagen, "_sampler", lambda *args: MixedSampler(truth))
    out = tmp_path / "rft.json"
    datagen.generate_dataset(str(out), oversample=2, questions=str(path), model="pairs", keep="only_sound")
    rows = json.loads(out.read_text())
    assert len(rows) == len(truth) - 5 and not {r[0] for r in rows} & set(loose_first)
    assert all(soundness.is_sound(q, reasoning) for q, _, reasoning in rows)
    with pytest.raises(ValueError, match="only_sound"):
        datagen.generate_dataset(str(out), questions=str(path), keep="soundest")


def test_naive_baseline_is_measured_in_the_same_run(tmp_path, questions, monkeypatch, tiny_llm, capsys):
    path, _ = questions
    tiny_llm.max_new_tokens = 4
    monkeypatch.setattr(datagen, "_sampler", lambda *args: tiny_llm)
    datagen.generate_dataset(str(tmp_path / "rft.json"), oversample=2, questions=str(path), model="rft",
                             limit=3, naive_baseline=2)
    out = capsys.readouterr().out
    assert "new tokens/s" in out and "naive per-question loop:" in out
