"""Work-order text goes through the project's one text validator (backend/residents/text.py) on every
path in: a resident's description and place, a staff member's entry and notes, who is responsible,
a call-back remark, team, category and point names, a category's extra fields, and an Open311 POST.

Invisible characters (controls, bidi overrides, zero-width) and a leading formula character are
refused with a 422 naming the field in Chinese; nothing is stored. Ordinary Chinese text, with its
punctuation and line breaks, goes through unchanged.
"""

from __future__ import annotations

from backend.workorders.models import HandlerTeam, QrPoint, WorkOrder, WorkOrderEvent
from tests.integration.test_errors_and_ops import assert_error
from tests.integration.workorders_support import (
    community_resident,
    desk,
    make_point,
    move,
    photo_with_gps,
    upload,
)

RLO = "\u202e"  # right-to-left override: makes "gpj.exe" read as "exe.jpg"
ZWSP = "\u200b"  # zero-width space
NUL = "\x00"


def refused(response, code: str, field: str, words: str) -> None:
    error = assert_error(response, 422, code)
    assert error.get("field") == field, error
    assert words in error["message"], error


async def test_resident_report_refuses_invisible_and_formula_text(client, server, make_world):
    world = await make_world()
    d = await desk(client, world)
    point = await make_point(client, world)
    resident = await community_resident(client, server, world)
    lamp = d.categories["FAC-01"]["id"]

    def report(**fields):
        return client.post("/api/app/workorders", json={"category_id": lamp, "point": point["qr_content"], **fields},
                           headers=resident.headers)

    refused(await report(description=f"路灯{RLO}不亮"), "text.invisible_character", "description", "问题描述")
    refused(await report(description=f"路灯{ZWSP}不亮"), "text.invisible_character", "description", "U+200B")
    refused(await report(description="=HYPERLINK(\"http://x\",\"点我\")"), "text.formula", "description", "不能以")
    refused(await report(description="路灯不亮", address=f"3号楼{NUL}"), "text.invisible_character", "address", "地点")
    refused(await report(description="路灯不亮", reporter_name=f"王{ZWSP}桂英", show_reporter=True),
            "text.invisible_character", "reporter_name", "姓名")
    refused(await report(description="路灯不亮", attributes={"lamp_no": "@SUM(A1)"}), "text.formula",
            "attributes.lamp_no", "灯杆编号")
    assert await WorkOrder.filter(community_id=world.community_id).count() == 0  # nothing half-stored

    fine = await report(description="3号楼前的路灯不亮了，\n晚上看不清台阶！（已经三天）", attributes={"lamp_no": "L-07"})
    assert fine.status_code == 201, fine.text
    stored = await WorkOrder.get(id=fine.json()["id"])
    assert stored.description == "3号楼前的路灯不亮了，\n晚上看不清台阶！（已经三天）"

    # the call-back remark too
    wid = stored.id
    await move(client, world.staff, wid, "accept", "签收")
    await move(client, world.staff, wid, "dispatch", "派物业", team_id=d.teams["物业"])
    await move(client, d.property_handler, wid, "start", "去看看")
    await upload(client, d.property_handler.headers, wid, photo_with_gps(), kind="after")
    await move(client, d.property_handler, wid, "submit", "换好了")
    await move(client, world.staff, wid, "verify", "亮了")
    refused(await client.post(f"/api/app/workorders/{wid}/callback", json={
        "resolved": True, "satisfied": True, "note": f"好{RLO}的"}, headers=resident.headers),
        "text.invisible_character", "note", "说明")


