"""The synthetic 南桥社区 roster: realistic, deterministic, and clean through the real parser."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

from backend.residents.demo import DEMO_PHONE_PREFIX, demo_roster
from backend.residents.national_id import parse_national_id
from backend.residents.roster import ROSTER_HEADERS, parse_roster, write_roster_csv, write_roster_xlsx

AS_OF = date(2026, 11, 1)


@pytest.fixture(scope="module")
def roster() -> list[dict[str, str]]:
    return demo_roster(300, as_of=AS_OF)


def test_300_rows_parse_cleanly_as_xlsx_and_csv(roster: list[dict[str, str]]) -> None:
    for data, kind in ((write_roster_xlsx(roster), "xlsx"), (write_roster_csv(roster), "csv")):
        result = parse_roster("南桥社区名册", data, as_of=AS_OF)
        assert result.format == kind
        assert result.errors == []
        assert len(result.rows) == 300
        assert [r.national_id.number for r in result.rows] == [row["身份证号"] for row in roster]


def test_keys_are_the_roster_header(roster: list[dict[str, str]]) -> None:
    assert all(list(row) == list(ROSTER_HEADERS) for row in roster)


def test_deterministic_for_a_seed() -> None:
    assert demo_roster(50, as_of=AS_OF) == demo_roster(50, as_of=AS_OF)
    assert demo_roster(50, seed=1, as_of=AS_OF) != demo_roster(50, seed=2, as_of=AS_OF)


def test_ids_unique_valid_and_ages_in_range(roster: list[dict[str, str]]) -> None:
    numbers = [row["身份证号"] for row in roster]
    assert len(set(numbers)) == len(numbers)
    ages = [parse_national_id(n, today=AS_OF).age_on(AS_OF) for n in numbers]
    assert min(ages) >= 80 and max(ages) <= 103


def test_realistic_age_and_sex_mix(roster: list[dict[str, str]]) -> None:
    result = parse_roster("r.csv", write_roster_csv(roster), as_of=AS_OF)
    tiers = Counter(r.tier for r in result.rows)
    assert tiers["80-89"] > 0.7 * 300
    assert 0.1 * 300 < tiers["90-99"] < 0.25 * 300
    assert 1 <= tiers["100+"] <= 10
    sexes = Counter(r.national_id.sex for r in result.rows)
    assert sexes["F"] > sexes["M"]  # women outlive men
    ages = Counter(r.national_id.age_on(AS_OF) for r in result.rows)
    assert ages[80] + ages[81] > ages[88] + ages[89]  # fewer at each older year


def test_phones_names_and_addresses(roster: list[dict[str, str]]) -> None:
    phones = [row["联系电话"] for row in roster if row["联系电话"]]
    assert 0.75 * 300 <= len(phones) <= 0.95 * 300
    assert len(set(phones)) == len(phones)
    assert all(p.startswith(DEMO_PHONE_PREFIX) and len(p) == 11 and p.isdigit() for p in phones)
    for row in roster:
        name = row["姓名"]
        assert 2 <= len(name) <= 4 and all("\u4e00" <= ch <= "\u9fff" for ch in name)
        assert row["户籍地址"].startswith("上海市奉贤区南桥镇") and row["户籍地址"].endswith("室")
    assert len({row["姓名"][0] for row in roster}) >= 15
    living = [row["居住地址"] for row in roster if row["居住地址"]]
    assert 0 < len(living) < 0.2 * 300


def test_other_sizes_and_dates() -> None:
    assert demo_roster(0, as_of=AS_OF) == []
    leap_day = date(2028, 2, 29)
    rows = demo_roster(120, seed=7, as_of=leap_day)
    result = parse_roster("r.xlsx", write_roster_xlsx(rows), as_of=leap_day)
    assert result.ok and len(result.rows) == 120
    with pytest.raises(ValueError):
        demo_roster(-1, as_of=AS_OF)
