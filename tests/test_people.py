"""data/people.json: questions typed the way people type, and the registry reading them right or not at all."""

import json
from pathlib import Path

import pytest

from homework.units import UnitError, parse_question

PEOPLE = Path(__file__).resolve().parent.parent / "data" / "people.json"

# Checked by hand, question by question: (question, (quantity, from, to)). A spread over the constructions:
# the quantity after both units, symbols that are also words or letters, capitals, idioms, no punctuation.
HAND_CHECKED = [
    ('feet to inches, for 3 of them', (3, 'foot', 'inch')),
    ("Convert pounds into kilograms, 4 units' worth", (4, 'pound', 'kilogram')),
    ('kilometers to miles: 8', (8, 'kilometer', 'mile')),
    ('meters to feet, 6 please', (6, 'meter', 'foot')),
    ('how many inches in feet if I have 5', (5, 'foot', 'inch')),
    ('hours to minutes for 7', (7, 'hour', 'minute')),
    ('grams to ounces, 9 of them', (9, 'gram', 'ounce')),
    ('liters to gallons - 4', (4, 'liter', 'gallon')),
    ("What's 3 kg in terms of pounds?", (3, 'kilogram', 'pound')),
    ('5 miles is equivalent to how many kilometers?', (5, 'mile', 'kilometer')),
    ('how many feet in 7 meters', (7, 'meter', 'foot')),
    ('HOW MANY FEET ARE IN 7 METERS', (7, 'meter', 'foot')),
    ('convert 5 KG to LBS', (5, 'kilogram', 'pound')),
    ('7m to ft', (7, 'meter', 'foot')),
    ('how many s in 2 h', (2, 'hour', 'second')),
    ('3 h to min', (3, 'hour', 'minute')),
    ('5 min in s', (5, 'minute', 'second')),
    ('2 G in M', (2, 'gigabyte', 'megabyte')),
    ('4 K to B', (4, 'kilobyte', 'byte')),
    ('60 kmh in mph', (60, 'kilometer per hour', 'mile per hour')),
    ('9 mi/h to km/h', (9, 'mile per hour', 'kilometer per hour')),
    ('8 cc to ml', (8, 'milliliter', 'milliliter')),
    ('6 cm^3 in liters', (6, 'milliliter', 'liter')),
    ('how many ounces in a pound', (1, 'pound', 'ounce')),
    ('how many feet in a mile', (1, 'mile', 'foot')),
    ('how many seconds in an hour', (1, 'hour', 'second')),
    ('how many days in a year', (1, 'year', 'day')),
    ('how many inches in a yard', (1, 'yard', 'inch')),
    ('how many centimeters in an inch', (1, 'inch', 'centimeter')),
    ('how many bits in a byte', (1, 'byte', 'bit')),
    ('how many grams in a kilogram', (1, 'kilogram', 'gram')),
    ('how many weeks in a decade', (1, 'decade', 'week')),
    ('how many years in a century', (1, 'century', 'year')),
    ('how many pints in a gallon', (1, 'gallon', 'pint')),
    ('what is 2 gallons in liters', (2, 'gallon', 'liter')),
    ("what's 6 liters in quarts", (6, 'liter', 'quart')),
    ('2 quarts -> ml', (2, 'quart', 'milliliter')),
    ('Seconds in 2 hours?', (2, 'hour', 'second')),
    ('days in 3 weeks?', (3, 'week', 'day')),
    ('minutes in 4 hours', (4, 'hour', 'minute')),
    ('hours in 5 days', (5, 'day', 'hour')),
    ('Please express 5 GB in MB', (5, 'gigabyte', 'megabyte')),
    ('In meters, how long is 6 feet?', (6, 'foot', 'meter')),
    ('I ran 10 km, how many miles is that', (10, 'kilometer', 'mile')),
    ('my bag weighs 7 pounds. in kg?', (7, 'pound', 'kilogram')),
    ('the recipe needs 3 cups... no wait, 3 pints. how many ml is that', (3, 'pint', 'milliliter')),
    ('how many grams does a 5 pound bag weigh', (5, 'pound', 'gram')),
    ('convert 2 hrs to mins', (2, 'hour', 'minute')),
    ('convert 8 yds to m', (8, 'yard', 'meter')),
    ('how many mm in 4 inches', (4, 'inch', 'millimeter')),
    ('4 inches in mm', (4, 'inch', 'millimeter')),
    ('What is 9 feet in terms of yards', (9, 'foot', 'yard')),
    ('10 metres equivalent in feet?', (10, 'meter', 'foot')),
    ("what's the equivalent of 6 miles in km", (6, 'mile', 'kilometer')),
    ('How much is 3 metric tons in kilograms?', (3, 'metric ton', 'kilogram')),
    ('5 tonnes to pounds', (5, 'metric ton', 'pound')),
    ('how many kilos is 8 lbs', (8, 'pound', 'kilogram')),
    ('8 lbs in kilos', (8, 'pound', 'kilogram')),
    ('2 oz to grams', (2, 'ounce', 'gram')),
    ('how many ounces is 3 kg', (3, 'kilogram', 'ounce')),
    ('pounds to grams, 6 of them', (6, 'pound', 'gram')),
    ('Give me 4 yards in feet', (4, 'yard', 'foot')),
    ('need 7 hours in seconds asap', (7, 'hour', 'second')),
    ('how many liters is 9 gallons', (9, 'gallon', 'liter')),
    ('10 fl oz in ml', (10, 'fluid ounce', 'milliliter')),
    ('8 US quarts to liters', (8, 'quart', 'liter')),
    ('how many cubic meters is 9000 liters', (9000, 'liter', 'cubic meter')),
    ('how many cc in a liter', (1, 'liter', 'milliliter')),
    ('how fast is 9 m/s in mph', (9, 'meter per second', 'mile per hour')),
    ('4 mph in ft/s', (4, 'mile per hour', 'foot per second')),
    ('how many MB is 7 GB', (7, 'gigabyte', 'megabyte')),
    ('how many bits are in 6 kB', (6, 'kilobyte', 'bit')),
    ('gigabytes to megabytes, 4 of them', (4, 'gigabyte', 'megabyte')),
    ('what is 1 gigabyte in kilobytes', (1, 'gigabyte', 'kilobyte')),
    ('HOW MANY MB IN 2 GB', (2, 'gigabyte', 'megabyte')),
    ('convert 7 Meters To Feet', (7, 'meter', 'foot')),
    ('Convert 3 Km Into Miles', (3, 'kilometer', 'mile')),
    ('2 centuries in decades', (2, 'century', 'decade')),
    ('how many days are in 5 months', (5, 'month', 'day')),
    ('how many hours in 2 weeks', (2, 'week', 'hour')),
    ('days to weeks for 10', (10, 'day', 'week')),
    ('years into weeks for 2', (2, 'year', 'week')),
    ('6 days is how many seconds', (6, 'day', 'second')),
    ('5 meters equals how many centimeters', (5, 'meter', 'centimeter')),
    ('7 feet equals how many meters', (7, 'foot', 'meter')),
    ('3 miles equals how many yards', (3, 'mile', 'yard')),
    ('10 kilograms equals how many grams', (10, 'kilogram', 'gram')),
    ('5 pounds equals how many ounces', (5, 'pound', 'ounce')),
    ('7 gallons equals how many pints', (7, 'gallon', 'pint')),
    ('how many meters are there in 3 miles', (3, 'mile', 'meter')),
    ('is 3 feet more than a meter? how many meters is 3 feet', (3, 'foot', 'meter')),
    ('whats 8 inches in cm', (8, 'inch', 'centimeter')),
    ('how many cm r in 7 in', (7, 'inch', 'centimeter')),
    ('can u convert 6 lb to kg', (6, 'pound', 'kilogram')),
    ("I'd like 4 hours in minutes", (4, 'hour', 'minute')),
    ('a file is 3 GB, how many MB', (3, 'gigabyte', 'megabyte')),
    ('the rope is 6 yards long, how many feet', (6, 'yard', 'foot')),
    ('the truck carries 2 tonnes, how many kilograms', (2, 'metric ton', 'kilogram')),
    ('the jar holds 4 pints, in ml please', (4, 'pint', 'milliliter')),
    ('she is 7 years old, how many months', (7, 'year', 'month')),
    ('the pool is 2 meters deep, in feet', (2, 'meter', 'foot')),
    ('the wind was 9 m/s, in km/h', (9, 'meter per second', 'kilometer per hour')),
    ('express 2 hours as minutes', (2, 'hour', 'minute')),
    ('express 3 liters as milliliters', (3, 'liter', 'milliliter')),
    ('turn 8 meters into feet', (8, 'meter', 'foot')),
    ('change 10 inches to cm', (10, 'inch', 'centimeter')),
    ('switch 4 km to miles', (4, 'kilometer', 'mile')),
    ('3 ft -> m', (3, 'foot', 'meter')),
    ('2 hr -> min', (2, 'hour', 'minute')),
    ('5 in -> cm', (5, 'inch', 'centimeter')),
    ('1 GB -> MB', (1, 'gigabyte', 'megabyte')),
    ('km -> miles, 3', (3, 'kilometer', 'mile')),
    ('3 feet in meters?', (3, 'foot', 'meter')),
    ('2 hours in seconds?', (2, 'hour', 'second')),
    ('6 ounces in grams?', (6, 'ounce', 'gram')),
    ('1 decade in months?', (1, 'decade', 'month')),
    ('lbs in 6 kg', (6, 'kilogram', 'pound')),
    ('how many metres in 8 yards', (8, 'yard', 'meter')),
    ('how many millilitres is 5 fl oz', (5, 'fluid ounce', 'milliliter')),
    ('how many lb in 4 kg', (4, 'kilogram', 'pound')),
    ('how many yd in 9 m', (9, 'meter', 'yard')),
    ('how many mm in 6 cm', (6, 'centimeter', 'millimeter')),
    ('how many ml in 3 l', (3, 'liter', 'milliliter')),
    ('how many qt in 4 gal', (4, 'gallon', 'quart')),
    ('how many MB in 3 GB', (3, 'gigabyte', 'megabyte')),
    ('how many h in 2 days', (2, 'day', 'hour')),
    ('how many hrs in 3 days', (3, 'day', 'hour')),
    ('convert five kg to pounds', (5, 'kilogram', 'pound')),
    ('nine hours in minutes', (9, 'hour', 'minute')),
    ('eight pounds in ounces', (8, 'pound', 'ounce')),
    ('how many minutes in half an hour', (0.5, 'hour', 'minute')),
    ('how many feet in 0.5 miles', (0.5, 'mile', 'foot')),
    ('Convert 3 meters to yards.', (3, 'meter', 'yard')),
    ('Convert 6 kilograms to ounces.', (6, 'kilogram', 'ounce')),
    ('Convert 5 quarts to liters.', (5, 'quart', 'liter')),
    ('Convert 3 megabytes to bytes.', (3, 'megabyte', 'byte')),
    ('Convert 6 years to days.', (6, 'year', 'day')),
    ('Convert 8 centuries to years.', (8, 'century', 'year')),
    ('Convert 3 meters per second to feet per second.', (3, 'meter per second', 'foot per second')),
    ('convert 9 inches per second to meters per second', (9, 'inch per second', 'meter per second')),
    ('how many feet per second is 8 mph', (8, 'mile per hour', 'foot per second')),
    ('is 10 km/h fast? what is it in mph', (10, 'kilometer per hour', 'mile per hour')),
    ('km/h to m/s: 4', (4, 'kilometer per hour', 'meter per second')),
    ('What is the length of 6 feet in cm?', (6, 'foot', 'centimeter')),
    ('What is the size of 8 MB in KB?', (8, 'megabyte', 'kilobyte')),
    ('Find the number of seconds in 7 minutes.', (7, 'minute', 'second')),
    ('Calculate 2 days in hours.', (2, 'day', 'hour')),
    ('compute 8 feet in meters', (8, 'foot', 'meter')),
    ('figure out 4 years in weeks', (4, 'year', 'week')),
    ('approximately how many feet is 2 meters', (2, 'meter', 'foot')),
    ('around how many cups... I mean pints in 3 liters', (3, 'liter', 'pint')),
    ('tell me how many meters are in 9 feet', (9, 'foot', 'meter')),
    ('any idea how many kilometers are in 10 miles', (10, 'mile', 'kilometer')),
    ('help me convert 7 inches to centimeters', (7, 'inch', 'centimeter')),
    ('q: 6 hours in minutes', (6, 'hour', 'minute')),
    ('so how many feet is 5 yards', (5, 'yard', 'foot')),
    ('then 10 pounds to kg', (10, 'pound', 'kilogram')),
    ('lol how many inches in 6 feet', (6, 'foot', 'inch')),
    ("What's 7 kilometres in miles?", (7, 'kilometer', 'mile')),
    ("What's 4 centimetres in inches?", (4, 'centimeter', 'inch')),
    ('whats 10 kilos in lbs', (10, 'kilogram', 'pound')),
    ('how many kg is 4 tons', (4, 'metric ton', 'kilogram')),
    ('9 ft = ? m', (9, 'foot', 'meter')),
    ('8 h = ? min', (8, 'hour', 'minute')),
    ('2 oz = ? g', (2, 'ounce', 'gram')),
    ('1 mile is how many km', (1, 'mile', 'kilometer')),
    ('1 hour is how many seconds', (1, 'hour', 'second')),
    ('1 foot is how many centimeters', (1, 'foot', 'centimeter')),
    ('1 year is how many hours', (1, 'year', 'hour')),
    ('How many pounds is 7 kg?', (7, 'kilogram', 'pound')),
]


