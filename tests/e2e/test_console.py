"""The staff console in a real Chromium over the seeded server (300 demo residents in 南桥社区).

1. staff import a roster with a bad row, read the report, fix the file and commit it;
2. the month board's counts move by exactly two after two residents certify through the API;
3. a first certification waits in the review queue and staff approve it there;
4. staff generate a department export and download its files; another department's officer
   neither sees it nor can open it;
5. every page of the console is opened with 300 residents and its load time is measured with
   the Performance API (printed and written to test-artifacts/e2e/console-timing.json, not asserted).
Screenshots of each final screen go to test-artifacts/e2e/.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import time
import zipfile

import httpx
import pytest

from backend.residents.roster import write_roster_csv
from tests.conftest import REPO_ROOT
from tests.e2e.conftest import (
    ARTIFACTS,
    DEMO_PASSWORD,
    by_test,
    console_sign_in,
    desk_context,
    shot,
    staff_session,
)
from tests.e2e.test_miniapp import enrolled_resident, unique_phone
from tests.support import clips
from tests.support.ids import fresh_elder_id

pytestmark = pytest.mark.browser

SURNAMES = "王李张刘陈杨黄赵吴周"
GIVEN = "桂秀兰英芳珍凤玉梅琴华淑敏丽云霞宝根福荣德明志国建文金春海林"


def a_name(tag: str) -> str:
    """A four-character resident name no other test (nor the demo roster) uses: tables are searched by it."""
    given = "".join(GIVEN[secrets.randbelow(len(GIVEN))] for _ in range(2))
    return f"{SURNAMES[secrets.randbelow(len(SURNAMES))]}{tag}{given}"


def new_resident(staff: httpx.Client, name: str, *, age: int, address: str, phone: bool = True) -> dict:
    """A resident of the demo community added through the API (no face enrolled)."""
    body = {"name": name, "national_id": fresh_elder_id(age=age), "address": address}
    if phone:
        body["phone"] = unique_phone()
    created = staff.post("/api/residents", json=body)
    assert created.status_code == 201, created.text
    return created.json()


def certify_through_api(staff: httpx.Client, resident_id: int) -> dict:
    """A staff-assisted certification over the HTTP upload path, with the real clip's frames."""
    device = f"desk-{secrets.token_hex(4)}"
    started = staff.post("/api/certify/sessions", json={"resident_id": resident_id, "device_id": device})
    assert started.status_code == 201, started.text
    session = started.json()
    frames = clips.session_frames(session["actions"])
    offsets = [int(1000 * (0.2 + i / 10)) for i in range(len(frames))]
    time.sleep(max(0.0, offsets[-1] / 1000 - 0.5))  # capture times must lie in the past
    files = [("frame", (f"{i}.jpg", f, "image/jpeg")) for i, f in enumerate(frames)]
    result = staff.post(f"/api/certify/sessions/{session['session_id']}/frames", files=files,
                        data={"device_id": device, "t": [str(t) for t in offsets]})
    assert result.status_code == 200, result.text
    return result.json()


def confirm(page, label: str) -> None:
    """Press the confirm button of the console's confirmation box (irreversible actions ask first)."""
    page.locator(".el-message-box").get_by_role("button", name=label).click()


def board_counts(page) -> dict[str, int]:
    counts = {}
    for status in ("pending", "certified", "in_review", "overdue"):
        text = by_test(page, f"count-{status}").inner_text()
        counts[status] = int(re.sub(r"\D", "", text) or 0)
    return counts


