"""随手拍 over the real API: a resident reports at a fixed point with a photo, the community accepts,
dispatches, the handler hands it back (退单, the clock keeps running), it is reassigned, an extension
is asked for and approved by someone else, the handler closes with an after-photo, the call-back says
"没解决" and the case is done again (重办) until the resident is satisfied. Every step has its note in
an append-only history, and the resident hears of each step in the app's inbox.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta

from PIL import Image

from backend.notify.models import OutboundMessage
from backend.workorders.models import WorkOrder, WorkOrderEvent, WorkOrderPhoto
from backend.workorders.photos import unseal
from tests.integration.test_errors_and_ops import assert_error
from tests.integration.workorders_support import (
    community_resident,
    desk,
    make_point,
    move,
    photo_with_gps,
    staff_detail,
    upload,
)


def no_metadata(jpeg: bytes) -> None:
    """Pillow finds no EXIF (let alone GPS) and the bytes carry no EXIF block or the camera's strings."""
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG"
    exif = image.getexif()
    assert len(exif) == 0, dict(exif)
    assert not exif.get_ifd(0x8825)  # GPS IFD
    assert "exif" not in image.info
    assert b"Exif\x00\x00" not in jpeg and b"ZhilianTestCam" not in jpeg and "王桂英".encode() not in jpeg


