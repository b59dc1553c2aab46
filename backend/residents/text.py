"""One set of rules for the text people type: names, addresses and every other free-text field.

The resident API (create, update), the roster import and the certification forms (reasons,
notes, device names) all call these functions, so a value refused on one path in is refused
on every other, with the same message. Two reasons to refuse rather than repair:

* a value that starts like a spreadsheet formula (``= + - @``) becomes live in the xlsx other
  departments open (formula injection); the export writer neutralises cells as well, but bad
  data should not get in at all;
* invisible characters (C0/C1 controls such as NUL, bidi overrides such as U+202E, zero-width
  characters such as U+200B) make a name look like another one, break exports and searches.

Pure functions, no database, no HTTP: `TextRejected` is the API's 422 when it reaches a route.
"""

from __future__ import annotations

import re
import unicodedata

from backend.errors import ValidationFailed

__all__ = [
    "ADDRESS_MAX",
    "FORMULA_START",
    "NAME_MAX",
    "TextRejected",
    "clean_address",
    "clean_free_text",
    "clean_name",
    "find_invisible",
]

NAME_MAX = 30
ADDRESS_MAX = 200
FORMULA_START = ("=", "+", "-", "@")
_WHITESPACE = re.compile(r"\s+")
_LINE_BREAKS = re.compile(r"\r\n?")
_NAME_DOTS = str.maketrans({"•": "·", "・": "·", "‧": "·", "∙": "·", "．": "·"})
_NAME_EXTRA = frozenset("· .-'")
_NONCHARACTERS = frozenset("\ufffe\uffff")


class TextRejected(ValidationFailed):
    """A value broke a rule: a 422 naming the field, with a stable `code` and a message for the person
    who typed it (the roster import turns it into a row error instead)."""

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(message, code=code, field=field)


def find_invisible(text: str, *, allow: str = "\t\n\r") -> str | None:
    """The first character that must not be typed into a field: a control (other than `allow`),
    a format character (bidi overrides and isolates, zero-width spaces and joiners, soft hyphen,
    BOM), a lone surrogate or a non-character. None when the text is clean."""
    for ch in text:
        if ch in allow:
            continue
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs") or ch in _NONCHARACTERS:
            return ch
    return None


def _refuse_invisible(text: str, *, field: str, label: str) -> None:
    ch = find_invisible(text)
    if ch is not None:
        raise TextRejected(
            field, "text.invisible_character",
            f"{label}含有看不见的控制字符、文字方向符或零宽字符（U+{ord(ch):04X}），请删除后重新输入",
        )


def _refuse_formula(text: str, *, field: str, label: str) -> None:
    if text.startswith(FORMULA_START):
        raise TextRejected(field, "text.formula", f"{label}不能以 = + - @ 开头")


def _single_line(text: str) -> str:
    """NFKC (full-width letters and digits to half-width), trimmed, inner runs of whitespace collapsed."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def clean_name(raw: str, *, field: str = "name", label: str = "姓名") -> str:
    """A person's name as stored: letters (any script) and marks, with the middle dot of minority names."""
    _refuse_invisible(raw, field=field, label=label)
    name = _single_line(raw).translate(_NAME_DOTS)
    if not name:
        raise TextRejected(field, "text.required", f"{label}不能为空")
    if len(name) > NAME_MAX:
        raise TextRejected(field, "text.too_long", f"{label}不能超过{NAME_MAX}个字")
    _refuse_formula(name, field=field, label=label)
    if not all(unicodedata.category(ch)[0] in "LM" or ch in _NAME_EXTRA for ch in name) or name[0] in "·.-'":
        raise TextRejected(field, "name.characters", f"{label}只能包含文字，少数民族姓名可用间隔号“·”")
    return name


def clean_address(raw: str | None, *, field: str, label: str, required: bool) -> str | None:
    """An address as stored (None when empty and optional)."""
    _refuse_invisible(raw or "", field=field, label=label)
    text = _single_line(raw or "")
    if not text:
        if required:
            raise TextRejected(field, "text.required", f"{label}不能为空")
        return None
    if len(text) > ADDRESS_MAX:
        raise TextRejected(field, "text.too_long", f"{label}不能超过{ADDRESS_MAX}个字")
    _refuse_formula(text, field=field, label=label)
    return text


def clean_free_text(raw: str | None, *, field: str, label: str, max_length: int, required: bool = False,
                    multiline: bool = False) -> str:
    """Reasons, notes, device names: trimmed, invisible characters and formula starts refused.

    Unlike names and addresses the text is kept as typed (no NFKC), so Chinese punctuation stays;
    a multi-line field keeps its line breaks (as LF), a single-line one turns them into spaces.
    """
    _refuse_invisible(raw or "", field=field, label=label)
    text = (raw or "").strip()
    text = _LINE_BREAKS.sub("\n", text) if multiline else _WHITESPACE.sub(" ", text)
    if not text:
        if required:
            raise TextRejected(field, "text.required", f"{label}不能为空")
        return ""
    if len(text) > max_length:
        raise TextRejected(field, "text.too_long", f"{label}不能超过{max_length}个字")
    _refuse_formula(text, field=field, label=label)
    return text
