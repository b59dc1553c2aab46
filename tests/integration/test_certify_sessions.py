"""End-to-end certification over the real API, real face models and real clips.

Frames come from the face evaluation data (tests/support/clips.py says which frames show which
action). The challenge is drawn by the server; the test answers with the frames for whatever
it asked, the way a person in front of a camera would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import secrets

import pytest
import websockets

from backend.notify.models import OutboundMessage
from backend.qr.tokens import extract_token
from tests.integration.test_errors_and_ops import assert_error
from tests.integration.test_residents import create
from tests.support import clips
from tests.support.qr import decode_qr

pytestmark = pytest.mark.face
POOL = ",".join(clips.CLIP_ACTIONS)


@pytest.fixture(autouse=True)
def actions_the_clip_can_do(server, monkeypatch):
    """The clip shows no nod, so the challenge pool is the clip's four actions (a real setting)."""
    monkeypatch.setattr(server.app.ctx, "settings", dataclasses.replace(server.app.ctx.settings,
                                                                        cert_challenge_actions=POOL))


async def app_login(client, server, phone: str) -> dict[str, str]:
    assert (await client.post("/api/auth/app/otp", json={"phone": phone})).status_code == 200
    index = server.app.ctx.cipher.blind_index(phone, purpose="phone")
    message = await OutboundMessage.filter(recipient_index=index, template="login_code").order_by("-id").first()
    code = re.search(r"\d{6}", message.body).group(0)
    login = await client.post("/api/auth/app/login", json={"phone": phone, "code": code})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def unique_phone() -> str:
    return "139" + f"{secrets.randbelow(10**8):08d}"


async def enrolled_resident(client, world, *, seed: int, phone: str | None = None) -> dict:
    resident = await create(client, world, seed=seed, phone=phone or unique_phone())
    consent = await client.post(f"/api/residents/{resident['id']}/consents",
                                json={"kind": "biometric", "version": "v1", "method": "paper"},
                                headers=world.staff.headers)
    assert consent.status_code == 201
    files = [("frame", (f"f{i}.jpg", frame, "image/jpeg")) for i, frame in enumerate(clips.enrolment_frames())]
    enrolled = await client.post(f"/api/residents/{resident['id']}/enrolment", files=files,
                                 headers=world.staff.headers)
    assert enrolled.status_code == 201, enrolled.text
    return resident


async def upload(client, headers, session: dict, frames: list[bytes], device: str, fps: float = 10.0) -> dict:
    """The HTTP fallback: all frames at once, with their capture times (waits until they are in the past)."""
    offsets = [int(1000 * (0.2 + i / fps)) for i in range(len(frames))]
    await asyncio.sleep(max(0.0, offsets[-1] / 1000 - 0.5))
    files = [("frame", (f"{i}.jpg", f, "image/jpeg")) for i, f in enumerate(frames)]
    data = {"device_id": device, "t": [str(t) for t in offsets]}
    response = await client.post(f"/api/certify/sessions/{session['session_id']}/frames", files=files, data=data,
                                 headers=headers, timeout=120)
    assert response.status_code == 200, response.text
    return response.json()


async def start(client, headers, resident_id: int, device: str):
    return await client.post("/api/certify/sessions", json={"resident_id": resident_id, "device_id": device},
                             headers=headers)


async def test_resident_certifies_themself_over_the_websocket(client, make_world, server):
    world = await make_world()
    phone = unique_phone()
    resident = await enrolled_resident(client, world, seed=701, phone=phone)
    headers = await app_login(client, server, phone)
    token = headers["Authorization"].split()[1]
    url = server.url.replace("http://", "ws://") + "/ws/certify"
    async with websockets.connect(url, max_size=2**22) as ws:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        await ws.send(json.dumps({"type": "start", "resident_id": resident["id"], "device_id": "phone-self-1"}))
        challenge = json.loads(await ws.recv())
        assert challenge["type"] == "challenge", challenge
        assert all(re.search(r"[\u4e00-\u9fff]", p) for p in challenge["prompts"])
        progress_codes = []
        result = None
        for frame in clips.session_frames(challenge["actions"]):
            await ws.send(frame)
            message = json.loads(await ws.recv())
            progress_codes.append(message.get("code"))
            await asyncio.sleep(0.08)  # a camera's pace, not a burst
            if message.get("finished"):
                break
        await ws.send(json.dumps({"type": "finish"}))
        while result is None:
            message = json.loads(await ws.recv())
            if message["type"] == "result":
                result = message
    assert result["decision"] == "pass", result
    assert result["certification"]["method"] == "self"
    status = (await client.get("/api/app/certification", headers=headers)).json()
    assert status["status"] == "certified" and status["status_label"] == "已认证"
    # certified once: a new session is refused with a plain reason
    assert_error(await start(client, headers, resident["id"], "phone-self-1"), 409, "certify.already_certified")


