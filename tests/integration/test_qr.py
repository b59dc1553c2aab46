"""Personal QR codes: served as images that scan to the app link, rotated, printed, and scoped."""

from __future__ import annotations

import random
import re
import secrets
from dataclasses import dataclass
from datetime import date

from backend.audit.models import AuditEvent
from backend.notify.models import OutboundMessage
from backend.residents.national_id import synthetic_national_id
from tests.integration.test_errors_and_ops import assert_error
from tests.support.names import numbered_name
from tests.support.qr import decode_qr


@dataclass
class AppUser:
    phone: str
    token: str
    user_id: int
    resident_id: int | None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def a_phone() -> str:
    return "13" + str(random.SystemRandom().randint(3, 9)) + f"{secrets.randbelow(10**8):08d}"


async def app_login(client, server, phone: str | None = None) -> AppUser:
    """Sign in to the app as a phone's owner (the code is read from the dev outbox)."""
    phone = phone or a_phone()
    sent = await client.post("/api/auth/app/otp", json={"phone": phone})
    assert sent.status_code == 200, sent.text
    index = server.app.ctx.cipher.blind_index(phone, purpose="phone")
    message = await OutboundMessage.filter(recipient_index=index, template="login_code").order_by("-id").first()
    code = re.search(r"\d{6}", message.body).group(0)
    login = await client.post("/api/auth/app/login", json={"phone": phone, "code": code})
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    me = (await client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})).json()["user"]
    return AppUser(phone, token, me["id"], me["resident_id"])


def an_elder_id() -> str:
    """A valid national ID of someone aged 81–95, random enough not to collide across tests."""
    rng = random.Random(secrets.randbits(64))
    birth = date(date.today().year - rng.randint(82, 95), rng.randint(1, 12), rng.randint(1, 28))
    return synthetic_national_id(rng, birth_date=birth, sex=rng.choice("MF"))


async def new_resident(client, world, *, name: str = "王桂英", phone: str | None = None) -> dict:
    national_id = an_elder_id()
    response = await client.post(
        "/api/residents",
        json={"name": name, "national_id": national_id, "phone": phone, "address": "南桥镇解放路 12弄 3号"},
        headers=world.staff.headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def current_token(client, server, world, rid: int) -> str:
    """The token in the resident's current QR image, read back the way a phone camera would."""
    response = await client.get(f"/api/residents/{rid}/qr.png", headers=world.staff.headers)
    assert response.status_code == 200, response.text
    link = decode_qr(response.content)
    prefix = f"{server.settings.effective_public_url}/m/#/scan?t="
    assert link.startswith(prefix), link
    return link[len(prefix):]


def page_count(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))


async def test_png_and_svg_are_served_cached_and_scan_to_the_app_link(client, server, make_world):
    world = await make_world()
    resident = await new_resident(client, world)
    rid = resident["id"]

    png = await client.get(f"/api/residents/{rid}/qr.png", headers=world.staff.headers)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    token = await current_token(client, server, world, rid)
    assert token.startswith("ZL1.")
    # opaque: neither the name nor the pseudonymous id is readable from the code
    assert resident["public_id"].replace("-", "") not in token.lower() and "王" not in token

    svg = await client.get(f"/api/residents/{rid}/qr.svg", headers=world.staff.headers)
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in svg.content

    renders = server.app.ctx.qr_images.renders
    again = await client.get(f"/api/residents/{rid}/qr.png", headers=world.staff.headers)
    assert again.content == png.content
    assert server.app.ctx.qr_images.renders == renders  # served from the cache, not redrawn
    assert await AuditEvent.filter(action="qr.read", target_id=str(rid)).count() >= 3


async def test_token_round_trip_and_tampering(client, server, make_world):
    world = await make_world()
    resident = await new_resident(client, world, name="李德明")
    token = await current_token(client, server, world, resident["id"])

    scanned = await client.post("/api/app/scan", json={"token": token}, headers=world.staff.headers)
    assert scanned.status_code == 200, scanned.text
    assert scanned.json()["relation"] == "staff"
    assert scanned.json()["resident"]["id"] == resident["id"]
    # the whole link works too (what a phone camera hands the app)
    link = f"{server.settings.effective_public_url}/m/#/scan?t={token}"
    by_link = await client.post("/api/app/scan", json={"token": link}, headers=world.staff.headers)
    assert by_link.json()["resident"]["id"] == resident["id"]

    flipped = "A" if token[20] != "A" else "B"
    tampered = token[:20] + flipped + token[21:]
    error = assert_error(await client.post("/api/app/scan", json={"token": tampered}, headers=world.staff.headers),
                         400, "qr.invalid")
    assert "李" not in error["message"]
    assert_error(await client.post("/api/app/scan", json={"token": "hello"}, headers=world.staff.headers),
                 400, "qr.invalid")


async def test_rotation_stops_the_old_code_at_once(client, server, make_world):
    world = await make_world()
    resident = await new_resident(client, world)
    rid = resident["id"]
    old = await current_token(client, server, world, rid)

    rotated = await client.post(f"/api/residents/{rid}/qr/rotate", headers=world.staff.headers)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["qr_version"] == resident["qr_version"] + 1

    error = assert_error(await client.post("/api/app/scan", json={"token": old}, headers=world.staff.headers),
                         400, "qr.rotated")
    assert "王" not in error["message"]
    assert await AuditEvent.filter(action="qr.scan_refused", actor_id=str(world.staff.user_id)).count() == 1
    new = await current_token(client, server, world, rid)
    assert new != old
    ok = await client.post("/api/app/scan", json={"token": new}, headers=world.staff.headers)
    assert ok.status_code == 200 and ok.json()["resident"]["id"] == rid
    event = await AuditEvent.filter(action="qr.rotate", target_id=str(rid)).first()
    assert event is not None and event.details["to_version"] == resident["qr_version"] + 1


