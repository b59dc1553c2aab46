"""GB 11643-1999 citizen ID parsing: checksum, birth date, sex, tiers, synthetic IDs."""

from __future__ import annotations

import random
from datetime import date

import pytest

from backend.residents.national_id import (
    InvalidNationalId,
    NationalId,
    age_on,
    check_character,
    normalise_national_id,
    parse_national_id,
    programme_tier,
    synthetic_national_id,
)

TODAY = date(2026, 11, 1)

# The standard's own example. By hand: digits 1101051949123100 2 with weights
# 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2 give 7+9+0+5+0+20+2+9+24+27+7+18+30+5+0+0+4 = 167;
# 167 mod 11 = 2 -> check character "X" (table 1 0 X 9 8 7 6 5 4 3 2).
STANDARD_EXAMPLE = "11010519491231002X"
# Computed here by hand: 3*7+1*9+0+1*5+1*8+2*4+1*2+9*1+4*6+5*3+0+1*9+0+1*5+1*8+2*4+3*2 = 137;
# 137 mod 11 = 5 -> "7".
HAND_COMPUTED = "310112194501011237"
# The standard's second example (born 1880): 195 mod 11 = 8 -> "4".
OLD_EXAMPLE = "440524188001010014"


def test_check_character_matches_hand_computation() -> None:
    assert check_character(STANDARD_EXAMPLE[:17]) == "X"
    assert check_character(HAND_COMPUTED[:17]) == "7"
    assert check_character(OLD_EXAMPLE[:17]) == "4"


def test_parse_standard_example() -> None:
    nid = parse_national_id(STANDARD_EXAMPLE, today=TODAY)
    assert nid == NationalId(
        number=STANDARD_EXAMPLE, region_code="110105", birth_date=date(1949, 12, 31), sex="F"
    )
    assert nid.suffix4 == "002X"
    assert nid.age_on(TODAY) == 76


def test_parse_hand_computed_male() -> None:
    nid = parse_national_id(HAND_COMPUTED, today=TODAY)
    assert (nid.region_code, nid.birth_date, nid.sex) == ("310112", date(1945, 1, 1), "M")
    assert nid.age_on(TODAY) == 81


def test_normalisation_spaces_lowercase_x_and_full_width() -> None:
    assert parse_national_id(" 110105 19491231 002x ", today=TODAY).number == STANDARD_EXAMPLE
    full_width = "１１０１０５１９４９１２３１００２Ｘ"
    assert parse_national_id(full_width, today=TODAY).number == STANDARD_EXAMPLE
    assert normalise_national_id("\u3000310112194501011237\t") == HAND_COMPUTED


def test_frozen_and_repr_hides_number() -> None:
    nid = parse_national_id(HAND_COMPUTED, today=TODAY)
    with pytest.raises(AttributeError):
        nid.number = "x"  # type: ignore[misc]
    assert HAND_COMPUTED not in repr(nid)
    assert HAND_COMPUTED not in str(nid)
    assert "1237" in repr(nid)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "31011219450101123",
        "3101121945010112377",
        "31011219450101123A",
        "3101121945X1011237",
        "010112194501011237",
        "３１０１１２-194501011237",
    ],
)
def test_format_errors(raw: str) -> None:
    with pytest.raises(InvalidNationalId) as info:
        parse_national_id(raw, today=TODAY)
    assert info.value.code == "id.format"
    assert info.value.message  # a Chinese sentence for staff
    assert any("\u4e00" <= ch <= "\u9fff" for ch in info.value.message)


def test_non_ascii_digits_rejected() -> None:
    arabic_indic = "".join(chr(0x0660 + int(d)) for d in HAND_COMPUTED)
    with pytest.raises(InvalidNationalId) as info:
        parse_national_id(arabic_indic, today=TODAY)
    assert info.value.code == "id.format"


def test_wrong_check_character() -> None:
    with pytest.raises(InvalidNationalId) as info:
        parse_national_id("110105194912310021", today=TODAY)
    assert info.value.code == "id.checksum"
    assert "校验" in info.value.message


def test_every_single_digit_error_and_adjacent_swap_is_caught() -> None:
    """MOD 11-2 detects all single substitutions and all adjacent transpositions of distinct digits."""
    base = HAND_COMPUTED
    for pos in range(17):
        for digit in "0123456789":
            if digit == base[pos]:
                continue
            mutated = base[:pos] + digit + base[pos + 1 :]
            with pytest.raises(InvalidNationalId) as info:
                parse_national_id(mutated, today=TODAY)
            assert info.value.code in {"id.checksum", "id.format"}, mutated
    for pos in range(16):
        if base[pos] == base[pos + 1]:
            continue
        swapped = base[:pos] + base[pos + 1] + base[pos] + base[pos + 2 :]
        with pytest.raises(InvalidNationalId):
            parse_national_id(swapped, today=TODAY)