async def test_helper_certifies_after_binding_and_a_stranger_cannot(client, make_world, server):
    world = await make_world()
    elder_phone = unique_phone()
    resident = await enrolled_resident(client, world, seed=702, phone=elder_phone)
    elder = await app_login(client, server, elder_phone)
    daughter = await app_login(client, server, unique_phone())
    stranger = await app_login(client, server, unique_phone())

    assert_error(await start(client, stranger, resident["id"], "stranger-phone"), 404, "certify.not_allowed")

    png = (await client.get(f"/api/residents/{resident['id']}/qr.png", headers=world.staff.headers)).content
    text = decode_qr(png)
    requested = await client.post("/api/app/bindings", json={"token": extract_token(text), "relation": "child"},
                                  headers=daughter)
    assert requested.status_code == 201, requested.text
    assert_error(await start(client, daughter, resident["id"], "daughter-phone"), 404)  # not approved yet
    approved = await client.post(f"/api/app/bindings/{requested.json()['id']}/approve", headers=elder)
    assert approved.status_code == 200, approved.text

    session = await start(client, daughter, resident["id"], "daughter-phone")
    assert session.status_code == 201, session.text
    result = await upload(client, daughter, session.json(), clips.session_frames(session.json()["actions"]),
                          "daughter-phone")
    assert result["decision"] == "pass", result
    assert result["certification"]["method"] == "helper"
    assert result["certification"]["assisted_by"].startswith("app:")


async def test_photo_and_print_attack_are_refused_with_a_reason(client, make_world, server):
    world = await make_world()
    resident = await enrolled_resident(client, world, seed=703)
    for frames in ([clips.photo("faces/df01/img1.jpg")] * 30,
                   [clips.photo("antispoof/sfas_F1_print.jpg")] * 30):
        session = await start(client, world.staff.headers, resident["id"], "staff-tablet")
        assert session.status_code == 201, session.text
        result = await upload(client, world.staff.headers, session.json(), frames, "staff-tablet")
        assert result["decision"] == "fail", result
        assert re.search(r"[\u4e00-\u9fff]", result["hint"]), result
    status = (await client.get("/api/periods/current", headers=world.staff.headers)).json()["counts"]
    assert status["certified"] == 0


async def test_wrong_order_is_refused(client, make_world):
    world = await make_world()
    resident = await enrolled_resident(client, world, seed=704)
    session = (await start(client, world.staff.headers, resident["id"], "staff-tablet")).json()
    result = await upload(client, world.staff.headers, session,
                          clips.session_frames(list(reversed(session["actions"]))), "staff-tablet")
    assert result["decision"] == "fail", result


async def test_session_cannot_be_replayed_or_used_from_another_device(client, make_world):
    world = await make_world()
    resident = await enrolled_resident(client, world, seed=705)
    session = (await start(client, world.staff.headers, resident["id"], "tablet-a")).json()
    # one session at a time per resident
    assert_error(await start(client, world.staff.headers, resident["id"], "tablet-a"), 409, "certify.session_active")
    frames = clips.session_frames(session["actions"])
    first = await upload(client, world.staff.headers, session, frames, "tablet-a")
    assert first["decision"] == "pass", first
    files = [("frame", ("0.jpg", frames[0], "image/jpeg"))]
    replay = await client.post(f"/api/certify/sessions/{session['session_id']}/frames", files=files,
                               data={"device_id": "tablet-a", "t": ["100"]}, headers=world.staff.headers)
    assert_error(replay, 410, "certify.session_invalid")

    other = await enrolled_resident(client, world, seed=706)
    session = (await start(client, world.staff.headers, other["id"], "tablet-a")).json()
    wrong_device = await client.post(f"/api/certify/sessions/{session['session_id']}/frames", files=files,
                                     data={"device_id": "tablet-b", "t": ["100"]}, headers=world.staff.headers)
    assert_error(wrong_device, 403, "certify.session_mismatch")


