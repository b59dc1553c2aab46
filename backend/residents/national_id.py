"""Citizen identity numbers per GB 11643-1999 (公民身份号码).

An 18-character number: 6-digit address (region) code, 8-digit birth date
(YYYYMMDD), 3-digit sequence code whose last digit is odd for men and even for
women, and a check character computed with ISO 7064:1983 MOD 11-2.

The birth date and sex come from the number itself, so the roster, the
programme tier and the monthly certification all agree on one source of truth.
Only 18-digit numbers are accepted: 15-digit first-generation numbers were
withdrawn in 2013.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass
from datetime import date

__all__ = [
    "MAX_AGE",
    "InvalidNationalId",
    "NationalId",
    "age_on",
    "check_character",
    "normalise_national_id",
    "parse_national_id",
    "programme_tier",
    "synthetic_national_id",
]

#: Oldest plausible age; anything older is a typo in the birth date.
MAX_AGE = 130

# ISO 7064 MOD 11-2 weights for positions 1..17: W_i = 2^(18-i) mod 11.
_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
# Check character for (weighted sum mod 11) = 0..10.
_CHECK_CHARS = "10X98765432"
_SHAPE = re.compile(r"\d{17}[\dX]")
_REGION = re.compile(r"[1-9]\d{5}")
_WHITESPACE = re.compile(r"\s+")


class InvalidNationalId(ValueError):
    """A number that is not a valid GB 11643 citizen ID; `code` is stable, `message` is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def age_on(birth_date: date, day: date) -> int:
    """Completed years on `day`; a 29 February birthday counts from 1 March in common years."""
    years = day.year - birth_date.year
    if (day.month, day.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


@dataclass(frozen=True, slots=True)
class NationalId:
    """A validated citizen ID with the facts encoded in it."""

    number: str
    region_code: str
    birth_date: date
    sex: str  # "M" or "F"

    def age_on(self, day: date) -> int:
        """Completed years on `day` (the programme tier is decided on this)."""
        return age_on(self.birth_date, day)

    @property
    def suffix4(self) -> str:
        """Last four characters: what staff read back to an elder on the phone, never the whole number."""
        return self.number[-4:]

    def __str__(self) -> str:  # keep the full number out of logs and tracebacks
        return f"NationalId(****{self.suffix4})"

    def __repr__(self) -> str:
        return f"NationalId(region_code={self.region_code!r}, sex={self.sex!r}, suffix4={self.suffix4!r})"


def check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character for the first 17 digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("expected exactly 17 ASCII digits")
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def normalise_national_id(raw: str) -> str:
    """Full-width characters to ASCII, whitespace removed, a lowercase check `x` made `X`.

    Spreadsheets typed on Chinese input methods often carry full-width digits
    (１２３) or a trailing space; those are the same number, not an error.
    """
    text = unicodedata.normalize("NFKC", raw)
    return _WHITESPACE.sub("", text).upper()


def parse_national_id(raw: str, *, today: date | None = None) -> NationalId:
    """Validate an 18-character citizen ID and decode it; raise `InvalidNationalId` saying what is wrong.

    `today` bounds the birth date (not in the future, age at most MAX_AGE); it
    defaults to the current date and is a parameter so that results are
    reproducible in tests and in back-dated imports.
    """
    if not isinstance(raw, str):
        raise InvalidNationalId("id.format", "身份证号应为18位文本")
    number = normalise_national_id(raw)
    if not number:
        raise InvalidNationalId("id.format", "身份证号不能为空")
    if len(number) != 18:
        raise InvalidNationalId("id.format", f"身份证号应为18位，当前为{len(number)}位")
    if not _SHAPE.fullmatch(number) or not number.isascii():
        raise InvalidNationalId("id.format", "身份证号只能由数字组成，最后一位可以是X")
    if not _REGION.fullmatch(number[:6]):
        raise InvalidNationalId("id.format", "身份证号前6位地址码无效")
    expected = check_character(number[:17])
    if number[17] != expected:
        raise InvalidNationalId("id.checksum", "身份证号校验位不正确，请核对是否有数字录错")
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise InvalidNationalId("id.birth_date", f"身份证号中的出生日期{number[6:14]}不是有效日期") from None
    today = today or date.today()
    if born > today:
        raise InvalidNationalId("id.birth_date", "身份证号中的出生日期晚于今天")
    if age_on(born, today) > MAX_AGE:
        raise InvalidNationalId("id.birth_date", f"身份证号中的出生日期早于{MAX_AGE}年前，请核对")
    sex = "M" if int(number[16]) % 2 == 1 else "F"
    return NationalId(number=number, region_code=number[:6], birth_date=born, sex=sex)


def programme_tier(age: int) -> str | None:
    """The elderly-subsidy band for an age: '80-89', '90-99', '100+', or None below 80."""
    if age >= 100:
        return "100+"
    if age >= 90:
        return "90-99"
    if age >= 80:
        return "80-89"
    return None


def synthetic_national_id(
    rng: random.Random, *, birth_date: date, sex: str, region_code: str = "310112"
) -> str:
    """A well-formed, checksum-valid ID for demo data and tests.

    Synthetic: the sequence code is random, so the number does not identify
    anyone; it must never be mixed into real data.
    """
    if sex not in ("M", "F"):
        raise ValueError("sex must be 'M' or 'F'")
    if not _REGION.fullmatch(region_code):
        raise ValueError("region_code must be 6 digits, not starting with 0")
    if not 1000 <= birth_date.year <= 9999:
        raise ValueError("birth year must have 4 digits")
    parity = rng.choice((1, 3, 5, 7, 9) if sex == "M" else (0, 2, 4, 6, 8))
    first17 = f"{region_code}{birth_date:%Y%m%d}{rng.randrange(100):02d}{parity}"
    return first17 + check_character(first17)
