"""Enqueue deferred work and let workers claim it with exponential back-off.

A request never waits for the chain or a gateway: it writes an `OutboxEvent` (in its own
transaction when it passes `using_db`), and a worker loop calls the handler registered for
the event's kind. Failures are retried with back-off; nothing is lost while a dependency is down.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError

from backend.outbox.models import OutboxEvent

log = logging.getLogger("zhilian.outbox")

Handler = Callable[[OutboxEvent], Awaitable[None]]
MAX_BACKOFF_S = 600


async def enqueue(*, kind: str, dedupe_key: str, payload: dict[str, Any], using_db: Any = None) -> OutboxEvent:
    """Store work once per `dedupe_key` (a second enqueue returns the existing event)."""
    existing = await OutboxEvent.filter(dedupe_key=dedupe_key).using_db(using_db).first() if using_db else \
        await OutboxEvent.get_or_none(dedupe_key=dedupe_key)
    if existing is not None:
        return existing
    try:
        return await OutboxEvent.create(
            kind=kind, dedupe_key=dedupe_key, payload=payload, next_attempt_at=datetime.now(UTC), using_db=using_db
        )
    except IntegrityError:
        return await OutboxEvent.get(dedupe_key=dedupe_key)


def backoff_seconds(attempts: int) -> int:
    return min(MAX_BACKOFF_S, 2 ** min(attempts, 10))


async def run_due(handlers: dict[str, Handler], *, limit: int = 100) -> int:
    """Run every due event whose kind has a handler; returns how many succeeded."""
    now = datetime.now(UTC)
    due = await OutboxEvent.filter(
        processed_at=None, next_attempt_at__lte=now, kind__in=list(handlers)
    ).order_by("id").limit(limit)
    done = 0
    for event in due:
        # claim: only one worker moves next_attempt_at forward for this event
        lease_until = now + timedelta(seconds=60)
        claimed = await OutboxEvent.filter(
            id=event.id, processed_at=None, next_attempt_at=event.next_attempt_at
        ).update(next_attempt_at=lease_until)
        if not claimed:
            continue
        try:
            await handlers[event.kind](event)
        except Exception as exc:  # a handler failure is retried later, never lost
            attempts = event.attempts + 1
            await OutboxEvent.filter(id=event.id).update(
                attempts=attempts, last_error=f"{type(exc).__name__}: {exc}"[:2000],
                next_attempt_at=datetime.now(UTC) + timedelta(seconds=backoff_seconds(attempts)),
            )
            log.warning("outbox handler failed", extra={"kind": event.kind, "event_id": event.id, "error": str(exc)})
            continue
        await OutboxEvent.filter(id=event.id).update(processed_at=datetime.now(UTC), attempts=event.attempts + 1)
        done += 1
    return done
