"""Staff sign-in with rotation and lock-out, TOTP, and phone + one-time-code sign-in for app users."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import sqlite3
from datetime import UTC, datetime, timedelta

import pyotp

from backend.audit.models import AuditEvent
from backend.auth.models import RefreshToken, Role
from backend.auth.tokens import hash_refresh_token
from backend.notify.models import OutboundMessage
from tests.integration.conftest import STAFF_PASSWORD, create_staff_login
from tests.integration.test_errors_and_ops import assert_error


async def sign_in(client, username: str, **extra) -> dict:
    response = await client.post("/api/auth/staff/login", json={"username": username, "password": STAFF_PASSWORD,
                                                                 **extra})
    assert response.status_code == 200, response.text
    return response.json()


def bearer(pair: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


async def spent_long_ago(refresh_token: str, server) -> None:
    """Move a spent refresh token's use far out of the rotation grace window (a stolen copy replayed later)."""
    await RefreshToken.filter(token_hash=hash_refresh_token(refresh_token)).update(
        used_at=datetime.now(UTC) - timedelta(hours=1))


async def test_login_refresh_rotates_and_reuse_revokes_the_family(client, make_world, server):
    world = await make_world()
    login = await sign_in(client, world.staff.username)
    me = await client.get("/api/auth/me", headers=bearer(login))
    assert me.json()["user"]["role"] == "community_staff"

    first = await client.post("/api/auth/refresh", json={"refresh_token": login["refresh_token"]})
    assert first.status_code == 200
    rotated = first.json()["refresh_token"]
    assert rotated != login["refresh_token"]
    # The spent token comes back long after its rotation (stolen copy): refused, and the rotated one dies with it.
    await spent_long_ago(login["refresh_token"], server)
    assert_error(await client.post("/api/auth/refresh", json={"refresh_token": login["refresh_token"]}),
                 401, "auth.refresh_reused")
    assert_error(await client.post("/api/auth/refresh", json={"refresh_token": rotated}), 401, "auth.refresh_invalid")


async def test_reuse_cuts_the_live_access_tokens_of_the_family_at_once(client, make_world, server):
    """Issue 13.3: a revoked family's access tokens stop on the next request, not when they expire."""
    world = await make_world()
    login = await sign_in(client, world.staff.username)
    rotated = (await client.post("/api/auth/refresh", json={"refresh_token": login["refresh_token"]})).json()
    assert (await client.get("/api/residents", headers=bearer(rotated))).status_code == 200
    other_sign_in = await sign_in(client, world.staff.username)  # another device: a different family

    await spent_long_ago(login["refresh_token"], server)
    assert_error(await client.post("/api/auth/refresh", json={"refresh_token": login["refresh_token"]}),
                 401, "auth.refresh_reused")
    for pair in (login, rotated):
        assert_error(await client.get("/api/residents", headers=bearer(pair)), 401, "auth.revoked_token")
    assert (await client.get("/api/residents", headers=bearer(other_sign_in))).status_code == 200


async def test_a_refresh_token_sent_twice_at_once_gets_the_same_new_pair(client, make_world, server):
    """Issue 13.6: several requests refreshing together must not look like theft."""
    world = await make_world()
    login = await sign_in(client, world.admin.username)
    answers = await asyncio.gather(*[
        client.post("/api/auth/refresh", json={"refresh_token": login["refresh_token"]}) for _ in range(4)
    ])
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    pairs = [a.json() for a in answers]
    assert len({p["refresh_token"] for p in pairs}) == 1 and len({p["access_token"] for p in pairs}) == 1
    assert pairs[0]["refresh_token"] != login["refresh_token"]
    # still signed in: the new pair works and rotates on
    assert (await client.get("/api/auth/me", headers=bearer(pairs[0]))).status_code == 200
    later = await client.post("/api/auth/refresh", json={"refresh_token": pairs[0]["refresh_token"]})
    assert later.status_code == 200, later.text
    # once the successor itself was used, the first token is reuse even within the window
    assert_error(await client.post("/api/auth/refresh", json={"refresh_token": login["refresh_token"]}),
                 401, "auth.refresh_reused")
    assert_error(await client.get("/api/auth/me", headers=bearer(later.json())), 401, "auth.revoked_token")


