"""Closing a month early is an admin's decision with a reason; a mistaken close is undone exactly (issue 13, item 4)."""

from __future__ import annotations

from datetime import date

from backend.audit.models import AuditEvent
from backend.certification import periods
from backend.certification.models import Method, MonthStatus, Period, ResidentMonth
from backend.certification.records import record_certification
from backend.residents.models import Resident
from tests.integration.test_errors_and_ops import assert_error
from tests.integration.test_residents import create


def next_month(month: str) -> str:
    year, mon = (int(part) for part in month.split("-"))
    return f"{year + 1:04d}-01" if mon == 12 else f"{year:04d}-{mon + 1:02d}"


async def statuses(period_id: int, *resident_ids: int) -> list[tuple[str, str]]:
    """(month status, resident status) per resident."""
    out = []
    for rid in resident_ids:
        month = await ResidentMonth.get(period_id=period_id, resident_id=rid)
        out.append((str(month.status), str((await Resident.get(id=rid)).status)))
    return out


async def test_early_close_needs_an_admin_and_a_reason_and_reopen_restores_exactly_what_it_changed(
    client, make_world, server,
):
    world = await make_world()
    staff, admin = world.staff.headers, world.admin.headers
    pending, certified, exempt, suspended_before, in_review, late = [
        (await create(client, world, seed=seed))["id"] for seed in range(1301, 1307)
    ]
    assert (await client.patch(f"/api/residents/{suspended_before}", json={"status": "suspended"},
                               headers=staff)).status_code == 200
    # a month whose due day has not come: every close of it is early
    month = next_month(periods.month_of(date.today()))
    opened = await client.post("/api/periods", json={"month": month}, headers=staff)
    assert opened.status_code == 201, opened.text
    pid = opened.json()["id"]
    period = await Period.get(id=pid)
    await record_certification(resident=await Resident.get(id=certified), period=period, method=Method.STAFF,
                               attempt=None, assisted_by="staff:1")
    assert (await client.post(f"/api/periods/{pid}/residents/{exempt}/exempt", json={"reason": "住院治疗中"},
                              headers=admin)).status_code == 200
    await ResidentMonth.filter(period_id=pid, resident_id=in_review).update(status=MonthStatus.IN_REVIEW)
    everyone = (pending, certified, exempt, suspended_before, in_review, late)
    before = await statuses(pid, *everyone)
    assert before == [("pending", "active"), ("certified", "active"), ("exempt", "active"),
                      ("suspended", "suspended"), ("in_review", "active"), ("pending", "active")]

    # the lowest staff role cannot close early; an admin must give a reason
    refused = assert_error(await client.post(f"/api/periods/{pid}/close", headers=staff), 403,
                           "period.early_close_forbidden")
    assert "管理员" in refused["message"]
    assert_error(await client.post(f"/api/periods/{pid}/close", headers=admin), 422, "period.reason_required")
    assert_error(await client.post(f"/api/periods/{pid}/close", json={"reason": "\u202e误操作"}, headers=admin), 422,
                 "text.invisible_character")
    assert await statuses(pid, *everyone) == before  # refusals changed nothing
    closed = await client.post(f"/api/periods/{pid}/close", json={"reason": "系统演练，误点"}, headers=admin)
    assert closed.status_code == 200, closed.text
    assert closed.json()["early"] is True and closed.json()["status"] == "closed"
    assert closed.json()["overdue"] == 2 and closed.json()["suspended"] == 2
    assert await statuses(pid, *everyone) == [
        ("suspended", "suspended"), ("certified", "active"), ("exempt", "active"),
        ("suspended", "suspended"), ("in_review", "active"), ("suspended", "suspended")]

    # meanwhile one of them certifies late: that stays, whatever the reopen does
    await record_certification(resident=await Resident.get(id=late), period=period, method=Method.HOME_VISIT,
                               attempt=None, assisted_by="staff:1,staff:2")

    assert_error(await client.post(f"/api/periods/{pid}/reopen", json={"reason": "误操作"}, headers=staff), 403)
    assert_error(await client.post(f"/api/periods/{pid}/reopen", json={"reason": ""}, headers=admin), 422)
    reopened = await client.post(f"/api/periods/{pid}/reopen", json={"reason": "误点了结束，恢复"}, headers=admin)
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["status"] == "open"
    assert reopened.json()["restored"] == {"months": 1, "residents": 1, "changed_since": 1}
    # exactly what the close changed is back; the resident suspended before it stays suspended
    assert await statuses(pid, *everyone) == [
        ("pending", "active"), ("certified", "active"), ("exempt", "active"),
        ("suspended", "suspended"), ("in_review", "active"), ("certified", "active")]
    assert_error(await client.post(f"/api/periods/{pid}/reopen", json={"reason": "再来一次"}, headers=admin), 409,
                 "period.not_closed")

    # audited both ways, with who, why and what
    close_event = await AuditEvent.get(action="period.close", target_id=str(pid))
    assert close_event.actor_id == str(world.admin.user_id)
    assert close_event.details["early"] is True and close_event.details["reason"] == "系统演练，误点"
    reopen_event = await AuditEvent.get(action="period.reopen", target_id=str(pid))
    assert reopen_event.actor_id == str(world.admin.user_id)
    assert reopen_event.details["reason"] == "误点了结束，恢复" and reopen_event.details["restored"]["months"] == 1

    # and it can be closed again (a new record of what that close changes)
    again = await client.post(f"/api/periods/{pid}/close", json={"reason": "演练结束"}, headers=admin)
    assert again.status_code == 200 and again.json()["suspended"] == 1, again.text


async def test_after_the_due_day_staff_close_without_a_reason(client, make_world):
    world = await make_world()
    await create(client, world, seed=1311)
    last_month = periods.previous_month(periods.month_of(date.today()))
    opened = await client.post("/api/periods", json={"month": last_month}, headers=world.staff.headers)
    closed = await client.post(f"/api/periods/{opened.json()['id']}/close", headers=world.staff.headers)
    assert closed.status_code == 200, closed.text
    assert closed.json()["early"] is False and closed.json()["overdue"] == 1
