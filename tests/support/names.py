"""Resident names for tests that need many distinct ones: names are letters only (no digits), on every path in."""

from __future__ import annotations

_DIGITS = "零一二三四五六七八九"


def numbered_name(prefix: str, number: int) -> str:
    """`prefix` followed by `number` spelt digit by digit in Chinese numerals: numbered_name("张", 31) == "张三一"."""
    return prefix + "".join(_DIGITS[int(d)] for d in str(number))
