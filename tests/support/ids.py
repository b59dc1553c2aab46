"""Synthetic national IDs for tests: distinct seeds give distinct numbers, so tests sharing one database never collide.

A seed picks the birthday (within the year after the requested age was reached), the sequence
digits, the sex digit and a region code that the demo roster never uses. `fresh_elder_id` hands
out seeds from a counter above every literal seed in the suite, for tests that need "any new person".
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta

from backend.residents.national_id import check_character

TEST_REGIONS = ("310104", "310105", "310106", "310107")  # demo data uses 310226 and 310120
_DAYS, _SEQUENCES, _SEX_DIGITS = 300, 100, 5
_FRESH = itertools.count(300_000)  # literal seeds in the tests stay far below this


def elder_id(seed: int, *, age: int = 86, sex: str = "F") -> str:
    """The same seed always gives the same number (tests of duplicates rely on it); seeds below 600 000 never clash."""
    offset, rest = seed % _DAYS, seed // _DAYS
    sequence, rest = rest % _SEQUENCES, rest // _SEQUENCES
    sex_index, rest = rest % _SEX_DIGITS, rest // _SEX_DIGITS
    region = TEST_REGIONS[rest % len(TEST_REGIONS)]
    # a day past the age-th birthday, plus up to 300 days: exactly `age` years old today
    born = date.today() - timedelta(days=round(365.25 * age) + 1 + offset)
    sex_digit = (1, 3, 5, 7, 9)[sex_index] if sex == "M" else (0, 2, 4, 6, 8)[sex_index]
    first17 = f"{region}{born:%Y%m%d}{sequence:02d}{sex_digit}"
    return first17 + check_character(first17)


def fresh_elder_id(*, age: int = 86, sex: str = "F") -> str:
    """A number no other test in this run has used."""
    return elder_id(next(_FRESH), age=age, sex=sex)
