"""The resident app's shell in a real Chromium: messages, OAuth consents, verifier QR codes, back, safe areas.

1. a reminder sent by the real reminders service shows in 消息通知, reached from the home screen
   with the unread count in words, and is marked read;
2. a portal the resident authorised through the real OAuth flow is listed in 授权管理 with its
   permissions in words, and revoking it takes two presses on the page (no pop-up);
3. after a home visit the resident's history shows the credential's verifier QR code, which a
   scanner (OpenCV, from a screenshot) reads as the public address that serves and verifies it;
4. the phone's back (page.go_back) walks back through the screens and never leaves /m/; the TopBar's
   返回 on a screen opened directly stays in the app; with a notch and a home bar emulated (DevTools'
   safe-area override, which needs viewport-fit=cover) the screen pads itself clear of both.
Each new screen is checked in elder mode (tests/e2e/elder.py); screenshots go to test-artifacts/e2e/.

Work the e2e server would do in its background worker (off in these tests), namely sending the
month's reminders and issuing a credential, runs here through the same services in a short
subprocess against the server's database.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import textwrap
from html import unescape
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from tests.conftest import REPO_ROOT
from tests.e2e.conftest import E2EServer, phone_context, shot, staff_session
from tests.e2e.elder import check_elder_mode
from tests.e2e.test_miniapp import sign_in, unique_phone
from tests.support import clips
from tests.support.ids import fresh_elder_id
from tests.support.qr import decode_qr

pytestmark = pytest.mark.browser

CALLBACK = "http://127.0.0.1:9/portal/callback"
M_PREFIX = re.compile(r"^http://127\.0\.0\.1:\d+/m/#/")


def a_resident(staff: httpx.Client, *, phone: str, name: str) -> dict:
    created = staff.post("/api/residents", json={
        "name": name, "national_id": fresh_elder_id(age=84), "phone": phone,
        "address": "南桥镇解放路 8弄 1号",
    })
    assert created.status_code == 201, created.text
    return created.json()


def in_server_db(server: E2EServer, body: str) -> str:
    """Run `body` (async code, `settings` and `cipher` at hand) against the e2e server's database."""
    script = textwrap.dedent("""
        import asyncio, sys
        from backend import db
        from backend.app import build_cipher
        from backend.settings import Settings

        async def main():
            settings = Settings.from_env()
            cipher = build_cipher(settings)
            await db.init(settings, run_migrations=False)
            try:
        {body}
            finally:
                await db.close()

        asyncio.run(main())
    """).format(body=textwrap.indent(textwrap.dedent(body), " " * 8))
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=server.env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def send_reminders(server: E2EServer, resident_id: int) -> str:
    """The reminders service's due-soon round for the resident's community, as at 10:00 two days before the due day."""
    return in_server_db(server, f"""
        from datetime import UTC, datetime
        from backend.certification import periods, reminders
        from backend.notify.service import OutboxSender
        from backend.residents.models import Resident

        resident = await Resident.get(id={resident_id})
        period = await periods.current_period(community_id=resident.community_id)
        year, month = (int(x) for x in period.month.split("-"))
        now = datetime(year, month, period.due_day - 2, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
        print(await reminders.send_reminders(period=period, now=now, sender=OutboxSender(cipher), cipher=cipher))
    """)


def issue_credentials(server: E2EServer, resident_id: int) -> str:
    """What the worker does on `certification.passed`: issue the resident's credentials."""
    return in_server_db(server, f"""
        from backend.certification.models import Certification
        from backend.credentials import service

        for certification in await Certification.filter(resident_id={resident_id}):
            print((await service.issue_for_certification(certification_id=certification.id, settings=settings)).id)
    """)


def _form(page: str) -> tuple[str, str]:
    action = unescape(re.search(r'<form method="post" action="([^"]+)"', page).group(1))
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    return action, csrf


