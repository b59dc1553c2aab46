"""The app user's inbox (消息通知): reminders sent by the real reminders service, read back over HTTP.

Each app user sees the messages sent to their own phone and nobody else's, newest first, a page
at a time, without their login codes; marking read changes only their own messages. Certification
results (a pass, a failure, a review and the staff's decision) and helper-binding news reach the
elder and the helper as in-app notices: stored as delivered on channel "app", never handed to the
SMS gateway (a real HTTP gateway adapter pointed at a fake gateway receives nothing).
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sanic import Sanic
from sanic import json as json_response

from backend.certification import periods
from backend.certification.reminders import send_reminders
from backend.notify.models import OutboundMessage
from backend.notify.service import HttpSmsSender, OutboxSender
from tests.conftest import free_port
from tests.integration.test_bindings import elder_with_code
from tests.integration.test_certify_sessions import POOL, start, upload
from tests.integration.test_credentials import app_login
from tests.integration.test_errors_and_ops import assert_error
from tests.integration.test_qr import app_login as app_sign_in
from tests.integration.test_qr import current_token, new_resident
from tests.integration.test_residents import create
from tests.support import clips


def a_phone() -> str:
    return "135" + f"{secrets.randbelow(10**8):08d}"


def beijing_10am(period, day: int) -> datetime:
    year, month = (int(x) for x in period.month.split("-"))
    return datetime(year, month, day, 2, 0, tzinfo=UTC)  # 10:00 in Beijing: outside quiet hours


async def inbox(client, headers, **params) -> dict:
    response = await client.get("/api/app/notifications", params=params, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()


async def test_a_reminder_reaches_its_residents_inbox_and_nobody_elses(client, make_world, server):
    world = await make_world()
    phone_a, phone_b, phone_c = a_phone(), a_phone(), a_phone()
    await create(client, world, seed=931, name="周秀英", phone=phone_a)
    await create(client, world, seed=932, name="吴美兰", phone=phone_b)
    user_a = await app_login(client, server, phone_a)
    user_b = await app_login(client, server, phone_b)
    stranger = await app_login(client, server, phone_c)  # signed in, no resident, helps nobody

    before = await inbox(client, user_a)
    assert before == {"items": [], "total": 0, "unread": 0, "page": 1, "size": 20}  # the login code is not shown

    period = await periods.current_period(community_id=world.community_id)
    ctx = server.app.ctx
    sent = await send_reminders(period=period, now=beijing_10am(period, period.due_day - 2), sender=ctx.sender,
                                cipher=ctx.cipher)
    assert sent["kind"] == "due_soon" and sent["sent"] == 2, sent

    mine = await inbox(client, user_a)
    assert mine["total"] == 1 and mine["unread"] == 1
    [item] = mine["items"]
    assert item["template"] == "reminder_due_soon" and item["title"] == "认证提醒"
    assert "周秀英" in item["body"] and "吴美兰" not in item["body"]
    assert not item["body"].startswith("【")  # the SMS sign is dropped in the app
    assert item["read"] is False and item["channel"] == "sms" and item["sent_at"]

    theirs = await inbox(client, user_b)
    assert [i["template"] for i in theirs["items"]] == ["reminder_due_soon"]
    assert "吴美兰" in theirs["items"][0]["body"] and "周秀英" not in theirs["items"][0]["body"]
    assert (await inbox(client, stranger))["total"] == 0

    # someone else's id is ignored; one's own is marked read once
    other = await client.post("/api/app/notifications/read", json={"ids": [item["id"]]}, headers=user_b)
    assert other.status_code == 200 and other.json() == {"marked": 0, "unread": 1}
    assert (await inbox(client, user_a))["unread"] == 1
    read = await client.post("/api/app/notifications/read", json={"ids": [item["id"]]}, headers=user_a)
    assert read.json() == {"marked": 1, "unread": 0}
    again = await client.post("/api/app/notifications/read", json={"ids": [item["id"]]}, headers=user_a)
    assert again.json() == {"marked": 0, "unread": 0}
    assert (await inbox(client, user_a))["items"][0]["read"] is True

    # after the due day: an overdue reminder, newest first, a page at a time
    overdue = await send_reminders(period=period, now=beijing_10am(period, period.due_day + 1), sender=ctx.sender,
                                   cipher=ctx.cipher)
    assert overdue["kind"] == "overdue" and overdue["sent"] == 2, overdue
    first = await inbox(client, user_a, size=1)
    assert first["total"] == 2 and first["unread"] == 1 and first["size"] == 1
    assert first["items"][0]["template"] == "reminder_overdue" and first["items"][0]["title"] == "逾期提醒"
    second = await inbox(client, user_a, size=1, page=2)
    assert [i["template"] for i in second["items"]] == ["reminder_due_soon"]
    assert (await inbox(client, user_a, page=3, size=1))["items"] == []

    everything = await client.post("/api/app/notifications/read", json={"all": True}, headers=user_a)
    assert everything.json() == {"marked": 1, "unread": 0}
    assert (await inbox(client, user_b))["unread"] == 2  # B's own messages are untouched


async def test_inbox_is_for_app_users_and_checks_its_input(client, make_world, server):
    world = await make_world()
    user = await app_login(client, server, a_phone())
    assert_error(await client.get("/api/app/notifications"), 401)
    assert_error(await client.get("/api/app/notifications", headers=world.staff.headers), 403,
                 "auth.wrong_account_kind")
    assert_error(await client.post("/api/app/notifications/read", json={"all": True}, headers=world.staff.headers),
                 403)
    assert_error(await client.get("/api/app/notifications", params={"size": 0}, headers=user), 422)
    assert_error(await client.get("/api/app/notifications", params={"page": "x"}, headers=user), 422)
    error = assert_error(await client.post("/api/app/notifications/read", json={}, headers=user), 422)
    assert "ids" in error["message"]
    assert_error(await client.post("/api/app/notifications/read", json={"ids": ["x"]}, headers=user), 422)


# ---- in-app notices: certification results ----

@pytest.fixture
def clip_actions(server, monkeypatch):
    """The clip shows no nod, so the challenge pool is the clip's four actions (a real setting)."""
    monkeypatch.setattr(server.app.ctx, "settings", dataclasses.replace(server.app.ctx.settings,
                                                                        cert_challenge_actions=POOL))


