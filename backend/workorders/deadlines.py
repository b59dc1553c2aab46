"""The deadline sweep the background worker runs: warn at 80 %, escalate (督办) at 100 %.

Each alarm is raised once per round, claimed with a conditional update so several workers never
write it twice, and lands in the case's history as a system line with its note (the history is the
record of it: the audit trail keeps people's actions). The board reads
the same times (`clock.status`), so a warned or escalated case shows as such immediately.
"""

from __future__ import annotations

from datetime import datetime

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from backend.workorders import clock
from backend.workorders.models import HandlerTeam, WorkOrder
from backend.workorders.service import SYSTEM, append_event, local_text
from backend.workorders.states import CLOCK_STATES, clock_holder

BATCH = 200


def _holder_label(wo: WorkOrder, teams: dict[int, str]) -> str:
    if clock_holder(wo.state) == "handler" and wo.team_id is not None:  # type: ignore[attr-defined]
        return teams.get(wo.team_id, "处置队伍")  # type: ignore[attr-defined]
    return "社区调度"


async def sweep(*, now: datetime) -> dict[str, int]:
    """Raise every warning and escalation that is due at `now`; returns how many of each."""
    due = await WorkOrder.filter(state__in=list(CLOCK_STATES)).filter(
        Q(warned_at__isnull=True, warn_at__lte=now) | Q(escalated_at__isnull=True, due_at__lte=now)
    ).order_by("due_at", "id")
    warned = escalated = 0
    teams = dict(await HandlerTeam.filter(id__in={wo.team_id for wo in due if wo.team_id}).values_list("id", "name"))  # type: ignore[attr-defined]
    for start in range(0, len(due), BATCH):
        async with in_transaction():  # one commit per batch, not two per alarm
            counts = await _raise(due[start:start + BATCH], teams, now)
        warned += counts[0]
        escalated += counts[1]
    return {"warned": warned, "escalated": escalated}


async def _raise(due: list[WorkOrder], teams: dict[int, str], now: datetime) -> tuple[int, int]:
    warned = escalated = 0
    for wo in due:
        alarms = clock.alarms_due(running=True, warn=wo.warn_at, due=wo.due_at, warned=wo.warned_at,
                                  escalated=wo.escalated_at, now=now)
        holder = _holder_label(wo, teams)
        if alarms.warn and await WorkOrder.filter(id=wo.id, warned_at=None).update(warned_at=now):
            await append_event(wo, SYSTEM, action="warn", from_state=wo.state, to_state=wo.state, now=now,
                               note=f"办理时限已用去 80%，请在{local_text(wo.due_at)}前办结（当前在{holder}）",
                               details={"holder": holder, "due_at": wo.due_at.isoformat()})
            warned += 1
        if alarms.escalate and await WorkOrder.filter(id=wo.id, escalated_at=None).update(escalated_at=now):
            await append_event(wo, SYSTEM, action="escalate", from_state=wo.state, to_state=wo.state, now=now,
                               note=f"已超过办结时限（{local_text(wo.due_at)}），督办：请{holder}立即处理",
                               details={"holder": holder, "due_at": wo.due_at.isoformat()})
            escalated += 1
    return warned, escalated