@pytest.mark.parametrize("question,expected", HAND_CHECKED, ids=[q[:40] for q, _ in HAND_CHECKED])
def test_hand_checked_parse(question, expected):
    c = parse_question(question)
    assert (c.quantity, c.src, c.dst) == expected


def test_the_table_covers_150_questions_of_the_file():
    questions = {q for q, _ in json.loads(PEOPLE.read_text())}
    assert len(HAND_CHECKED) >= 150 and {q for q, _ in HAND_CHECKED} <= questions


def test_the_registry_reads_99_percent_of_the_file_and_its_answers_are_the_registry_s():
    rows = json.loads(PEOPLE.read_text())
    assert len(rows) >= 400
    read = 0
    for question, answer in rows:
        try:
            conv = parse_question(question)
        except UnitError:
            continue
        read += 1
        assert answer == pytest.approx(conv.answer, rel=1e-7), question
    assert read / len(rows) >= 0.99


# Questions that could be read two ways, or not at all: one clear error, never a guess.
REFUSED = [
    ("Convert meters to feet", "no number"),                              # no quantity
    ("Tell me a joke", "no number"),
    ("How many feet are in 5 kilograms?", "cannot convert"),              # a length from a mass
    ("What is 3 meters?", "no unit to convert into"),                     # nothing to convert into
    ("How many feet in 3 or 4 meters?", "more than one quantity"),        # which quantity?
    ("Convert 5 kg and 2 kg to pounds", "more than one quantity"),
    ("feet to inches, 3 or 4 of them", "more than one quantity"),
    ("How many meters and yards are in 2 miles?", "more than one unit to convert into"),
    ("feet to inches and yards for 3", "more than one unit to convert into"),
    ("meters to feet", "no number"),
    ("5 to 6", "more than one quantity"),
    ("how many in 3", "no known unit"),                                   # "in" alone is no unit here
]


@pytest.mark.parametrize("question,reason", REFUSED)
def test_ambiguous_or_unreadable_questions_are_refused(question, reason):
    with pytest.raises(UnitError, match=reason):
        parse_question(question)
