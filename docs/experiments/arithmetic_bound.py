"""How far can the RFT adapter's arithmetic go, and on which rows? (docs/experiments.md, 2026-12-02, "what
limits the pure model's arithmetic: the rows, not the model").

    python docs/experiments/arithmetic_bound.py rows /tmp/bound --n 4000 --seed 101 --wide_share 0.5
    python docs/experiments/arithmetic_bound.py rows /tmp/wide --n 4000 --seed 202 --wide_share 1   # wide only
    python docs/experiments/arithmetic_bound.py rows /tmp/mix --n 6000 --seed 303 --wide_share 0.667
    python docs/experiments/arithmetic_bound.py sound /tmp/sound.json     # the sound rows of data/rft.json
    python -m homework.rft train --data /tmp/bound/split.json --output_dir /tmp/bound/split/rft_model \
        --init_adapter homework/rft_model --epochs 1 --learning_rate 0.001 --test_after False
    python docs/experiments/arithmetic_bound.py test /tmp/bound/split/rft_model data/valid_wide.json data/valid.json
    python docs/experiments/arithmetic_bound.py steps /tmp/bound/split/rft_model data/valid_wide.json --n 400

`rows` writes reasoning computed from the units registry, not sampled from a model: `plain.json` in the trained
shape (`formats.worked_answer`) and `split.json` with the product split by the quantity's place values
("521 * 8 = 4000 + 160 + 8 = 4168"). They bound what a model could learn from rows whose arithmetic is all
right; they are never rows of data/rft.json. Questions are drawn without `questions make`'s validation
exclusion, as the measured rows were (a few repeat validation questions: the entry counts them). `sound` writes the model's own rows of data/rft.json whose
reasoning is sound (`formats.reasoning_fault`). `test` benchmarks an adapter with room for the split shape
(96 new tokens); `steps` checks each partial product and each sum the adapter writes.
"""

from __future__ import annotations

import json
import random
import re
import sys
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from anywhere as a script beside the docs
from homework import formats, rft
from homework.cli import run_cli
from homework.data import DATA_DIR, Dataset, evaluate, load_rows
from homework.questions import generate, save_rows
from homework.units import factor, format_number, parse_question

MAX_NEW_TOKENS = 96  # issue 24's budget for a reasoning line


def place_values(q: float) -> list[Decimal]:
    """The quantity's non-zero place values: 716 -> 700, 10, 6; 13.7 -> 10, 3, 0.7; 0.75 -> 0.7, 0.05."""
    _, digits, exp = Decimal(repr(q)).normalize().as_tuple()
    return [Decimal(d).scaleb(exp + len(digits) - 1 - i) for i, d in enumerate(digits) if d]


def plain_number(x: float) -> str:
    return format(Decimal(format_number(x, 6)).normalize(), "f")


def split_answer(q: float, src: str, dst: str) -> str:
    """`worked_answer` with the product summed from one partial per place value of the quantity, each in the
    factor's power of ten: "1 byte = 8 bits, so 521 bytes = 521 * 8 = 4000 + 160 + 8 = 4168. <answer>4170</answer>".
    One place value, or a factor that is a bare power of ten, keeps the one-step product."""
    worked = formats.worked_answer(q, src, dst)
    mantissa, _, power = formats.fact_number(factor(src, dst)).partition("e")
    places = place_values(q)
    if len(places) == 1 or float(mantissa) == 1:
        return worked
    tail = f"e{power}" if power else ""
    partials = [float(format_number(float(p) * float(mantissa), 3)) for p in places]
    terms = " + ".join(plain_number(x) + tail for x in partials)
    head, _, answer = worked.rpartition(f" = {formats.product_text(q, mantissa + tail)}. ")
    return f"{head} = {terms} = {plain_number(sum(partials))}{tail}. {answer}"


def rows(out: str, n: int = 4000, seed: int = 101, wide_share: float = 0.5) -> str:
    wide = round(n * wide_share)
    questions = generate(wide, seed, wide=True) + generate(n - wide, seed + 1)
    if 0 < wide < n:  # two sources: interleave them
        random.Random(seed).shuffle(questions)
    for name, shape in (("plain", formats.worked_answer), ("split", split_answer)):
        written = []
        for question, answer, *_ in questions:
            conv = parse_question(question)
            text = shape(conv.quantity, conv.src, conv.dst)
            if formats.judge(text, answer)[0] != "ok":  # every row must pass the benchmark's own check
                raise AssertionError(f"{question!r}: {text!r} is not within 5 % of {answer}")
            written.append([question, answer, text])
        save_rows(written, Path(out) / f"{name}.json")
    return f"wrote {n} rows ({wide} wide) in two shapes to {out}/plain.json and {out}/split.json"


def sound(out: str) -> str:
    rows = load_rows(DATA_DIR / "rft.json", (3,))
    kept = [r for r in rows if not formats.reasoning_fault(r[0], r[2])]
    save_rows(kept, out)
    return f"wrote the {len(kept)} sound rows of {len(rows)} to {out}"


def load(model_dir: str):
    llm = rft.load(model_dir)
    llm.max_new_tokens = MAX_NEW_TOKENS
    return llm


_NUM = r"\d+(?:\.\d+)?"
_SPLIT = re.compile(rf"= (?P<q>{_NUM}) \* (?P<m>{_NUM})(?P<e>e-?\d+)? = (?P<terms>{_NUM}(?:e-?\d+)?(?: \+ {_NUM}"
                    rf"(?:e-?\d+)?)+) = (?P<total>{_NUM})")


def steps(model_dir: str, split: str, n: int = 400) -> str:
    """Of the split lines the adapter writes: partial products within 1 % of place value x factor, sums within
    1 % of the partials written, and answers right."""
    data = Dataset(split).data[:n]
    llm = load(model_dir)
    texts = llm.batched_generate([llm.format_prompt(q) for q, *_ in data])
    count = dict(lines=0, right=0, split_lines=0, split_right=0, partials=0, partials_right=0, sums=0, sums_right=0)
    for (question, answer, *_), text in zip(data, texts):
        ok = formats.judge(text, answer)[0] == "ok"
        count["lines"] += 1
        count["right"] += ok
        m = _SPLIT.search(text)
        if not m:
            continue
        count["split_lines"] += 1
        count["split_right"] += ok
        terms = [float(t.split("e")[0]) for t in m["terms"].split(" + ")]
        for place, term in zip(place_values(float(m["q"])), terms):
            count["partials"] += 1
            count["partials_right"] += abs(term - float(place) * float(m["m"])) <= formats.PRODUCT_TOLERANCE * abs(float(place) * float(m["m"]))
        count["sums"] += 1
        count["sums_right"] += abs(float(m["total"]) - sum(terms)) <= formats.PRODUCT_TOLERANCE * abs(sum(terms))
    return json.dumps(count)


def test(model_dir: str, *splits: str) -> None:
    llm = load(model_dir)
    for split in splits:
        print(split, evaluate(llm, split))


if __name__ == "__main__":
    run_cli({"rows": rows, "sound": sound, "test": test, "steps": steps})
