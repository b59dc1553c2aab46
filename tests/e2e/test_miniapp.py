"""The resident app in a real Chromium with a fake camera playing real footage (DESIGN §9).

1. a resident signs in with an SMS code, certifies with the camera and sees success;
2. a helper binds by the elder's QR code (the helper's camera reads the elder's screen), the elder
   approves in their app, the helper certifies for them;
3. with WebSockets blocked, the app falls back to uploading the frames, and still passes;
4. a printed photo in front of the camera fails, with the reason in words and a call button.
Every resident screen is checked in elder mode (tests/e2e/elder.py); screenshots go to test-artifacts/e2e/.
"""

from __future__ import annotations

import re
import secrets

import httpx
import pytest

from tests.e2e import feeds
from tests.e2e.conftest import E2EServer, phone_context, shot
from tests.e2e.elder import check_elder_mode
from tests.support import clips
from tests.support.ids import fresh_elder_id

pytestmark = pytest.mark.browser

RESULT_TIMEOUT_MS = 60_000


def unique_phone() -> str:
    return "139" + f"{secrets.randbelow(10**8):08d}"


def enrolled_resident(staff: httpx.Client, *, phone: str, name: str) -> dict:
    """A resident of the demo community with a known phone and an enrolled face (from the same clip)."""
    created = staff.post("/api/residents", json={
        "name": name, "national_id": fresh_elder_id(age=86), "phone": phone,
        "address": "南桥镇解放路 12弄 3号",
    })
    assert created.status_code == 201, created.text
    resident = created.json()
    consent = staff.post(f"/api/residents/{resident['id']}/consents",
                         json={"kind": "biometric", "version": "v1", "method": "paper"})
    assert consent.status_code == 201, consent.text
    files = [("frame", (f"f{i}.jpg", frame, "image/jpeg")) for i, frame in enumerate(clips.enrolment_frames())]
    enrolled = staff.post(f"/api/residents/{resident['id']}/enrolment", files=files)
    assert enrolled.status_code == 201, enrolled.text
    return resident


def sign_in(page, server: E2EServer, phone: str, *, shots: str | None = None) -> None:
    page.goto("/m/")
    page.wait_for_url(re.compile(r"#/login"))
    if shots:
        check_elder_mode(page, "login")
        shot(page, f"{shots}-login")
    page.get_by_test_id("phone").fill(phone)
    page.get_by_test_id("send-code").click()
    page.get_by_test_id("code").wait_for()
    page.get_by_test_id("code").fill(server.login_code(phone))
    page.get_by_test_id("login").click()
    page.wait_for_url(re.compile(r"#/$"))


def certify(page, screen: str) -> dict:
    """On the certify screen: wait for the camera, press 开始, follow the session to its result."""
    begin = page.get_by_test_id("begin")
    begin.wait_for()
    page.wait_for_function("() => { const v = document.querySelector('video'); return v && v.videoWidth > 0 }")
    check_elder_mode(page, f"{screen} (camera ready)")
    shot(page, f"{screen}-ready")
    begin.click()
    page.locator(".steps li").first.wait_for()
    check_elder_mode(page, f"{screen} (running)")
    shot(page, f"{screen}-running")
    result = page.get_by_test_id("result").or_(page.get_by_test_id("problem"))
    result.wait_for(timeout=RESULT_TIMEOUT_MS)
    log = page.evaluate("() => (window.__certifyLog || []).map(m => m.code || m.type)")
    print(screen, [code for i, code in enumerate(log) if i == 0 or code != log[i - 1]])  # what the server said
    return {"decision": result.get_attribute("data-decision"), "text": result.inner_text()}


def test_resident_signs_in_and_certifies_with_the_camera(e2e_server, staff, face_y4m, launch):
    phone = unique_phone()
    enrolled_resident(staff, phone=phone, name="王桂英")
    context = phone_context(launch(face_y4m), e2e_server.url)
    page = context.new_page()
    spoken: list[str] = []
    page.expose_function("recordSpeech", lambda text: spoken.append(text))
    page.add_init_script("""
      if (window.speechSynthesis) {
        const speak = window.speechSynthesis.speak.bind(window.speechSynthesis);
        window.speechSynthesis.speak = (u) => { window.recordSpeech(u.text); try { speak(u) } catch (e) {} };
      }
    """)

    sign_in(page, e2e_server, phone, shots="resident")
    status = page.get_by_test_id("status")
    assert "还没有认证" in status.inner_text()
    check_elder_mode(page, "home")
    shot(page, "resident-home")

    page.get_by_test_id("start").click()
    outcome = certify(page, "resident-certify")
    shot(page, "resident-result")
    assert outcome["decision"] == "pass", outcome["text"]
    assert "认证成功" in outcome["text"]
    check_elder_mode(page, "result (pass)")
    assert any("眨" in s or "张" in s for s in spoken), spoken  # the prompts were spoken too

    page.get_by_test_id("home").click()
    assert "已经认证好了" in page.get_by_test_id("status").inner_text()
    check_elder_mode(page, "home (certified)")
    shot(page, "resident-home-certified")

    for link, screen in (("认证记录", "history"), ("设置", "settings")):
        page.get_by_role("link", name=link).click()
        page.locator(".topbar h1", has_text=link).wait_for()
        page.wait_for_load_state("networkidle")
        check_elder_mode(page, screen)
        shot(page, f"resident-{screen}")
        page.get_by_role("button", name="返回上一页").click()
        page.get_by_test_id("status").wait_for()
    context.close()