@dataclasses.dataclass
class Gateway:
    sender: HttpSmsSender
    received: list[dict]
    install: Callable[[], None]


@pytest.fixture
async def sms_gateway(server, monkeypatch):
    """A fake SMS gateway behind the real HTTP adapter; `install()` makes it the server's sender for this test."""
    received: list[dict] = []
    app = Sanic(f"fake_sms_{free_port()}")

    @app.post("/send")
    async def send(request):
        received.append(request.json)
        return json_response({"ok": True, "id": len(received)})

    port = free_port()
    gateway = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True)
    await gateway.startup()
    serving = asyncio.ensure_future(gateway.serve_forever())
    sender = HttpSmsSender(url=f"http://127.0.0.1:{port}/send", api_key="gw-key", sign="智链",
                           cipher=server.app.ctx.cipher)
    yield Gateway(sender, received, lambda: monkeypatch.setattr(server.app.ctx, "sender", sender))
    gateway.close()
    serving.cancel()


async def enrol(client, world, resident_id: int) -> None:
    consent = await client.post(f"/api/residents/{resident_id}/consents",
                                json={"kind": "biometric", "version": "v1", "method": "paper"},
                                headers=world.staff.headers)
    assert consent.status_code == 201, consent.text
    files = [("frame", (f"f{i}.jpg", frame, "image/jpeg")) for i, frame in enumerate(clips.enrolment_frames())]
    enrolled = await client.post(f"/api/residents/{resident_id}/enrolment", files=files, headers=world.staff.headers)
    assert enrolled.status_code == 201, enrolled.text


async def bind(client, server, world, resident: dict, elder, helper, relation: str = "child") -> int:
    """The helper scans the elder's code and the elder agrees in the app (the real flow)."""
    token = await current_token(client, server, world, resident["id"])
    asked = await client.post("/api/app/bindings", json={"token": token, "relation": relation}, headers=helper.headers)
    assert asked.status_code == 201, asked.text
    approved = await client.post(f"/api/app/bindings/{asked.json()['id']}/approve", headers=elder.headers)
    assert approved.status_code == 200, approved.text
    return asked.json()["id"]


