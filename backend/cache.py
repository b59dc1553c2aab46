"""The ephemeral store: OTPs, rate-limit counters, liveness challenges, short sessions.

One small interface, two implementations: Redis through `redis.asyncio` when `REDIS_URL`
is set (shared by every worker and host), and an in-process dictionary for the embedded
single-process mode. Values are strings; callers serialise what they store.

When Redis does not answer, every call raises `CacheUnavailable` (a 503 with `Retry-After`),
never a bare driver error that would surface as a 500. Callers that can do without the cache
(the per-request session check reads the database instead) catch it; the rest fail clearly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

import redis.asyncio as redis_asyncio
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from backend.errors import ServiceUnavailable

log = logging.getLogger("zhilian.cache")
T = TypeVar("T")

RETRY_AFTER_S = 5  # what a 503 tells clients: Redis restarts in about this long
DOWN_FOR_S = 1.0  # after a failure, calls fail fast this long instead of each waiting on a dead socket


class CacheUnavailable(ServiceUnavailable):
    """Redis is not answering."""

    code = "cache.unavailable"

    def __init__(self) -> None:
        super().__init__("系统缓存服务暂时不可用，请稍后再试", retry_after=RETRY_AFTER_S)


class Cache(Protocol):
    async def get(self, key: str) -> str | None: ...
    async def set(self, key: str, value: str, *, ttl: int | None = None) -> None: ...
    async def add(self, key: str, value: str, *, ttl: int) -> bool:
        """Set only if absent (atomic); True when this call created the key."""
        ...
    async def pop(self, key: str) -> str | None:
        """Get and delete atomically (single-use tokens)."""
        ...
    async def delete(self, key: str) -> None: ...
    async def incr(self, key: str, *, ttl: int) -> int:
        """Increment a counter; the first increment starts its `ttl`-second window."""
        ...
    async def ttl(self, key: str) -> int | None: ...
    async def ping(self) -> bool: ...
    async def close(self) -> None: ...


class MemoryCache:
    """Process-local cache with expiry; correct only with a single worker process."""

    def __init__(self, prefix: str = "") -> None:
        self._prefix = prefix
        self._data: dict[str, tuple[str, float | None]] = {}
        self._lock = asyncio.Lock()

    def _live(self, key: str) -> tuple[str, float | None] | None:
        item = self._data.get(self._prefix + key)
        if item is None:
            return None
        if item[1] is not None and item[1] <= time.monotonic():
            del self._data[self._prefix + key]
            return None
        return item

    @staticmethod
    def _expiry(ttl: int | None) -> float | None:
        return None if ttl is None else time.monotonic() + ttl

    async def get(self, key: str) -> str | None:
        item = self._live(key)
        return None if item is None else item[0]

    async def set(self, key: str, value: str, *, ttl: int | None = None) -> None:
        self._data[self._prefix + key] = (value, self._expiry(ttl))

    async def add(self, key: str, value: str, *, ttl: int) -> bool:
        async with self._lock:
            if self._live(key) is not None:
                return False
            self._data[self._prefix + key] = (value, self._expiry(ttl))
            return True

    async def pop(self, key: str) -> str | None:
        async with self._lock:
            item = self._live(key)
            if item is None:
                return None
            del self._data[self._prefix + key]
            return item[0]

    async def delete(self, key: str) -> None:
        self._data.pop(self._prefix + key, None)

    async def incr(self, key: str, *, ttl: int) -> int:
        async with self._lock:
            item = self._live(key)
            if item is None:
                self._data[self._prefix + key] = ("1", self._expiry(ttl))
                return 1
            value = int(item[0]) + 1
            self._data[self._prefix + key] = (str(value), item[1])
            return value

    async def ttl(self, key: str) -> int | None:
        item = self._live(key)
        if item is None or item[1] is None:
            return None
        return max(0, int(item[1] - time.monotonic()))

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._data.clear()


class RedisCache:
    """Redis-backed cache shared by every worker.

    Connection failures become `CacheUnavailable`. The client retries a command once on a fresh
    connection (pooled connections all die when Redis restarts), and after a failure the cache
    refuses at once for `DOWN_FOR_S` so a dead Redis costs requests no time-outs.
    """

    def __init__(self, url: str, prefix: str = "") -> None:
        self._redis = redis_asyncio.from_url(
            url, decode_responses=True, socket_connect_timeout=2, socket_timeout=5,
            retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), 1),
        )
        self._prefix = prefix
        self._down_until = 0.0

    async def _call(self, operation: Coroutine[Any, Any, T]) -> T:
        if time.monotonic() < self._down_until:
            operation.close()
            raise CacheUnavailable()
        try:
            return await operation
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            self._down_until = time.monotonic() + DOWN_FOR_S
            log.warning("cache unavailable", extra={"error": f"{type(exc).__name__}: {exc}"})
            raise CacheUnavailable() from exc

    async def get(self, key: str) -> str | None:
        return await self._call(self._redis.get(self._prefix + key))

    async def set(self, key: str, value: str, *, ttl: int | None = None) -> None:
        await self._call(self._redis.set(self._prefix + key, value, ex=ttl))

    async def add(self, key: str, value: str, *, ttl: int) -> bool:
        return bool(await self._call(self._redis.set(self._prefix + key, value, ex=ttl, nx=True)))

    async def pop(self, key: str) -> str | None:
        return await self._call(self._redis.getdel(self._prefix + key))

    async def delete(self, key: str) -> None:
        await self._call(self._redis.delete(self._prefix + key))

    async def incr(self, key: str, *, ttl: int) -> int:
        pipe = self._redis.pipeline(transaction=True)
        pipe.incr(self._prefix + key)
        pipe.expire(self._prefix + key, ttl, nx=True)
        value, _ = await self._call(pipe.execute())
        return int(value)

    async def ttl(self, key: str) -> int | None:
        value = await self._call(self._redis.ttl(self._prefix + key))
        return None if value is None or value < 0 else int(value)

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (redis_asyncio.RedisError, OSError):
            return False

    async def close(self) -> None:
        await self._redis.aclose()


def create_cache(redis_url: str, prefix: str) -> Cache:
    return RedisCache(redis_url, prefix) if redis_url else MemoryCache(prefix)