async def test_cards_pdf_has_one_page_per_resident(client, make_world):
    world = await make_world()
    ids = [(await new_resident(client, world, name=name))["id"] for name in ("王桂英", "欧阳建国", "李德明")]

    chosen = await client.post("/api/residents/qr-cards", json={"resident_ids": ids[:2]}, headers=world.staff.headers)
    assert chosen.status_code == 200, chosen.text
    assert chosen.headers["content-type"] == "application/pdf"
    assert chosen.content.startswith(b"%PDF") and page_count(chosen.content) == 2

    whole = await client.post("/api/residents/qr-cards", json={}, headers=world.staff.headers)
    assert whole.status_code == 200 and page_count(whole.content) == 3
    audit = await AuditEvent.filter(action="qr.cards", community_id=world.community_id).order_by("-id").first()
    assert sorted(audit.details["resident_ids"]) == sorted(ids)

    empty = await make_world()
    assert_error(await client.post("/api/residents/qr-cards", json={}, headers=empty.staff.headers), 404,
                 "qr.no_residents")


async def test_cards_for_a_whole_community_of_300_in_seconds(client, server, make_world):

    from backend.residents import service as residents
    from backend.residents.models import Community

    world = await make_world()
    community = await Community.get(id=world.community_id)
    for i in range(300):
        await residents.create_resident(
            community=community, name=numbered_name("测试", 1000 + i), national_id=an_elder_id(), phone=None, address="x",
            living_address=None, cipher=server.app.ctx.cipher,
        )
    # The event loop stays free while the PDF is drawn: health checks keep being answered throughout.
    # Drawing on the loop would leave one gap as long as the drawing itself, most of the request's time.
    import asyncio
    import time

    started = time.monotonic()
    cards = asyncio.ensure_future(client.post("/api/residents/qr-cards", json={}, headers=world.staff.headers))
    answered: list[float] = [started]
    while not cards.done():
        health = await client.get("/healthz")
        assert health.status_code == 200
        answered.append(time.monotonic())
    response = await cards
    total = time.monotonic() - started
    assert response.status_code == 200 and page_count(response.content) == 300
    gaps = [b - a for a, b in zip(answered, answered[1:], strict=False)]
    assert len(gaps) >= 3 and max(gaps) < total / 2, (len(gaps), max(gaps), total)


async def test_a_stranger_scanning_learns_nothing(client, server, make_world):
    world = await make_world()
    resident = await new_resident(client, world, name="赵秀兰")
    token = await current_token(client, server, world, resident["id"])
    stranger = await app_login(client, server)

    scanned = await client.post("/api/app/scan", json={"token": token}, headers=stranger.headers)
    assert scanned.status_code == 200, scanned.text
    assert scanned.json() == {"can_request_binding": True}
    assert "赵" not in scanned.text and str(resident["id"]) not in scanned.text

    assert_error(await client.get(f"/api/app/residents/{resident['id']}/qr.png", headers=stranger.headers), 404,
                 "resident.not_found")
    assert_error(await client.get(f"/api/app/residents/{resident['id']}/qr.svg", headers=stranger.headers), 404)
    # app users cannot reach the staff routes
    assert_error(await client.get(f"/api/residents/{resident['id']}/qr.png", headers=stranger.headers), 403)
    assert_error(await client.post(f"/api/residents/{resident['id']}/qr/rotate", headers=stranger.headers), 403)


async def test_the_resident_themself_sees_their_own_code(client, server, make_world):
    world = await make_world()
    phone = a_phone()
    resident = await new_resident(client, world, name="孙玉珍", phone=phone)
    elder = await app_login(client, server, phone)
    assert elder.resident_id == resident["id"]

    png = await client.get(f"/api/app/residents/{resident['id']}/qr.png", headers=elder.headers)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    token = decode_qr(png.content).rsplit("t=", 1)[1]
    scanned = (await client.post("/api/app/scan", json={"token": token}, headers=elder.headers)).json()
    assert scanned["relation"] == "self" and scanned["can_certify"] is True
    assert scanned["resident"]["id"] == resident["id"]


async def test_staff_of_another_community_get_404_everywhere(client, server, make_world):
    world = await make_world()
    other = await make_world()
    resident = await new_resident(client, world)
    rid = resident["id"]
    token = await current_token(client, server, world, rid)

    for method, path, body in (
        ("GET", f"/api/residents/{rid}/qr.png", None),
        ("GET", f"/api/residents/{rid}/qr.svg", None),
        ("POST", f"/api/residents/{rid}/qr/rotate", None),
        ("POST", "/api/residents/qr-cards", {"resident_ids": [rid]}),
        ("POST", "/api/app/scan", {"token": token}),
        ("POST", f"/api/residents/{rid}/helpers/1/approve", None),
        ("POST", f"/api/residents/{rid}/helpers/1/reject", None),
        ("POST", f"/api/residents/{rid}/helpers/1/revoke", None),
    ):
        response = await client.request(method, path, json=body, headers=other.staff.headers)
        assert_error(response, 404)
        assert "王" not in response.text
    # and the code still works for its own community
    assert (await client.post("/api/app/scan", json={"token": token}, headers=world.staff.headers)).status_code == 200