async def test_first_certification_goes_to_review_and_approval_enrols(client, make_world):
    world = await make_world()
    resident = await create(client, world, seed=707)  # no face enrolled
    session = (await start(client, world.staff.headers, resident["id"], "tablet-a")).json()
    assert session["first_certification"] is True
    result = await upload(client, world.staff.headers, session, clips.session_frames(session["actions"]), "tablet-a")
    assert result["decision"] == "review" and result["reasons"] == ["no_template"], result
    queue = (await client.get("/api/review", headers=world.staff.headers)).json()
    item = next(i for i in queue["items"] if i["resident"]["id"] == resident["id"])
    lines = queue["thresholds"]  # the console explains the scores against the configured lines
    assert lines["match_review"] < lines["match_accept"] <= lines["match_accept_elder"]
    assert lines["antispoof_reject"] < lines["antispoof_accept"]
    frame = await client.get(f"/api/review/{item['id']}/frame", headers=world.staff.headers)
    assert frame.status_code == 200 and frame.content.startswith(b"\xff\xd8")
    decided = await client.post(f"/api/review/{item['id']}/decision", json={"approve": True},
                                headers=world.staff.headers)
    assert decided.status_code == 200, decided.text
    counts = (await client.get("/api/periods/current", headers=world.staff.headers)).json()["counts"]
    assert counts["certified"] == 1
    state = (await client.get(f"/api/residents/{resident['id']}/enrolment", headers=world.staff.headers)).json()
    assert state["enrolled"] is True and [t["source"] for t in state["templates"]] == ["approved_first"]
    assert "template_cipher" not in str(state)  # the embedding never leaves the server
    listed = (await client.get("/api/residents", params={"q": resident["name"]}, headers=world.staff.headers)).json()
    assert [r["face_enrolled"] for r in listed["items"] if r["id"] == resident["id"]] == [True]


async def test_enrolment_state_before_enrolment_and_outside_the_community(client, make_world):
    world, other = await make_world(), await make_world()
    resident = await create(client, world, seed=719)
    state = await client.get(f"/api/residents/{resident['id']}/enrolment", headers=world.staff.headers)
    assert state.json() == {"enrolled": False, "consent": False, "templates": []}
    listed = (await client.get("/api/residents", headers=world.staff.headers)).json()["items"]
    assert [r["face_enrolled"] for r in listed] == [False]
    foreign = await client.get(f"/api/residents/{resident['id']}/enrolment", headers=other.staff.headers)
    assert foreign.status_code == 404


async def test_identity_swap_mid_session_is_refused(client, make_world):
    world = await make_world()
    resident = await enrolled_resident(client, world, seed=708)
    session = (await start(client, world.staff.headers, resident["id"], "tablet-a")).json()
    actions = session["actions"]
    frames = clips.session_frames(actions[:1])
    other_face = clips.clip_frames("st_WDA_KatieHill_000")[90:140:3]
    result = await upload(client, world.staff.headers, session, frames + list(other_face), "tablet-a")
    assert result["decision"] == "fail", result


async def test_repeated_failures_lock_and_point_to_the_human_path(client, make_world, server):
    world = await make_world()
    resident = await enrolled_resident(client, world, seed=709)
    photo = [clips.photo("faces/df01/img1.jpg")] * 8
    limit = server.settings.cert_max_failures
    last = None
    for _ in range(limit):
        session = (await start(client, world.staff.headers, resident["id"], "tablet-a")).json()
        last = await upload(client, world.staff.headers, session, photo, "tablet-a", fps=20)
    assert "locked" in last["reasons"] and "上门" in last["hint"]
    error = assert_error(await start(client, world.staff.headers, resident["id"], "tablet-a"), 429, "certify.locked")
    assert "社区" in error["message"]


async def test_strong_pass_refreshes_an_old_template(client, make_world, server, monkeypatch):
    from datetime import UTC, datetime, timedelta

    from backend.certification.models import FaceTemplate

    settings = dataclasses.replace(server.app.ctx.settings, template_refresh_min_score=0.6)
    monkeypatch.setattr(server.app.ctx, "settings", settings)
    world = await make_world()
    resident = await enrolled_resident(client, world, seed=710)
    await FaceTemplate.filter(resident_id=resident["id"]).update(created_at=datetime.now(UTC) - timedelta(days=400))
    session = (await start(client, world.staff.headers, resident["id"], "tablet-a")).json()
    result = await upload(client, world.staff.headers, session, clips.session_frames(session["actions"]), "tablet-a")
    assert result["decision"] == "pass", result
    assert result["scores"]["match"] >= 0.6
    sources = await FaceTemplate.filter(resident_id=resident["id"]).order_by("id").values_list("source", flat=True)
    assert sources == ["staff_enrolment", "refresh"]
