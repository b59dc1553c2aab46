"""Every staff write and personal-data read is audited, and tampering with the trail is detected."""

from __future__ import annotations

from tortoise.connection import get_connection

from backend.audit import service as audit
from backend.audit.models import AuditEvent
from tests.integration.test_residents import create


async def test_reads_and_writes_leave_events(client, make_world):
    world = await make_world()
    resident = await create(client, world, seed=501)
    await client.get(f"/api/residents/{resident['id']}", headers=world.staff.headers)
    await client.patch(f"/api/residents/{resident['id']}", json={"address": "新地址 1号"}, headers=world.staff.headers)
    events = await AuditEvent.filter(target_kind="resident", target_id=str(resident["id"])).order_by("id")
    assert [e.action for e in events] == ["resident.create", "resident.read", "resident.update"]
    assert all(e.actor_id == str(world.staff.user_id) and e.actor_kind == "staff" for e in events)
    assert events[2].details == {"changed": ["address"]}
    assert all(len(e.request_id) == 32 for e in events)
    # staff can search the trail of their own community
    found = (await client.get("/api/audit/events", params={"target_kind": "resident", "target_id": str(resident["id"])},
                              headers=world.admin.headers)).json()
    assert found["total"] == 3
    # the auditor reads who did it by name (display name and username), not only by number
    assert {item["actor"]["name"] for item in found["items"]} == {f"{world.staff.username}（{world.staff.username}）"}


async def test_tampered_event_is_detected_and_named(client, make_world, server):
    world = await make_world()
    resident = await create(client, world, seed=502)
    ok = (await client.get("/api/audit/verify", headers=world.admin.headers)).json()
    assert ok["ok"] is True and ok["checked"] > 0

    victim = await AuditEvent.filter(target_id=str(resident["id"]), action="resident.create").first()
    conn = get_connection("default")
    # An insider rewrites who did it, straight in the database.
    await conn.execute_query("UPDATE audit_event SET actor_id = 'someone-else' WHERE id = " + str(victim.id))
    broken = (await client.get("/api/audit/verify", headers=world.admin.headers)).json()
    assert broken["ok"] is False
    assert broken["first_bad_event_id"] == victim.id
    assert "hash" in broken["reason"]
    # Repair so later tests start from an intact trail.
    await conn.execute_query(
        f"UPDATE audit_event SET actor_id = '{victim.actor_id}' WHERE id = {victim.id}"
    )
    assert (await audit.verify_chain()).ok


async def test_deleted_event_is_detected(client, make_world):
    world = await make_world()
    await create(client, world, seed=503)
    last = await AuditEvent.all().order_by("-id").first()
    conn = get_connection("default")
    saved = audit.to_dict(last)
    await conn.execute_query(f"DELETE FROM audit_event WHERE id = {last.id}")
    result = await audit.verify_chain()
    assert not result.ok and "removed" in result.reason
    await AuditEvent.create(
        id=last.id, at=last.at, actor_kind=last.actor_kind, actor_id=last.actor_id, action=last.action,
        target_kind=last.target_kind, target_id=last.target_id, community_id=last.community_id, ip=last.ip,
        request_id=last.request_id, details=last.details, prev_hash=saved["prev_hash"], hash=saved["hash"],
    )
    assert (await audit.verify_chain()).ok


async def _rehash_from(event_id: int) -> None:
    """What an insider with database access would do: recompute every hash from `event_id` on."""
    from backend.audit.models import AuditHead

    previous = await AuditEvent.filter(id__lt=event_id).order_by("-id").first()
    prev_hash = previous.hash if previous else audit.GENESIS_HASH
    for event in await AuditEvent.filter(id__gte=event_id).order_by("id"):
        digest = audit._event_hash(event, prev_hash)
        await AuditEvent.filter(id=event.id).update(prev_hash=prev_hash, hash=digest)
        prev_hash = digest
    last = await AuditEvent.all().order_by("-id").first()
    await AuditHead.filter(id=1).update(last_hash=prev_hash, last_event_id=last.id)


async def test_anchored_head_on_the_chain_catches_a_consistent_rewrite(client, make_world, server, chain):
    from backend.audit.models import AuditAnchor
    from tests.integration.test_exports import anchor_everything

    world = await make_world()
    resident = await create(client, world, seed=504)
    anchor = await audit.anchor_head()
    assert anchor is not None and await audit.anchor_head() is None  # once per head
    await anchor_everything(server)
    anchored = await AuditAnchor.get(id=anchor.id)
    assert anchored.inclusion is not None and anchored.anchor_index is not None

    victim = await AuditEvent.filter(target_id=str(resident["id"]), action="resident.create").first()
    original = victim.actor_id
    conn = get_connection("default")
    await conn.execute_query(f"UPDATE audit_event SET actor_id = 'someone-else' WHERE id = {victim.id}")
    await _rehash_from(victim.id)
    result = await audit.verify_chain()
    assert not result.ok and "anchored on the chain" in result.reason, result
    await conn.execute_query(f"UPDATE audit_event SET actor_id = '{original}' WHERE id = {victim.id}")
    await _rehash_from(victim.id)
    assert (await audit.verify_chain()).ok



async def test_events_by_time_range(client, make_world):
    from datetime import UTC, datetime, timedelta

    world = await make_world()
    resident = await create(client, world, seed=505)
    created = await AuditEvent.get(target_kind="resident", target_id=str(resident["id"]), action="resident.create")
    params = {"target_kind": "resident", "target_id": str(resident["id"])}

    async def total(**extra) -> int:
        response = await client.get("/api/audit/events", params={**params, **extra}, headers=world.admin.headers)
        assert response.status_code == 200, response.text
        return response.json()["total"]

    at = created.at.astimezone(UTC)
    assert await total(since=at.isoformat(), until=(at + timedelta(seconds=1)).isoformat()) == 1
    assert await total(since=(at + timedelta(seconds=1)).isoformat()) == 0
    assert await total(until=(at - timedelta(seconds=1)).isoformat()) == 0
    assert await total(since=datetime(2000, 1, 1, tzinfo=UTC).isoformat().replace("+00:00", "Z")) == 1
    bad = await client.get("/api/audit/events", params={"since": "yesterday"}, headers=world.admin.headers)
    assert bad.status_code == 422 and bad.json()["error"]["message"]


async def test_verify_says_it_in_words_and_checks_the_anchored_head(client, make_world, server, chain):
    from tests.integration.test_exports import anchor_everything

    world = await make_world()
    await create(client, world, seed=506)
    anchor = await audit.anchor_head()
    assert anchor is not None
    await anchor_everything(server)
    result = (await client.get("/api/audit/verify", headers=world.admin.headers)).json()
    assert result["ok"] is True and "审计日志完整" in result["message"]
    head = result["anchored_head"]
    assert head["anchored"] is True and head["last_event_id"] >= anchor.last_event_id
    assert head["proof_ok"] is True and "上链证明有效" in head["proof_message"]
    assert head["anchor_index"] is not None and head["tree_size"] > head["anchor_index"]

    # a rewritten event is named in words
    victim = await AuditEvent.filter(community_id=world.community_id).order_by("id").first()
    conn = get_connection("default")
    await conn.execute_query(f"UPDATE audit_event SET action = 'forged' WHERE id = {victim.id}")
    broken = (await client.get("/api/audit/verify", headers=world.admin.headers)).json()
    await conn.execute_query(f"UPDATE audit_event SET action = '{victim.action}' WHERE id = {victim.id}")
    assert broken["ok"] is False and f"第 {victim.id} 号记录" in broken["message"] and "改动" in broken["message"]
    assert (await audit.verify_chain()).ok
