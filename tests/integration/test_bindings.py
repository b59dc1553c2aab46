"""Helper bindings: ask by scanning, the elder or staff approve, either side revokes; everything audited."""

from __future__ import annotations

from backend.audit.models import AuditEvent
from backend.residents import bindings
from tests.integration.test_errors_and_ops import assert_error
from tests.integration.test_qr import a_phone, app_login, current_token, new_resident
from tests.support.names import numbered_name


async def elder_with_code(client, server, world, name: str = "王桂英"):
    phone = a_phone()
    resident = await new_resident(client, world, name=name, phone=phone)
    elder = await app_login(client, server, phone)
    token = await current_token(client, server, world, resident["id"])
    return resident, elder, token


async def test_request_approve_certify_revoke_and_ask_again(client, server, make_world):
    world = await make_world()
    resident, elder, token = await elder_with_code(client, server, world)
    rid = resident["id"]
    helper = await app_login(client, server)

    asked = await client.post("/api/app/bindings", json={"token": token, "relation": "child"}, headers=helper.headers)
    assert asked.status_code == 201, asked.text
    binding = asked.json()
    assert binding["status"] == "pending" and binding["relation_label"] == "子女"
    assert "王" not in asked.text
    assert await bindings.can_certify(app_user_id=helper.user_id, resident_id=rid) is None
    # scanning again while pending: still nothing about the resident
    pending_scan = (await client.post("/api/app/scan", json={"token": token}, headers=helper.headers)).json()
    assert pending_scan == {"can_request_binding": False, "binding": {"id": binding["id"], "status": "pending"}}
    assert_error(await client.post("/api/app/bindings", json={"token": token, "relation": "child"},
                                   headers=helper.headers), 409, "binding.already_pending")
    # the helper cannot approve their own request; nor can a bystander
    assert_error(await client.post(f"/api/app/bindings/{binding['id']}/approve", headers=helper.headers), 404,
                 "binding.not_found")
    bystander = await app_login(client, server)
    assert_error(await client.post(f"/api/app/bindings/{binding['id']}/approve", headers=bystander.headers), 404)
    assert_error(await client.post(f"/api/app/bindings/{binding['id']}/revoke", headers=bystander.headers), 404)

    listed = (await client.get("/api/app/bindings", headers=elder.headers)).json()
    assert [b["id"] for b in listed["as_resident"]] == [binding["id"]]
    assert listed["as_resident"][0]["helper_phone_masked"] == helper.phone[:3] + "****" + helper.phone[-4:]
    mine = (await client.get("/api/app/bindings", headers=helper.headers)).json()
    assert [b["id"] for b in mine["as_helper"]] == [binding["id"]] and mine["as_helper"][0]["resident_name"] is None

    approved = await client.post(f"/api/app/bindings/{binding['id']}/approve", headers=elder.headers)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved" and approved.json()["approved_by"] == "resident"
    assert_error(await client.post(f"/api/app/bindings/{binding['id']}/approve", headers=elder.headers), 409,
                 "binding.not_pending")
    assert await bindings.can_certify(app_user_id=helper.user_id, resident_id=rid) == "helper"
    assert await bindings.can_certify(app_user_id=elder.user_id, resident_id=rid) == "self"
    assert await bindings.can_certify(app_user_id=bystander.user_id, resident_id=rid) is None

    helper_scan = (await client.post("/api/app/scan", json={"token": token}, headers=helper.headers)).json()
    assert helper_scan["relation"] == "helper" and helper_scan["can_certify"] is True
    assert helper_scan["resident"]["display_name"] == "王*英"
    assert helper_scan["binding"]["id"] == binding["id"]
    assert (await client.get(f"/api/app/residents/{rid}/qr.png", headers=helper.headers)).status_code == 200
    mine = (await client.get("/api/app/bindings", headers=helper.headers)).json()
    assert mine["as_helper"][0]["resident_name"] == "王*英"

    revoked = await client.post(f"/api/app/bindings/{binding['id']}/revoke", headers=helper.headers)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert await bindings.can_certify(app_user_id=helper.user_id, resident_id=rid) is None
    assert_error(await client.get(f"/api/app/residents/{rid}/qr.png", headers=helper.headers), 404)
    assert (await client.post("/api/app/scan", json={"token": token}, headers=helper.headers)).json() == {
        "can_request_binding": True}

    # asking again after revocation is allowed; this time staff approve from the console
    again = await client.post("/api/app/bindings", json={"token": token, "relation": "relative"},
                              headers=helper.headers)
    assert again.status_code == 201 and again.json()["id"] == binding["id"] and again.json()["status"] == "pending"
    listed = await client.get(f"/api/residents/{rid}/helpers", headers=world.staff.headers)
    assert listed.status_code == 200, listed.text
    [row] = listed.json()["items"]
    assert row["id"] == binding["id"] and row["status"] == "pending" and row["relation_label"] == "亲属"
    assert row["helper_phone_masked"] == helper.phone[:3] + "****" + helper.phone[-4:]  # staff recognise the asker
    assert helper.phone not in listed.text
    assert await AuditEvent.filter(action="resident.helpers", target_id=str(rid)).count() == 1
    by_staff = await client.post(f"/api/residents/{rid}/helpers/{binding['id']}/approve", headers=world.staff.headers)
    assert by_staff.status_code == 200, by_staff.text
    assert by_staff.json()["approved_by"] == f"staff:{world.staff.user_id}"
    assert await bindings.can_certify(app_user_id=helper.user_id, resident_id=rid) == "helper"
    # the elder may revoke too, and so may staff (harmlessly, twice)
    assert (await client.post(f"/api/app/bindings/{binding['id']}/revoke", headers=elder.headers)).status_code == 200
    assert await bindings.can_certify(app_user_id=helper.user_id, resident_id=rid) is None
    staff_revoke = await client.post(f"/api/residents/{rid}/helpers/{binding['id']}/revoke",
                                     headers=world.staff.headers)
    assert staff_revoke.status_code == 200 and staff_revoke.json()["status"] == "revoked"

    actions = await AuditEvent.filter(target_kind="helper_binding", target_id=str(binding["id"])).order_by("id") \
        .values_list("action", flat=True)
    assert actions == ["binding.request", "binding.approve", "binding.revoke", "binding.request",
                       "binding.approve", "binding.revoke", "binding.revoke"]