async def test_staff_notes_entries_and_names_refuse_invisible_and_formula_text(client, server, make_world):
    world = await make_world()
    d = await desk(client, world)
    lamp = d.categories["FAC-01"]["id"]

    entry = await client.post("/api/workorders", json={"category_id": lamp, "description": "+8613800000000 来电",
                                                        "address": "3号楼"}, headers=world.staff.headers)
    refused(entry, "text.formula", "description", "问题描述")
    entry = await client.post("/api/workorders", json={"category_id": lamp, "description": "电话报修",
                                                        "address": "3号楼", "grid": f"一{ZWSP}网格"},
                              headers=world.staff.headers)
    refused(entry, "text.invisible_character", "grid", "网格")
    entry = await client.post("/api/workorders", json={"category_id": lamp, "description": "电话报修", "address": "3号楼",
                                                        "contact_name": f"李{RLO}四"}, headers=world.staff.headers)
    refused(entry, "text.invisible_character", "contact_name", "联系人")
    created = await client.post("/api/workorders", json={"category_id": lamp, "description": "电话报修",
                                                          "address": "3号楼"}, headers=world.staff.headers)
    assert created.status_code == 201, created.text
    wid = created.json()["id"]

    events = await WorkOrderEvent.filter(work_order_id=wid).count()
    refused(await client.post(f"/api/workorders/{wid}/moves", json={"action": "accept", "note": f"签收{NUL}"},
                              headers=world.staff.headers), "text.invisible_character", "note", "说明")
    refused(await client.post(f"/api/workorders/{wid}/moves", json={"action": "accept", "note": "-已签收"},
                              headers=world.staff.headers), "text.formula", "note", "说明")
    refused(await client.post(f"/api/workorders/{wid}/moves", json={
        "action": "out_of_scope", "note": "不归社区", "responsible": f"=城管{ZWSP}"}, headers=world.staff.headers),
        "text.invisible_character", "responsible", "负责的单位")
    assert await WorkOrderEvent.filter(work_order_id=wid).count() == events  # no move was made
    assert (await WorkOrder.get(id=wid)).state == "submitted"
    await move(client, world.staff, wid, "accept", "已签收，马上派单")

    teams_before = await HandlerTeam.filter(community_id=world.community_id).count()
    refused(await client.post("/api/workorders/teams", json={"name": f"保洁{RLO}队"}, headers=world.admin.headers),
            "text.invisible_character", "name", "队伍名称")
    refused(await client.post("/api/workorders/teams", json={"name": "=保洁队"}, headers=world.admin.headers),
            "text.formula", "name", "队伍名称")
    assert await HandlerTeam.filter(community_id=world.community_id).count() == teams_before

    refused(await client.post("/api/workorders/categories", json={"code": "ENV-09", "name": f"井盖{ZWSP}", "parent_id":
                                                                   d.categories["ENV"]["id"]}, headers=world.admin.headers),
            "text.invisible_character", "name", "类别名称")
    refused(await client.patch(f"/api/workorders/categories/{lamp}", json={"name": "@路灯"}, headers=world.admin.headers),
            "text.formula", "name", "类别名称")
    refused(await client.post("/api/workorders/categories", json={
        "code": "ENV-09", "name": "井盖", "fields_spec": [{"code": "no", "label": f"编号{RLO}"}]},
        headers=world.admin.headers), "text.invisible_character", "fields_spec", "字段名称")

    refused(await client.post("/api/workorders/points", json={"name": f"东门{NUL}", "kind": "gate"},
                              headers=world.staff.headers), "text.invisible_character", "name", "点位名称")
    refused(await client.post("/api/workorders/points", json={"name": "东门", "kind": "gate", "address": "=A1"},
                              headers=world.staff.headers), "text.formula", "address", "地点")
    assert await QrPoint.filter(community_id=world.community_id).count() == 0
    ok = await make_point(client, world, name="东门道闸·北侧")
    assert ok["name"] == "东门道闸·北侧"


async def test_open311_description_goes_through_the_same_rules(client, make_world):
    world = await make_world()
    key = (await client.post("/api/workorders/open311-keys", json={"name": "12345"},
                             headers=world.admin.headers)).json()["api_key"]
    posted = await client.post("/open311/v2/requests.json", data={
        "api_key": key, "service_code": "ENV-01", "address_string": "3号楼", "description": f"垃圾{RLO}满了"})
    assert posted.status_code == 400, posted.text
    [error] = posted.json()
    assert error["code"] == 400 and "问题描述" in error["description"] and "U+202E" in error["description"]
    assert await WorkOrder.filter(community_id=world.community_id).count() == 0
