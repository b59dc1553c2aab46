"""The deadline sweep the background worker runs: warn at 80 %, escalate (督办) at 100 %.

Each alarm is raised once per round, claimed with a conditional update so several workers never
write it twice, and lands in the case's history as a system line with its note. The board reads
the same times (`clock.status`), so a warned or escalated case shows as such immediately.
"""

from __future__ import annotations

from datetime import datetime

from tortoise.expressions import Q

from backend.audit import service as audit
from backend.workorders import clock
from backend.workorders.models import HandlerTeam, WorkOrder
from backend.workorders.service import SYSTEM, _append, local_text
from backend.workorders.states import CLOCK_STATES, clock_holder


async def _holder_label(wo: WorkOrder) -> str:
    if clock_holder(wo.state) == "handler" and wo.team_id is not None:  # type: ignore[attr-defined]
        team = await HandlerTeam.get_or_none(id=wo.team_id)  # type: ignore[attr-defined]
        return team.name if team else "处置队伍"
    return "社区调度"


async def sweep(*, now: datetime) -> dict[str, int]:
    """Raise every warning and escalation that is due at `now`; returns how many of each."""
    due = await WorkOrder.filter(state__in=list(CLOCK_STATES)).filter(
        Q(warned_at__isnull=True, warn_at__lte=now) | Q(escalated_at__isnull=True, due_at__lte=now)
    ).order_by("due_at", "id")
    warned = escalated = 0
    for wo in due:
        alarms = clock.alarms_due(running=True, warn=wo.warn_at, due=wo.due_at, warned=wo.warned_at,
                                  escalated=wo.escalated_at, now=now)
        holder = await _holder_label(wo)
        if alarms.warn and await WorkOrder.filter(id=wo.id, warned_at=None).update(warned_at=now):
            await _append(wo, SYSTEM, action="warn", from_state=wo.state, to_state=wo.state, now=now,
                          note=f"办理时限已用去 80%，请在{local_text(wo.due_at)}前办结（当前在{holder}）",
                          details={"holder": holder, "due_at": wo.due_at.isoformat()})
            warned += 1
        if alarms.escalate and await WorkOrder.filter(id=wo.id, escalated_at=None).update(escalated_at=now):
            await _append(wo, SYSTEM, action="escalate", from_state=wo.state, to_state=wo.state, now=now,
                          note=f"已超过办结时限（{local_text(wo.due_at)}），督办：请{holder}立即处理",
                          details={"holder": holder, "due_at": wo.due_at.isoformat()})
            await audit.record(actor=SYSTEM.actor, action="workorder.escalate", target_kind="work_order",
                               target_id=wo.id, community_id=wo.community_id,  # type: ignore[attr-defined]
                               details={"holder": holder})
            escalated += 1
    return {"warned": warned, "escalated": escalated}
