"""Request bodies and query strings of the credentials API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from backend.http import Schema


class ResidentQuery(Schema):
    resident_id: int = Field(ge=1)


class StatusChange(Schema):
    purpose: Literal["revocation", "suspension"]
    value: bool
    reason: str = Field(default="", max_length=200)


class VerifyRequest(Schema):
    """A credential to verify, optionally with its inclusion proof bundle."""

    model_config = ConfigDict(extra="forbid")
    credential: dict[str, Any]
    inclusion: dict[str, Any] | None = None


class StaffListQuery(Schema):
    period_id: int | None = Field(default=None, ge=1)
    resident_id: int | None = Field(default=None, ge=1)
