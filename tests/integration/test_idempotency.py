"""Idempotency-Key on creates (issue 14 item 5): a retry never creates a second record.

A client whose answer was lost (it gave up, the connection dropped) cannot know whether its
create happened; it sends the same request again with the same key and must get the first
answer back, with nothing created twice.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta

from backend.certification.models import Certification, HomeVisit
from backend.idempotency.models import IdempotencyKey
from backend.outbox.models import OutboxEvent
from backend.residents.models import Resident
from tests.integration.test_errors_and_ops import assert_error
from tests.integration.test_periods_and_evidence import a_photo
from tests.integration.test_residents import an_elder_id
from tests.support.ids import fresh_elder_id


def key() -> str:
    return f"test-{secrets.token_hex(12)}"


def resident_body(national_id: str, name: str = "刘淑珍") -> dict:
    return {"name": name, "national_id": national_id, "phone": "13800138000", "address": "南桥镇解放路 12弄 3号"}


async def test_a_lost_answer_retried_with_the_same_key_certifies_once(client, make_world):
    world = await make_world()
    headers = {**world.staff.headers, "Idempotency-Key": key()}
    created = await client.post("/api/residents", json=resident_body(fresh_elder_id()), headers=headers)
    assert created.status_code == 201, created.text
    again = await client.post("/api/residents", json=resident_body(created.json()["national_id"]), headers=headers)
    assert again.status_code == 201 and again.json() == created.json()
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in created.headers
    rid = created.json()["id"]
    assert await Resident.filter(community_id=world.community_id).count() == 1

    visit_headers = {**world.staff.headers, "Idempotency-Key": key()}
    photo = a_photo()
    visits = [await client.post(f"/api/residents/{rid}/home-visits", files={"photo": ("p.jpg", photo)},
                                data={"note": "卧床"}, headers=visit_headers) for _ in range(2)]
    # httpx draws a new multipart boundary per request: the same form is still the same request
    assert [v.status_code for v in visits] == [201, 201] and visits[0].json() == visits[1].json()
    assert await HomeVisit.filter(resident_id=rid).count() == 1

    attest_headers = {**world.admin.headers, "Idempotency-Key": key()}
    first = await client.post(f"/api/home-visits/{visits[0].json()['id']}/attest", headers=attest_headers)
    assert first.status_code == 200, first.text
    retried = await client.post(f"/api/home-visits/{visits[0].json()['id']}/attest", headers=attest_headers)
    assert retried.status_code == 200 and retried.json() == first.json() and first.json()["created"] is True
    assert retried.headers["idempotent-replayed"] == "true"
    certifications = await Certification.filter(resident_id=rid)
    assert len(certifications) == 1
    assert await OutboxEvent.filter(dedupe_key=f"certification:{certifications[0].id}").count() == 1


async def test_a_dropped_connection_then_a_retry_certifies_once(client, server, make_world):
    """The client sends the attest and hangs up at once; its retry with the same key gets one certification."""
    world = await make_world()
    created = await client.post("/api/residents", json=resident_body(fresh_elder_id()), headers=world.staff.headers)
    rid = created.json()["id"]
    visit = await client.post(f"/api/residents/{rid}/home-visits", files={"photo": ("p.jpg", a_photo())},
                              headers=world.staff.headers)
    attest_key = key()
    path = f"/api/home-visits/{visit.json()['id']}/attest"
    host, port = server.url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: {world.admin.headers['Authorization']}\r\n"
                 f"Idempotency-Key: {attest_key}\r\nContent-Length: 0\r\n\r\n".encode())
    await writer.drain()
    writer.close()  # the answer is lost, whatever the server did
    await writer.wait_closed()
    await asyncio.sleep(0.5)
    retried = await client.post(path, headers={**world.admin.headers, "Idempotency-Key": attest_key})
    assert retried.status_code == 200, retried.text
    certifications = await Certification.filter(resident_id=rid)
    assert len(certifications) == 1 and retried.json()["certification"]["id"] == certifications[0].id


async def test_the_same_key_for_another_request_is_refused(client, make_world):
    world = await make_world()
    headers = {**world.staff.headers, "Idempotency-Key": key()}
    assert (await client.post("/api/residents", json=resident_body(fresh_elder_id()), headers=headers)).status_code == 201
    other = await client.post("/api/residents", json=resident_body(fresh_elder_id(), "赵桂兰"), headers=headers)
    assert_error(other, 422, "idempotency.key_reused")
    elsewhere = await client.post("/api/periods", json={"month": "2026-01"}, headers=headers)
    assert_error(elsewhere, 422, "idempotency.key_reused")
    assert await Resident.filter(community_id=world.community_id).count() == 1
    assert_error(await client.post("/api/residents", json=resident_body(fresh_elder_id()),
                                   headers={**world.staff.headers, "Idempotency-Key": "short"}),
                 400, "idempotency.bad_key")


async def test_keys_belong_to_their_caller(client, make_world):
    world = await make_world()
    shared = key()
    one = await client.post("/api/residents", json=resident_body(an_elder_id(7101)),
                            headers={**world.staff.headers, "Idempotency-Key": shared})
    two = await client.post("/api/residents", json=resident_body(an_elder_id(7102)),
                            headers={**world.admin.headers, "Idempotency-Key": shared})
    assert one.status_code == two.status_code == 201 and one.json()["id"] != two.json()["id"]
    assert "idempotent-replayed" not in two.headers


async def test_a_refused_request_leaves_its_key_free(client, make_world):
    """Only successful answers are kept: after a 4xx the caller corrects the request and retries with the key."""
    world = await make_world()
    headers = {**world.staff.headers, "Idempotency-Key": key()}
    assert_error(await client.post("/api/residents", json=resident_body("123"), headers=headers), 422)
    fixed = await client.post("/api/residents", json=resident_body(fresh_elder_id()), headers=headers)
    assert fixed.status_code == 201 and "idempotent-replayed" not in fixed.headers


async def test_concurrent_retries_create_once(client, make_world, backend_kind):
    world = await make_world()
    headers = {**world.staff.headers, "Idempotency-Key": key()}
    body = resident_body(fresh_elder_id())
    answers = await asyncio.gather(*(client.post("/api/residents", json=body, headers=headers) for _ in range(4)))
    assert await Resident.filter(community_id=world.community_id).count() == 1
    ids = {a.json()["id"] for a in answers if a.status_code == 201}
    assert len(ids) == 1
    for answer in answers:
        if answer.status_code != 201:
            # PostgreSQL makes a racing retry wait for the first and replay it; SQLite tells it to come back
            assert backend_kind == "sqlite", answer.text
            assert_error(answer, 409, "idempotency.in_progress")
            assert answer.status_code == 409


async def test_keys_expire_and_are_purged(client, server, make_world):
    from backend.idempotency import service

    world = await make_world()
    used = key()
    headers = {**world.staff.headers, "Idempotency-Key": used}
    assert (await client.post("/api/residents", json=resident_body(fresh_elder_id()), headers=headers)).status_code == 201
    stored = await IdempotencyKey.get(key=used)
    assert stored.status == 201 and stored.scope == f"staff:{world.staff.user_id}"
    assert "刘淑珍" not in stored.body_cipher  # the answer carries personal data: encrypted at rest
    assert stored.expires_at > datetime.now(UTC) + timedelta(seconds=server.settings.idempotency_ttl_s - 60)
    await IdempotencyKey.filter(id=stored.id).update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert await service.purge_expired() >= 1
    assert not await IdempotencyKey.exists(key=used)


# Every POST that creates something (or certifies) takes an Idempotency-Key; the rest say why not.
NOT_CREATES = {
    "/api/auth/staff/login": "sign-in: a new session per call is the point",
    "/api/auth/refresh": "rotating refresh tokens: replaying an answer would hand out a spent token",
    "/api/auth/logout": "idempotent by nature",
    "/api/auth/staff/totp/setup": "a new secret per call until confirmed",
    "/api/auth/staff/totp/confirm": "idempotent by nature",
    "/api/auth/staff/totp/reset": "a new secret per call until confirmed, behind both factors",
    "/api/auth/staff/totp/disable": "behind both factors; disabling twice changes nothing",
    "/api/auth/staff/<uid:int>/totp/reset": "removes an authenticator; running it twice changes nothing",
    "/api/auth/staff/<uid:int>/active": "sets a state; running it twice changes nothing",
    "/api/auth/app/otp": "sends a code; rate-limited per phone",
    "/api/auth/app/login": "sign-in: a new session per call is the point",
    "/api/periods/<pid:int>/close": "a state change that refuses to run twice (409)",
    "/api/periods/<pid:int>/reopen": "undoes a close exactly once; a second reopen is refused (409)",
    "/api/periods/<pid:int>/residents/<rid:int>/exempt": "sets a state; running it twice changes nothing",
    "/api/periods/<pid:int>/reminders": "reminders are unique per recipient and period",
    "/api/passive/sightings": "devices sign each sighting with a single-use nonce",
    "/api/credentials/<credential_id:uuid>/status": "sets a status; running it twice changes nothing",
    "/api/exports/verify": "reads only",
    "/api/app/notifications/read": "marks as read; idempotent by nature",
    "/api/residents/<rid:int>/qr/rotate": "a new code version per call is the point",
    "/api/residents/qr-cards": "renders a PDF; creates nothing",
    "/api/app/scan": "reads a code; binding requests are refused when pending",
    "/api/app/bindings/<bid:int>/approve": "sets a state; running it twice changes nothing",
    "/api/app/bindings/<bid:int>/reject": "sets a state; running it twice changes nothing",
    "/api/app/bindings/<bid:int>/revoke": "sets a state; running it twice changes nothing",
    "/api/residents/<rid:int>/helpers/<bid:int>/approve": "sets a state; running it twice changes nothing",
    "/api/residents/<rid:int>/helpers/<bid:int>/reject": "sets a state; running it twice changes nothing",
    "/api/residents/<rid:int>/helpers/<bid:int>/revoke": "sets a state; running it twice changes nothing",
    "/api/workorders/points/signs": "renders a PDF; creates nothing",
    "/api/app/workorders/<wid:int>/follow": "我也遇到: following twice is following once",
}


async def test_every_create_takes_an_idempotency_key(server):
    unmarked = []
    for route in server.app.router.routes:
        path = "/" + route.path.lstrip("/")
        if "POST" not in route.methods or not path.startswith("/api/"):
            continue
        if not getattr(route.handler, "__idempotent__", False) and path not in NOT_CREATES:
            unmarked.append(path)
    assert not unmarked, f"POST routes without @idempotent or a reason in NOT_CREATES: {unmarked}"
