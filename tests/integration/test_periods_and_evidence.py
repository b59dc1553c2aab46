"""Periods, overdue and suspension with back-pay, exactly-once certification, home visits,
passive evidence and reminders — over the real API and database."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import secrets
from datetime import UTC, date, datetime, timedelta

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from PIL import Image

from backend.certification import periods
from backend.certification.models import Certification, Method, Reminder
from backend.certification.records import record_certification
from backend.certification.reminders import send_reminders
from backend.notify.models import OutboundMessage
from backend.residents.models import Resident
from tests.integration.conftest import create_staff_login
from tests.integration.test_errors_and_ops import assert_error
from tests.integration.test_residents import create


def a_photo() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((np.random.default_rng(1).random((120, 160, 3)) * 255).astype("uint8")).save(buffer, "JPEG")
    return buffer.getvalue()


async def second_staff(client, world):
    from backend.auth.models import Role

    return await create_staff_login(client, role=Role.COMMUNITY_STAFF, community_id=world.community_id)


async def test_board_counts_and_exemption(client, make_world):
    world = await make_world()
    first = await create(client, world, seed=601)
    await create(client, world, seed=602)
    current = (await client.get("/api/periods/current", headers=world.staff.headers)).json()
    assert current["month"] == periods.month_of(date.today())
    assert current["counts"]["pending"] == 2 and current["total"] == 2
    by_staff = await client.post(f"/api/periods/{current['id']}/residents/{first['id']}/exempt",
                                 json={"reason": "住院治疗中"}, headers=world.staff.headers)
    assert by_staff.status_code == 403  # an exemption is the community admin's decision
    exempt = await client.post(f"/api/periods/{current['id']}/residents/{first['id']}/exempt",
                               json={"reason": "住院治疗中"}, headers=world.admin.headers)
    assert exempt.status_code == 200, exempt.text
    rows = (await client.get(f"/api/periods/{current['id']}/residents", headers=world.staff.headers)).json()
    statuses = {r["resident_id"]: r["status"] for r in rows["items"]}
    assert statuses[first["id"]] == "exempt"
    counts = (await client.get("/api/periods/current", headers=world.staff.headers)).json()["counts"]
    assert counts["exempt"] == 1 and counts["pending"] == 1


async def test_a_resident_added_after_the_month_opened_is_on_the_board_and_reminded(client, make_world):
    world = await make_world()
    await create(client, world, seed=691)
    opened = (await client.get("/api/periods/current", headers=world.staff.headers)).json()
    assert opened["counts"]["pending"] == 1
    late = await create(client, world, seed=692)  # imported or added on the 10th of the month
    current = (await client.get("/api/periods/current", headers=world.staff.headers)).json()
    assert current["id"] == opened["id"] and current["counts"]["pending"] == 2
    rows = (await client.get(f"/api/periods/{current['id']}/residents", headers=world.staff.headers)).json()
    assert {r["resident_id"]: r["status"] for r in rows["items"]}[late["id"]] == "pending"


async def test_overdue_then_suspended_then_late_certification_restores_with_back_pay(client, make_world):
    world = await make_world()
    resident = await create(client, world, seed=611)
    last_month = periods.previous_month(periods.month_of(date.today()))
    opened = await client.post("/api/periods", json={"month": last_month}, headers=world.staff.headers)
    assert opened.status_code == 201, opened.text
    closed = await client.post(f"/api/periods/{opened.json()['id']}/close", headers=world.staff.headers)
    assert closed.json()["overdue"] == 1 and closed.json()["suspended"] == 1
    assert closed.json()["counts"]["suspended"] == 1
    assert (await client.get(f"/api/residents/{resident['id']}", headers=world.staff.headers)).json()["status"] == \
        "suspended"
    assert_error(await client.post(f"/api/periods/{opened.json()['id']}/close", headers=world.staff.headers), 409)

    # This month: two staff visit and attest (a real, late certification).
    other = await second_staff(client, world)
    visit = await client.post(f"/api/residents/{resident['id']}/home-visits", files={"photo": ("p.jpg", a_photo())},
                              data={"note": "卧床，神志清楚"}, headers=world.staff.headers)
    assert visit.status_code == 201, visit.text
    assert_error(await client.post(f"/api/home-visits/{visit.json()['id']}/attest", headers=world.staff.headers),
                 403, "visit.same_staff")
    attested = await client.post(f"/api/home-visits/{visit.json()['id']}/attest", headers=other.headers)
    assert attested.status_code == 200, attested.text
    certification = attested.json()["certification"]
    assert certification["method"] == "home_visit"
    assert certification["late"] is True and certification["back_pay_months"] == [last_month]
    detail = (await client.get(f"/api/residents/{resident['id']}", headers=world.staff.headers)).json()
    assert detail["status"] == "active"
    current = (await client.get("/api/periods/current", headers=world.staff.headers)).json()
    assert current["counts"]["certified"] == 1


async def test_concurrent_certifications_yield_exactly_one(client, make_world):
    world = await make_world()
    created = await create(client, world, seed=621)
    resident = await Resident.get(id=created["id"])
    period = await periods.current_period(community_id=world.community_id)
    results = await asyncio.gather(*(
        record_certification(resident=resident, period=period, method=Method.HELPER, attempt=None,
                             assisted_by=f"app:{i}")
        for i in range(6)
    ))
    assert sum(r.created for r in results) == 1
    assert len({r.certification.id for r in results}) == 1
    assert await Certification.filter(resident_id=resident.id, period_id=period.id).count() == 1


async def test_home_visit_photo_must_be_an_image(client, make_world):
    world = await make_world()
    resident = await create(client, world, seed=631)
    response = await client.post(f"/api/residents/{resident['id']}/home-visits",
                                 files={"photo": ("p.jpg", b"not an image")}, headers=world.staff.headers)
    assert_error(response, 422, "visit.photo_type")


def _signed(key: Ed25519PrivateKey, payload: dict) -> tuple[bytes, str]:
    body = json.dumps(payload).encode()
    return body, base64.b64encode(key.sign(body)).decode()


async def test_passive_sightings_put_a_resident_on_the_confirm_list_never_certify_alone(client, make_world, server):
    world = await make_world()
    resident = await create(client, world, seed=641)
    key = Ed25519PrivateKey.generate()
    public = base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    device = await client.post("/api/devices", json={"name": "1号楼门禁", "public_key": public},
                               headers=world.admin.headers)
    assert device.status_code == 201, device.text
    device_id = device.json()["id"]
    now = datetime.now(UTC)
    for i in range(server.settings.passive_min_sightings):
        body, signature = _signed(key, {"resident_public_id": resident["public_id"], "score": 0.9,
                                        "seen_at": (now - timedelta(hours=i)).isoformat(), "nonce": secrets.token_hex(8)})
        response = await client.post("/api/passive/sightings", content=body,
                                     headers={"X-Device-Id": str(device_id), "X-Signature": signature})
        assert response.status_code == 201, response.text
    # a replayed or forged report is refused
    assert_error(await client.post("/api/passive/sightings", content=body,
                                   headers={"X-Device-Id": str(device_id), "X-Signature": signature}), 409)
    forged_body, _ = _signed(key, {"resident_public_id": resident["public_id"], "score": 0.99,
                                   "seen_at": now.isoformat(), "nonce": "x1"})
    assert_error(await client.post("/api/passive/sightings", content=forged_body,
                                   headers={"X-Device-Id": str(device_id), "X-Signature": signature}), 401)

    listed = (await client.get("/api/passive/candidates", headers=world.staff.headers)).json()["items"]
    assert [c["resident_id"] for c in listed] == [resident["id"]]
    current = (await client.get("/api/periods/current", headers=world.staff.headers)).json()
    assert current["counts"]["certified"] == 0  # evidence alone never certifies
    confirmed = await client.post(f"/api/residents/{resident['id']}/passive-confirm", headers=world.staff.headers)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["certification"]["method"] == "passive"
    assert (await client.get("/api/passive/candidates", headers=world.staff.headers)).json()["items"] == []


async def test_reminders_go_once_and_respect_quiet_hours(client, make_world, server):
    world = await make_world()
    resident = await create(client, world, seed=651, phone="13600136000")
    period = await periods.current_period(community_id=world.community_id)
    year, month = (int(x) for x in period.month.split("-"))
    quiet = datetime(year, month, period.due_day - 2, 23, 30, tzinfo=UTC) + timedelta(hours=-8 + 0)  # 23:30 Beijing
    ctx = server.app.ctx
    assert (await send_reminders(period=period, now=quiet, sender=ctx.sender, cipher=ctx.cipher))["skipped"] == \
        "quiet_hours"
    daytime = datetime(year, month, period.due_day - 2, 2, 0, tzinfo=UTC)  # 10:00 Beijing
    first = await send_reminders(period=period, now=daytime, sender=ctx.sender, cipher=ctx.cipher)
    assert first["kind"] == "due_soon" and first["sent"] >= 1
    again = await send_reminders(period=period, now=daytime, sender=ctx.sender, cipher=ctx.cipher)
    assert again["sent"] == 0
    assert await Reminder.filter(resident_id=resident["id"], period_id=period.id).count() == 1
    index = ctx.cipher.blind_index("13600136000", purpose="phone")
    messages = await OutboundMessage.filter(recipient_index=index, template="reminder_due_soon")
    assert len(messages) == 1 and "王桂英" in messages[0].body
