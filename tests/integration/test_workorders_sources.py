"""Cases that do not come from a resident's phone: certification outreach for an elder nobody reached
(through the outbox, from the certification layer), device alarms and health alerts through the
entry other domains call; and what the community takes to its monthly deliberation (figures per
category and team, CSV and xlsx), and the printable point signs."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import secrets
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from openpyxl import load_workbook

from backend import worker
from backend.certification import periods
from backend.outbox import service as outbox
from backend.residents.models import BindingStatus, HelperBinding
from backend.workorders import service
from backend.workorders.models import Source, WorkOrder
from tests.integration.test_errors_and_ops import assert_error
from tests.integration.test_workorders_clock import frozen
from tests.integration.workorders_support import (
    community_resident,
    desk,
    make_point,
    move,
    photo_with_gps,
    resident_user,
    roster_resident,
    staff_detail,
    upload,
)


async def sighted(client, world, resident: dict) -> None:
    """A registered door reader saw the resident this month (a signed passive sighting)."""
    key = Ed25519PrivateKey.generate()
    public = base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    device = await client.post("/api/devices", json={"name": "2号楼门禁", "public_key": public},
                               headers=world.admin.headers)
    body = json.dumps({"resident_public_id": resident["public_id"], "score": 0.9,
                       "seen_at": datetime.now(UTC).isoformat(), "nonce": secrets.token_hex(8)}).encode()
    response = await client.post("/api/passive/sightings", content=body, headers={
        "X-Device-Id": str(device.json()["id"]), "X-Signature": base64.b64encode(key.sign(body)).decode()})
    assert response.status_code == 201, response.text


async def outreach_cases(client, world) -> list[dict]:
    return (await client.get("/api/workorders", params={"source": "outreach"}, headers=world.staff.headers)).json()["items"]


async def test_an_overdue_elder_without_helper_or_evidence_becomes_a_case_for_the_grid_worker(client, server,
                                                                                             make_world):
    world = await make_world()
    d = await desk(client, world)
    alone = await roster_resident(client, world, name="孤老甲")
    helped = await roster_resident(client, world, name="有帮办乙")
    seen = await roster_resident(client, world, name="被识别丙")
    helper = await resident_user(client, server)  # a child elsewhere: not on this roster
    await HelperBinding.create(resident_id=helped["id"], helper_id=helper.id, relation="child",
                               status=BindingStatus.APPROVED, approved_by="staff")
    await sighted(client, world, seen)
    period = await periods.current_period(community_id=world.community_id)
    year, month = (int(x) for x in period.month.split("-"))
    before_due = datetime(year, month, period.due_day, 2, 0, tzinfo=UTC)  # 10:00 on the due day, Beijing
    after_due = before_due + timedelta(days=1)

    with frozen(server, before_due):
        await worker.certification_outreach(server.app)
        await outbox.run_due(server.app.ctx.outbox_handlers)
        assert await outreach_cases(client, world) == []  # not yet: the month is still running
    with frozen(server, after_due):
        assert await worker.certification_outreach(server.app) >= 1
        await outbox.run_due(server.app.ctx.outbox_handlers)
        await worker.certification_outreach(server.app)  # again: idempotent
        await outbox.run_due(server.app.ctx.outbox_handlers)
        cases = await outreach_cases(client, world)
        assert len(cases) == 1
        wid = cases[0]["id"]
        case = await staff_detail(client, world.staff, wid)
        assert case["subject_resident"]["name"] == "孤老甲" and case["subject_resident"]["id"] == alone["id"]
        assert case["state"] == "dispatched" and case["team"]["name"] == "网格员"
        assert case["category"]["code"] == "SYS-OUTREACH" and case["category"]["private"] is True
        assert case["place"]["address"].startswith("南桥镇") and case["reporter"] is None
        assert [h["by"] for h in case["history"]] == ["系统", "系统", "系统"]
        assert await WorkOrder.filter(source=Source.OUTREACH, subject_resident_id__in=[helped["id"], seen["id"]]).count() == 0

        # the grid worker visits or calls; closing records the outcome (no photo needed for a phone call)
        await move(client, d.grid_handler, wid, "start", "电话联系老人女儿")
        assert_error(await client.post(f"/api/workorders/{wid}/moves", json={"action": "submit", "note": "联系上了"},
                                       headers=d.grid_handler.headers), 422, "workorder.field_required")
        assert_error(await client.post(f"/api/workorders/{wid}/moves", json={
            "action": "submit", "note": "联系上了", "attributes": {"outcome": "gone fishing"}},
            headers=d.grid_handler.headers), 422, "workorder.field_invalid")
        await move(client, d.grid_handler, wid, "submit", "老人住院，出院后由女儿帮助认证",
                   attributes={"outcome": "hospitalised"})
        await move(client, world.staff, wid, "verify", "已登记")
        done = await staff_detail(client, world.staff, wid)
        assert done["outcome"] == "hospitalised" and done["attributes"]["outcome"] == "hospitalised"
        assert done["state"] == "resolved"


async def test_device_alarms_and_health_alerts_enter_through_one_function(client, server, make_world):
    world = await make_world()
    d = await desk(client, world)
    point = await make_point(client, world, name="7号充电棚")
    now = datetime.now(UTC)
    alarm, created = await service.open_from_source(
        community_id=world.community_id, source=Source.DEVICE, source_ref=f"charger-7:{secrets.token_hex(4)}",
        category_code="SYS-DEVICE", description="7号充电桩烟雾告警", point_id=point["id"], now=now)
    assert created and alarm.state == "dispatched" and alarm.team_id == d.teams["物业"]
    again, created_again = await service.open_from_source(
        community_id=world.community_id, source=Source.DEVICE, source_ref=alarm.source_ref,
        category_code="SYS-DEVICE", description="7号充电桩烟雾告警", now=now)
    assert again.id == alarm.id and created_again is False  # the same alarm delivered twice: one case
    case = await staff_detail(client, world.staff, alarm.id)
    assert case["place"]["point"]["name"] == "7号充电棚" and case["clock"]["due_at"] == (now + timedelta(hours=4)).isoformat()

    elder = await roster_resident(client, world, name="血压高丁")
    health, _ = await service.open_from_source(
        community_id=world.community_id, source=Source.HEALTH, source_ref=f"obs:{secrets.token_hex(4)}",
        category_code="SYS-HEALTH", description="收缩压 182 mmHg，请家庭医生随访", subject_resident_id=elder["id"], now=now)
    neighbour = await community_resident(client, server, world)
    assert_error(await client.get(f"/api/app/workorders/{health.id}", headers=neighbour.headers), 404)
    assert (await client.get(f"/api/app/workorders/{alarm.id}", headers=neighbour.headers)).status_code == 200
    requests = (await client.get("/open311/v2/requests.json", params={"jurisdiction_id": world.community_code})).json()
    assert health.id not in {r["service_request_id"] for r in requests}


async def test_monthly_figures_and_their_export(client, server, make_world):
    world = await make_world()
    d = await desk(client, world)
    resident = await community_resident(client, server, world)
    trash = d.categories["ENV-01"]  # 12 h to respond, 48 h to resolve
    t0 = datetime(2026, 2, 3, 1, 0, tzinfo=UTC)

    async def case(description: str) -> int:
        response = await client.post("/api/app/workorders", json={
            "category_id": trash["id"], "description": description, "address": "3号楼"}, headers=resident.headers)
        return response.json()["id"]

    async def close(wid: int, handler) -> None:
        await move(client, handler, wid, "start", "处理")
        photo = await upload(client, handler.headers, wid, photo_with_gps(), kind="after")
        await move(client, handler, wid, "submit", "已清理", photo_ids=[photo["id"]])
        await move(client, world.staff, wid, "verify", "核查通过")

    with frozen(server, t0) as now:
        quick, slow, elsewhere, dup = [await case(text) for text in ("快", "慢", "不归我们", "重复")]
        await move(client, world.staff, quick, "accept", "签收")
        await move(client, world.staff, quick, "dispatch", "派单", team_id=d.teams["物业"])
        await close(quick, d.property_handler)
        await client.post(f"/api/app/workorders/{quick}/callback", json={"resolved": True, "satisfied": True},
                          headers=resident.headers)
        await move(client, world.staff, elsewhere, "out_of_scope", "属于环卫所", responsible="南桥环卫所")
        await move(client, world.staff, dup, "merge", "同一堆垃圾", into_id=quick)
        now[0] = t0 + timedelta(hours=20)  # responded late (12 h allowed)
        await move(client, world.staff, slow, "accept", "签收")
        await move(client, world.staff, slow, "dispatch", "派单", team_id=d.teams["网格员"])
        now[0] = t0 + timedelta(hours=60)  # resolved late (48 h allowed)
        await close(slow, d.grid_handler)
        await client.post(f"/api/app/workorders/{slow}/callback", json={"resolved": False}, headers=resident.headers)

        figures = (await client.get("/api/workorders/figures", params={"month": "2026-02"},
                                    headers=world.staff.headers)).json()
    total = figures["total"]
    assert total["cases"] == 3  # the merged duplicate counts in its original
    assert (total["responded_on_time"], total["response_rate"]) == (2, round(2 / 3, 4))  # quick, out of scope
    assert (total["due"], total["resolved_on_time"], total["on_time_rate"]) == (2, 1, 0.5)
    assert (total["callbacks"], total["satisfied"], total["satisfaction_rate"]) == (2, 1, 0.5)
    assert (total["resolved"], total["reopened"], total["reopen_rate"]) == (2, 1, 0.5)
    teams = {t["name"]: t for t in figures["by_team"]}
    assert teams["物业"]["on_time_rate"] == 1.0 and teams["网格员"]["on_time_rate"] == 0.0
    assert teams["未派单"]["cases"] == 1 and teams["未派单"]["on_time_rate"] is None  # nothing to divide: no fake 0 %
    assert [c["code"] for c in figures["by_category"]] == ["ENV-01"]
    empty = (await client.get("/api/workorders/figures", params={"month": "2025-02"}, headers=world.staff.headers)).json()
    assert empty["total"]["cases"] == 0 and empty["total"]["response_rate"] is None

    exported = await client.get("/api/workorders/figures", params={"month": "2026-02", "format": "csv"},
                                headers=world.staff.headers)
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows[0][:5] == ["分组", "名称", "工单数", "按时响应", "响应率"]
    assert rows[1][:5] == ["合计", "全部", "3", "2", "66.7%"]
    book = await client.get("/api/workorders/figures", params={"month": "2026-02", "format": "xlsx"},
                            headers=world.staff.headers)
    sheet = load_workbook(io.BytesIO(book.content)).active
    assert [cell.value for cell in sheet[2]][:4] == ["合计", "全部", 3, 2]
    assert_error(await client.get("/api/workorders/figures", params={"month": "2026-13"},
                                  headers=world.staff.headers), 422)


async def test_point_signs_are_printable_pdfs_for_ones_own_points(client, make_world):
    world = await make_world()
    other = await make_world()
    first = await make_point(client, world, name="1号楼楼道")
    second = await make_point(client, world, name="东门道闸")
    assert first["qr_content"].endswith(f"/m/#/scan?t={first['qr_content'].split('t=')[1]}")
    assert re.fullmatch(r"WP1\.[A-Z2-7]{16}", first["qr_content"].split("t=")[1])
    one = await client.get(f"/api/workorders/points/{first['id']}/sign.pdf", headers=world.staff.headers)
    assert one.status_code == 200 and one.headers["content-type"] == "application/pdf"
    assert one.content.startswith(b"%PDF") and b"STSong-Light" in one.content
    assert len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", one.content)) == 1
    both = await client.post("/api/workorders/points/signs", json={"point_ids": [first["id"], second["id"]]},
                             headers=world.staff.headers)
    assert len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", both.content)) == 2
    assert_error(await client.get(f"/api/workorders/points/{first['id']}/sign.pdf", headers=other.staff.headers), 404)
    listed = (await client.get("/api/workorders/points", headers=other.staff.headers)).json()["items"]
    assert listed == []
