"""Finding the elders a month did not reach, for outreach by the community (DESIGN §1, §4 flow 7).

After the due day (or once the period is closed), a resident still pending or overdue who has no
approved helper and no passive sighting this period is "unreached": nobody is going to certify
for them by themselves. Certification does not open work orders (a higher layer): it enqueues a
`certification.unreached` outbox event with plain ids, once per resident and period, and the
work-order engine handles it. Missing signals create outreach, never an automatic suspension.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from backend.certification.models import MonthStatus, PassiveSighting, Period, PeriodStatus, ResidentMonth
from backend.outbox import service as outbox
from backend.residents.models import BindingStatus, HelperBinding

UNREACHED_EVENT = "certification.unreached"
LOCAL_TZ = ZoneInfo("Asia/Shanghai")


def past_due(period: Period, now: datetime) -> bool:
    """The due day has passed (Beijing time), or the period is closed."""
    if period.status == PeriodStatus.CLOSED:
        return True
    local = now.astimezone(LOCAL_TZ)
    year, month = (int(part) for part in period.month.split("-"))
    return (local.year, local.month) > (year, month) or ((local.year, local.month) == (year, month)
                                                         and local.day > period.due_day)


async def unreached(*, period: Period) -> list[int]:
    """Residents of the period still to certify, with no approved helper and no passive sighting."""
    waiting = set(await ResidentMonth.filter(
        period_id=period.id, status__in=[MonthStatus.PENDING, MonthStatus.OVERDUE]).values_list("resident_id", flat=True))
    if not waiting:
        return []
    helped = set(await HelperBinding.filter(resident_id__in=list(waiting), status=BindingStatus.APPROVED).values_list(
        "resident_id", flat=True))
    seen = set(await PassiveSighting.filter(period_id=period.id, resident_id__in=list(waiting)).values_list(
        "resident_id", flat=True))
    return sorted(waiting - helped - seen)


async def flag_unreached(*, period: Period, now: datetime) -> int:
    """Enqueue one outreach event per unreached resident (idempotent per resident and period)."""
    if not past_due(period, now):
        return 0
    flagged = 0
    for resident_id in await unreached(period=period):
        await outbox.enqueue(kind=UNREACHED_EVENT, dedupe_key=f"unreached:{period.id}:{resident_id}", payload={
            "community_id": period.community_id, "resident_id": resident_id,  # type: ignore[attr-defined]
            "period_id": period.id, "month": period.month,
        })
        flagged += 1
    return flagged
