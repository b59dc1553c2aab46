"""Running a create once per (caller, Idempotency-Key) and answering a retry with the first answer.

The rules follow draft-ietf-httpapi-idempotency-key-header: the same key with the same request
gets the first answer again; the same key with a different request is refused (422); a retry
arriving while the first is still running is told so (409). Only successful (2xx) answers are
remembered: a refused or failed request leaves no key behind, so the caller may retry it as is.
Keys are scoped per caller and expire after IDEMPOTENCY_TTL_S.

PostgreSQL: the key is inserted first in the transaction that does the work and its answer is
written before that transaction commits. A process killed mid-request leaves the work and the
key, or neither, so the retry replays or runs afresh — the work never happens twice. A retry that
races the first waits on the key's unique index until the first commits, then replays it.

SQLite (embedded mode, one process) shares one connection between requests, so a request-wide
transaction would sweep other requests' writes into it: there the key is claimed before the work
and the answer stored after. A crash in between lets the retry run again (what is unique by nature,
one certification per resident and month, still happens once).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from tortoise.connection import get_connection
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from backend.errors import ApiError
from backend.idempotency.models import IdempotencyKey
from backend.security.fieldcrypt import FieldCipher

R = TypeVar("R")

ANSWER_PURPOSE = "idempotent_answer"
KEY_PATTERN = re.compile(r"^[A-Za-z0-9._:~+/=-]{8,128}$")
PROCESS = uuid.uuid4().hex  # this process: a key it claimed and never settled was cut short by a crash


@dataclass(frozen=True)
class Answer:
    """What a create answered: replayed byte for byte to a retry."""

    status: int
    content_type: str
    body: bytes


class KeyReused(ApiError):
    status = 422
    code = "idempotency.key_reused"


class StillRunning(ApiError):
    status = 409
    code = "idempotency.in_progress"


class _Taken(Exception):
    """Another request stored this key between our look-up and our insert."""


def check_key(key: str) -> None:
    if not KEY_PATTERN.match(key):
        raise ApiError("Idempotency-Key 应为 8 到 128 个字母、数字或 -_.:~+/= 字符", code="idempotency.bad_key",
                       status=400, field="Idempotency-Key")


def fingerprint(*, method: str, path: str, query: str, parts: Iterable[bytes]) -> str:
    """SHA-256 over what makes two requests the same request (parts: the body, already canonical)."""
    digest = hashlib.sha256()
    for piece in (method.upper().encode(), path.encode(), query.encode(), *parts):
        digest.update(len(piece).to_bytes(8, "big") + piece)
    return digest.hexdigest()


async def run_once(
    *, scope: str, key: str, fingerprint: str, work: Callable[[], Awaitable[R]],
    answer_of: Callable[[R], Answer | None], cipher: FieldCipher, ttl_s: int,
) -> R | Answer:
    """`work()`'s result, or the Answer stored by an earlier request with this key."""
    for _ in range(3):
        found = await _find(scope, key)
        if found is not None:
            return _replay(found, fingerprint, cipher)
        run = _run_atomic if _atomic() else _run_claimed
        try:
            return await run(scope=scope, key=key, fingerprint=fingerprint, work=work, answer_of=answer_of,
                             cipher=cipher, ttl_s=ttl_s)
        except _Taken:
            continue  # stored meanwhile by a request that ran it: answer with that
    raise StillRunning("相同的请求正在处理，请稍后再试")


async def purge_expired(now: datetime | None = None) -> int:
    return await IdempotencyKey.filter(expires_at__lte=now or datetime.now(UTC)).delete()


def _atomic() -> bool:
    return get_connection("default").capabilities.dialect != "sqlite"


async def _find(scope: str, key: str) -> IdempotencyKey | None:
    row = await IdempotencyKey.get_or_none(scope=scope, key=key)
    if row is None:
        return None
    if row.expires_at <= datetime.now(UTC) or (row.status == 0 and row.owner != PROCESS):
        await IdempotencyKey.filter(id=row.id, status=row.status).delete()  # expired, or its process died
        return None
    return row


def _replay(row: IdempotencyKey, fingerprint: str, cipher: FieldCipher) -> Answer:
    if row.fingerprint != fingerprint:
        raise KeyReused("这个 Idempotency-Key 已用于另一个请求，请为新的操作使用新的 key")
    if row.status == 0:
        raise StillRunning("相同的请求正在处理，请稍后再试")
    return Answer(row.status, row.content_type, cipher.decrypt_bytes(row.body_cipher, purpose=ANSWER_PURPOSE))


async def _claim(*, scope: str, key: str, fingerprint: str, ttl_s: int, owner: str) -> IdempotencyKey:
    try:
        return await IdempotencyKey.create(scope=scope, key=key, fingerprint=fingerprint, owner=owner,
                                           expires_at=datetime.now(UTC) + timedelta(seconds=ttl_s))
    except IntegrityError:
        raise _Taken from None


async def _settle(row: IdempotencyKey, answer: Answer | None, cipher: FieldCipher) -> None:
    """Remember a 2xx answer; forget the key otherwise (the caller may retry with it)."""
    if answer is None:
        await row.delete()
        return
    await IdempotencyKey.filter(id=row.id).update(
        status=answer.status, content_type=answer.content_type[:128], owner="",
        body_cipher=cipher.encrypt_bytes(answer.body, purpose=ANSWER_PURPOSE),
    )


async def _run_atomic(*, scope: str, key: str, fingerprint: str, work: Callable[[], Awaitable[R]],
                      answer_of: Callable[[R], Answer | None], cipher: FieldCipher, ttl_s: int) -> R:
    refused: ApiError | None = None
    async with in_transaction():
        row = await _claim(scope=scope, key=key, fingerprint=fingerprint, ttl_s=ttl_s, owner=PROCESS)
        try:
            result = await work()
        except ApiError as exc:  # a refusal keeps what the work wrote (as without a key), not the key
            refused = exc
            try:
                await row.delete()
            except Exception:  # the work left the transaction unusable: roll it all back
                raise exc from None
        else:
            await _settle(row, answer_of(result), cipher)
    if refused is not None:
        raise refused
    return result


async def _run_claimed(*, scope: str, key: str, fingerprint: str, work: Callable[[], Awaitable[R]],
                       answer_of: Callable[[R], Answer | None], cipher: FieldCipher, ttl_s: int) -> R:
    row = await _claim(scope=scope, key=key, fingerprint=fingerprint, ttl_s=ttl_s, owner=PROCESS)
    try:
        result = await work()
    except BaseException:  # refused, failed or cancelled (the caller hung up): the key is free again
        await IdempotencyKey.filter(id=row.id).delete()
        raise
    await _settle(row, answer_of(result), cipher)
    return result