async def test_disabling_an_account_cuts_its_access_tokens_at_once(client, make_world):
    """Issue 13.3: an admin disables a colleague; the colleague's open sessions stop on their next request."""
    world = await make_world()
    elsewhere = await make_world()
    colleague = await sign_in(client, world.staff.username)
    assert (await client.get("/api/residents", headers=bearer(colleague))).status_code == 200
    body = {"active": False, "reason": "离职"}
    assert_error(await client.post(f"/api/auth/staff/{world.staff.user_id}/active", json=body,
                                   headers=elsewhere.admin.headers), 404, "staff.not_found")
    assert_error(await client.post(f"/api/auth/staff/{world.admin.user_id}/active", json=body,
                                   headers=world.staff.headers), 403, "auth.role_forbidden")
    disabled = await client.post(f"/api/auth/staff/{world.staff.user_id}/active", json=body,
                                 headers=world.admin.headers)
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["is_active"] is False
    for headers in (bearer(colleague), world.staff.headers):
        assert_error(await client.get("/api/residents", headers=headers), 401, "auth.revoked_token")
    assert_error(await client.post("/api/auth/refresh", json={"refresh_token": colleague["refresh_token"]}), 401)
    assert_error(await client.post("/api/auth/staff/login",
                                   json={"username": world.staff.username, "password": STAFF_PASSWORD}), 401)
    event = await AuditEvent.filter(action="auth.account_disabled", target_id=str(world.staff.user_id)).first()
    assert event is not None and event.details["reason"] == "离职" and event.actor_id == str(world.admin.user_id)
    # enabled again: old sessions stay ended, a new sign-in works
    enabled = await client.post(f"/api/auth/staff/{world.staff.user_id}/active", json={"active": True, "reason": "返岗"},
                                headers=world.admin.headers)
    assert enabled.status_code == 200 and enabled.json()["is_active"] is True
    assert_error(await client.get("/api/residents", headers=bearer(colleague)), 401)
    assert (await client.get("/api/residents", headers=bearer(await sign_in(client, world.staff.username)))
            ).status_code == 200


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


async def enable_totp(client, headers) -> pyotp.TOTP:
    uri = (await client.post("/api/auth/staff/totp/setup", headers=headers)).json()["otpauth_uri"]
    totp = pyotp.parse_uri(uri)
    assert (await client.post("/api/auth/staff/totp/confirm", json={"code": totp.now()},
                              headers=headers)).status_code == 200
    return totp


def another_code(totp: pyotp.TOTP) -> str:
    """A six-digit code this authenticator does not accept now (nor a step either side)."""
    accepted = {totp.at(datetime.now(UTC) + timedelta(seconds=30 * step)) for step in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in accepted)


def test_disable_staff_command_ends_the_account_and_is_audited(tmp_path):
    """The operator's way to disable an account, on a database of its own (sessions end: see the API test above)."""
    from tests.integration.test_scope import run_cli

    assert run_cli(tmp_path, "migrate").returncode == 0
    assert run_cli(tmp_path, "create-staff", "leaver", "--role", "district_admin", "--district", "奉贤区").returncode == 0
    missing = run_cli(tmp_path, "disable-staff", "nobody", "--reason", "离职")
    assert missing.returncode == 2 and "staff.not_found" in missing.stderr
    assert run_cli(tmp_path, "disable-staff", "leaver").returncode == 2  # a reason is required
    done = run_cli(tmp_path, "disable-staff", "leaver", "--reason", "离职")
    assert done.returncode == 0, done.stderr
    with contextlib.closing(sqlite3.connect(tmp_path / "zhilian.sqlite3")) as db:
        assert db.execute("SELECT is_active FROM staff_user WHERE username = 'leaver'").fetchone() == (0,)
        action, details = db.execute("SELECT action, details FROM audit_event ORDER BY id DESC LIMIT 1").fetchone()
    assert action == "auth.account_disabled" and json.loads(details)["reason"] == "离职"


async def test_totp_cannot_be_replaced_or_removed_with_an_access_token_alone(client, make_world):
    """Issue 13.1: set-up again while on is refused; removal needs the password and a current code, audited."""
    world = await make_world()
    totp = await enable_totp(client, world.admin.headers)
    assert_error(await client.post("/api/auth/staff/totp/setup", headers=world.admin.headers),
                 409, "auth.totp_already_enabled")
    creds = {"username": world.admin.username, "password": STAFF_PASSWORD}
    assert_error(await client.post("/api/auth/staff/login", json=creds), 401, "auth.totp_required")

    disable = "/api/auth/staff/totp/disable"
    assert_error(await client.post(disable, json={}, headers=world.admin.headers), 422)
    assert_error(await client.post(disable, json={"password": "Wrong-password-1", "totp_code": totp.now()},
                                   headers=world.admin.headers), 403, "auth.bad_credentials")
    assert_error(await client.post(disable, json={"password": STAFF_PASSWORD, "totp_code": another_code(totp)},
                                   headers=world.admin.headers), 403, "auth.totp_invalid")
    assert_error(await client.post("/api/auth/staff/login", json=creds), 401, "auth.totp_required")
    assert await AuditEvent.filter(action="auth.reauth_failed", target_id=str(world.admin.user_id)).count() == 2

    removed = await client.post(disable, json={"password": STAFF_PASSWORD, "totp_code": totp.now()},
                                headers=world.admin.headers)
    assert removed.status_code == 200, removed.text
    assert await AuditEvent.filter(action="auth.totp_disabled", target_id=str(world.admin.user_id)).exists()
    assert (await client.post("/api/auth/staff/login", json=creds)).status_code == 200