async def test_rejection_by_elder_and_by_staff(client, server, make_world):
    world = await make_world()
    resident, elder, token = await elder_with_code(client, server, world, name="周建华")
    helper = await app_login(client, server)
    first = (await client.post("/api/app/bindings", json={"token": token, "relation": "neighbour"},
                               headers=helper.headers)).json()
    rejected = await client.post(f"/api/app/bindings/{first['id']}/reject", headers=elder.headers)
    assert rejected.status_code == 200 and rejected.json()["status"] == "revoked"
    assert await bindings.can_certify(app_user_id=helper.user_id, resident_id=resident["id"]) is None

    second = (await client.post("/api/app/bindings", json={"token": token, "relation": "grid_worker"},
                                headers=helper.headers)).json()
    assert second["status"] == "pending" and second["relation_label"] == "网格员"
    by_staff = await client.post(f"/api/residents/{resident['id']}/helpers/{second['id']}/reject",
                                 headers=world.staff.headers)
    assert by_staff.status_code == 200 and by_staff.json()["status"] == "revoked"
    assert await AuditEvent.filter(action="binding.reject", target_id=str(first["id"])).count() == 2
    # a binding of another resident is not found under this one
    other, _, _ = await elder_with_code(client, server, world, name="吴国强")
    assert_error(await client.post(f"/api/residents/{other['id']}/helpers/{second['id']}/approve",
                                   headers=world.staff.headers), 404, "binding.not_found")


async def test_requests_are_checked(client, server, make_world):
    world = await make_world()
    resident, elder, token = await elder_with_code(client, server, world)
    helper = await app_login(client, server)
    assert_error(await client.post("/api/app/bindings", json={"token": token, "relation": "boss"},
                                   headers=helper.headers), 422)
    assert_error(await client.post("/api/app/bindings", json={"token": token, "relation": "child"},
                                   headers=elder.headers), 409, "binding.self")
    assert_error(await client.post("/api/app/bindings", json={"token": token[:-2] + "AA", "relation": "child"},
                                   headers=helper.headers), 400, "qr.invalid")
    assert (await client.post(f"/api/residents/{resident['id']}/qr/rotate", headers=world.staff.headers)).status_code \
        == 200
    assert_error(await client.post("/api/app/bindings", json={"token": token, "relation": "child"},
                                   headers=helper.headers), 400, "qr.rotated")
    # staff accounts do not bind
    assert_error(await client.post("/api/app/bindings", json={"token": token, "relation": "child"},
                                   headers=world.staff.headers), 403)
    relations = (await client.get("/api/app/bindings/relations")).json()["items"]
    assert [r["label"] for r in relations] == ["子女", "配偶", "亲属", "邻居", "网格员", "其他"]


async def test_pending_requests_per_helper_are_limited(client, server, make_world):
    world = await make_world()
    helper = await app_login(client, server)
    for i in range(bindings.MAX_PENDING_PER_HELPER):
        resident = await new_resident(client, world, name=numbered_name("老人", i))
        token = await current_token(client, server, world, resident["id"])
        asked = await client.post("/api/app/bindings", json={"token": token, "relation": "neighbour"},
                                  headers=helper.headers)
        assert asked.status_code == 201, asked.text
    one_more = await new_resident(client, world, name="老人多")
    token = await current_token(client, server, world, one_more["id"])
    assert_error(await client.post("/api/app/bindings", json={"token": token, "relation": "neighbour"},
                                   headers=helper.headers), 429, "binding.too_many_pending")