async def report_at_point(client, user, point: dict, category_id: int, **extra) -> dict:
    response = await client.post("/api/app/workorders", json={
        "category_id": category_id, "description": "路灯不亮三天了，晚上看不清台阶", "point": point["qr_content"],
        "hint_lat": 30.92, "hint_long": 121.47, **extra}, headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def inbox_templates(client, user) -> list[str]:
    body = (await client.get("/api/app/notifications", params={"size": 100}, headers=user.headers)).json()
    return [item["template"] for item in reversed(body["items"])]


async def test_the_whole_state_machine_with_bounce_extension_and_reopen(client, server, make_world):
    world = await make_world()
    d = await desk(client, world)
    lamp = d.categories["FAC-01"]
    point = await make_point(client, world)
    resident = await community_resident(client, server, world)

    # scanning the sign opens a report with the place filled in
    scanned = await client.get("/api/app/workorders/points/scan", params={"t": point["qr_content"]},
                               headers=resident.headers)
    assert scanned.status_code == 200, scanned.text
    assert scanned.json()["point"]["name"] == "3号楼路灯"
    assert any(c["code"] == "FAC-01" and c["leaf"] for c in scanned.json()["categories"])

    created = await report_at_point(client, resident, point, lamp["id"])
    wid = created["id"]
    assert created["state"] == "submitted" and created["number"] == f"GD{wid:06d}"
    original = photo_with_gps(orientation=6)
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)  # the test photo really has GPS
    sent = await upload(client, resident.headers, wid, original, app=True)

    # what is stored: no EXIF, upright (orientation applied), encrypted at rest
    row = await WorkOrderPhoto.get(id=sent["id"])
    assert row.photo_cipher.startswith("v1.") and b"\xff\xd8" not in row.photo_cipher.encode()
    stored = unseal(row.photo_cipher, server.app.ctx.cipher)
    no_metadata(stored)
    assert Image.open(io.BytesIO(stored)).size == (200, 320)  # rotated by its orientation tag, then stripped
    served = await client.get(sent["url"], headers=resident.headers)
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    no_metadata(served.content)

    case = await staff_detail(client, world.staff, wid)
    assert case["place"]["point"]["code"] == point["code"] and case["place"]["address"].startswith("南桥镇")
    assert case["reporter"]["name"] == "李秀兰" and case["reporter"]["phone"] == resident.phone
    assert set(case["actions"]) >= {"accept", "merge", "out_of_scope"}
    due = case["clock"]["due_at"]

    # a note is required at every step; the handler cannot accept, only the dispatcher
    assert_error(await client.post(f"/api/workorders/{wid}/moves", json={"action": "accept", "note": " "},
                                   headers=world.staff.headers), 422)
    assert_error(await client.post(f"/api/workorders/{wid}/moves", json={"action": "start", "note": "去看看"},
                                   headers=d.property_handler.headers), 409, "workorder.wrong_state")
    await move(client, world.staff, wid, "accept", "已签收")
    assert_error(await client.post(f"/api/workorders/{wid}/moves", json={"action": "dispatch", "note": "派单"},
                                   headers=world.staff.headers), 404, "workorder.team_not_found")
    await move(client, world.staff, wid, "dispatch", "派物业维修", team_id=d.teams["物业"])
    assert_error(await client.post(f"/api/workorders/{wid}/moves", json={"action": "start", "note": "我来"},
                                   headers=d.grid_handler.headers), 403, "workorder.not_your_move")
    await move(client, d.property_handler, wid, "start", "已到现场")

    # 退单: back to the dispatcher with a reason; the clock keeps running (same deadline, held by the dispatcher)
    await move(client, d.property_handler, wid, "return", "这根灯杆属于市政，不归物业")
    bounced = await staff_detail(client, world.staff, wid)
    assert bounced["state"] == "returned" and bounced["clock"]["holder"] == "dispatcher"
    assert bounced["clock"]["due_at"] == due and set(bounced["actions"]) >= {"reassign", "reject_return"}
    await move(client, world.staff, wid, "reassign", "改派网格员联系市政", team_id=d.teams["网格员"])
    again = await staff_detail(client, world.staff, wid)
    assert again["state"] == "dispatched" and again["team"]["name"] == "网格员" and again["clock"]["due_at"] == due
    await move(client, d.grid_handler, wid, "start", "已联系市政路灯所")

    # 延期 needs approval by an approver who did not ask for it
    await move(client, d.grid_handler, wid, "request_extension", "市政要两天后来换灯", extension_hours=48)
    assert_error(await client.post(f"/api/workorders/{wid}/moves", json={"action": "approve_extension", "note": "同意"},
                                   headers=world.staff.headers), 403, "workorder.not_your_move")
    await move(client, world.admin, wid, "approve_extension", "同意延期两天")
    extended = await staff_detail(client, world.staff, wid)
    assert extended["state"] == "in_progress"
    assert datetime.fromisoformat(extended["clock"]["due_at"]) == datetime.fromisoformat(due) + timedelta(hours=48)

    # closing needs the handler's after-photo
    assert_error(await client.post(f"/api/workorders/{wid}/moves", json={"action": "submit", "note": "修好了"},
                                   headers=d.grid_handler.headers), 422, "workorder.after_photo_required")
    assert_error(await client.post(f"/api/workorders/{wid}/photos", files={"photo": ("a.jpg", photo_with_gps())},
                                   data={"kind": "after"}, headers=world.staff.headers), 403)
    after = await upload(client, d.grid_handler.headers, wid, photo_with_gps(), kind="after")
    await move(client, d.grid_handler, wid, "submit", "已更换灯泡", photo_ids=[after["id"]])
    await move(client, world.staff, wid, "verify", "已核查，路灯恢复")
    resolved = await WorkOrder.get(id=wid)
    assert resolved.state == "resolved" and resolved.resolved_at is not None and resolved.on_time is True

    # the call-back: 没解决 -> 重办 in a new round with a new clock; only the reporter (or staff) answers
    stranger = await community_resident(client, server, world, name="赵明")
    assert_error(await client.post(f"/api/app/workorders/{wid}/callback", json={"resolved": False},
                                   headers=stranger.headers), 403)
    reopened = await client.post(f"/api/app/workorders/{wid}/callback", json={"resolved": False, "note": "晚上还是不亮"},
                                 headers=resident.headers)
    assert reopened.status_code == 200, reopened.text
    assert reopened.json() == {"id": wid, "state": "reopened", "round": 2}
    round2 = await staff_detail(client, world.staff, wid)
    assert round2["reopen_count"] == 1 and round2["clock"]["round"] == 2
    await move(client, world.staff, wid, "dispatch", "重办：请物业再查线路", team_id=d.teams["物业"])
    await move(client, d.property_handler, wid, "start", "查线路")
    assert_error(await client.post(f"/api/workorders/{wid}/moves", json={"action": "submit", "note": "好了"},
                                   headers=d.property_handler.headers), 422, "workorder.after_photo_required")
    fixed = await upload(client, d.property_handler.headers, wid, photo_with_gps(), kind="after")
    await move(client, d.property_handler, wid, "submit", "更换了线路", photo_ids=[fixed["id"]])
    await move(client, world.staff, wid, "verify", "核查：夜间已亮")
    assert_error(await client.post(f"/api/app/workorders/{wid}/callback", json={"resolved": True},
                                   headers=resident.headers), 422, "workorder.satisfaction_required")
    done = await client.post(f"/api/app/workorders/{wid}/callback", json={"resolved": True, "satisfied": True},
                             headers=resident.headers)
    assert done.json()["state"] == "called_back"

    final = await staff_detail(client, world.staff, wid)
    assert final["open311_status"] == "closed" and final["satisfied"] is True and final["actions"] == []
    steps = [(h["action"], h["from"], h["to"]) for h in final["history"]]
    assert steps == [
        ("submit_report", None, "submitted"), ("accept", "submitted", "accepted"),
        ("dispatch", "accepted", "dispatched"), ("start", "dispatched", "in_progress"),
        ("return", "in_progress", "returned"), ("reassign", "returned", "dispatched"),
        ("start", "dispatched", "in_progress"), ("request_extension", "in_progress", "extension_requested"),
        ("approve_extension", "extension_requested", "in_progress"), ("submit", "in_progress", "pending_check"),
        ("verify", "pending_check", "resolved"), ("reopen", "resolved", "reopened"),
        ("dispatch", "reopened", "dispatched"), ("start", "dispatched", "in_progress"),
        ("submit", "in_progress", "pending_check"), ("verify", "pending_check", "resolved"),
        ("callback", "resolved", "called_back"),
    ]
    assert all(h["note"].strip() for h in final["history"])
    assert final["history"][4]["note"] == "这根灯杆属于市政，不归物业"
    assert final["history"][9]["photo_ids"] == [after["id"]]
    assert {p["kind"] for p in final["photos"]} == {"before", "after"}

    # the resident reads the steps meant for them; the community's internal hand-offs stay inside
    seen = (await client.get(f"/api/app/workorders/{wid}", headers=resident.headers)).json()
    assert [h["action"] for h in seen["history"]][:5] == ["submit_report", "accept", "dispatch", "start", "start"]
    assert "不归物业" not in str(seen) and "return" not in {h["action"] for h in seen["history"]}
    assert {h["by"] for h in seen["history"]} == {"居民", "社区工作人员"}  # roles, never names

    # the history is append-only
    first = await WorkOrderEvent.filter(work_order_id=wid).order_by("id").first()
    first.note = "改写"
    try:
        await first.save()
        raise AssertionError("a history row was changed")
    except RuntimeError:
        pass

    # the resident heard of each step, in the app
    assert await inbox_templates(client, resident) == [
        "wo_submitted", "wo_accepted", "wo_dispatched", "wo_in_progress", "wo_dispatched", "wo_in_progress",
        "wo_extended", "wo_resolved", "wo_reopened", "wo_dispatched", "wo_in_progress", "wo_resolved",
        "wo_called_back"]
    assert not await OutboundMessage.filter(template__startswith="wo_", channel="sms").exists()
    mine = (await client.get("/api/app/workorders", params={"scope": "mine"}, headers=resident.headers)).json()
    assert [item["id"] for item in mine["items"]] == [wid] and mine["items"][0]["mine"] is True


async def test_a_moved_case_cannot_be_moved_twice_from_the_same_state(client, make_world, server):
    world = await make_world()
    d = await desk(client, world)
    resident = await community_resident(client, server, world)
    wid = (await report_at_point(client, resident, await make_point(client, world), d.categories["FAC-01"]["id"]))["id"]
    await move(client, world.staff, wid, "accept", "签收")
    assert_error(await client.post(f"/api/workorders/{wid}/moves", json={"action": "accept", "note": "再签收"},
                                   headers=world.admin.headers), 409, "workorder.wrong_state")
    assert_error(await client.post(f"/api/workorders/{wid}/moves", json={"action": "fly", "note": "x"},
                                   headers=world.admin.headers), 422, "workorder.unknown_action")
    await move(client, world.staff, wid, "out_of_scope", "属于燃气公司", responsible="南桥燃气营业所（电话 57420000）")
    case = await staff_detail(client, world.staff, wid)
    assert case["state"] == "out_of_scope" and case["responsible"].startswith("南桥燃气")
    assert "wo_out_of_scope" in await inbox_templates(client, resident)