def test_roster_import_reports_the_bad_row_then_commits(launch, face_y4m, e2e_server, tmp_path):
    names = [a_name("导"), a_name("导"), a_name("导")]
    good = [{"name": n, "national_id": fresh_elder_id(age=84 + i), "phone": unique_phone(),
             "address": f"南桥镇沪杭公路 {i + 1}号"} for i, n in enumerate(names)]
    broken = [*good[:2], {**good[2], "national_id": good[2]["national_id"][:-1] + ("0" if good[2]["national_id"][-1] != "0" else "1")}]
    bad_file = tmp_path / "名册-有错.csv"
    bad_file.write_bytes(write_roster_csv(broken))
    fixed_file = tmp_path / "名册.csv"
    fixed_file.write_bytes(write_roster_csv(good))

    browser = launch(face_y4m)
    page = desk_context(browser, e2e_server.url).new_page()
    console_sign_in(page, "nq_staff")
    page.locator("[data-menu='/import']").click()
    page.wait_for_url(re.compile(r"#/import"))

    page.locator("input[type=file]").set_input_files(str(bad_file))
    by_test(page, "import-check").click()
    error_rows = by_test(page, "import-error-row")
    error_rows.first.wait_for()
    assert error_rows.count() == 1
    assert "4" in error_rows.first.inner_text() and "身份证" in error_rows.first.inner_text()
    assert by_test(page, "import-commit").count() == 0 or by_test(page, "import-commit").is_disabled()
    shot(page, "console-import-report")

    page.locator("input[type=file]").set_input_files(str(fixed_file))
    by_test(page, "import-check").click()
    by_test(page, "import-clean").wait_for()
    commit = by_test(page, "import-commit")
    commit.wait_for()
    assert by_test(page, "import-error-row").count() == 0
    commit.click()
    confirm(page, "确认导入")
    done = by_test(page, "import-done")
    done.wait_for()
    assert done.get_attribute("data-imported") == "3"
    assert by_test(page, "import-created").inner_text() == "3"
    shot(page, "console-import-done")

    with staff_session(e2e_server.url, "nq_staff") as staff:
        for name in names:
            found = staff.get("/api/residents", params={"q": name}).json()["items"]
            assert [r["name"] for r in found] == [name]


def test_month_board_counts_follow_two_certifications(launch, face_y4m, e2e_server, staff):
    residents = [enrolled_resident(staff, phone=unique_phone(), name=a_name("月")) for _ in range(2)]
    browser = launch(face_y4m)
    page = desk_context(browser, e2e_server.url).new_page()
    console_sign_in(page, "nq_staff")
    page.wait_for_url(re.compile(r"#/month"))
    by_test(page, "count-certified").wait_for()
    before = board_counts(page)

    for resident in residents:
        outcome = certify_through_api(staff, resident["id"])
        assert outcome["decision"] == "pass", outcome

    page.reload()
    by_test(page, "count-certified").wait_for()
    page.wait_for_function(f"() => document.querySelector('[data-test=count-certified]')"
                           f".innerText.replace(/\\D/g, '') !== '{before['certified']}'")
    after = board_counts(page)
    assert after["certified"] == before["certified"] + 2
    assert after["pending"] == before["pending"] - 2
    current = staff.get("/api/periods/current").json()
    assert current["counts"]["certified"] == after["certified"]

    by_test(page, "board-search").fill(residents[0]["name"])
    by_test(page, "board-search").press("Enter")
    row = by_test(page, "board-row").filter(has_text=residents[0]["name"])
    row.wait_for()
    assert "已认证" in row.inner_text()
    shot(page, "console-month")


def test_review_item_is_approved_in_the_console(launch, face_y4m, e2e_server, staff):
    resident = new_resident(staff, a_name("审"), age=91, address="南桥镇解放路 8号")
    consent = staff.post(f"/api/residents/{resident['id']}/consents",
                         json={"kind": "biometric", "version": "v1", "method": "paper"})
    assert consent.status_code == 201, consent.text
    outcome = certify_through_api(staff, resident["id"])  # no template yet: a person must look first
    assert outcome["decision"] == "review", outcome

    browser = launch(face_y4m)
    page = desk_context(browser, e2e_server.url).new_page()
    console_sign_in(page, "nq_staff")
    page.locator("[data-menu='/review']").click()
    row = by_test(page, "review-row").filter(has_text=resident["name"])
    row.wait_for()
    row.locator("img").first.wait_for()  # the best frame, fetched with the staff token
    shot(page, "console-review")
    by_test(row, "approve").click()
    confirm(page, "确认通过")
    row.wait_for(state="detached")
    shot(page, "console-review-done")

    status = staff.get(f"/api/periods/{staff.get('/api/periods/current').json()['id']}/residents",
                       params={"q": resident["name"]}).json()["items"]
    assert [r["status"] for r in status] == ["certified"]


