"""The cache interface behaves the same on Redis (PostgreSQL pass) and in process (SQLite pass)."""

from __future__ import annotations

import asyncio
import secrets

from backend import ratelimit
from backend.cache import MemoryCache, RedisCache
from backend.errors import RateLimited


async def test_cache_semantics(server, backend_kind):
    cache = server.app.ctx.cache
    assert isinstance(cache, RedisCache if backend_kind == "postgres" else MemoryCache)
    key = f"t:{secrets.token_hex(4)}"
    assert await cache.get(key) is None
    await cache.set(key, "v", ttl=30)
    assert await cache.get(key) == "v"
    assert 0 < (await cache.ttl(key)) <= 30
    assert await cache.add(key, "other", ttl=30) is False
    assert await cache.pop(key) == "v"
    assert await cache.pop(key) is None
    assert await cache.add(key, "first", ttl=30) is True
    await cache.delete(key)
    assert await cache.get(key) is None


async def test_expiry_and_counter_windows(server):
    cache = server.app.ctx.cache
    key = f"t:{secrets.token_hex(4)}"
    assert await cache.incr(key, ttl=1) == 1
    assert await cache.incr(key, ttl=1) == 2
    await asyncio.sleep(1.2)
    assert await cache.get(key) is None
    assert await cache.incr(key, ttl=1) == 1


async def test_set_if_absent_is_atomic_under_concurrency(server):
    cache = server.app.ctx.cache
    key = f"t:{secrets.token_hex(4)}"
    results = await asyncio.gather(*(cache.add(key, str(i), ttl=30) for i in range(20)))
    assert results.count(True) == 1


async def test_rate_limit_raises_after_the_limit(server):
    cache = server.app.ctx.cache
    key = f"t:{secrets.token_hex(4)}"
    for _ in range(3):
        await ratelimit.hit(cache, key, limit=3, window_s=60)
    try:
        await ratelimit.hit(cache, key, limit=3, window_s=60)
    except RateLimited as exc:
        assert 0 < exc.retry_after <= 60
    else:
        raise AssertionError("fourth hit should be limited")
