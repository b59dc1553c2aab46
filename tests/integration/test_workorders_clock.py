"""The deadline clock under a frozen clock: the worker's sweep warns at 80 %, escalates (督办) at 100 %,
each once, visible on the board and in the history; 退单 and 改派 never reset it; an approved 延期
moves it. The app's clock (`app.ctx.clock`) is the one injected; nothing sleeps."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from backend import worker
from tests.integration.workorders_support import community_resident, desk, make_point, move, staff_detail


@contextmanager
def frozen(server, start: datetime):
    now = [start]
    before = server.app.ctx.clock
    server.app.ctx.clock = lambda: now[0]
    try:
        yield now
    finally:
        server.app.ctx.clock = before


async def board(client, staff, **params) -> dict:
    response = await client.get("/api/workorders", params=params, headers=staff.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_warning_at_80_percent_and_escalation_at_100_with_a_frozen_clock(client, server, make_world):
    world = await make_world()
    d = await desk(client, world)
    road = d.categories["FAC-02"]  # 道路破损、井盖缺失: 24 hours to resolve
    assert road["deadline_hours"] == 24
    resident = await community_resident(client, server, world)
    point = await make_point(client, world, name="5号楼井盖")
    t0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Beijing
    with frozen(server, t0) as now:
        created = await client.post("/api/app/workorders", json={
            "category_id": road["id"], "description": "井盖不见了", "point": point["qr_content"]},
            headers=resident.headers)
        wid = created.json()["id"]
        case = await staff_detail(client, world.staff, wid)
        assert case["clock"]["due_at"] == (t0 + timedelta(hours=24)).isoformat()
        assert case["clock"]["warn_at"] == (t0 + timedelta(hours=24 * 0.8)).isoformat()
        await move(client, world.staff, wid, "accept", "签收")
        await move(client, world.staff, wid, "dispatch", "派物业", team_id=d.teams["物业"])

        now[0] = t0 + timedelta(hours=19)  # 79 %: nothing yet
        assert await worker.work_order_deadlines(server.app) == {"warned": 0, "escalated": 0}
        assert (await staff_detail(client, world.staff, wid))["clock"]["status"] == "on_time"

        # 退单 at 19 h and 改派: same deadline, the clock was never reset
        await move(client, d.property_handler, wid, "return", "不是物业的井盖")
        await move(client, world.staff, wid, "reassign", "改派网格员联系自来水公司", team_id=d.teams["网格员"])
        assert (await staff_detail(client, world.staff, wid))["clock"]["due_at"] == (t0 + timedelta(hours=24)).isoformat()

        now[0] = t0 + timedelta(hours=19, minutes=30)  # past 80 %
        assert await worker.work_order_deadlines(server.app) == {"warned": 1, "escalated": 0}
        assert await worker.work_order_deadlines(server.app) == {"warned": 0, "escalated": 0}  # once
        warned = await staff_detail(client, world.staff, wid)
        assert warned["clock"]["status"] == "due_soon" and warned["clock"]["warned"] is True
        assert warned["history"][-1]["action"] == "warn" and "80%" in warned["history"][-1]["note"]
        assert warned["history"][-1]["by"] == "系统" and "网格员" in warned["history"][-1]["note"]
        listing = await board(client, world.staff, clock="due_soon")
        assert [item["id"] for item in listing["items"]] == [wid]
        assert listing["counts"]["due_soon"] == 1 and listing["counts"]["overdue"] == 0

        now[0] = t0 + timedelta(hours=24, seconds=1)
        assert await worker.work_order_deadlines(server.app) == {"warned": 0, "escalated": 1}
        late = await staff_detail(client, world.staff, wid)
        assert late["clock"]["status"] == "overdue" and late["clock"]["escalated"] is True
        assert late["history"][-1]["action"] == "escalate" and "督办" in late["history"][-1]["note"]
        listing = await board(client, world.staff, clock="overdue")
        assert [item["id"] for item in listing["items"]] == [wid]
        assert listing["counts"]["overdue"] == 1 and listing["counts"]["escalated"] == 1
        assert listing["counts"]["by_team"][str(d.teams["网格员"])] == {"name": "网格员", "open": 1}

        # an approved 延期 moves the deadline: the case is on time again, and may be warned again later
        await move(client, d.grid_handler, wid, "start", "联系中")
        await move(client, d.grid_handler, wid, "request_extension", "自来水公司明天来", extension_hours=24)
        await move(client, world.admin, wid, "approve_extension", "同意")
        moved = await staff_detail(client, world.staff, wid)
        assert moved["clock"]["due_at"] == (t0 + timedelta(hours=48)).isoformat()
        assert moved["clock"]["status"] == "on_time" and moved["clock"]["escalated"] is False
        now[0] = t0 + timedelta(hours=40)  # 83 % of the new 48-hour span
        assert await worker.work_order_deadlines(server.app) == {"warned": 1, "escalated": 0}

        # the clock stops at 办结: no more alarms
        from tests.integration.workorders_support import photo_with_gps, upload

        photo = await upload(client, d.grid_handler.headers, wid, photo_with_gps(), kind="after")
        await move(client, d.grid_handler, wid, "submit", "已盖好", photo_ids=[photo["id"]])
        await move(client, world.staff, wid, "verify", "核查通过")
        now[0] = t0 + timedelta(hours=100)
        assert await worker.work_order_deadlines(server.app) == {"warned": 0, "escalated": 0}
        done = await staff_detail(client, world.staff, wid)
        assert done["clock"]["status"] == "stopped"
