"""Background work each server runs beside its requests: the outbox, period upkeep, reminders, purges.

Every job is idempotent and safe to run on several workers at once (outbox events are claimed,
periods are opened with get-or-create, reminders are unique per recipient, purges are updates),
so no leader election is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sanic import Sanic
from tortoise.connection import get_connection

from backend import db
from backend.idempotency import service as idempotency
from backend.outbox import service as outbox
from backend.outbox.recovery import Dependency, DependencyWatch

log = logging.getLogger("zhilian.worker")

OUTBOX_EVERY_S = 2.0  # the pause after a round that found nothing to do
PROBE_EVERY_S = 1.0
UPKEEP_EVERY_S = 3600.0
DEADLINES_EVERY_S = 60.0  # work-order warnings (80 %) and escalations (100 %)


def outbox_handlers(app: Sanic) -> dict[str, outbox.Handler]:
    """Handlers per event kind; domains add theirs to `app.ctx.outbox_handlers`."""
    return dict(getattr(app.ctx, "outbox_handlers", {}))


async def _database_answers() -> str:
    await get_connection("default").execute_query("SELECT 1")
    return "up"


def outbox_dependencies(app: Sanic) -> dict[str, Dependency]:
    """The database (every kind) plus what domains add to `app.ctx.outbox_dependencies` (the chain)."""
    return {"database": Dependency(_database_answers), **getattr(app.ctx, "outbox_dependencies", {})}


async def upkeep(app: Sanic) -> None:
    """Open this month's periods, send due reminders, purge review frames past retention."""
    from backend.certification import periods, reminders, review
    from backend.certification.models import Period, PeriodStatus
    from backend.residents.models import Community

    for community_id in await Community.all().values_list("id", flat=True):
        await periods.current_period(community_id=community_id)
    now = datetime.now(UTC)
    for period in await Period.filter(status=PeriodStatus.OPEN):
        await reminders.send_reminders(period=period, now=now, sender=app.ctx.sender, cipher=app.ctx.cipher,
                                       wechat=app.ctx.wechat)
    from backend.audit.service import anchor_head

    await certification_outreach(app)  # elders nobody will reach become work orders for the grid worker
    await anchor_head()  # the trail so far goes on the chain (waits in the outbox without one)
    purged = await review.purge_expired_frames(now)
    if purged:
        log.info("purged review frames", extra={"count": purged})
    await idempotency.purge_expired(now)


async def certification_outreach(app: Sanic) -> int:
    """Flag this and last month's unreached elders (after the due day) for outreach; idempotent."""
    from backend.certification import outreach
    from backend.certification.models import Period
    from backend.certification.periods import month_of, previous_month

    now = app.ctx.clock()
    this_month = month_of(now.astimezone(outreach.LOCAL_TZ).date())
    flagged = 0
    for period in await Period.filter(month__in=[this_month, previous_month(this_month)]):
        flagged += await outreach.flag_unreached(period=period, now=now)
    return flagged


async def work_order_deadlines(app: Sanic) -> dict[str, int]:
    """Warn and escalate work orders by the app's clock."""
    from backend.workorders import deadlines

    return await deadlines.sweep(now=app.ctx.clock())


@dataclass
class WorkerState:
    """What one worker remembers between rounds."""

    leases: outbox.Leases = field(default_factory=outbox.Leases)
    watch: DependencyWatch = field(default_factory=DependencyWatch)
    last_upkeep: float = -UPKEEP_EVERY_S
    last_deadlines: float = -DEADLINES_EVERY_S
    last_probe: float = -PROBE_EVERY_S
    failing: bool = False


async def run_round(app: Sanic, state: WorkerState) -> int:
    """One pass: probe dependencies (cutting back-offs short when one answers again), run due events,
    work-order deadlines, upkeep.

    Returns how many events succeeded: the caller goes straight on to the next round while there is
    work (the follow-up events are due at once), and waits OUTBOX_EVERY_S when there was none.
    """
    handlers = outbox_handlers(app)
    done = 0
    if handlers:
        if time.monotonic() - state.last_probe >= PROBE_EVERY_S:
            state.last_probe = time.monotonic()
            await state.watch.check(outbox_dependencies(app), handlers)
        done = await outbox.run_due(handlers, leases=state.leases)
    if time.monotonic() - state.last_deadlines >= DEADLINES_EVERY_S:
        state.last_deadlines = time.monotonic()
        await work_order_deadlines(app)
    if time.monotonic() - state.last_upkeep >= UPKEEP_EVERY_S:
        state.last_upkeep = time.monotonic()
        await upkeep(app)
    return done


async def run_forever(app: Sanic) -> None:
    state = WorkerState()
    while True:
        done = 0
        try:
            done = await run_round(app, state)
            if state.failing:
                log.info("background work resumed")
            state.failing = False
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one failed round must not stop the worker
            if not db.unavailable(exc):
                log.exception("background round failed")
            elif not state.failing:  # once per outage, not every round
                log.warning("background work waits for the database", extra={"error": f"{type(exc).__name__}: {exc}"})
            state.failing = True
        await asyncio.sleep(0 if done else OUTBOX_EVERY_S)


def start(app: Sanic) -> Callable[[], Awaitable[None]]:
    task = asyncio.get_running_loop().create_task(run_forever(app), name="zhilian-worker")

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return stop