@pytest.mark.parametrize("birth", ["19490230", "19451301", "19450001", "19000229", "19450132"])
def test_impossible_birth_date(birth: str) -> None:
    first17 = f"310112{birth}123"
    number = first17 + check_character(first17)
    with pytest.raises(InvalidNationalId) as info:
        parse_national_id(number, today=TODAY)
    assert info.value.code == "id.birth_date"
    assert birth in info.value.message


def test_leap_day_birth_is_valid() -> None:
    first17 = "31011219440229123"
    nid = parse_national_id(first17 + check_character(first17), today=TODAY)
    assert nid.birth_date == date(1944, 2, 29)


def test_birth_date_in_future() -> None:
    first17 = "31011220261102123"
    with pytest.raises(InvalidNationalId) as info:
        parse_national_id(first17 + check_character(first17), today=TODAY)
    assert info.value.code == "id.birth_date"
    # Born today is fine (a newborn).
    first17 = "31011220261101123"
    assert parse_national_id(first17 + check_character(first17), today=TODAY).age_on(TODAY) == 0


def test_older_than_130_rejected_but_130_accepted() -> None:
    with pytest.raises(InvalidNationalId) as info:
        parse_national_id(OLD_EXAMPLE, today=TODAY)
    assert info.value.code == "id.birth_date"
    # The same number was plausible in 1990.
    assert parse_national_id(OLD_EXAMPLE, today=date(1990, 1, 1)).sex == "M"
    first17 = "31011218961101123"  # exactly 130 on TODAY
    assert parse_national_id(first17 + check_character(first17), today=TODAY).age_on(TODAY) == 130
    first17 = "31011218951101123"  # 131 today
    with pytest.raises(InvalidNationalId):
        parse_national_id(first17 + check_character(first17), today=TODAY)


def test_default_today_is_used() -> None:
    assert parse_national_id(HAND_COMPUTED).birth_date == date(1945, 1, 1)


def test_sex_from_seventeenth_digit() -> None:
    for digit, sex in (("0", "F"), ("1", "M"), ("2", "F"), ("7", "M"), ("8", "F"), ("9", "M")):
        first17 = "3101121945010112" + digit
        assert parse_national_id(first17 + check_character(first17), today=TODAY).sex == sex


def test_age_on_birthdays() -> None:
    born = date(1946, 11, 1)
    assert age_on(born, date(2026, 10, 31)) == 79
    assert age_on(born, date(2026, 11, 1)) == 80
    leap = date(1944, 2, 29)
    assert age_on(leap, date(2025, 2, 28)) == 80
    assert age_on(leap, date(2025, 3, 1)) == 81
    assert age_on(leap, date(2024, 2, 29)) == 80


@pytest.mark.parametrize(
    ("age", "tier"),
    [
        (0, None),
        (79, None),
        (80, "80-89"),
        (89, "80-89"),
        (90, "90-99"),
        (99, "90-99"),
        (100, "100+"),
        (117, "100+"),
    ],
)
def test_programme_tier(age: int, tier: str | None) -> None:
    assert programme_tier(age) == tier


def test_synthetic_ids_are_valid_deterministic_and_carry_the_facts() -> None:
    born = date(1936, 5, 17)
    first = [synthetic_national_id(random.Random(7), birth_date=born, sex="F") for _ in range(2)]
    assert first[0] == first[1]
    rng = random.Random(1)
    for sex in ("M", "F") * 50:
        number = synthetic_national_id(rng, birth_date=born, sex=sex, region_code="310120")
        nid = parse_national_id(number, today=TODAY)
        assert (nid.region_code, nid.birth_date, nid.sex) == ("310120", born, sex)


def test_synthetic_rejects_bad_arguments() -> None:
    rng = random.Random(0)
    with pytest.raises(ValueError):
        synthetic_national_id(rng, birth_date=date(1940, 1, 1), sex="X")
    with pytest.raises(ValueError):
        synthetic_national_id(rng, birth_date=date(1940, 1, 1), sex="M", region_code="31011")
    with pytest.raises(ValueError):
        synthetic_national_id(rng, birth_date=date(1940, 1, 1), sex="M", region_code="010112")


def test_invalid_national_id_is_a_value_error() -> None:
    err = InvalidNationalId("id.format", "身份证号应为18位")
    assert isinstance(err, ValueError)
    assert (err.code, err.message, str(err)) == ("id.format", "身份证号应为18位", "身份证号应为18位")