async def app_messages(client, user, *templates: str) -> list[dict]:
    """The user's inbox, newest first, only the given kinds (all kinds when none given)."""
    items = (await inbox(client, user.headers, size=100))["items"]
    return [i for i in items if not templates or i["template"] in templates]


async def stored(server, phone: str, template: str) -> list[OutboundMessage]:
    index = server.app.ctx.cipher.blind_index(phone, purpose="phone")
    return await OutboundMessage.filter(recipient_index=index, template=template).order_by("id")


CERT_TEMPLATES = ("cert_passed", "cert_review_approved", "cert_review", "cert_failed", "cert_review_rejected")


@pytest.mark.face
async def test_a_helpers_failure_and_pass_reach_elder_and_helper_in_the_app_only(
        client, server, make_world, clip_actions, sms_gateway):
    world = await make_world()
    elder_phone = a_phone()
    resident = await new_resident(client, world, name="王桂英", phone=elder_phone)
    await enrol(client, world, resident["id"])
    elder = await app_sign_in(client, server, elder_phone)  # login codes read from the dev outbox
    helper = await app_sign_in(client, server, a_phone())
    bystander = await app_sign_in(client, server, a_phone())
    await bind(client, server, world, resident, elder, helper)
    sms_gateway.install()  # from here on every SMS would reach the (fake) gateway

    # a photo held up to the camera: a failure with its reason, to both of them
    session = await start(client, helper.headers, resident["id"], "daughter-phone")
    assert session.status_code == 201, session.text
    failed = await upload(client, helper.headers, session.json(), [clips.photo("faces/df01/img1.jpg")] * 30,
                          "daughter-phone")
    assert failed["decision"] == "fail", failed
    [to_elder] = await app_messages(client, elder, *CERT_TEMPLATES)
    [to_helper] = await app_messages(client, helper, *CERT_TEMPLATES)
    reason = failed["hint"].rstrip("。.！!，,；;")
    for item, who in ((to_elder, "您"), (to_helper, "王*英老人")):
        assert item["template"] == "cert_failed" and item["title"] == "认证没有通过", item
        assert item["body"].startswith(f"{who}的认证没有通过：{reason}"), item
        assert "可以再试一次" in item["body"] and "联系社区" in item["body"]
        assert item["channel"] == "app" and item["read"] is False and item["link"] == "/"
    assert "王桂英" not in to_helper["body"]  # a helper reads the masked name, as the app shows it

    # the helper certifies for real: a pass, told to both
    session = await start(client, helper.headers, resident["id"], "daughter-phone")
    passed = await upload(client, helper.headers, session.json(), clips.session_frames(session.json()["actions"]),
                          "daughter-phone")
    assert passed["decision"] == "pass", passed
    [to_elder] = await app_messages(client, elder, "cert_passed")
    [to_helper] = await app_messages(client, helper, "cert_passed")
    assert to_elder["body"] == "您本月的认证已通过，本月不用再认证了。" and to_elder["title"] == "认证已通过"
    assert to_helper["body"] == "王*英老人本月的认证已通过，本月不用再认证了。"
    assert (await inbox(client, elder.headers))["items"][0]["template"] == "cert_passed"  # newest first
    assert await app_messages(client, bystander) == []

    # stored as delivered in the app, under each reader's own phone index; nothing went to the gateway
    for phone in (elder_phone, helper.phone):
        for template in ("cert_failed", "cert_passed"):
            [row] = await stored(server, phone, template)
            assert (row.channel, row.status) == ("app", "in_app")
            assert resident["national_id"] not in row.body and phone not in row.body
    assert sms_gateway.received == []
    with pytest.raises(ValueError):  # a notice handed to a gateway adapter is refused, not sent
        await sms_gateway.sender.send(phone=elder_phone, template="cert_passed", params={})
    with pytest.raises(ValueError):
        await OutboxSender(server.app.ctx.cipher).send(phone=elder_phone, template="cert_review", params={})
    assert sms_gateway.received == [] and len(await stored(server, elder_phone, "cert_passed")) == 1