async def test_totp_change_needs_both_factors_and_the_old_one_holds_until_confirmed(client, make_world):
    world = await make_world()
    old = await enable_totp(client, world.admin.headers)
    reset = "/api/auth/staff/totp/reset"
    assert_error(await client.post(reset, json={"password": STAFF_PASSWORD, "totp_code": another_code(old)},
                                   headers=world.admin.headers), 403, "auth.totp_invalid")
    started = await client.post(reset, json={"password": STAFF_PASSWORD, "totp_code": old.now()},
                                headers=world.admin.headers)
    assert started.status_code == 200, started.text
    new = pyotp.parse_uri(started.json()["otpauth_uri"])
    assert new.secret != old.secret
    creds = {"username": world.admin.username, "password": STAFF_PASSWORD}
    # until the new authenticator is proven, the old one is what sign-in asks for
    assert (await client.post("/api/auth/staff/login", json={**creds, "totp_code": old.now()})).status_code == 200
    assert not await AuditEvent.filter(action="auth.totp_reset", target_id=str(world.admin.user_id)).exists()
    assert_error(await client.post("/api/auth/staff/totp/confirm", json={"code": another_code(new)},
                                   headers=world.admin.headers), 422, "auth.totp_invalid")
    assert (await client.post("/api/auth/staff/totp/confirm", json={"code": new.now()},
                              headers=world.admin.headers)).status_code == 200
    assert await AuditEvent.filter(action="auth.totp_reset", target_id=str(world.admin.user_id)).exists()
    if old.now() != new.now():
        assert_error(await client.post("/api/auth/staff/login", json={**creds, "totp_code": old.now()}),
                     401, "auth.totp_invalid")
    assert (await client.post("/api/auth/staff/login", json={**creds, "totp_code": new.now()})).status_code == 200


async def test_an_admin_resets_a_locked_out_colleagues_totp_audited(client, make_world):
    world = await make_world()
    elsewhere = await make_world()
    await enable_totp(client, world.staff.headers)
    colleague_session = world.staff.headers
    path = f"/api/auth/staff/{world.staff.user_id}/totp/reset"
    body = {"password": STAFF_PASSWORD, "reason": "手机丢失，本人电话确认"}
    listed = (await client.get("/api/auth/staff", headers=world.admin.headers)).json()["items"]
    assert {u["id"] for u in listed} == {world.staff.user_id, world.admin.user_id}
    assert next(u for u in listed if u["id"] == world.staff.user_id)["totp_enabled"] is True
    assert world.staff.user_id not in {u["id"] for u in
                                       (await client.get("/api/auth/staff", headers=elsewhere.admin.headers)).json()["items"]}
    assert_error(await client.post(path, json=body, headers=elsewhere.admin.headers), 404, "staff.not_found")
    assert_error(await client.post(path, json=body, headers=world.staff.headers), 403, "auth.role_forbidden")
    assert_error(await client.post(path, json={**body, "password": "Wrong-password-1"}, headers=world.admin.headers),
                 403, "auth.bad_credentials")
    assert_error(await client.post(path, json={"password": STAFF_PASSWORD}, headers=world.admin.headers), 422)
    assert_error(await client.post(f"/api/auth/staff/{world.admin.user_id}/totp/reset", json=body,
                                   headers=world.admin.headers), 409, "staff.self")

    done = await client.post(path, json=body, headers=world.admin.headers)
    assert done.status_code == 200, done.text
    assert done.json()["totp_enabled"] is False
    event = await AuditEvent.filter(action="auth.totp_reset_by_admin", target_id=str(world.staff.user_id)).first()
    assert event.actor_id == str(world.admin.user_id) and event.details["reason"] == body["reason"]
    assert event.community_id == world.community_id
    # the colleague's sessions ended; they sign in with the password and enrol a new authenticator
    assert_error(await client.get("/api/residents", headers=colleague_session), 401, "auth.revoked_token")
    fresh = await sign_in(client, world.staff.username)
    await enable_totp(client, bearer(fresh))


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
    rotated = await client.post("/api/auth/refresh", json={"refresh_token": login.json()["refresh_token"]})
    assert rotated.status_code == 200, rotated.text
    assert (await client.get("/api/auth/me", headers=bearer(rotated.json()))).json()["kind"] == "app"
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