def test_export_download_and_another_department_is_refused(launch, face_y4m, e2e_server, tmp_path):
    browser = launch(face_y4m)
    context = desk_context(browser, e2e_server.url)
    page = context.new_page()
    console_sign_in(page, "nq_staff")
    page.locator("[data-menu='/exports']").click()
    by_test(page, "generate-export").click()
    dialog = page.locator(".el-dialog")
    dialog.wait_for()
    by_test(dialog, "export-department").click()
    page.locator(".el-select-dropdown__item").filter(has_text="民政").first.click()
    by_test(dialog, "export-submit").click()
    row = by_test(page, "export-row").filter(has_text="民政").first
    row.wait_for()
    with page.expect_download() as download_info:
        by_test(row, "download-xlsx").click()
    saved = tmp_path / download_info.value.suggested_filename
    download_info.value.save_as(saved)
    assert saved.suffix == ".xlsx" and zipfile.is_zipfile(saved)
    with page.expect_download() as bundle_info:
        by_test(row, "download-json").click()
    bundle_path = tmp_path / bundle_info.value.suggested_filename
    bundle_info.value.save_as(bundle_path)
    bundle = json.loads(bundle_path.read_text(encoding="utf-8"))
    assert bundle["export"]["department"] == "civil_affairs"  # the officer's own department's bundle
    shot(page, "console-exports")

    with staff_session(e2e_server.url, "nq_staff") as nq:
        export = next(e for e in nq.get("/api/exports").json()["items"] if e["department"] == "civil_affairs")

    officer = desk_context(browser, e2e_server.url).new_page()
    console_sign_in(officer, "rs_officer")
    officer.wait_for_url(re.compile(r"#/exports"))
    by_test(officer, "exports-table").wait_for()
    assert by_test(officer, "export-row").filter(has_text="民政").count() == 0
    officer.goto(f"/console/#/exports?id={export['id']}")
    denial = by_test(officer, "export-denied")
    denial.wait_for()
    assert "没有" in denial.inner_text() or "无权" in denial.inner_text()
    shot(officer, "console-exports-other-department")


def test_enrolment_asks_consent_then_captures_the_face_with_the_webcam(launch, face_y4m, e2e_server, staff):
    """Staff enrol a new resident at the desk: consent first, then the webcam; the template then matches."""
    resident = new_resident(staff, a_name("录"), age=88, address="南桥镇正阳路 3号")

    browser = launch(face_y4m)
    page = desk_context(browser, e2e_server.url).new_page()
    console_sign_in(page, "nq_staff")
    page.goto(f"/console/#/residents/{resident['id']}")
    state = by_test(page, "face-state")
    state.wait_for()
    assert state.get_attribute("data-enrolled") == "false" and "尚未录入" in state.inner_text()
    by_test(page, "go-enrol").click()
    consent = by_test(page, "enrol-consent")
    consent.wait_for()
    assert by_test(page, "consent-record").is_disabled()  # nothing is captured before the consent is recorded
    by_test(page, "consent-paper").click()
    by_test(page, "consent-explained").click()
    shot(page, "console-enrol-consent")
    by_test(page, "consent-record").click()
    by_test(page, "enrol-capture").wait_for()
    page.wait_for_function("() => { const v = document.querySelector('[data-test=enrol-video]'); "
                           "return v && v.videoWidth > 0 }")
    by_test(page, "burst").click()
    page.wait_for_function("() => Number(document.querySelector('[data-test=frame-count]').innerText) >= 5",
                           timeout=30_000)
    shot(page, "console-enrol-frames")
    by_test(page, "enrol-upload").click()
    by_test(page, "enrol-done").wait_for(timeout=60_000)
    shot(page, "console-enrol-done")
    by_test(page, "enrol-back").click()
    page.wait_for_function("() => document.querySelector('[data-test=face-state]')?.dataset.enrolled === 'true'")
    assert "工作人员录入" in by_test(page, "face-state").inner_text()

    consents = staff.get(f"/api/residents/{resident['id']}/consents").json()["items"]
    assert [c["kind"] for c in consents if c.get("revoked_at") is None] == ["biometric"]
    outcome = certify_through_api(staff, resident["id"])  # the webcam template is the one matched
    assert outcome["decision"] == "pass", outcome


