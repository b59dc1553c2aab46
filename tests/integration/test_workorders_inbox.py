"""Each in-app message about a case leads to that case: the button of every 随手拍 message opens the
case screen of the phone app (`/reports/<id>`), and a merged duplicate's message opens the original
the reporter now follows. Staff see who was assigned on the case page."""

from __future__ import annotations

from tests.integration.workorders_support import community_resident, desk, make_point, move, staff_detail


async def messages(client, user) -> list[dict]:
    body = (await client.get("/api/app/notifications", params={"size": 100}, headers=user.headers)).json()
    return [m for m in body["items"] if m["template"].startswith("wo_")]


async def test_every_case_message_leads_to_its_case(client, server, make_world):
    world = await make_world()
    d = await desk(client, world)
    point = await make_point(client, world)
    first = await community_resident(client, server, world, name="李秀兰")
    second = await community_resident(client, server, world, name="王桂英")
    lamp = d.categories["FAC-01"]["id"]

    async def report(user) -> int:
        created = await client.post("/api/app/workorders", json={
            "category_id": lamp, "description": "路灯不亮", "point": point["qr_content"]}, headers=user.headers)
        assert created.status_code == 201, created.text
        return created.json()["id"]

    original, duplicate = await report(first), await report(second)
    await move(client, world.staff, original, "accept", "签收")
    handler = d.property_handler
    await move(client, world.staff, original, "dispatch", "派物业，请李师傅去", team_id=d.teams["物业"],
               assignee_id=handler.user_id)
    await move(client, world.staff, duplicate, "merge", "同一盏路灯", into_id=original)

    mine = await messages(client, first)
    assert [m["template"] for m in mine] == ["wo_dispatched", "wo_accepted", "wo_submitted"]
    assert {m["link"] for m in mine} == {f"/reports/{original}"}
    theirs = await messages(client, second)
    assert [m["template"] for m in theirs] == ["wo_merged", "wo_submitted"]
    merged, submitted = theirs
    assert merged["link"] == f"/reports/{original}"  # the case they now follow
    assert submitted["link"] == f"/reports/{duplicate}"

    case = await staff_detail(client, world.staff, original)
    assert case["assignee"] == {"id": handler.user_id, "name": case["assignee"]["name"]} and case["assignee"]["name"]
