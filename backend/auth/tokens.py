"""Short-lived JWT access tokens (pyjwt, HS256) and opaque refresh tokens.

Access tokens carry who is calling and the session (`sid`: the refresh-token family) they
belong to; every request checks that the session is still live (`auth.sessions`), so signing
out, revoking a family or disabling an account cuts access tokens at once. Refresh tokens are
random strings whose SHA-256 is stored, rotated on every use. An access token is derived from
the refresh token issued with it (its `jti`) so the same pair can be answered again within the
rotation grace window.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
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
    session_id: str = ""  # the refresh-token family this access token was issued with

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
    session_id: str,
    jti: str | None = None,
    issued_at: int | None = None,
) -> tuple[str, Principal]:
    """Sign an access token; the same arguments (with `jti` and `issued_at`) give the same token."""
    now = int(time.time()) if issued_at is None else issued_at
    principal = Principal(kind, user_id, role, community_id, district, department_id, jti or secrets.token_hex(16),
                          now + ttl_s, session_id)
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": f"{kind}:{user_id}",
        "role": role,
        "cid": community_id,
        "dst": district,
        "dep": department_id,
        "jti": principal.jti,
        "sid": session_id,
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
            options={"require": ["exp", "iat", "sub", "jti", "sid"]},
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
            session_id=str(claims["sid"]),
        )
    except (jwt.PyJWTError, ValueError, KeyError) as exc:
        raise TokenInvalid(str(exc)) from exc


def new_refresh_token() -> tuple[str, str]:
    """A fresh refresh token and the hash we store for it."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def successor_refresh_token(token: str, *, secret: str) -> str:
    """The token that rotating `token` gives: derived, so a repeat within the grace window gets the same one.

    Knowing it needs both the spent token and the server secret, so it is no weaker than a random one.
    """
    return hmac.new(secret.encode(), b"refresh-successor:" + token.encode(), "sha256").hexdigest()


def access_jti(refresh_token: str, *, secret: str) -> str:
    """The `jti` of the access token issued beside `refresh_token` (stable, so a repeated answer is identical)."""
    return hmac.new(secret.encode(), b"access-jti:" + refresh_token.encode(), "sha256").hexdigest()[:32]
