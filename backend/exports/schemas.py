"""Request bodies and query strings of the exports API."""

from __future__ import annotations

from pydantic import Field

from backend.http import Schema


class CreateExport(Schema):
    period_id: int = Field(ge=1)
    department: str = Field(min_length=1, max_length=32, description="department code, e.g. civil_affairs")


class ExportQuery(Schema):
    period_id: int | None = Field(default=None, ge=1)
    department: str | None = Field(default=None, max_length=32)
