"""The resident's browser session on the consent page, and CSRF tokens for its forms.

The session is a short-lived HS256 JWT in an HttpOnly, SameSite=Lax cookie (Secure when the
public URL is https), keyed by a key derived from SECRET_KEY. Signing in replaces the session
id (no fixation). Each form carries HMAC(session id), checked on POST (synchronizer token).
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass

import jwt

from backend.settings import Settings

COOKIE_NAME = "zl_oauth_session"
COOKIE_PATH = "/oauth"
_AUDIENCE = "zhilian-oauth-browser"


@dataclass(frozen=True)
class BrowserSession:
    sid: str
    app_user_id: int | None = None
    auth_time: int | None = None

    @property
    def signed_in(self) -> bool:
        return self.app_user_id is not None


def _key(settings: Settings) -> bytes:
    return hmac.new(settings.secret_key.encode(), b"zhilian/oauth/browser-session/v1", "sha256").digest()


def new_session(*, app_user_id: int | None = None) -> BrowserSession:
    return BrowserSession(
        sid=secrets.token_urlsafe(16), app_user_id=app_user_id, auth_time=int(time.time()) if app_user_id else None
    )


def encode(session: BrowserSession, *, settings: Settings) -> str:
    now = int(time.time())
    claims = {"sid": session.sid, "uid": session.app_user_id, "at": session.auth_time, "aud": _AUDIENCE,
              "iat": now, "exp": now + settings.oauth_session_ttl_s}
    return jwt.encode(claims, _key(settings), algorithm="HS256")


def decode(token: str | None, *, settings: Settings) -> BrowserSession | None:
    if not token:
        return None
    try:
        claims = jwt.decode(token, _key(settings), algorithms=["HS256"], audience=_AUDIENCE,
                            options={"require": ["exp", "sid"]})
    except jwt.PyJWTError:
        return None
    uid = claims.get("uid")
    return BrowserSession(str(claims["sid"]), int(uid) if uid is not None else None, claims.get("at"))


def csrf_token(session: BrowserSession, *, settings: Settings) -> str:
    return hmac.new(_key(settings), f"csrf:{session.sid}".encode(), "sha256").hexdigest()


def csrf_ok(session: BrowserSession | None, given: str | None, *, settings: Settings) -> bool:
    return session is not None and bool(given) and hmac.compare_digest(csrf_token(session, settings=settings), given or "")


def cookie_is_secure(settings: Settings) -> bool:
    return settings.effective_public_url.startswith("https://")