def authorise_portal(server: E2EServer, phone: str, name: str) -> str:
    """A portal registered by the platform admin; the resident signs in on its OAuth pages and agrees."""
    with staff_session(server.url, "platform") as admin:
        created = admin.post("/api/oauth/clients", json={
            "name": name, "redirect_uris": [CALLBACK], "scopes": ["openid", "profile", "certification:read"],
            "confidential": False,
        })
        assert created.status_code == 201, created.text
        client_id = created.json()["client_id"]
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK,
             "scope": "openid profile certification:read", "state": secrets.token_urlsafe(8),
             "code_challenge": create_s256_code_challenge(secrets.token_urlsafe(48)), "code_challenge_method": "S256"}
    with httpx.Client(base_url=server.url, timeout=30, follow_redirects=False) as browser:
        page = browser.get("/oauth/authorize?" + urlencode(query))
        assert page.status_code == 200 and "获取验证码" in page.text, page.text
        action, csrf = _form(page.text)
        sent = browser.post(action, data={"phone": phone, "csrf": csrf})
        assert sent.status_code == 200 and "输入验证码" in sent.text, sent.text
        action, csrf = _form(sent.text)
        login = browser.post(action, data={"phone": phone, "code": server.login_code(phone), "csrf": csrf})
        assert login.status_code == 303, login.text
        consent = browser.get(login.headers["location"])
        assert consent.status_code == 200 and "是否同意授权" in consent.text, consent.text
        action, csrf = _form(consent.text)
        agreed = browser.post(action, data={"csrf": csrf, "decision": "allow"})
        assert agreed.status_code == 303, agreed.text
        back = urlsplit(agreed.headers["location"])
        assert f"{back.scheme}://{back.netloc}{back.path}" == CALLBACK and parse_qs(back.query).get("code"), back
    return client_id


def at(page, route: str) -> None:
    """The app shows `route` (hash), still under /m/."""
    page.wait_for_url(re.compile(rf"/m/#{re.escape(route)}$"))
    assert M_PREFIX.match(page.url), page.url


# ---- 1. 消息通知 ----

def test_a_reminder_shows_in_messages_reached_from_home(e2e_server, staff, face_y4m, launch):
    phone = unique_phone()
    resident = a_resident(staff, phone=phone, name="陈凤英")
    page = phone_context(launch(face_y4m), e2e_server.url).new_page()
    sign_in(page, e2e_server, phone)
    page.get_by_test_id("status").wait_for()
    assert page.get_by_test_id("unread").inner_text() == "没有新消息"

    result = send_reminders(e2e_server, resident["id"])
    assert "'kind': 'due_soon'" in result, result
    page.reload()
    link = page.get_by_test_id("go-messages")
    page.get_by_test_id("unread").filter(has_text="有一条新消息").wait_for()
    check_elder_mode(page, "home (a new message)")
    shot(page, "shell-home-unread")

    with page.expect_response(re.compile(r"/api/app/notifications/read$")) as marked:
        link.click()  # the screen marks what it shows as read
    assert marked.value.ok
    at(page, "/messages")
    reminder = page.get_by_test_id("message-reminder_due_soon")
    reminder.wait_for()
    text = reminder.inner_text()
    assert "认证提醒" in text and "新消息" in text and "陈凤英老人" in text and "【智链】" not in text, text
    assert "今天" in text, text
    assert "有一条新消息" in page.get_by_test_id("messages-summary").inner_text()
    check_elder_mode(page, "messages")
    shot(page, "shell-messages")

    page.go_back()  # the phone's back button
    at(page, "/")
    page.get_by_test_id("unread").filter(has_text="没有新消息").wait_for()  # seen, so read
    page.go_forward()
    at(page, "/messages")
    page.get_by_test_id("message-reminder_due_soon").wait_for()
    assert "新消息" not in page.get_by_test_id("message-reminder_due_soon").inner_text()
    page.get_by_test_id("act-reminder_due_soon").click()  # the reminder leads straight to where one certifies
    at(page, "/")
    page.get_by_test_id("status").wait_for()
    page.context.close()


