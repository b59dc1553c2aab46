"""The console's home-visit queue: visits awaiting a second staff member, their photo (audited),
who may attest, and the confirmed list — scoped to the caller's community."""

from __future__ import annotations

from backend.audit.models import AuditEvent
from tests.integration.test_errors_and_ops import assert_error
from tests.integration.test_periods_and_evidence import a_photo
from tests.integration.test_residents import create


async def record_visit(client, staff, resident_id: int, note: str = "") -> int:
    response = await client.post(f"/api/residents/{resident_id}/home-visits", files={"photo": ("p.jpg", a_photo())},
                                 data={"note": note}, headers=staff.headers)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def listing(client, staff, **params) -> dict:
    response = await client.get("/api/home-visits", params=params, headers=staff.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_pending_visits_are_listed_for_the_second_staff_member(client, make_world):
    world = await make_world()
    elsewhere = await make_world()
    first = await create(client, world, seed=9201, name="卧床老人")
    second = await create(client, world, seed=9202, name="失明老人")
    by_staff = await record_visit(client, world.staff, first["id"], note="卧床，神志清楚")
    by_admin = await record_visit(client, world.admin, second["id"])

    pending = await listing(client, world.staff)
    assert pending["total"] == 2
    rows = {row["id"]: row for row in pending["items"]}
    assert [row["id"] for row in pending["items"]] == [by_staff, by_admin]  # oldest first
    mine = rows[by_staff]
    assert mine["resident"]["name"] == "卧床老人" and mine["note"] == "卧床，神志清楚"
    assert mine["first_staff"] == {"id": world.staff.user_id, "name": world.staff.username}
    assert mine["second_staff"] is None and mine["confirmed_at"] is None and mine["resident_certified"] is False
    assert mine["can_attest"] is False  # the same person cannot be the second witness
    assert rows[by_admin]["can_attest"] is True
    assert await AuditEvent.filter(action="visit.list", actor_id=str(world.staff.user_id)).exists()

    # the second staff member looks at the photo first (audited)
    photo = await client.get(f"/api/home-visits/{by_staff}/photo", headers=world.admin.headers)
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    assert photo.content == a_photo()
    assert await AuditEvent.filter(action="visit.view_photo", target_id=str(first["id"])).exists()

    # another community sees none of it
    assert (await listing(client, elsewhere.staff))["items"] == []
    assert_error(await client.get(f"/api/home-visits/{by_staff}/photo", headers=elsewhere.staff.headers), 404)
    assert_error(await client.get("/api/home-visits", params={"community_id": world.community_id},
                                  headers=elsewhere.staff.headers), 404, "community.not_found")

    attested = await client.post(f"/api/home-visits/{by_staff}/attest", headers=world.admin.headers)
    assert attested.status_code == 200, attested.text
    left = await listing(client, world.staff, community_id=world.community_id)
    assert [row["id"] for row in left["items"]] == [by_admin]
    confirmed = await listing(client, world.staff, status="confirmed")
    assert [row["id"] for row in confirmed["items"]] == [by_staff]
    done = confirmed["items"][0]
    assert done["second_staff"] == {"id": world.admin.user_id, "name": world.admin.username}
    assert done["resident_certified"] is True and done["can_attest"] is False and done["confirmed_at"]
    assert_error(await client.get("/api/home-visits", params={"status": "all"}, headers=world.staff.headers), 422)
