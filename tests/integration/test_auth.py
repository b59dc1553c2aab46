"""Staff sign-in with rotation and lock-out, TOTP, and phone + one-time-code sign-in for app users."""

from __future__ import annotations

import logging
import re

import pyotp

from backend.auth.models import Role
from backend.notify.models import OutboundMessage
from tests.integration.conftest import STAFF_PASSWORD, create_staff_login
from tests.integration.test_errors_and_ops import assert_error


async def test_login_refresh_rotates_and_reuse_revokes_the_family(client, make_world):
    world = await make_world()
    login = (await client.post("/api/auth/staff/login",
                               json={"username": world.staff.username, "password": STAFF_PASSWORD})).json()
    me = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {login['access_token']}"})
    assert me.json()["user"]["role"] == "community_staff"

    first = await client.post("/api/auth/refresh", json={"refresh_token": login["refresh_token"]})
    assert first.status_code == 200
    rotated = first.json()["refresh_token"]
    assert rotated != login["refresh_token"]
    # The spent token comes back (stolen copy): refused, and the rotated one dies with it.
    assert_error(await client.post("/api/auth/refresh", json={"refresh_token": login["refresh_token"]}),
                 401, "auth.refresh_reused")
    assert_error(await client.post("/api/auth/refresh", json={"refresh_token": rotated}), 401, "auth.refresh_invalid")


async def test_logout_revokes_access_and_refresh(client, make_world):
    world = await make_world()
    login = (await client.post("/api/auth/staff/login",
                               json={"username": world.staff.username, "password": STAFF_PASSWORD})).json()
    headers = {"Authorization": f"Bearer {login['access_token']}"}
    assert (await client.post("/api/auth/logout", json={"refresh_token": login["refresh_token"]},
                              headers=headers)).status_code == 200
    assert_error(await client.get("/api/auth/me", headers=headers), 401, "auth.revoked_token")
    assert_error(await client.post("/api/auth/refresh", json={"refresh_token": login["refresh_token"]}), 401)


async def test_wrong_password_then_lockout_per_account(client, make_world, server):
    world = await make_world()
    limit = server.settings.login_max_per_account
    for _ in range(limit):
        assert_error(await client.post("/api/auth/staff/login",
                                       json={"username": world.staff.username, "password": "wrong-password-1"}),
                     401, "auth.bad_credentials")
    # Even the right password is refused while locked.
    assert_error(await client.post("/api/auth/staff/login",
                                   json={"username": world.staff.username, "password": STAFF_PASSWORD}),
                 429, "auth.locked")


async def test_unknown_user_and_garbage_tokens_are_refused(client):
    assert_error(await client.post("/api/auth/staff/login", json={"username": "nobody", "password": "x"}),
                 401, "auth.bad_credentials")
    assert_error(await client.get("/api/residents"), 401, "auth.missing_token")
    assert_error(await client.get("/api/residents", headers={"Authorization": "Bearer abc.def.ghi"}),
                 401, "auth.invalid_token")


async def test_totp_enrolment_and_login(client, make_world):
    world = await make_world()
    uri = (await client.post("/api/auth/staff/totp/setup", headers=world.admin.headers)).json()["otpauth_uri"]
    totp = pyotp.parse_uri(uri)
    assert_error(await client.post("/api/auth/staff/totp/confirm", json={"code": "000000"},
                                   headers=world.admin.headers), 422)
    confirm = await client.post("/api/auth/staff/totp/confirm", json={"code": totp.now()}, headers=world.admin.headers)
    assert confirm.status_code == 200
    creds = {"username": world.admin.username, "password": STAFF_PASSWORD}
    assert_error(await client.post("/api/auth/staff/login", json=creds), 401, "auth.totp_required")
    ok = await client.post("/api/auth/staff/login", json={**creds, "totp_code": totp.now()})
    assert ok.status_code == 200, ok.text


async def test_role_is_enforced_by_the_api(client, make_world):
    world = await make_world()
    officer = await create_staff_login(client, role=Role.DEPARTMENT_OFFICER)
    assert_error(await client.get("/api/residents", headers=officer.headers), 403, "auth.role_forbidden")
    # community staff may not delete; admins may
    assert_error(await client.get("/api/audit/verify", headers=world.staff.headers), 403)


async def _last_code(phone_index: str) -> str:
    message = await OutboundMessage.filter(recipient_index=phone_index, template="login_code").order_by("-id").first()
    return re.search(r"\d{6}", message.body).group(0)


async def test_app_user_signs_in_with_phone_and_code(client, server):
    phone = "13912345678"
    sent = await client.post("/api/auth/app/otp", json={"phone": phone})
    assert sent.status_code == 200, sent.text
    index = server.app.ctx.cipher.blind_index(phone, purpose="phone")
    code = await _last_code(index)
    wrong = "000000" if code != "000000" else "111111"
    assert_error(await client.post("/api/auth/app/login", json={"phone": phone, "code": wrong}), 400, "otp.wrong")
    login = await client.post("/api/auth/app/login", json={"phone": phone, "code": code})
    assert login.status_code == 200, login.text
    me = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"})
    assert me.json()["kind"] == "app"
    # single use
    assert_error(await client.post("/api/auth/app/login", json={"phone": phone, "code": code}), 400, "otp.expired")
    # app users cannot reach staff routes
    assert_error(await client.get("/api/residents", headers={"Authorization": f"Bearer {login.json()['access_token']}"}),
                 403)


async def test_otp_attempts_are_limited(client, server):
    phone = "13700000001"
    assert (await client.post("/api/auth/app/otp", json={"phone": phone})).status_code == 200
    code = await _last_code(server.app.ctx.cipher.blind_index(phone, purpose="phone"))
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(server.settings.otp_max_attempts):
        assert_error(await client.post("/api/auth/app/login", json={"phone": phone, "code": wrong}), 400)
    # the right code no longer works: the attempts are spent and the code destroyed
    assert_error(await client.post("/api/auth/app/login", json={"phone": phone, "code": code}), 429,
                 "otp.too_many_attempts")


async def test_login_codes_never_reach_the_logs(client, server):
    """Issue 13.16: the code goes to the phone (the dev sender's table stands in for it), never into a log line."""
    from backend.ops.logging import JsonFormatter

    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(JsonFormatter().format(record))

    logger = logging.getLogger("zhilian")
    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        phone = "13700000077"
        assert (await client.post("/api/auth/app/otp", json={"phone": phone})).status_code == 200
        code = await _last_code(server.app.ctx.cipher.blind_index(phone, purpose="phone"))
        assert (await client.post("/api/auth/app/login", json={"phone": phone, "code": code})).status_code == 200
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert any("outbox message" in line for line in lines), lines  # the send itself is logged ...
    assert not [line for line in lines if code in line]  # ... without the code


async def test_bad_phone_is_a_clear_error(client):
    error = assert_error(await client.post("/api/auth/app/otp", json={"phone": "12345678901"}), 422, "phone.invalid")
    assert "手机号" in error["message"]