def test_home_visit_is_recorded_by_one_and_confirmed_by_another(launch, face_y4m, e2e_server, staff, tmp_path):
    """The human fallback for someone who cannot pass a face check: two staff, a photo, then certified."""
    name = a_name("访")
    new_resident(staff, name, age=101, address="南桥镇古华路 9号", phone=False)
    photo = tmp_path / "上门.jpg"
    photo.write_bytes(clips.enrolment_frames()[0])

    browser = launch(face_y4m)
    page = desk_context(browser, e2e_server.url).new_page()
    keys: dict[str, str | None] = {}  # each create carries its own Idempotency-Key (issue 14 item 5)

    def remember_key(request) -> None:
        if request.method == "POST" and ("/home-visits" in request.url or "/attest" in request.url):
            keys[request.url.rsplit("/", 1)[-1]] = request.headers.get("idempotency-key")

    page.on("request", remember_key)
    console_sign_in(page, "nq_staff")
    page.locator("[data-menu='/home-visits']").click()
    picker = by_test(page, "visit-resident")
    picker.click()
    picker.locator("input").fill(name)
    page.locator(".el-select-dropdown__item").filter(has_text=name).first.click()
    by_test(page, "visit-photo").set_input_files(str(photo))
    by_test(page, "visit-note").fill("卧床，神志清楚，能对答")
    by_test(page, "visit-submit").click()
    mine = by_test(page, "visit-row").filter(has_text=name)
    mine.wait_for()
    assert by_test(mine, "attest").count() == 0 and "另一位工作人员" in mine.inner_text()  # not alone
    shot(page, "console-home-visit-recorded")

    second = desk_context(browser, e2e_server.url).new_page()
    second.on("request", remember_key)
    console_sign_in(second, "nq_admin")
    second.locator("[data-menu='/home-visits']").click()
    row = by_test(second, "visit-row").filter(has_text=name)
    row.wait_for()
    by_test(row, "attest").click()
    confirm(second, "我已核实，确认")
    row.wait_for(state="detached")
    shot(second, "console-home-visit-confirmed")
    assert set(keys) == {"home-visits", "attest"} and all(keys.values()), keys
    assert keys["home-visits"] != keys["attest"]

    period = staff.get("/api/periods/current").json()
    rows = staff.get(f"/api/periods/{period['id']}/residents", params={"q": name}).json()["items"]
    assert [(r["status"], r["method"]) for r in rows] == [("certified", "home_visit")], rows


def test_staff_with_totp_enter_the_code_after_the_password(launch, face_y4m, e2e_server, staff):
    """Staff who turned on TOTP are asked for it on the login page, and are refused with a wrong one."""
    import pyotp

    username = f"totp_{secrets.token_hex(3)}"
    community_id = staff.get("/api/auth/me").json()["user"]["community_id"]
    created = subprocess.run(
        [sys.executable, "-m", "backend", "create-staff", username, "--role", "community_staff",
         "--display-name", "刘动态", "--community-id", str(community_id)],
        input=f"{DEMO_PASSWORD}\n", text=True, capture_output=True, env=e2e_server.env, cwd=REPO_ROOT, timeout=60)
    assert created.returncode == 0, created.stderr
    with staff_session(e2e_server.url, username) as own:
        uri = own.post("/api/auth/staff/totp/setup").json()["otpauth_uri"]
        totp = pyotp.parse_uri(uri)
        assert own.post("/api/auth/staff/totp/confirm", json={"code": totp.now()}).status_code == 200

    browser = launch(face_y4m)
    page = desk_context(browser, e2e_server.url).new_page()
    page.goto("/console/")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="登录").click()
    code = page.locator("input[name=totp]")
    code.wait_for()
    assert "动态验证码" in page.get_by_role("alert").inner_text()
    code.fill("000000" if totp.now() != "000000" else "111111")
    page.get_by_role("button", name="登录").click()
    page.get_by_role("alert").filter(has_text="不正确").wait_for()
    code.fill(totp.now())
    page.get_by_role("button", name="登录").click()
    by_test(page, "who").wait_for()
    assert by_test(page, "who").inner_text() == "刘动态"
    shot(page, "console-totp-signed-in")


