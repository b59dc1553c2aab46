"""Request bodies and query strings of the resident routes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from backend.http import Schema


class ResidentCreate(Schema):
    name: str = Field(min_length=1, max_length=30)
    national_id: str = Field(min_length=15, max_length=24)
    phone: str | None = Field(default=None, max_length=20)
    address: str = Field(min_length=1, max_length=200)
    living_address: str | None = Field(default=None, max_length=200)
    community_id: int | None = Field(default=None, description="required for district and platform admins")


class ResidentUpdate(Schema):
    name: str | None = Field(default=None, min_length=1, max_length=30)
    phone: str | None = Field(default=None, max_length=20)
    address: str | None = Field(default=None, min_length=1, max_length=200)
    living_address: str | None = Field(default=None, max_length=200)
    status: Literal["active", "suspended", "moved", "deceased"] | None = None


class ResidentQuery(Schema):
    q: str | None = Field(default=None, max_length=30)
    id_suffix: str | None = Field(default=None, pattern=r"^\d{3}[\dXx]$")
    status: Literal["active", "suspended", "moved", "deceased"] | None = None
    tier: Literal["80-89", "90-99", "100+"] | None = None
    community_id: int | None = None
    page: int = Field(default=1, ge=1, le=10_000)
    size: int = Field(default=20, ge=1, le=500)


class ImportQuery(Schema):
    mode: Literal["dry_run", "commit"] = "dry_run"
    community_id: int | None = None


class ConsentCreate(Schema):
    kind: Literal["biometric", "data_processing"]
    version: str = Field(min_length=1, max_length=16)
    method: Literal["paper", "in_app", "verbal_witnessed"]


class MoveResolve(Schema):
    keep_resident_id: int = Field(ge=1, description="the registration that stays; the person's others become moved")
    reason: str = Field(min_length=2, max_length=200)