def test_helper_binds_by_qr_and_certifies_for_the_elder(e2e_server, staff, face_y4m, feed_dir, launch):
    elder_phone, helper_phone = unique_phone(), unique_phone()
    enrolled_resident(staff, phone=elder_phone, name="李秀兰")
    faces = launch(face_y4m)
    elder = phone_context(faces, e2e_server.url).new_page()
    sign_in(elder, e2e_server, elder_phone)

    # the elder shows their code on their own phone...
    elder.get_by_role("link", name="我的二维码").click()
    code = elder.locator("[data-testid=qr] img")
    code.wait_for()
    elder.wait_for_function("() => document.querySelector('[data-testid=qr] img').naturalWidth > 0")
    check_elder_mode(elder, "my QR code")
    shot(elder, "elder-qr")
    picture = feed_dir / "elder-qr.png"
    code.screenshot(path=str(picture))

    # ...and the helper's camera sees that screen: a second Chromium whose camera plays it
    scanner = phone_context(launch(feeds.still_feed(feed_dir / "qr.y4m", picture)), e2e_server.url)
    helper = scanner.new_page()
    sign_in(helper, e2e_server, helper_phone)
    check_elder_mode(helper, "home (helper only)")
    helper.get_by_test_id("go-helper").click()
    helper.get_by_test_id("scan").wait_for()
    check_elder_mode(helper, "helper (no elders yet)")
    helper.get_by_test_id("scan").click()
    helper.get_by_test_id("relation-child").click(timeout=30_000)  # shown once the camera has read the code
    check_elder_mode(helper, "scan (relation)")
    shot(helper, "helper-relation")
    helper.get_by_test_id("request-binding").click()
    assert "申请已发送" in helper.get_by_test_id("scan-result").inner_text()
    shot(helper, "helper-request-sent")

    # the elder agrees in their app
    elder.goto("/m/#/")
    elder.get_by_test_id("binding-request").wait_for()
    check_elder_mode(elder, "home (a helper asks)")
    shot(elder, "elder-approves")
    elder.get_by_test_id("approve").click()
    elder.get_by_test_id("binding-request").wait_for(state="detached")

    # the helper, signed in as before, points a camera at the elder's face
    certifier = phone_context(faces, e2e_server.url, storage_state=scanner.storage_state()).new_page()
    certifier.goto("/m/#/helper")
    certifier.get_by_test_id("certify-for").wait_for()
    check_elder_mode(certifier, "helper (elders I help)")
    shot(certifier, "helper-elders")
    certifier.get_by_test_id("certify-for").click()
    certifier.locator(".topbar h1", has_text="帮").wait_for()
    outcome = certify(certifier, "helper-certify")
    shot(certifier, "helper-result")
    assert outcome["decision"] == "pass", outcome["text"]
    assert "认证成功" in outcome["text"]

    elder.reload()
    assert "已经认证好了" in elder.get_by_test_id("status").inner_text()


def test_blocked_websocket_falls_back_to_uploading_the_frames(e2e_server, staff, face_y4m, launch):
    """Some networks block WebSockets: the app records the prompts' timeline and uploads the frames."""
    phone = unique_phone()
    enrolled_resident(staff, phone=phone, name="赵淑芬")
    page = phone_context(launch(face_y4m), e2e_server.url).new_page()
    blocked: list[str] = []

    def block(ws) -> None:
        blocked.append(ws.url)
        ws.close()

    page.route_web_socket(re.compile(r"/ws/certify"), block)
    sign_in(page, e2e_server, phone)
    page.get_by_test_id("start").click()
    outcome = certify(page, "fallback-certify")
    shot(page, "fallback-result")
    assert blocked, "the app did not try the WebSocket first"
    assert outcome["decision"] == "pass", outcome["text"]


def test_printed_photo_fails_with_the_reason_and_a_call_button(e2e_server, staff, feed_dir, launch):
    phone = unique_phone()
    enrolled_resident(staff, phone=phone, name="张玉珍")
    page = phone_context(launch(feeds.print_attack_feed(feed_dir / "print.y4m")), e2e_server.url).new_page()
    sign_in(page, e2e_server, phone)
    page.get_by_test_id("start").click()
    outcome = certify(page, "print-certify")
    shot(page, "print-result")
    assert outcome["decision"] == "fail", outcome["text"]
    reason = page.get_by_test_id("reason").inner_text()
    assert reason.startswith("原因：") and len(reason) > 5, reason
    call = page.get_by_test_id("call-community")
    assert (call.get_attribute("href") or "").startswith("tel:")
    check_elder_mode(page, "result (fail)")
