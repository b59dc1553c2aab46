"""The app user's inbox (消息通知): reminders sent by the real reminders service, read back over HTTP.

Each app user sees the messages sent to their own phone and nobody else's, newest first, a page
at a time, without their login codes; marking read changes only their own messages.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from backend.certification import periods
from backend.certification.reminders import send_reminders
from tests.integration.test_credentials import app_login
from tests.integration.test_errors_and_ops import assert_error
from tests.integration.test_residents import create


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
    await create(client, world, seed=901, name="周秀英", phone=phone_a)
    await create(client, world, seed=902, name="吴美兰", phone=phone_b)
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
