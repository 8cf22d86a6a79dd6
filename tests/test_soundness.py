"""The strict soundness check: every step a reasoning writes is true, and the steps carry the question's quantity
through a true fact to the answer. Tables of cases, one comment each."""

import json
import re

import pytest

from homework import soundness

Q = "How many feet are in 7 meters?"  # truth 22.9659; registry fact 1 meter = 3.28084 feet

SOUND = [
    (Q, "1 meter = 3.28 feet, so 7 meters = 7 * 3.28 = 23. <answer>23</answer>"),            # 22.96 rounded: 0.2 %
    (Q, "1 meter = 3.28 feet, so 7 meters = 7 * 3.28 = 22.96 feet. <answer>22.96</answer>"),  # unit after the product
    (Q, "7 * 3.28 = 22.96. <answer>22.96</answer>"),                                          # the fact inside the product
    (Q, "7 meters = 7 * 3.28 feet = 22.96 feet. <answer>22.96</answer>"),                     # the CoT prompt's short shape
    (Q, "Since 1 m is 3.28 ft, 7 m is 7 x 3.28 = 22.96 ft. <answer>22.96</answer>"),          # other words, "x"
    ("How many feet are in 3.5 meters?",                                                      # the product split in parts
     "3.5 * 3.28 = 3 * 3.28 + 0.5 * 3.28 = 9.84 + 1.64 = 11.48. <answer>11.48</answer>"),
    ("How many pints are in 5 quarts?", "1 quart = 2 pints, so 5 quarts = 5 * 2 = 10. <answer>10</answer>"),
    ("How many pints does a gallon have?", "1 gallon = 8 pints. <answer>8</answer>"),         # a quantity of 1: the fact alone
    ("How many cc in 5 ml?", "1 ml = 1 cc, so 5 ml = 5 * 1 = 5. <answer>5</answer>"),        # two names of one unit
    ("how many yards is 50,000 feet",                                                         # a thousands comma restated
     "1 foot = 0.333 yards, so 50,000 feet = 50000 * 0.333 = 16650. <answer>16650</answer>"),
    ("How many ml in half a liter?", "1 liter = 1e3 milliliters, so 0.5 liters = 0.5 * 1e3 = 500. <answer>500</answer>"),
    ("How many seconds in 2 hours?",                                                          # two true facts, one product
     "1 hour = 60 minutes and 1 minute = 60 seconds, so 2 hours = 2 * 60 * 60 = 7200 seconds. <answer>7200</answer>"),
    ("How many kilobytes are in 5 GB?", "1 gigabyte = 1e6 kilobytes, so 5 GB = 5 * 1e6 = 5e6. <answer>5e6</answer>"),
    ("What is 3 cubic millimeters in pints?",                                                 # a product with its unit
     "1 cubic millimeter = 2.11e-6 pints, so 3 cubic millimeters = 3 * 2.11e-6 pints = 6.33e-6 pints. <answer>6.33e-6</answer>"),
    (Q, "7 meters = 7 * 3.28 feet = 21 + 1.4 + 0.56 = 22.96. <answer>23</answer>"),          # the product in steps
    ("How many days in 8 centuries?",                                                         # steps with a power of ten
     "8 centuries = 8 * 3.65e4 days = 24e4 + 4.8e4 + 0.4e4 = 29.2e4. <answer>29.2e4</answer>"),
]


@pytest.mark.parametrize("question, reasoning", SOUND)
def test_sound_reasoning_passes_in_any_wording(question, reasoning):
    assert soundness.reasoning_fault(question, reasoning) == ""


