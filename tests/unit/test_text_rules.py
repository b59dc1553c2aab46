"""The one validator for typed text (names, addresses, free text) and when a close is early (issue 13, items 4, 7, 8)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from backend.certification.periods import closes_early
from backend.residents import text


@pytest.mark.parametrize("bad", ["\x00", "\x07", "\x1f", "\x7f", "\x85", "\u00ad", "\u061c", "\u200b", "\u200c",
                                 "\u200d", "\u200e", "\u200f", "\u202a", "\u202e", "\u2060", "\u2066", "\u2069",
                                 "\ufeff", "\ufffe"])
def test_invisible_characters_are_refused_in_every_kind_of_field(bad: str) -> None:
    for check in (lambda v: text.clean_name(v),
                  lambda v: text.clean_address(v, field="address", label="户籍地址", required=True),
                  lambda v: text.clean_free_text(v, field="note", label="说明", max_length=50, multiline=True)):
        with pytest.raises(text.TextRejected) as refused:
            check(f"王{bad}桂英")
        assert refused.value.code == "text.invisible_character" and refused.value.status == 422
        assert f"U+{ord(bad):04X}" in refused.value.message


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "＝", "＋"])  # full-width forms normalise to the ASCII ones
def test_formula_starts_are_refused_in_names_and_addresses(start: str) -> None:
    with pytest.raises(text.TextRejected) as refused:
        text.clean_address(f"{start}HYPERLINK(1)", field="address", label="户籍地址", required=True)
    assert refused.value.code == "text.formula" and "=" in refused.value.message
    with pytest.raises(text.TextRejected):
        text.clean_name(f"{start}张三")


def test_ordinary_text_is_kept_and_tidied() -> None:
    assert text.clean_name("  阿依古丽•买买提 ") == "阿依古丽·买买提"
    assert text.clean_name("李\t建国") == "李 建国"  # tabs and line breaks are whitespace, not controls
    assert text.clean_address("南桥镇\n解放路 12弄", field="address", label="户籍地址", required=True) == "南桥镇 解放路 12弄"
    assert text.clean_address("", field="living_address", label="居住地址", required=False) is None
    assert text.clean_free_text("卧床，神志清楚\r\n家属在场", field="note", label="说明", max_length=50,
                                multiline=True) == "卧床，神志清楚\n家属在场"  # Chinese punctuation kept
    with pytest.raises(text.TextRejected):
        text.clean_name("张" * 31)
    with pytest.raises(text.TextRejected):
        text.clean_name("顾2")


def test_a_close_is_early_until_the_due_day_is_over_in_china() -> None:
    period = SimpleNamespace(month="2026-11", due_day=25)
    assert closes_early(period, datetime(2026, 11, 25, 15, 59, tzinfo=UTC))  # 23:59 on the 25th in Beijing
    assert not closes_early(period, datetime(2026, 11, 25, 16, 0, tzinfo=UTC))  # 00:00 on the 26th
    assert closes_early(period, datetime(2026, 10, 30, tzinfo=UTC))
    assert not closes_early(period, datetime(2026, 12, 1, tzinfo=UTC))
