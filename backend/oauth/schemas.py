"""Request bodies of the OAuth provider's own JSON API (client registration)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from backend.http import Schema


class ClientCreate(Schema):
    name: str = Field(min_length=1, max_length=64)
    redirect_uris: list[str] = Field(min_length=1, max_length=10)
    scopes: list[str] = Field(min_length=1, max_length=10)
    confidential: bool = True
    sector_identifier: str | None = Field(default=None, min_length=1, max_length=255)
    id_token_signed_response_alg: Literal["ES256", "RS256"] | None = Field(
        default=None, description="OIDC Registration §2; default: the provider's signing algorithm")
