"""Periods and each resident's monthly status: open, close (and undo a close), overdue, suspension, back-pay.

Subsidy rules in real programmes: a resident who misses a month is marked overdue when the
period closes and the payment is suspended; a later successful certification restores them
and the months they missed are owed (back-pay), since being alive now proves them alive then.
Closing before the due day is an admin's decision with a reason, and every close records what it
changed so that a mistaken one can be reopened.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from backend.certification.models import MonthStatus, Period, PeriodClosure, PeriodStatus, ResidentMonth
from backend.errors import ApiError, Forbidden, NotFoundError, ValidationFailed
from backend.residents import text as text_rules
from backend.residents.models import Resident, ResidentStatus

PROGRAMME = "elderly_subsidy"
DEFAULT_DUE_DAY = 25
OPEN_STATUSES = (MonthStatus.PENDING, MonthStatus.IN_REVIEW)
LOCAL_TZ = ZoneInfo("Asia/Shanghai")  # due days and quiet hours are local


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
            async with in_transaction():  # a savepoint inside a caller's transaction: losing the race leaves it usable
                period = await Period.create(community_id=community_id, programme=PROGRAMME, month=month,
                                             due_day=due_day)
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
            async with in_transaction():  # a savepoint inside a caller's transaction (see open_period)
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


def due_date(period: Period) -> date:
    year, mon = (int(part) for part in period.month.split("-"))
    return date(year, mon, period.due_day)


def closes_early(period: Period, now: datetime) -> bool:
    """Is closing at `now` early? Residents may certify until the end of the due day, local time."""
    return now.astimezone(LOCAL_TZ).date() <= due_date(period)


async def close_period(
    *, period: Period, closed_by: int | None, may_close_early: bool, reason: str = "",
    suspend_after_months: int = 1, now: datetime | None = None,
) -> PeriodClosure:
    """Close the period: pending becomes overdue; residents overdue for N months in a row are suspended.

    Closing on or before the due day cuts residents off while they may still certify, so it needs
    `may_close_early` (an admin) and a reason. Every status the close writes is stored on the
    returned `PeriodClosure`, which is what `reopen_period` undoes.
    """
    now = now or datetime.now(UTC)
    reason = text_rules.clean_free_text(reason, field="reason", label="原因", max_length=200)
    if period.status == PeriodStatus.CLOSED:
        raise ApiError("这个周期已经结束", code="period.closed", status=409)
    early = closes_early(period, now)
    if early and not may_close_early:
        raise Forbidden(f"{period.month} 的截止日（{due_date(period):%m月%d日}）还没过，只有社区管理员可以提前结束本月认证",
                        code="period.early_close_forbidden")
    if early and len(reason) < 2:
        raise ValidationFailed("提前结束本月认证须写明原因", code="period.reason_required", field="reason")
    async with in_transaction() as conn:
        if not await Period.filter(id=period.id, status=PeriodStatus.OPEN).using_db(conn).update(
                status=PeriodStatus.CLOSED, closed_at=now):
            raise ApiError("这个周期已经结束", code="period.closed", status=409)  # another close won the race
        pending = await ResidentMonth.filter(period_id=period.id, status=MonthStatus.PENDING).using_db(conn) \
            .values_list("id", "resident_id")
        await ResidentMonth.filter(period_id=period.id, status=MonthStatus.PENDING).using_db(conn).update(
            status=MonthStatus.OVERDUE)
        streaks = await _missed_streaks(period, conn)
        months: list[list[Any]] = []
        residents: list[list[Any]] = []
        for month_id, resident_id in pending:
            if streaks.get(resident_id, 0) < suspend_after_months:
                months.append([month_id, MonthStatus.PENDING.value, MonthStatus.OVERDUE.value])
                continue
            months.append([month_id, MonthStatus.PENDING.value, MonthStatus.SUSPENDED.value])
            if await Resident.filter(id=resident_id, status=ResidentStatus.ACTIVE).using_db(conn).update(
                    status=ResidentStatus.SUSPENDED):
                residents.append([resident_id, ResidentStatus.ACTIVE.value, ResidentStatus.SUSPENDED.value])
        for ids in _chunks([m[0] for m in months if m[2] == MonthStatus.SUSPENDED]):
            await ResidentMonth.filter(id__in=ids).using_db(conn).update(status=MonthStatus.SUSPENDED)
        closure = await PeriodClosure.create(
            period_id=period.id, closed_by=closed_by, closed_at=now, early=early, reason=reason,
            changes={"months": months, "residents": residents}, using_db=conn,
        )
    period.status, period.closed_at = PeriodStatus.CLOSED, now
    return closure


def closure_counts(closure: PeriodClosure) -> dict[str, int]:
    """What a close did, as the month board and the audit trail show it."""
    months = closure.changes.get("months", [])
    return {"overdue": len(months), "suspended": sum(1 for m in months if m[2] == MonthStatus.SUSPENDED)}


async def reopen_period(*, period: Period, reopened_by: int, reason: str,
                        now: datetime | None = None) -> dict[str, int]:
    """Undo the latest close: put back exactly the statuses it wrote, where nothing changed them since.

    A resident certified late after the close stays certified; a resident suspended before the close
    (not by it) stays suspended. Periods closed before closes were recorded cannot be reopened here.
    """
    now = now or datetime.now(UTC)
    reason = text_rules.clean_free_text(reason, field="reason", label="原因", max_length=200, required=True)
    if len(reason) < 2:
        raise ValidationFailed("重新开启须写明原因", code="period.reason_required", field="reason")
    if period.status != PeriodStatus.CLOSED:
        raise ApiError("这个周期没有结束，无需重新开启", code="period.not_closed", status=409)
    closure = await PeriodClosure.filter(period_id=period.id, reopened_at=None).order_by("-id").first()
    if closure is None:
        raise ApiError("这个周期结束时没有记录改动，无法自动恢复，请逐个处理", code="period.close_not_recorded",
                       status=409)
    restored = {"months": 0, "residents": 0, "changed_since": 0}
    async with in_transaction() as conn:
        if not await Period.filter(id=period.id, status=PeriodStatus.CLOSED).using_db(conn).update(
                status=PeriodStatus.OPEN, closed_at=None):
            raise ApiError("这个周期没有结束，无需重新开启", code="period.not_closed", status=409)
        for model, key in ((ResidentMonth, "months"), (Resident, "residents")):
            changes = closure.changes.get(key, [])
            for (before, after), ids in _group_by_change(changes).items():
                for chunk in _chunks(ids):
                    restored[key] += await model.filter(id__in=chunk, status=after).using_db(conn).update(
                        status=before)
            if key == "months":
                restored["changed_since"] = len(changes) - restored["months"]
        closure.reopened_by, closure.reopened_at, closure.reopen_reason = reopened_by, now, reason
        closure.restored = restored
        await closure.save(using_db=conn, update_fields=["reopened_by", "reopened_at", "reopen_reason", "restored"])
    period.status, period.closed_at = PeriodStatus.OPEN, None
    return restored


def _group_by_change(changes: list[list[Any]]) -> dict[tuple[str, str], list[int]]:
    groups: dict[tuple[str, str], list[int]] = {}
    for row_id, before, after in changes:
        groups.setdefault((before, after), []).append(row_id)
    return groups


def _chunks(ids: list[int], size: int = 500) -> list[list[int]]:
    """Id lists cut to a size every database accepts as query parameters."""
    return [ids[i:i + size] for i in range(0, len(ids), size)]


async def _missed_streaks(period: Period, conn: Any) -> dict[int, int]:
    """Per resident of the community: closed-or-closing months in a row, ending with `period`, not certified."""
    rows = await ResidentMonth.filter(
        period__community_id=period.community_id,  # type: ignore[attr-defined]
        period__programme=period.programme, period__month__lte=period.month,
    ).using_db(conn).order_by("resident_id", "-period__month").values_list("resident_id", "status")
    streaks: dict[int, int] = {}
    broken: set[int] = set()
    for resident_id, status in rows:
        if resident_id in broken:
            continue
        if status in (MonthStatus.OVERDUE, MonthStatus.SUSPENDED):
            streaks[resident_id] = streaks.get(resident_id, 0) + 1
        else:
            broken.add(resident_id)
    return streaks


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
