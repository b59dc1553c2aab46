"""Short-lived JWT access tokens (pyjwt, HS256) and opaque refresh tokens.

Access tokens are self-contained so any worker can check them without a database round
trip; logout puts the token's `jti` on a deny list in the cache until it would expire.
Refresh tokens are random strings whose SHA-256 is stored, rotated on every use.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass

import jwt

ISSUER = "zhilian"
AUDIENCE = "zhilian-api"


@dataclass(frozen=True)
class Principal:
    """Who is calling, as carried by the access token."""

    kind: str  # staff | app
    user_id: int
    role: str  # a staff Role value, or "app"
    community_id: int | None
    district: str
    department_id: int | None
    jti: str
    expires_at: int

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.user_id}"


class TokenInvalid(Exception):
    """The token is malformed, forged, expired or meant for someone else."""


def issue_access_token(
    *,
    secret: str,
    ttl_s: int,
    kind: str,
    user_id: int,
    role: str,
    community_id: int | None = None,
    district: str = "",
    department_id: int | None = None,
) -> tuple[str, Principal]:
    now = int(time.time())
    principal = Principal(kind, user_id, role, community_id, district, department_id, uuid.uuid4().hex, now + ttl_s)
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": f"{kind}:{user_id}",
        "role": role,
        "cid": community_id,
        "dst": district,
        "dep": department_id,
        "jti": principal.jti,
        "iat": now,
        "exp": principal.expires_at,
    }
    return jwt.encode(claims, secret, algorithm="HS256"), principal


def decode_access_token(token: str, *, secret: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "jti"]},
        )
        kind, _, user_id = str(claims["sub"]).partition(":")
        return Principal(
            kind=kind,
            user_id=int(user_id),
            role=str(claims.get("role", "")),
            community_id=claims.get("cid"),
            district=claims.get("dst") or "",
            department_id=claims.get("dep"),
            jti=str(claims["jti"]),
            expires_at=int(claims["exp"]),
        )
    except (jwt.PyJWTError, ValueError, KeyError) as exc:
        raise TokenInvalid(str(exc)) from exc


def new_refresh_token() -> tuple[str, str]:
    """A fresh refresh token and the hash we store for it."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