@pytest.mark.face
async def test_a_review_and_the_staff_decisions_reach_elder_and_helper(
        client, server, make_world, clip_actions, sms_gateway):
    world = await make_world()
    elder_phone = a_phone()
    resident = await new_resident(client, world, name="周建华", phone=elder_phone)  # no face enrolled yet
    elder = await app_sign_in(client, server, elder_phone)
    helper = await app_sign_in(client, server, a_phone())
    await bind(client, server, world, resident, elder, helper, relation="grid_worker")
    sms_gateway.install()

    async def certify_for_review() -> dict:
        session = await start(client, helper.headers, resident["id"], "grid-phone")
        assert session.status_code == 201, session.text
        result = await upload(client, helper.headers, session.json(),
                              clips.session_frames(session.json()["actions"]), "grid-phone")
        assert result["decision"] == "review" and result["reasons"] == ["no_template"], result
        return result

    first = await certify_for_review()
    for user, who in ((elder, "您"), (helper, "周*华老人")):
        [item] = await app_messages(client, user, *CERT_TEMPLATES)
        assert item["template"] == "cert_review" and item["title"] == "等待人工审核", item
        assert item["body"].startswith(f"{who}的认证已提交人工审核，社区工作人员会尽快处理"), item

    rejected = await client.post(f"/api/review/{first['attempt_id']}/decision",
                                 json={"approve": False, "reason": "照片太暗，看不清面部。"}, headers=world.staff.headers)
    assert rejected.status_code == 200, rejected.text
    for user, who in ((elder, "您"), (helper, "周*华老人")):
        [item] = await app_messages(client, user, "cert_review_rejected")
        assert item["title"] == "审核没有通过"
        assert item["body"].startswith(f"{who}的认证经社区工作人员审核没有通过：照片太暗，看不清面部。可以再试一次"), item

    second = await certify_for_review()  # after a refusal the month is open again
    approved = await client.post(f"/api/review/{second['attempt_id']}/decision", json={"approve": True},
                                 headers=world.staff.headers)
    assert approved.status_code == 200, approved.text
    [to_elder] = await app_messages(client, elder, "cert_review_approved")
    [to_helper] = await app_messages(client, helper, "cert_review_approved")
    assert to_elder["body"] == "您本月的认证已由社区工作人员审核通过，本月不用再认证了。"
    assert to_helper["body"] == "周*华老人本月的认证已由社区工作人员审核通过，本月不用再认证了。"
    assert to_elder["title"] == "认证已通过" and to_elder["link"] == "/history"
    kinds = [i["template"] for i in await app_messages(client, elder, *CERT_TEMPLATES)]
    assert kinds == ["cert_review_approved", "cert_review", "cert_review_rejected", "cert_review"]
    assert sms_gateway.received == []


# ---- in-app notices: helper bindings ----

