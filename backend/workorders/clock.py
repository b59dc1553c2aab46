"""The deadline clock (限时办理): when a case is due, when to warn, when to escalate (督办).

A round's clock starts when the case is submitted (or reopened for 重办) and never restarts while
the case moves between dispatcher and teams: 退单 and 改派 change who holds the clock, not its
hands, so bouncing a ticket never buys time. Only an approved 延期 moves the deadline. Warnings fall
at 80 % of the round's span, escalation at 100 %. Pure functions of the times and of `now`: the
worker passes its clock in, and tests pass a frozen one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

WARN_RATIO = 0.8


def due_at(start: datetime, hours: int) -> datetime:
    return start + timedelta(hours=hours)


def warn_at(start: datetime, due: datetime, ratio: float = WARN_RATIO) -> datetime:
    """The moment `ratio` of the span from `start` to `due` has passed."""
    return start + (due - start) * ratio


@dataclass(frozen=True)
class Alarms:
    """What the sweep must do for one case now: warn, escalate, both (a case found late), or nothing."""

    warn: bool
    escalate: bool


def alarms_due(*, running: bool, warn: datetime | None, due: datetime | None, warned: datetime | None,
               escalated: datetime | None, now: datetime) -> Alarms:
    """Which alarms are due and not yet raised for this round (each is raised once)."""
    if not running or due is None:
        return Alarms(False, False)
    escalate = escalated is None and now >= due
    warn_now = warned is None and warn is not None and now >= warn
    return Alarms(warn_now, escalate)


def status(*, running: bool, warn: datetime | None, due: datetime | None, now: datetime) -> str:
    """"on_time", "due_soon" (past 80 %), "overdue" (past 100 %) or "stopped" (resolved or closed)."""
    if not running or due is None:
        return "stopped"
    if now >= due:
        return "overdue"
    if warn is not None and now >= warn:
        return "due_soon"
    return "on_time"
