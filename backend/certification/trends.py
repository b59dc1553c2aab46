"""Certification trends over months: completion rate, method mix and time to certify.

Counts only, never people: nothing here names a resident, which is why department officers
and auditors may read it. The scope follows the exports: an officer's department consumes
every community's certifications (exports are per department, not per community), everyone
else sees the communities `visible_community_ids` allows them.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from tortoise.functions import Count

from backend.auth.models import Role
from backend.auth.scope import visible_community_ids
from backend.auth.tokens import Principal
from backend.certification.models import Certification, Method, MonthStatus, Period, ResidentMonth
from backend.certification.periods import PROGRAMME, month_of, previous_month
from backend.errors import NotFoundError
from backend.residents.models import Community

DEFAULT_MONTHS = 12
MAX_MONTHS = 36
SECONDS_PER_DAY = 86_400


@dataclass
class MonthTrend:
    """One month summed over the communities in scope."""

    month: str
    periods: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {s.value: 0 for s in MonthStatus})
    methods: dict[str, int] = field(default_factory=lambda: {m.value: 0 for m in Method})
    late: int = 0
    days: list[float] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def rate(self) -> float | None:
        """Certified share of those who had to certify (exempt residents do not count against it)."""
        due = self.total - self.counts[MonthStatus.EXEMPT.value]
        return round(self.counts[MonthStatus.CERTIFIED.value] / due, 4) if due else None

    def view(self) -> dict[str, Any]:
        return {
            "month": self.month, "periods": self.periods, "total": self.total, "counts": self.counts,
            "certified": self.counts[MonthStatus.CERTIFIED.value], "rate": self.rate, "methods": self.methods,
            "late": self.late, "median_days": round(statistics.median(self.days), 1) if self.days else None,
        }


async def trend_scope(*, principal: Principal, community_id: int | None) -> list[int] | None:
    """Communities the trend covers: the one asked for (when visible), else all the caller may see.

    None means every community. An officer without a department sees nothing, as in exports.
    """
    if principal.role == Role.DEPARTMENT_OFFICER:
        visible: list[int] | None = None if principal.department_id is not None else []
    else:
        visible = await visible_community_ids(principal)
    if community_id is None:
        return visible
    if (visible is not None and community_id not in visible) or not await Community.exists(id=community_id):
        raise NotFoundError("没有找到这个社区", code="community.not_found")
    return [community_id]


def recent_months(*, months: int, today: date | None = None) -> list[str]:
    """The last `months` months, oldest first, ending with the current one."""
    month = month_of(today or date.today())
    found = [month]
    while len(found) < months:
        month = previous_month(month)
        found.append(month)
    return found[::-1]


def _days_between(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds() / SECONDS_PER_DAY)


async def monthly_trends(*, community_ids: list[int] | None, months: int = DEFAULT_MONTHS,
                         today: date | None = None) -> list[dict[str, Any]]:
    """Per month: status counts, certification rate, methods, late certifications, median days to certify.

    Months without any period are listed with zeros so a chart's axis has no gaps.
    """
    wanted = recent_months(months=months, today=today)
    trends = {m: MonthTrend(m) for m in wanted}
    query = Period.filter(programme=PROGRAMME, month__in=wanted)
    if community_ids is not None:
        query = query.filter(community_id__in=community_ids)
    period_rows = await query.values("id", "month", "opened_at")
    if not period_rows:
        return [t.view() for t in trends.values()]
    by_id = {p["id"]: p for p in period_rows}
    for p in period_rows:
        trends[p["month"]].periods += 1
    ids = list(by_id)

    statuses = await ResidentMonth.filter(period_id__in=ids).group_by("period_id", "status").annotate(
        n=Count("id")
    ).values("period_id", "status", "n")
    for row in statuses:
        trends[by_id[row["period_id"]]["month"]].counts[str(row["status"])] += row["n"]

    certifications = await Certification.filter(period_id__in=ids).values("period_id", "method", "certified_at", "late")
    for cert in certifications:
        period = by_id[cert["period_id"]]
        trend = trends[period["month"]]
        trend.methods[str(cert["method"])] += 1
        trend.late += 1 if cert["late"] else 0
        trend.days.append(_days_between(period["opened_at"], cert["certified_at"]))
    return [t.view() for t in trends.values()]


async def communities_in(community_ids: list[int] | None) -> list[dict[str, Any]]:
    """Names of the communities in scope, for the page's selector (no residents here)."""
    query = Community.all() if community_ids is None else Community.filter(id__in=community_ids)
    return await query.order_by("id").values("id", "name", "district")
