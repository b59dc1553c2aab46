"""The real HTTP SMS adapter against a stand-in gateway on loopback (the gateway is outside our walls)."""

from __future__ import annotations

import asyncio

import pytest
from sanic import Sanic, json

from backend.notify.models import OutboundMessage
from backend.notify.service import GatewayError, HttpSmsSender
from tests.conftest import free_port


@pytest.fixture
async def gateway():
    received: list[dict] = []
    app = Sanic(f"fake_gateway_{free_port()}")
    app.ctx.fail = False

    @app.post("/send")
    async def send(request):
        if request.headers.get("authorization") != "Bearer gw-key":
            return json({"ok": False, "error": "auth"}, status=401)
        if app.ctx.fail:
            return json({"ok": False, "error": "quota"}, status=503)
        received.append(request.json)
        return json({"ok": True, "id": len(received)})

    port = free_port()
    server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True)
    await server.startup()
    serving = asyncio.ensure_future(server.serve_forever())
    yield app, f"http://127.0.0.1:{port}/send", received
    server.close()
    serving.cancel()


async def test_gateway_receives_the_message_and_the_outbox_records_it(server, gateway):
    app, url, received = gateway
    sender = HttpSmsSender(url=url, api_key="gw-key", sign="智链", cipher=server.app.ctx.cipher)
    await sender.send(phone="13300001111", template="reminder_due_soon",
                      params={"name": "王桂英", "month": "2026-11", "due_day": "25", "phone": "021-1"})
    assert received[-1]["phone"] == "13300001111" and received[-1]["template"] == "reminder_due_soon"
    index = server.app.ctx.cipher.blind_index("13300001111", purpose="phone")
    record = await OutboundMessage.filter(recipient_index=index, template="reminder_due_soon").order_by("-id").first()
    assert record.status == "sent" and "王桂英" in record.body


async def test_gateway_failure_is_an_error_and_recorded(server, gateway):
    app, url, _ = gateway
    app.ctx.fail = True
    sender = HttpSmsSender(url=url, api_key="gw-key", sign="智链", cipher=server.app.ctx.cipher)
    with pytest.raises(GatewayError):
        await sender.send(phone="13300002222", template="login_code", params={"code": "123456", "minutes": "5"})
    index = server.app.ctx.cipher.blind_index("13300002222", purpose="phone")
    record = await OutboundMessage.filter(recipient_index=index, template="login_code").order_by("-id").first()
    assert record.status == "failed" and "123456" not in record.body


@pytest.fixture
async def wechat_api():
    calls: list[tuple[str, dict]] = []
    app = Sanic(f"fake_wechat_{free_port()}")

    @app.get("/cgi-bin/token")
    async def token(request):
        calls.append(("token", dict(request.args)))
        if request.args.get("secret") != "wx-secret":
            return json({"errcode": 40001, "errmsg": "invalid credential"})
        return json({"access_token": "AT-1", "expires_in": 7200})

    @app.post("/cgi-bin/message/template/send")
    async def send(request):
        calls.append(("send", {"token": request.args.get("access_token"), **request.json}))
        return json({"errcode": 0, "errmsg": "ok", "msgid": 1})

    port = free_port()
    server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True)
    await server.startup()
    serving = asyncio.ensure_future(server.serve_forever())
    yield f"http://127.0.0.1:{port}", calls
    server.close()
    serving.cancel()


async def test_reminder_goes_by_wechat_to_users_who_have_it(server, wechat_api, make_world, client):
    from datetime import UTC, datetime

    from backend.auth.models import AppUser
    from backend.certification import periods
    from backend.certification.reminders import send_reminders
    from backend.notify.service import create_wechat_sender
    from tests.integration.test_residents import create

    base, calls = wechat_api
    world = await make_world()
    resident = await create(client, world, seed=661, phone="13600136061")
    cipher = server.app.ctx.cipher
    await AppUser.create(phone_cipher=cipher.encrypt_text("13600136061", purpose="phone"),
                         phone_index=cipher.blind_index("13600136061", purpose="phone"),
                         resident_id=resident["id"], wechat_openid="o-elder-1")
    wechat = create_wechat_sender(app_id="wx1", app_secret="wx-secret", api_base=base, cipher=cipher,
                                  template_ids="reminder_due_soon:T-DUE,reminder_overdue:T-LATE")
    period = await periods.current_period(community_id=world.community_id)
    year, month = (int(x) for x in period.month.split("-"))
    daytime = datetime(year, month, period.due_day - 1, 3, 0, tzinfo=UTC)  # 11:00 Beijing
    result = await send_reminders(period=period, now=daytime, sender=server.app.ctx.sender, cipher=cipher,
                                  wechat=wechat)
    assert result["sent"] == 1
    sent = [c for c in calls if c[0] == "send"]
    assert sent and sent[0][1]["touser"] == "o-elder-1" and sent[0][1]["template_id"] == "T-DUE"
    assert sent[0][1]["token"] == "AT-1" and sent[0][1]["data"]["name"]["value"] == "王桂英"
