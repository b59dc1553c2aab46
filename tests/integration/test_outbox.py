"""The outbox: idempotent enqueue, retries with back-off, and work done exactly once."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from backend.outbox import service as outbox
from backend.outbox.models import OutboxEvent


async def test_enqueue_is_idempotent_and_failures_are_retried(server):
    key = f"test:{secrets.token_hex(4)}"
    kind = f"test.{secrets.token_hex(3)}"
    first = await outbox.enqueue(kind=kind, dedupe_key=key, payload={"n": 1})
    again = await outbox.enqueue(kind=kind, dedupe_key=key, payload={"n": 2})
    assert first.id == again.id
    calls: list[int] = []

    async def flaky(event: OutboxEvent) -> None:
        calls.append(event.id)
        if len(calls) == 1:
            raise ConnectionError("chain down")

    assert await outbox.run_due({kind: flaky}) == 0
    failed = await OutboxEvent.get(id=first.id)
    assert failed.attempts == 1 and "chain down" in failed.last_error and failed.processed_at is None
    assert failed.next_attempt_at > datetime.now(UTC)
    # not due yet: nothing runs
    assert await outbox.run_due({kind: flaky}) == 0 and len(calls) == 1
    await OutboxEvent.filter(id=first.id).update(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
    assert await outbox.run_due({kind: flaky}) == 1
    assert (await OutboxEvent.get(id=first.id)).processed_at is not None
    assert await outbox.run_due({kind: flaky}) == 0 and len(calls) == 2