UNSOUND = [
    # the examples: right within 5 %, reasoning wrong
    ("How many feet are in 3.5 meters?", "1 meter = 3.28 feet, so 3.5 meters = 3.5 * 3.28 = 11.2. <answer>11.2</answer>",
     "product"),                                                                    # 3.5 * 3.28 is 11.48
    ("How many pints are in 5 quarts?", "1 pint = 2 pints, so 5 pints = 5 * 2 = 10. <answer>10</answer>", "fact"),
    ("How many days are in 3 weeks?", "1 day = 7 days, so 3 weeks = 3 * 7 = 21. <answer>21</answer>", "fact"),
    ("How many bytes are in 2 kilobytes?",
     "1 kilobyte = 1e3 kilobytes, so 2 kilobytes = 2 * 1e3 = 2e3. <answer>2e3</answer>", "fact"),
    ("How many meters are in 2 km?", "1e3 = 2e3. <answer>2e3</answer>", "fact"),   # no fact for the units at all
    ("How many ounces in 5 pounds?", "16 = 5 * 16 = 76. <answer>76</answer>", "product"),
    ("How many g in 3 kg?", "3 * 2.2e3 = 6.4e3. <answer>6.4e3</answer>", "product"),
    ("How many weeks in 4 years?", "4 * 52.2 = 206. <answer>206</answer>", "product"),  # 208.8: 1.3 % off
    ("How many seconds in 10 hours?", "10 * 3.6e3 = 36.6e3. <answer>36.6e3</answer>", "product"),
    ("How many meters per second is 5 miles per hour?",                           # a unit the domain has not
     "1 mile per hour = 1.61 km/s, so 5 miles per hour = 5 * 0.447. <answer>2.24</answer>", "unknown unit"),
    ("what's eleven miles in meters",                                             # right product, a fact without its unit
     "1e3 = 1e3 meters, so 11 miles = 11 * 1.61e3 = 16.1e3. <answer>16.1e3</answer>", "fact"),
    ("how many yards is 50,000 feet", "50 * 0.333 = 15. <answer>15</answer>", "product"),
    ("Convert 4,500 liters to gallons", "4 * 0.264 = 1.19. <answer>1.19</answer>", "product"),
    ("How many cc in 5 ml?", "1 ml = 1e3 cc, so 5 ml = 5 * 1e3 = 5e3. <answer>5e3</answer>", "fact"),
    # each condition of the check on its own
    (Q, "1 meter = 3.35 feet, so 7 m = 7 * 3.35 = 23.45. <answer>23.45</answer>", "fact"),     # fact 2 % off
    (Q, "1 meter = 3.28 feet, so 7 m = 7 * 3.2 = 22.4. <answer>22.4</answer>", "fact"),        # fact copied wrong
    (Q, "1 meter = 3.28 feet, so 7 m = 8 * 3.28 = 26.2. <answer>26.2</answer>", "quantity"),   # not the quantity it converts
    (Q, "1 meter = 3.28 feet, so 6 m = 6 * 3.28 = 19.68. <answer>22.96</answer>", "quantity"),  # not the question's
    (Q, "1 meter = 3.28 feet, so 7 m = 7 * 3.28 = 22.96. <answer>24</answer>", "answer is not the product"),
    (Q, "1 meter = 3.28 feet, so 7 m = 22.96. <answer>22.96</answer>", "no product"),          # nothing multiplied
    (Q, "1 meter = 3.28 feet. <answer>22.96</answer>", "no product"),                         # the fact alone, for 7
    (Q, "7 meters = 7 * 3.28 = 22.96 kilograms. <answer>22.96</answer>", "fact"),              # a length made a mass
    (Q, "1 meter = 3.28 feet, so 7 m = 7 * 3.28 = 22.96.", "no answer"),
    ("How many zorks are in 7 blips?", "7 blips = 7 * 3 = 21. <answer>21</answer>", "question not understood"),
    # misses seen on data/valid_wide.json
    ("Express 9.1 yards in kilometers.",
     "1 yard = 9.14e-4, so 9.14e-4 = 9.14e-4 * 9.14e-4 = 83.5e-8. <answer>83.5e-8</answer>", "product"),
    ("Convert 133 centimeters into inches.", "133 centimeters = 39.4 * 133 = 5240. <answer>5240</answer>", "fact"),
    ("Please convert 0.7 mins to centuries.", "1.9e-8 = 0.7 * 1.9e-8 = 1.4e-8. <answer>1.4e-8</answer>", "product"),
    # a product in steps with one step wrong
    (Q, "7 meters = 7 * 3.28 feet = 21 + 1.4 + 0.56 = 23.96. <answer>24</answer>", "product"),       # the sum
    (Q, "7 meters = 7 * 3.28 feet = 21 + 2.4 + 0.56 = 23.96. <answer>24</answer>", "product"),       # a part
    ("How many days in 8 centuries?",                                                                 # a power of ten
     "8 centuries = 8 * 3.65e4 days = 24e4 + 4.8e4 + 0.4e3 = 28.8e4. <answer>28.8e4</answer>", "product"),
]


@pytest.mark.parametrize("question, reasoning, cause", UNSOUND)
def test_each_unsound_reasoning_fails_with_its_cause(question, reasoning, cause):
    fault = soundness.reasoning_fault(question, reasoning)
    assert fault.split(":")[0] == cause, fault
    assert soundness.miss_cause(question, reasoning) == cause
    assert not soundness.is_sound(question, reasoning)


def test_every_cause_is_one_the_module_names():
    causes = {c for *_, c in UNSOUND}
    assert causes <= set(soundness.CAUSES) and len(causes) >= 7


def test_the_check_command_says_sound_or_the_failing_step():
    assert soundness.check(*SOUND[0]) == "sound"
    assert soundness.check(*UNSOUND[1][:2]) == "fact: 1 pint = 2 pints is false"


def test_the_rows_command_counts_each_row_by_its_cause(tmp_path, capsys):
    rows = [[q, 1.0, r] for q, r in SOUND[:3]] + [[q, 1.0, r, {"calculator_filled": True}] for q, r, _ in UNSOUND[:2]]
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(rows))
    summary = soundness.rows(str(path), show=1)
    counts = dict(re.findall(r"([a-z][a-z ]*?) (\d+)(?:,|$)", summary.split("rows; ")[1]))
    assert summary.startswith(f"{path}: 5 rows; ") and counts.pop("sound") == "3"
    assert sorted(counts) == sorted({UNSOUND[0][2], UNSOUND[1][2]}) and sum(map(int, counts.values())) == 2
    assert len(capsys.readouterr().out.splitlines()) == len(counts), "one example a cause"


def test_sfts_stepped_answers_are_sound_and_right():
    from homework import formats
    from homework.questions import generate

    rows = generate(300, seed=5, balanced=True, decimals=1.0, composed=0.5)
    assert sum(formats.stepped_completion(q, a) != formats.sft_completion(a) for q, a in rows) > 250
    for question, answer in rows:
        completion = formats.stepped_completion(question, answer)
        assert formats.judge(completion, answer)[0] == "ok", (question, completion)
        assert soundness.reasoning_fault(question, completion.strip()) == "", (question, completion)
    assert formats.stepped_completion("How many wibbles in 2.5 wobbles?", 3.0) == formats.sft_completion(3.0)
