"""Fixed-window rate limits on the shared cache (login, OTP, certification start)."""

from __future__ import annotations

from backend.cache import Cache
from backend.errors import RateLimited


async def hit(cache: Cache, key: str, *, limit: int, window_s: int, message: str | None = None) -> int:
    """Count one event under `key`; raise RateLimited once more than `limit` fall in the window."""
    count = await cache.incr(f"rl:{key}", ttl=window_s)
    if count > limit:
        retry = await cache.ttl(f"rl:{key}") or window_s
        raise RateLimited(message or "操作过于频繁，请稍后再试", retry_after=retry)
    return count


async def is_blocked(cache: Cache, key: str, *, limit: int) -> int | None:
    """Seconds left if `key` already exceeded `limit`, else None (checks without counting)."""
    value = await cache.get(f"rl:{key}")
    if value is not None and int(value) >= limit:
        return await cache.ttl(f"rl:{key}") or 1
    return None


async def reset(cache: Cache, key: str) -> None:
    await cache.delete(f"rl:{key}")