async def test_binding_requests_and_answers_reach_the_other_side(client, server, make_world):
    world = await make_world()
    resident, elder, token = await elder_with_code(client, server, world, name="陈凤英")
    rid = resident["id"]
    helper = await app_sign_in(client, server)
    masked = f"手机 {helper.phone[:3]}****{helper.phone[-4:]}"

    async def ask(relation: str = "child") -> int:
        asked = await client.post("/api/app/bindings", json={"token": token, "relation": relation},
                                  headers=helper.headers)
        assert asked.status_code == 201, asked.text
        return asked.json()["id"]

    async def newest(user) -> dict:
        return (await app_messages(client, user))[0]

    bid = await ask()
    request = await newest(elder)
    assert request["template"] == "binding_request" and request["title"] == "帮办申请" and request["link"] == "/"
    assert request["body"].startswith(f"{masked}（子女）申请成为您的帮办人"), request
    assert helper.phone not in request["body"] and resident["national_id"] not in request["body"]
    assert await app_messages(client, helper) == []  # the one asking is not told anything yet

    assert (await client.post(f"/api/app/bindings/{bid}/approve", headers=elder.headers)).status_code == 200
    answer = await newest(helper)
    assert answer["template"] == "binding_approved" and answer["title"] == "帮办申请已同意"
    assert answer["body"] == "陈*英老人已同意您成为TA的帮办人，现在可以帮TA认证了。" and answer["link"] == "/helper"

    # the helper steps back: the elder is told, the helper (who did it) is not
    assert (await client.post(f"/api/app/bindings/{bid}/revoke", headers=helper.headers)).status_code == 200
    ended = await newest(elder)
    assert ended["template"] == "binding_ended_for_elder"
    assert ended["body"] == f"{masked}（子女）已不再做您的帮办人，TA不能再帮您认证了。"
    assert (await newest(helper))["template"] == "binding_approved"

    # asks again; staff refuse: the helper learns the answer but not the elder's name
    await ask("neighbour")
    assert (await newest(elder))["body"].startswith(f"{masked}（邻居）申请成为您的帮办人")
    refused = await client.post(f"/api/residents/{rid}/helpers/{bid}/reject", headers=world.staff.headers)
    assert refused.status_code == 200, refused.text
    no = await newest(helper)
    assert no["template"] == "binding_rejected" and no["title"] == "帮办申请未同意"
    assert no["body"] == "您提交的帮办申请（邻居）未获同意。如有疑问请联系老人或社区。"

    # asks again; the elder refuses in the app: the same answer
    await ask("relative")
    assert (await client.post(f"/api/app/bindings/{bid}/reject", headers=elder.headers)).status_code == 200
    assert [i["template"] for i in (await app_messages(client, helper))[:2]] == ["binding_rejected"] * 2

    # asks again; staff approve: both learn it; then staff end it: both learn that too
    await ask("relative")
    assert (await client.post(f"/api/residents/{rid}/helpers/{bid}/approve",
                              headers=world.staff.headers)).status_code == 200
    assert (await newest(helper))["body"] == "社区已同意您成为陈*英老人的帮办人，现在可以帮TA认证了。"
    told = await newest(elder)
    assert told["template"] == "binding_approved_for_elder" and told["title"] == "新的帮办人"
    assert told["body"].startswith(f"社区已同意{masked}（亲属）成为您的帮办人")
    assert (await client.post(f"/api/residents/{rid}/helpers/{bid}/revoke",
                              headers=world.staff.headers)).status_code == 200
    assert (await newest(helper))["body"] == "社区已解除您与陈*英老人的帮办绑定，您不能再帮TA认证了。"
    assert (await newest(elder))["body"] == f"社区已解除{masked}（亲属）的帮办人身份，TA不能再帮您认证了。"
    again = await client.post(f"/api/residents/{rid}/helpers/{bid}/revoke", headers=world.staff.headers)
    assert again.status_code == 200  # revoking twice is harmless, and tells nobody twice
    assert (await newest(elder))["template"] == "binding_ended_for_elder"
    assert len(await app_messages(client, elder, "binding_ended_for_elder")) == 2

    # a pending request withdrawn by the helper: the elder need not look for it any more
    await ask()
    assert (await client.post(f"/api/app/bindings/{bid}/revoke", headers=helper.headers)).status_code == 200
    withdrawn = await newest(elder)
    assert withdrawn["template"] == "binding_withdrawn_for_elder" and withdrawn["body"].startswith(masked)

    # all of it in the app only, each under the reader's own phone index
    for user in (elder, helper):
        index = server.app.ctx.cipher.blind_index(user.phone, purpose="phone")
        rows = await OutboundMessage.filter(recipient_index=index, template__startswith="binding_")
        assert rows and {(r.channel, r.status) for r in rows} == {("app", "in_app")}
    assert len(await app_messages(client, elder, "binding_request")) == 5
    assert (await inbox(client, elder.headers))["unread"] == len(await app_messages(client, elder))


async def test_an_elder_without_the_app_gets_no_notice_and_the_request_still_works(client, server, make_world):
    world = await make_world()
    resident = await new_resident(client, world, name="吴美兰", phone=None)  # nobody signs in as the elder
    helper = await app_sign_in(client, server)
    token = await current_token(client, server, world, resident["id"])
    asked = await client.post("/api/app/bindings", json={"token": token, "relation": "child"}, headers=helper.headers)
    assert asked.status_code == 201, asked.text
    assert await app_messages(client, helper) == []
    approved = await client.post(f"/api/residents/{resident['id']}/helpers/{asked.json()['id']}/approve",
                                 headers=world.staff.headers)
    assert approved.status_code == 200, approved.text
    [item] = await app_messages(client, helper)
    assert item["body"] == "社区已同意您成为吴*兰老人的帮办人，现在可以帮TA认证了。"
