"""Is this session still live? Revocations are durable in the database and cached.

A session is a refresh-token family: one sign-in and all its rotations. Every access token
names its session (`sid`), and every authenticated request asks whether that session is still
live. The answer comes from the cache when it holds one, else from the database (and is then
cached for `SESSION_CACHE_S`). Signing out, revoking a family (a reused refresh token) or
disabling an account writes the database first and then marks the cache, so it takes effect
on the very next request, in every worker.

Because the database is the record, a revoked session stays revoked when the cache restarts
empty, and when the cache is down the database answers alone: signed-in staff keep working.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from backend.auth.models import AppUser, RefreshToken, StaffUser
from backend.auth.tokens import Principal
from backend.cache import Cache
from backend.errors import ServiceUnavailable, Unauthorized

log = logging.getLogger("zhilian.auth")

LIVE = "live"
REVOKED = "revoked"
DISABLED = "disabled"


def _key(session_id: str) -> str:
    return f"sess:{session_id}"


async def _database_state(principal: Principal) -> str:
    try:
        family = uuid.UUID(principal.session_id)
    except ValueError:
        return REVOKED
    tokens = RefreshToken.filter(family_id=family, subject_kind=principal.kind, subject_id=principal.user_id)
    if not await tokens.exists() or await tokens.filter(revoked_at__isnull=False).exists():
        return REVOKED
    account = StaffUser if principal.kind == "staff" else AppUser
    if not await account.filter(id=principal.user_id, is_active=True).exists():
        return DISABLED
    return LIVE


async def session_state(principal: Principal, *, cache: Cache, cache_s: int) -> str:
    """LIVE, REVOKED or DISABLED: from the cache if it knows, else from the database."""
    cache_up = True
    try:
        cached = await cache.get(_key(principal.session_id))
    except ServiceUnavailable:
        cached, cache_up = None, False
    if cached in (LIVE, REVOKED, DISABLED):
        return cached
    state = await _database_state(principal)
    if cache_up:
        # a refusal is final, a live answer is re-checked after `cache_s` (covers changes made behind our back)
        ttl = cache_s if state == LIVE else max(cache_s, principal.expires_at - int(datetime.now(UTC).timestamp()))
        with contextlib.suppress(ServiceUnavailable):  # add, not set: a revocation that landed meanwhile stays
            await cache.add(_key(principal.session_id), state, ttl=max(1, ttl))
    return state


async def require_live(principal: Principal, *, cache: Cache, cache_s: int) -> None:
    state = await session_state(principal, cache=cache, cache_s=cache_s)
    if state == REVOKED:
        raise Unauthorized("已退出登录，请重新登录", code="auth.revoked_token")
    if state == DISABLED:
        raise Unauthorized("账号已停用", code="auth.account_disabled")


async def _mark(session_ids: Iterable[str], state: str, *, cache: Cache, ttl_s: int) -> None:
    """Tell the cache after the database changed; if it is down, the database is asked instead anyway."""
    for session_id in session_ids:
        try:
            await cache.set(_key(session_id), state, ttl=ttl_s)
        except ServiceUnavailable:
            # A cache that is down answers nothing; one that comes back holds our "live" for at most SESSION_CACHE_S.
            log.warning("session revoked while the cache was unavailable", extra={"session": session_id})
            return


async def revoke_families(family_ids: Iterable[uuid.UUID], *, cache: Cache, ttl_s: int) -> None:
    """Revoke whole families (sign-out, reuse of a spent refresh token): their access tokens stop at once."""
    families = list(dict.fromkeys(family_ids))
    if not families:
        return
    await RefreshToken.filter(family_id__in=families, revoked_at=None).update(revoked_at=datetime.now(UTC))
    await _mark((str(f) for f in families), REVOKED, cache=cache, ttl_s=ttl_s)


async def revoke_subject(kind: str, user_id: int, *, cache: Cache, ttl_s: int) -> int:
    """Revoke every session of one account (disabled, second factor reset); returns how many."""
    families = await RefreshToken.filter(subject_kind=kind, subject_id=user_id, revoked_at=None) \
        .distinct().values_list("family_id", flat=True)
    await revoke_families(families, cache=cache, ttl_s=ttl_s)
    return len(set(families))
