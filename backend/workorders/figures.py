"""Monthly figures per category and team for the community's monthly deliberation (月度评议).

For the cases submitted in a month (Beijing time; merged duplicates left out, they are counted in
their original):
- 响应率   responded (签收, merged or ruled out of scope) within the category's response time / cases;
- 按时办结率 first resolution within the first round's deadline / cases resolved or already past due
             (cases ruled out of scope are not counted);
- 满意率   satisfied call-backs / answered call-backs;
- 重办率   cases reopened at least once / cases resolved.
A rate with nothing to divide by is None (shown as "—"), never a fake 0 % or 100 %.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook

from backend.errors import ValidationFailed
from backend.security import cells
from backend.workorders.models import Category, HandlerTeam, WorkOrder
from backend.workorders.states import State

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
COLUMNS = (("group", "分组"), ("name", "名称"), ("cases", "工单数"), ("responded_on_time", "按时响应"),
           ("response_rate", "响应率"), ("due", "应办结"), ("resolved_on_time", "按时办结"),
           ("on_time_rate", "按时办结率"), ("callbacks", "回访数"), ("satisfied", "满意数"),
           ("satisfaction_rate", "满意率"), ("resolved", "已办结"), ("reopened", "重办数"), ("reopen_rate", "重办率"))


def month_bounds(month: str) -> tuple[datetime, datetime]:
    try:
        year, number = (int(part) for part in month.split("-"))
        start = datetime(year, number, 1, tzinfo=LOCAL_TZ)
    except (ValueError, TypeError):
        raise ValidationFailed("月份格式应为 YYYY-MM", code="workorder.bad_month", field="month") from None
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


@dataclass
class Tally:
    cases: int = 0
    responded_on_time: int = 0
    due: int = 0
    resolved_on_time: int = 0
    callbacks: int = 0
    satisfied: int = 0
    resolved: int = 0
    reopened: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, wo: WorkOrder, category: Category, now: datetime) -> None:
        self.cases += 1
        if wo.responded_at is not None and wo.responded_at <= wo.created_at + timedelta(hours=category.response_hours):
            self.responded_on_time += 1
        if wo.state != State.OUT_OF_SCOPE and (wo.resolved_at is not None or now >= wo.due_at):
            self.due += 1
            self.resolved_on_time += bool(wo.on_time)
        if wo.satisfied is not None:
            self.callbacks += 1
            self.satisfied += bool(wo.satisfied)
        if wo.resolved_at is not None:
            self.resolved += 1
            self.reopened += wo.reopen_count > 0

    def view(self) -> dict[str, Any]:
        def rate(part: int, whole: int) -> float | None:
            return round(part / whole, 4) if whole else None

        return {"cases": self.cases, "responded_on_time": self.responded_on_time,
                "response_rate": rate(self.responded_on_time, self.cases), "due": self.due,
                "resolved_on_time": self.resolved_on_time, "on_time_rate": rate(self.resolved_on_time, self.due),
                "callbacks": self.callbacks, "satisfied": self.satisfied,
                "satisfaction_rate": rate(self.satisfied, self.callbacks), "resolved": self.resolved,
                "reopened": self.reopened, "reopen_rate": rate(self.reopened, self.resolved)}


async def monthly(*, community_id: int, month: str, now: datetime) -> dict[str, Any]:
    start, end = month_bounds(month)
    cases = await WorkOrder.filter(community_id=community_id, created_at__gte=start, created_at__lt=end).exclude(
        state=State.DUPLICATE)
    categories = {c.id: c for c in await Category.filter(community_id=community_id)}
    teams = {t.id: t for t in await HandlerTeam.filter(community_id=community_id)}
    total = Tally()
    by_category: dict[int, Tally] = {}
    by_team: dict[int | None, Tally] = {}
    for wo in cases:
        category = categories[wo.category_id]  # type: ignore[attr-defined]
        total.add(wo, category, now)
        by_category.setdefault(category.id, Tally()).add(wo, category, now)
        by_team.setdefault(wo.team_id, Tally()).add(wo, category, now)  # type: ignore[attr-defined]
    return {
        "community_id": community_id, "month": month, "total": total.view(),
        "by_category": [{"category_id": cid, "code": categories[cid].code, "name": categories[cid].name, **t.view()}
                        for cid, t in sorted(by_category.items(), key=lambda kv: categories[kv[0]].sort)],
        "by_team": [{"team_id": tid, "name": teams[tid].name if tid in teams else "未派单", **t.view()}
                    for tid, t in sorted(by_team.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))],
    }


def _rows(figures: dict[str, Any]) -> list[list[Any]]:
    def pct(value: float | None) -> str:
        return "—" if value is None else f"{value * 100:.1f}%"

    rows = []
    for group, items in (("合计", [{"name": "全部", **figures["total"]}]), ("类别", figures["by_category"]),
                         ("队伍", figures["by_team"])):
        for item in items:
            rows.append([pct(item[key]) if key.endswith("_rate") else (group if key == "group" else item[key])
                         for key, _ in COLUMNS])
    return rows


def to_csv(figures: dict[str, Any]) -> bytes:
    """UTF-8 with a byte-order mark, so Excel opens the Chinese headers correctly; cells neutralised
    (team and category names are typed by staff) by the one writer every export uses."""
    return cells.csv_bytes([[label for _, label in COLUMNS], *_rows(figures)])


def to_xlsx(figures: dict[str, Any]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = f"{figures['month']} 随手拍"
    cells.append_row(sheet, [label for _, label in COLUMNS])
    for row in _rows(figures):
        cells.append_row(sheet, row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
