"""Enqueue deferred work and let workers claim it with leases and exponential back-off.

A request never waits for the chain or a gateway: it writes an `OutboxEvent` (in its own
transaction when it passes `using_db`), and a worker loop calls the handler registered for
the event's kind. Failures are retried with back-off; nothing is lost while a dependency is down.

A worker holds a lease on the event it runs and gives it back the moment the attempt ends.
When the database itself went away mid-attempt, the give-back is kept in `Leases` and written
as soon as the database answers again, instead of leaving the event to wait out its lease.
`retry_now` cuts the back-off short when a dependency answers again (see `recovery`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from backend.outbox.models import OutboxEvent

log = logging.getLogger("zhilian.outbox")

Handler = Callable[[OutboxEvent], Awaitable[None]]
MAX_BACKOFF_S = 600
LEASE_S = 30  # longer than any handler's own time-outs (chain calls 10 s, the proof wait 5 s)


async def enqueue(*, kind: str, dedupe_key: str, payload: dict[str, Any], using_db: Any = None) -> OutboxEvent:
    """Store work once per `dedupe_key` (a second enqueue returns the existing event)."""
    existing = await OutboxEvent.filter(dedupe_key=dedupe_key).using_db(using_db).first() if using_db else \
        await OutboxEvent.get_or_none(dedupe_key=dedupe_key)
    if existing is not None:
        return existing
    try:
        async with in_transaction():  # a savepoint inside a caller's transaction: a lost race leaves it usable
            return await OutboxEvent.create(
                kind=kind, dedupe_key=dedupe_key, payload=payload, next_attempt_at=datetime.now(UTC),
                using_db=using_db,
            )
    except IntegrityError:
        return await OutboxEvent.filter(dedupe_key=dedupe_key).using_db(using_db).first() if using_db else \
            await OutboxEvent.get(dedupe_key=dedupe_key)


def backoff_seconds(attempts: int) -> int:
    return min(MAX_BACKOFF_S, 2 ** min(attempts, 10))


class Leases:
    """Ends of attempts not written yet because the database stopped answering meanwhile."""

    def __init__(self) -> None:
        self.owed: dict[int, dict[str, Any]] = {}  # event id -> the fields to write

    def fail(self, event_id: int, attempts: int, error: str) -> None:
        # due again at once when written: the database was away, and everything waited for it
        self.owed[event_id] = {"attempts": attempts, "last_error": error, "leased_until": None, "next_attempt_at": None}

    def succeed(self, event_id: int, attempts: int) -> None:
        self.owed[event_id] = {"attempts": attempts, "leased_until": None, "processed_at": datetime.now(UTC)}

    async def give_back(self) -> None:
        """Write every owed end of attempt (raises, keeping them, while the database is away)."""
        for event_id, fields in list(self.owed.items()):
            await OutboxEvent.filter(id=event_id, processed_at=None).update(
                **{k: (v if k != "next_attempt_at" else datetime.now(UTC)) for k, v in fields.items()}
            )
            del self.owed[event_id]


def _unleased(now: datetime) -> Q:
    return Q(leased_until=None) | Q(leased_until__lte=now)


async def run_due(handlers: dict[str, Handler], *, limit: int = 100, leases: Leases | None = None) -> int:
    """Run every due event whose kind has a handler; returns how many succeeded."""
    leases = leases if leases is not None else Leases()
    await leases.give_back()
    now = datetime.now(UTC)
    due = await OutboxEvent.filter(
        _unleased(now), processed_at=None, next_attempt_at__lte=now, kind__in=list(handlers)
    ).order_by("id").limit(limit)
    done = 0
    for event in due:
        if await _attempt(event, handlers[event.kind], leases):
            done += 1
    return done


async def _attempt(event: OutboxEvent, handler: Handler, leases: Leases) -> bool:
    now = datetime.now(UTC)
    # claim: only one worker takes the lease (the condition is re-checked under the row lock)
    claimed = await OutboxEvent.filter(_unleased(now), id=event.id, processed_at=None).update(
        leased_until=now + timedelta(seconds=LEASE_S)
    )
    if not claimed:
        return False
    attempts = event.attempts + 1
    try:
        await handler(event)
    except Exception as exc:  # a handler failure is retried later, never lost
        error = f"{type(exc).__name__}: {exc}"[:2000]
        leases.fail(event.id, attempts, error)  # kept until written, even if the database is away now
        await OutboxEvent.filter(id=event.id).update(
            attempts=attempts, last_error=error, leased_until=None,
            next_attempt_at=datetime.now(UTC) + timedelta(seconds=backoff_seconds(attempts)),
        )
        del leases.owed[event.id]
        log.warning("outbox handler failed", extra={"kind": event.kind, "event_id": event.id, "error": str(exc)})
        return False
    leases.succeed(event.id, attempts)
    await leases.give_back()
    return True


async def retry_now(kinds: Iterable[str]) -> int:
    """Make every backed-off, unleased event of `kinds` due now; returns how many."""
    now = datetime.now(UTC)
    return await OutboxEvent.filter(
        _unleased(now), processed_at=None, attempts__gt=0, next_attempt_at__gt=now, kind__in=list(kinds)
    ).update(next_attempt_at=now)
