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
from datetime import UTC, datetime

from sanic import Sanic

from backend.outbox import service as outbox

log = logging.getLogger("zhilian.worker")

OUTBOX_EVERY_S = 2.0
UPKEEP_EVERY_S = 3600.0
DEADLINES_EVERY_S = 60.0  # work-order warnings (80 %) and escalations (100 %)


def outbox_handlers(app: Sanic) -> dict[str, outbox.Handler]:
    """Handlers per event kind; domains add theirs to `app.ctx.outbox_handlers`."""
    return dict(getattr(app.ctx, "outbox_handlers", {}))


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


async def run_forever(app: Sanic) -> None:
    last_upkeep = last_deadlines = 0.0
    while True:
        try:
            handlers = outbox_handlers(app)
            if handlers:
                await outbox.run_due(handlers)
            if time.monotonic() - last_deadlines >= DEADLINES_EVERY_S:
                last_deadlines = time.monotonic()
                await work_order_deadlines(app)
            if time.monotonic() - last_upkeep >= UPKEEP_EVERY_S:
                last_upkeep = time.monotonic()
                await upkeep(app)
        except asyncio.CancelledError:
            raise
        except Exception:  # one failed round must not stop the worker
            log.exception("background round failed")
        await asyncio.sleep(OUTBOX_EVERY_S)


def start(app: Sanic) -> Callable[[], Awaitable[None]]:
    task = asyncio.get_running_loop().create_task(run_forever(app), name="zhilian-worker")

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return stop