def test_messages_screen_when_there_are_none(e2e_server, face_y4m, launch):
    phone = unique_phone()  # signed in, no resident, nobody to be reminded about
    page = phone_context(launch(face_y4m), e2e_server.url).new_page()
    sign_in(page, e2e_server, phone)
    page.get_by_test_id("go-messages").click()
    page.get_by_test_id("messages-empty").wait_for()
    assert "还没有消息" in page.get_by_test_id("messages-empty").inner_text()
    check_elder_mode(page, "messages (none)")
    shot(page, "shell-messages-empty")
    page.get_by_role("button", name="返回上一页").click()
    at(page, "/")
    page.context.close()


# ---- 2. 授权管理 ----

def test_consents_list_the_authorised_portal_and_revoke_in_two_presses(e2e_server, staff, face_y4m, launch):
    phone = unique_phone()
    a_resident(staff, phone=phone, name="刘桂兰")
    portal = f"市民云{secrets.token_hex(2)}"
    client_id = authorise_portal(e2e_server, phone, portal)

    page = phone_context(launch(face_y4m), e2e_server.url).new_page()
    sign_in(page, e2e_server, phone)
    page.get_by_role("link", name="设置").click()
    at(page, "/settings")
    page.get_by_test_id("go-consents").click()
    at(page, "/settings/consents")
    row = page.get_by_test_id(f"consent-{client_id}")
    row.wait_for()
    text = row.inner_text()
    assert portal in text and "同意授权" in text, text
    assert "确认是您本人" in text and "您本月和以往每月的认证情况" in text, text  # the scopes in words
    check_elder_mode(page, "consents")
    shot(page, "shell-consents")

    row.get_by_test_id("revoke").click()  # first press: the question, on the page
    row.get_by_test_id("confirm-revoke").wait_for()
    assert page.locator(".van-dialog, .van-popup, [role=dialog]").count() == 0  # no pop-up
    check_elder_mode(page, "consents (confirm)")
    shot(page, "shell-consents-confirm")
    row.get_by_test_id("cancel-revoke").click()  # changing one's mind leaves it in place
    row.get_by_test_id("revoke").click()
    row.get_by_test_id("confirm-revoke").click()
    page.get_by_test_id("consent-revoked").wait_for()
    assert portal in page.get_by_test_id("consent-revoked").inner_text()
    assert row.count() == 0
    page.get_by_test_id("consents-empty").wait_for()
    check_elder_mode(page, "consents (revoked)")
    shot(page, "shell-consents-revoked")

    # the server agrees: nothing left to list, and the portal has to ask again
    page.reload()
    page.get_by_test_id("consents-empty").wait_for()

    # the phone's back walks out the way we came, inside the app
    page.go_back()
    at(page, "/settings")
    page.go_back()
    at(page, "/")
    page.get_by_test_id("status").wait_for()
    page.context.close()


# ---- 3. the verifier QR code ----

