"""RFC 8785 (JCS) canonical forms through the `rfc8785` package, on the RFC's own examples."""

from __future__ import annotations

import pytest

from backend.credentials.eddsa_jcs import canonicalize
from backend.credentials.errors import MalformedCredential


def test_rfc8785_section_3_2_2_sample() -> None:
    """RFC 8785 §3.2.2: numbers, escapes and literals of the sample input."""
    value = {
        "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/",
        "literals": [None, True, False],
    }
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonicalize(value) == expected.encode()


def test_rfc8785_section_3_2_3_sorts_by_utf16_code_units() -> None:
    value = {"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
             "1": "One", "\U0001f600": "Emoji: Grinning Face", "\u0080": "Control", "\u00f6": "Latin Small Letter O With Diaeresis"}
    values_in_order = ["Carriage Return", "One", "Control", "Latin Small Letter O With Diaeresis", "Euro Sign",
                       "Emoji: Grinning Face", "Hebrew Letter Dalet With Dagesh"]  # the RFC's own order
    text = canonicalize(value).decode()
    positions = [text.index(f'"{v}"') for v in values_in_order]
    assert positions == sorted(positions)


def test_chinese_text_is_kept_as_utf8_not_escaped() -> None:
    assert canonicalize({"名": "王桂英"}) == '{"名":"王桂英"}'.encode()


def test_values_jcs_cannot_represent_are_refused() -> None:
    with pytest.raises(MalformedCredential):
        canonicalize({"x": float("nan")})
