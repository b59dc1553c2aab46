"""Periods and each resident's monthly status: open, close, overdue, suspension, back-pay.

Subsidy rules in real programmes: a resident who misses a month is marked overdue when the
period closes and the payment is suspended; a later successful certification restores them
and the months they missed are owed (back-pay), since being alive now proves them alive then.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from backend.certification.models import MonthStatus, Period, PeriodStatus, ResidentMonth
from backend.errors import ApiError, NotFoundError
from backend.residents import text as text_rules
from backend.residents.models import Resident, ResidentStatus

PROGRAMME = "elderly_subsidy"
DEFAULT_DUE_DAY = 25
OPEN_STATUSES = (MonthStatus.PENDING, MonthStatus.IN_REVIEW)


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def previous_month(month: str) -> str:
    year, mon = (int(part) for part in month.split("-"))
    return f"{year - 1:04d}-12" if mon == 1 else f"{year:04d}-{mon - 1:02d}"


async def open_period(*, community_id: int, month: str, due_day: int = DEFAULT_DUE_DAY) -> Period:
    """Open (idempotently) a period and give every active resident a pending status in it."""
    period = await Period.get_or_none(community_id=community_id, programme=PROGRAMME, month=month)
    if period is None:
        try:
            period = await Period.create(community_id=community_id, programme=PROGRAMME, month=month, due_day=due_day)
        except IntegrityError:  # another worker opened it first
            period = await Period.get(community_id=community_id, programme=PROGRAMME, month=month)
    await _ensure_resident_months(period)
    return period


async def _ensure_resident_months(period: Period) -> None:
    have = set(await ResidentMonth.filter(period_id=period.id).values_list("resident_id", flat=True))
    residents = await Resident.filter(
        community_id=period.community_id,  # type: ignore[attr-defined]
        status__in=[ResidentStatus.ACTIVE, ResidentStatus.SUSPENDED],
    ).values_list("id", "status")
    missing = [
        ResidentMonth(period_id=period.id, resident_id=rid,
                      status=MonthStatus.SUSPENDED if status == ResidentStatus.SUSPENDED else MonthStatus.PENDING)
        for rid, status in residents if rid not in have
    ]
    if missing:
        try:
            await ResidentMonth.bulk_create(missing, batch_size=500)
        except IntegrityError:  # raced with another opener: create one by one, skipping existing
            for row in missing:
                await ResidentMonth.get_or_create(period_id=row.period_id, resident_id=row.resident_id,
                                                  defaults={"status": row.status})


async def current_period(*, community_id: int, today: date | None = None) -> Period:
    """This month's period for the community, opened automatically on first use."""
    month = month_of(today or date.today())
    period = await Period.get_or_none(community_id=community_id, programme=PROGRAMME, month=month)
    if period is not None:
        await cover_new_residents(period)
        return period
    return await open_period(community_id=community_id, month=month)


async def cover_new_residents(period: Period) -> None:
    """Give residents added since an open period began (new enrolment, roster import) their pending row.

    Without it a resident imported on the 10th would be missing from the board, the overdue list and the
    reminders until they certified by themselves.
    """
    if period.status == PeriodStatus.OPEN:
        await _ensure_resident_months(period)


async def resident_month(*, period: Period, resident: Resident) -> ResidentMonth:
    """The resident's status row, created for residents added after the period opened."""
    row, _ = await ResidentMonth.get_or_create(
        period_id=period.id, resident_id=resident.id,
        defaults={"status": MonthStatus.SUSPENDED if resident.status == ResidentStatus.SUSPENDED else MonthStatus.PENDING},
    )
    return row


async def get_period_or_raise(*, period_id: int, community_ids: list[int] | None) -> Period:
    query = Period.filter(id=period_id)
    if community_ids is not None:
        query = query.filter(community_id__in=community_ids)
    period = await query.first()
    if period is None:
        raise NotFoundError("没有找到这个认证周期", code="period.not_found")
    return period


async def close_period(*, period: Period, suspend_after_months: int = 1) -> dict[str, int]:
    """Close the period: pending becomes overdue; residents overdue for N months in a row are suspended."""
    if period.status == PeriodStatus.CLOSED:
        raise ApiError("这个周期已经结束", code="period.closed", status=409)
    async with in_transaction() as conn:
        overdue = await ResidentMonth.filter(period_id=period.id, status=MonthStatus.PENDING).using_db(conn).update(
            status=MonthStatus.OVERDUE
        )
        period.status = PeriodStatus.CLOSED
        period.closed_at = datetime.now(UTC)
        await period.save(using_db=conn, update_fields=["status", "closed_at"])
    suspended = 0
    for row in await ResidentMonth.filter(period_id=period.id, status=MonthStatus.OVERDUE):
        if await _consecutive_missed(row.resident_id, period) >= suspend_after_months:  # type: ignore[attr-defined]
            async with in_transaction() as conn:
                await ResidentMonth.filter(id=row.id).using_db(conn).update(status=MonthStatus.SUSPENDED)
                await Resident.filter(id=row.resident_id, status=ResidentStatus.ACTIVE).using_db(conn).update(  # type: ignore[attr-defined]
                    status=ResidentStatus.SUSPENDED
                )
            suspended += 1
    return {"overdue": overdue, "suspended": suspended}


async def _consecutive_missed(resident_id: int, period: Period) -> int:
    """How many closed periods in a row, ending with `period`, the resident did not certify."""
    rows = await ResidentMonth.filter(
        resident_id=resident_id, period__community_id=period.community_id,  # type: ignore[attr-defined]
        period__programme=period.programme, period__month__lte=period.month,
    ).prefetch_related("period").order_by("-period__month")
    count = 0
    for row in rows:
        if row.status in (MonthStatus.OVERDUE, MonthStatus.SUSPENDED):
            count += 1
        else:
            break
    return count


async def months_owed(*, resident_id: int, before: Period) -> list[str]:
    """Missed months since the resident's last certified month: what a late certification pays back."""
    rows = await ResidentMonth.filter(
        resident_id=resident_id, period__programme=before.programme, period__month__lt=before.month,
    ).prefetch_related("period").order_by("-period__month")
    owed: list[str] = []
    for row in rows:
        if row.status in (MonthStatus.OVERDUE, MonthStatus.SUSPENDED):
            owed.append(row.period.month)
        else:
            break
    return sorted(owed)


async def set_exempt(*, row: ResidentMonth, reason: str) -> ResidentMonth:
    row.status = MonthStatus.EXEMPT
    row.exempt_reason = text_rules.clean_free_text(reason, field="reason", label="免于认证的原因", max_length=200,
                                                   required=True)
    await row.save(update_fields=["status", "exempt_reason", "updated_at"])
    return row


async def board(*, period: Period) -> dict[str, int]:
    """Counts per status for the month board (an open period first takes in residents added since it began)."""
    await cover_new_residents(period)
    counts = {status.value: 0 for status in MonthStatus}
    for status in await ResidentMonth.filter(period_id=period.id).values_list("status", flat=True):
        counts[str(status)] += 1
    return counts