# Element Plus is imported on demand (console/vite.config.js) and icons are registered by name
# (console/src/icons.js). What the build cannot see fails silently in production, so the page is read:
# an <el-*> tag left in the DOM is a component that was not imported, an el-icon without an <svg> is an
# icon name missing from the registry (`:icon="'Refresh'"` resolves at run time, and Vue does not warn).
UNRESOLVED = """() => [
  ...[...document.querySelectorAll('*')].filter((el) => el.tagName.startsWith('EL-')).map((el) => el.tagName),
  ...[...document.querySelectorAll('i.el-icon')].filter((i) => !i.querySelector('svg')).map((i) => i.innerHTML),
]"""


def watch_console(page) -> list[str]:
    """Errors, page exceptions and Vue / Element Plus warnings the page logs (Element Plus warns even in production).

    The API's own refusals are left out: the browser logs every 4xx/5xx answer, and pages show those
    (the chain page's 503 without a chain is expected on this server).
    """
    logged: list[str] = []

    def on_console(message) -> None:
        text = message.text
        if message.type == "error" and text.startswith("Failed to load resource") and "/api/" in message.location.get("url", ""):
            return
        if message.type == "error" or (message.type == "warning" and ("[Vue warn]" in text or "ElementPlus" in text)):
            logged.append(f"{message.type}: {text[:300]}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: logged.append(f"pageerror: {error}"))
    return logged


CONSOLE_PAGES = ["/month", "/residents", "/import", "/review", "/home-visits", "/passive", "/exports", "/trends",
                 "/chain", "/audit"]


def test_every_page_opens_with_300_residents_and_is_timed(launch, face_y4m, e2e_server, staff):
    residents = staff.get("/api/residents", params={"size": 1}).json()
    assert residents["total"] >= 300
    browser = launch(face_y4m)
    page = desk_context(browser, e2e_server.url).new_page()
    logged = watch_console(page)
    started = time.monotonic()
    console_sign_in(page, "nq_admin")
    timings: dict[str, float] = {"login (first load, s)": round(time.monotonic() - started, 3)}
    first = page.evaluate("() => performance.getEntriesByType('navigation')[0].toJSON()")
    timings["first load: DOMContentLoaded (ms)"] = round(first["domContentLoadedEventEnd"], 1)
    timings["first load: load event (ms)"] = round(first["loadEventEnd"], 1)
    for path in CONSOLE_PAGES:
        page.evaluate("() => performance.mark('go')")
        page.locator(f"[data-menu='{path}']").click()
        page.wait_for_url(re.compile(f"#{path}"))
        page.locator(".page-title h2").wait_for()
        page.wait_for_load_state("networkidle")
        page.wait_for_function("() => !document.querySelector('.el-loading-mask:not([style*=\"display: none\"])')")
        elapsed = page.evaluate("() => performance.measure('page', 'go').duration")
        timings[f"{path} (ms)"] = round(elapsed, 1)
        assert page.get_by_text("出错").count() == 0 or path == "/chain", f"{path} showed an error"
        assert not page.evaluate(UNRESOLVED), f"{path} has components that did not resolve: {page.evaluate(UNRESOLVED)}"
        shot(page, f"console-page{path.replace('/', '-')}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "console-timing.json").write_text(json.dumps(timings, ensure_ascii=False, indent=2))
    print("console page timings:", json.dumps(timings, ensure_ascii=False))
    page.locator("[data-menu='/residents']").click()
    by_test(page, "resident-row").first.wait_for()
    assert by_test(page, "resident-row").count() >= 10  # the first page of the 300 is really listed
    assert not logged, "the browser console reported problems:\n" + "\n".join(logged)