def test_history_shows_a_verifier_qr_that_reads_as_the_verify_address(e2e_server, staff, face_y4m, launch):
    phone = unique_phone()
    resident = a_resident(staff, phone=phone, name="黄淑珍")
    visit = staff.post(f"/api/residents/{resident['id']}/home-visits",
                       files={"photo": ("visit.jpg", clips.enrolment_frames()[0], "image/jpeg")},
                       data={"note": "老人在家，精神很好"})
    assert visit.status_code == 201, visit.text
    with staff_session(e2e_server.url, "nq_admin") as second:
        attested = second.post(f"/api/home-visits/{visit.json()['id']}/attest")
        assert attested.status_code == 200, attested.text
    issue_credentials(e2e_server, resident["id"])
    [credential] = staff.get("/api/credentials", params={"resident_id": resident["id"]}).json()["items"]
    payload = credential["verifier_qr"]

    page = phone_context(launch(face_y4m), e2e_server.url).new_page()
    sign_in(page, e2e_server, phone)
    page.get_by_role("link", name="认证记录").click()
    at(page, "/history")
    item = page.get_by_test_id(f"credential-{credential['id']}")
    code = item.get_by_test_id("verifier-qr")
    code.wait_for()
    page.wait_for_function("() => document.querySelector('[data-testid=verifier-qr]').naturalWidth > 0")
    assert "给部门工作人员扫码核验" in item.inner_text()
    box = code.bounding_box()
    assert 250 <= box["width"] <= 390 and box["x"] >= 0, box  # big enough to scan, whole on the screen
    check_elder_mode(page, "history (verifier QR)")
    shot(page, "shell-history-qr")

    read = decode_qr(code.screenshot())  # what another phone's scanner reads from this screen
    assert read == payload, (read, payload)
    address, _, fragment = read.partition("#")
    assert address.endswith(f"/credentials/{credential['id']}") and fragment == f"sha256={credential['leaf_hash']}"
    with httpx.Client(timeout=60) as verifier:  # the verifier's side: fetch, compare the hash, verify
        fetched = verifier.get(address.replace(urlsplit(address).netloc, urlsplit(e2e_server.url).netloc))
        assert fetched.status_code == 200, fetched.text
        assert fetched.json()["leaf_hash"] == credential["leaf_hash"]
        report = verifier.post(f"{e2e_server.url}/credentials/verify", json={"credential": fetched.json()["credential"]})
        assert report.status_code == 200 and report.json()["verified"] is True, report.text
    page.context.close()


# ---- 4. WebView: back and safe areas ----

def test_back_never_leaves_the_app_and_the_page_pads_by_the_safe_area(e2e_server, staff, face_y4m, launch):
    phone = unique_phone()
    a_resident(staff, phone=phone, name="杨秀珍")
    context = phone_context(launch(face_y4m), e2e_server.url)
    page = context.new_page()
    sign_in(page, e2e_server, phone)

    viewport = page.locator("meta[name=viewport]").get_attribute("content")
    assert "viewport-fit=cover" in viewport, viewport
    # a phone with a notch and a home bar, as Chromium's DevTools emulate it: the content moves clear of both
    cdp = context.new_cdp_session(page)
    cdp.send("Emulation.setSafeAreaInsetsOverride", {"insets": {"top": 47, "right": 20, "bottom": 34, "left": 20}})
    padding = page.evaluate("""() => {
      const s = getComputedStyle(document.querySelector('main.page'));
      return [s.paddingTop, s.paddingRight, s.paddingBottom, s.paddingLeft].map(parseFloat);
    }""")
    gap = 20  # the elder mode's side margin
    assert padding == [47 + 8, 20 + gap, 34 + 24, 20 + gap], padding
    assert page.locator(".topbar").bounding_box()["y"] >= 47
    cdp.send("Emulation.setSafeAreaInsetsOverride", {"insets": {}})
    assert page.evaluate("() => getComputedStyle(document.querySelector('main.page')).paddingTop") == "8px"

    # forward through four screens, then the phone's back all the way home: every step inside /m/
    page.get_by_test_id("go-messages").click()
    at(page, "/messages")
    page.get_by_role("button", name="返回上一页").click()  # the TopBar goes back, not to a new entry
    at(page, "/")
    page.get_by_role("link", name="设置").click()
    at(page, "/settings")
    page.get_by_test_id("go-consents").click()
    at(page, "/settings/consents")
    page.get_by_test_id("consents-empty").wait_for()
    check_elder_mode(page, "consents (none)")
    page.go_back()
    at(page, "/settings")
    page.go_back()
    at(page, "/")
    page.get_by_test_id("status").wait_for()
    page.go_forward()
    at(page, "/settings")
    page.go_back()
    at(page, "/")

    # a screen opened directly (a link from a message, a portal): 返回 stays in the app
    direct = context.new_page()
    direct.goto("/m/#/settings/consents")
    direct.get_by_test_id("consents-empty").wait_for()
    direct.get_by_role("button", name="返回上一页").click()
    at(direct, "/settings")
    direct.get_by_role("button", name="返回上一页").click()
    at(direct, "/")
    direct.get_by_test_id("status").wait_for()
    shot(direct, "shell-back-home")
    context.close()
