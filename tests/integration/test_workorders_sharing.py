"""What residents and staff see of each other's reports: duplicate suggestions (same point, or within
~50 m), 我也遇到 and staff merges (both linked, followers moved), reporters hidden by default,
private categories invisible to other residents, and no community seeing another's cases."""

from __future__ import annotations

from backend.audit.models import AuditEvent
from tests.integration.test_errors_and_ops import assert_error
from tests.integration.workorders_support import (
    community_resident,
    desk,
    make_point,
    move,
    photo_with_gps,
    roster_resident,
    staff_detail,
    upload,
)

BASE_LAT, BASE_LONG = 30.92030, 121.47120
METRE_LAT = 1 / 111_195  # one metre north, in degrees of latitude


async def report(client, user, category_id: int, **fields) -> int:
    response = await client.post("/api/app/workorders", json={"category_id": category_id,
                                                               "description": "楼下垃圾堆了好几天", **fields},
                                 headers=user.headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def suggestions(client, user, **params) -> list[dict]:
    response = await client.get("/api/app/workorders/duplicates", params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_duplicates_by_point_and_by_distance_follow_and_merge(client, server, make_world):
    world = await make_world()
    d = await desk(client, world)
    trash = d.categories["ENV-01"]["id"]
    lamp = d.categories["FAC-01"]["id"]
    first, second, third = [await community_resident(client, server, world, name=n) for n in ("张三", "李四", "王五")]
    point = await make_point(client, world, name="2号门垃圾房", lat=None, long=None)

    at_point = await report(client, first, trash, point=point["qr_content"])
    await upload(client, first.headers, at_point, photo_with_gps(), app=True)
    by_position = await report(client, first, trash, address="6号楼东侧", lat=BASE_LAT, long=BASE_LONG)

    # at the same point (no position on the sign at all): offered with its large photo
    found = await suggestions(client, second, category_id=trash, point=point["qr_content"])
    assert [(item["id"], item["matched_by"]) for item in found] == [(at_point, "point")]
    assert found[0]["photo_url"].startswith(f"/api/app/workorders/{at_point}/photos/")
    photo = await client.get(found[0]["photo_url"], headers=second.headers)
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    # within ~50 m, not at 80 m, not in another category
    near = await suggestions(client, second, category_id=trash, lat=BASE_LAT + 30 * METRE_LAT, long=BASE_LONG)
    assert [(item["id"], item["matched_by"]) for item in near] == [(by_position, "distance")]
    assert 29 <= near[0]["distance_m"] <= 31
    assert await suggestions(client, second, category_id=trash, lat=BASE_LAT + 80 * METRE_LAT, long=BASE_LONG) == []
    assert await suggestions(client, second, category_id=lamp, lat=BASE_LAT, long=BASE_LONG) == []
    assert "reporter" not in near[0]  # a list row never names anyone

    # 我也遇到: follow instead of a new case, and hear of the next step
    followed = await client.post(f"/api/app/workorders/{by_position}/follow", headers=second.headers)
    assert followed.status_code == 200 and followed.json()["followers"] == 1
    assert_error(await client.post(f"/api/app/workorders/{by_position}/follow", headers=first.headers), 409,
                 "workorder.own_case")
    await move(client, world.staff, by_position, "accept", "已签收")
    inbox = (await client.get("/api/app/notifications", headers=second.headers)).json()["items"]
    assert inbox[0]["template"] == "wo_accepted" and f"GD{by_position:06d}" in inbox[0]["body"]

    # a third resident files the same thing anyway; staff merge it: both linked, followers moved
    duplicate = await report(client, third, trash, address="6号楼旁边", lat=BASE_LAT + 5 * METRE_LAT, long=BASE_LONG)
    staff_view = (await client.get("/api/workorders/duplicates", params={
        "category_id": trash, "community_id": world.community_id, "lat": BASE_LAT, "long": BASE_LONG},
        headers=world.staff.headers)).json()["items"]
    assert {item["id"] for item in staff_view} == {by_position, duplicate}
    await move(client, world.staff, duplicate, "merge", "与 6号楼东侧 的垃圾是同一处", into_id=by_position)
    merged = await staff_detail(client, world.staff, duplicate)
    original = await staff_detail(client, world.staff, by_position)
    assert merged["state"] == "duplicate" and merged["merged_into"] == by_position
    assert original["duplicates"] == [duplicate] and original["followers"] == 2
    assert original["history"][-1]["action"] == "merged_in"
    third_inbox = (await client.get("/api/app/notifications", headers=third.headers)).json()["items"]
    assert third_inbox[0]["template"] == "wo_merged" and f"GD{by_position:06d}" in third_inbox[0]["body"]
    following = (await client.get("/api/app/workorders", params={"scope": "following"},
                                  headers=third.headers)).json()["items"]
    assert [item["id"] for item in following] == [by_position]
    await move(client, world.staff, by_position, "dispatch", "派物业清运", team_id=d.teams["物业"])
    assert (await client.get("/api/app/notifications", headers=third.headers)).json()["items"][0]["template"] == \
        "wo_dispatched"
    # a merged (closed) duplicate is no longer suggested
    assert duplicate not in {i["id"] for i in await suggestions(client, second, category_id=trash, lat=BASE_LAT,
                                                                  long=BASE_LONG)}


async def test_reporter_hidden_private_category_invisible_and_communities_isolated(client, server, make_world):
    world = await make_world()
    other = await make_world()
    d = await desk(client, world)
    reporter = await community_resident(client, server, world, name="陈美华")
    neighbour = await community_resident(client, server, world, name="周建国")

    public = await report(client, reporter, d.categories["ENV-01"]["id"], address="3号楼下")
    shown = await report(client, reporter, d.categories["ENV-01"]["id"], address="4号楼下", show_reporter=True)
    private = await report(client, reporter, d.categories["PRI-01"]["id"], address="5号楼 301",
                           description="楼上邻居天天半夜吵架")

    # the reporter's name is hidden from neighbours unless they chose to show it (then masked)
    seen = (await client.get(f"/api/app/workorders/{public}", headers=neighbour.headers)).json()
    assert seen["reporter"] == {"name": None, "label": "匿名居民"} and seen["mine"] is False
    assert reporter.phone not in str(seen) and "陈美华" not in str(seen)
    assert (await client.get(f"/api/app/workorders/{shown}", headers=neighbour.headers)).json()["reporter"] == \
        {"name": "陈*华", "label": "陈*华"}
    # a private category: the reporter and staff only
    assert_error(await client.get(f"/api/app/workorders/{private}", headers=neighbour.headers), 404)
    assert_error(await client.post(f"/api/app/workorders/{private}/follow", headers=neighbour.headers), 404)
    community = (await client.get("/api/app/workorders", params={"scope": "community"},
                                  headers=neighbour.headers)).json()["items"]
    assert {item["id"] for item in community} == {public, shown}
    assert await suggestions(client, neighbour, category_id=d.categories["PRI-01"]["id"],
                             community_id=world.community_id, lat=BASE_LAT, long=BASE_LONG) == []
    assert (await client.get(f"/api/app/workorders/{private}", headers=reporter.headers)).status_code == 200
    staff_case = await staff_detail(client, world.staff, private)
    assert staff_case["category"]["private"] is True and staff_case["reporter"]["name"] == "陈美华"
    assert await AuditEvent.filter(action="workorder.read", target_id=str(private)).exists()

    # another community's staff see none of it: not on the board, not by id, not its photos, no moves
    assert (await client.get("/api/workorders", headers=other.staff.headers)).json()["total"] == 0
    for wid in (public, private):
        assert_error(await client.get(f"/api/workorders/{wid}", headers=other.staff.headers), 404)
        assert_error(await client.post(f"/api/workorders/{wid}/moves", json={"action": "accept", "note": "抢单"},
                                       headers=other.staff.headers), 404)
    assert_error(await client.get("/api/workorders", params={"community_id": world.community_id},
                                  headers=other.staff.headers), 404)
    assert_error(await client.get("/api/workorders/teams", params={"community_id": world.community_id},
                                  headers=other.admin.headers), 404)
    mine = (await client.get("/api/workorders", headers=world.staff.headers)).json()
    assert mine["total"] == 3 and mine["counts"]["new"] == 3


async def test_a_helper_reports_for_the_elder_and_staff_for_an_offline_resident(client, server, make_world):
    from backend.residents.models import BindingStatus, HelperBinding

    world = await make_world()
    d = await desk(client, world)
    elder = await roster_resident(client, world, name="钱阿婆")
    helper = await community_resident(client, server, world, name="钱小明")
    stranger = await community_resident(client, server, world, name="路人")
    await HelperBinding.create(resident_id=elder["id"], helper_id=helper.id, relation="child",
                               status=BindingStatus.APPROVED, approved_by="staff")
    body = {"category_id": d.categories["FAC-03"]["id"], "description": "电梯坏了，老人下不了楼",
            "address": "8号楼", "on_behalf_resident_id": elder["id"]}
    assert_error(await client.post("/api/app/workorders", json=body, headers=stranger.headers), 404,
                 "workorder.not_helper")
    created = await client.post("/api/app/workorders", json=body, headers=helper.headers)
    assert created.status_code == 201, created.text
    case = await staff_detail(client, world.staff, created.json()["id"])
    assert case["on_behalf"] is True and case["on_behalf_resident"]["name"] == "钱阿婆"
    assert case["history"][0]["note"].startswith("居民代报")

    by_staff = await client.post("/api/workorders", json={
        "category_id": d.categories["SAF-01"]["id"], "description": "网格员巡查：楼道堆放纸箱",
        "address": "9号楼 2单元", "on_behalf_resident_id": elder["id"], "contact_name": "钱阿婆",
        "contact_phone": "13912345678"}, headers=d.grid_handler.headers)
    assert by_staff.status_code == 201, by_staff.text
    staff_case = await staff_detail(client, world.staff, by_staff.json()["id"])
    assert staff_case["source"] == "staff" and staff_case["on_behalf"] is True
    assert staff_case["reporter"]["phone"] == "13912345678"
    # the category's required field is enforced (SAF-02 asks where the bike was charged)
    assert_error(await client.post("/api/app/workorders", json={
        "category_id": d.categories["SAF-02"]["id"], "address": "楼道"}, headers=helper.headers), 422,
        "workorder.field_required")


async def test_a_flood_of_reports_from_one_phone_is_slowed_down(client, server, make_world):
    world = await make_world()
    d = await desk(client, world)
    resident = await community_resident(client, server, world)
    body = {"category_id": d.categories["ENV-01"]["id"], "description": "垃圾", "address": "1号楼"}
    for _ in range(20):
        assert (await client.post("/api/app/workorders", json=body, headers=resident.headers)).status_code == 201
    refused = await client.post("/api/app/workorders", json=body, headers=resident.headers)
    assert_error(refused, 429, "rate_limited")
    assert int(refused.headers["retry-after"]) > 0
