"""The typed text of work orders, checked by the project's one validator (`backend.residents.text`).

Descriptions, notes, places, team, category and point names come from residents, staff and city
platforms, and end up in the console, the app, Open311 answers and the monthly xlsx. Each field is
named here once with its Chinese label and length, so every path in (app, console, Open311, the
category editor) refuses the same invisible characters and formula starts with the same 422.
"""

from __future__ import annotations

from typing import Any

from backend.residents import text as text_rules

DESCRIPTION_MAX = 4000
NOTE_MAX = 1000


def description(raw: str | None, *, required: bool = False) -> str:
    """What the reporter wrote (several lines allowed)."""
    return text_rules.clean_free_text(raw, field="description", label="问题描述", max_length=DESCRIPTION_MAX,
                                      required=required, multiline=True)


def note(raw: str | None, *, field: str = "note", required: bool = True) -> str:
    """The note every move carries, and a call-back's remark."""
    return text_rules.clean_free_text(raw, field=field, label="说明", max_length=NOTE_MAX, required=required,
                                      multiline=True)


def line(raw: str | None, *, field: str, label: str, max_length: int, required: bool = False) -> str:
    """A one-line field: a name, a grid, who is responsible, keywords."""
    return text_rules.clean_free_text(raw, field=field, label=label, max_length=max_length, required=required)


def address(raw: str | None, *, field: str = "address", label: str = "地点") -> str:
    return text_rules.clean_address(raw, field=field, label=label, required=False) or ""


def person(raw: str | None, *, field: str, label: str = "姓名") -> str | None:
    """A name someone gave for themself or a contact (None when not given)."""
    if raw is None or not raw.strip():
        return None
    return text_rules.clean_name(raw, field=field, label=label)


def attribute(raw: Any, *, code: str, label: str, multiline: bool) -> str:
    """A category's extra text field (灯杆编号 …)."""
    return text_rules.clean_free_text(str(raw), field=f"attributes.{code}", label=label,
                                      max_length=2000 if multiline else 200, multiline=multiline)
