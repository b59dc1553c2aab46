"""Request bodies of the QR routes."""

from __future__ import annotations

from pydantic import Field

from backend.http import Schema


class ScanBody(Schema):
    token: str = Field(min_length=1, max_length=512, description="the token, or the whole link the camera read")


class CardsBody(Schema):
    resident_ids: list[int] | None = Field(
        default=None, min_length=1, max_length=2000, description="omit for the whole (active) community",
    )
    community_id: int | None = Field(default=None, description="district and platform admins: which community")
