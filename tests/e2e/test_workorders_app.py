"""随手拍 in the phone app, in a real Chromium whose camera looks at a point's sign (DESIGN §9).

1. staff add a QR point; its sign, as the console shows it, is what the phone camera sees (a `.y4m`
   made from the screenshot); a resident taps 随手拍 on home, scans the sign, the report opens with
   the exact place, takes a photo (a 3000 px picture with GPS in its EXIF, made smaller on the phone
   before it is sent), picks 路灯损坏 among big pictograms and sends it;
2. a neighbour scans the same sign, picks the same category and is shown that report first, with
   its photo: 我也遇到 follows it instead of filing a new one;
3. the community handles it (API); the resident's message leads to the case, where the call-back
   asks 解决了吗？ — 没解决 reopens it; after the second round 解决了, 满意 closes it; the neighbour
   heard of each step too;
4. a helper reports for the elder they help (代报), at an address without a sign; a sign's link opened
   by the phone's own camera app lands on the report with its place.
Every new screen passes the elder-mode size rules and axe-core at 390 and 360 px (tests/e2e/a11y.py);
screenshots go to test-artifacts/e2e/.
"""

from __future__ import annotations

import io
import re

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.e2e import feeds
from tests.e2e.a11y import check_desk_screen, check_phone_screen
from tests.e2e.conftest import by_test, console_sign_in, desk_context, phone_context, staff_session
from tests.e2e.test_miniapp import sign_in, unique_phone
from tests.e2e.test_miniapp_shell import a_resident
from tests.integration.workorders_support import photo_with_gps
from tests.support.qr import decode_qr

pytestmark = pytest.mark.browser


def new_point(staff: httpx.Client, name: str, *, lat: float = 30.91875, long: float = 121.47602) -> dict:
    """A lamp post with a sign; tests put theirs 200 m apart, so no test's cases are another's duplicates."""
    created = staff.post("/api/workorders/points", json={
        "name": name, "kind": "lamp_post", "address": f"南桥镇解放东路 128弄 {name}", "grid": "第二网格",
        "lat": lat, "long": long})
    assert created.status_code == 201, created.text
    return created.json()


def sign_feed(browser, server_url: str, point: dict, feed_dir) -> object:
    """The point's sign as staff see it in the console (点位 → 查看), photographed into a camera feed."""
    page = desk_context(browser, server_url).new_page()
    console_sign_in(page, "nq_staff")
    page.goto("/console/#/workorders/points")
    by_test(page, f"wo-sign-show-{point['code']}").click()
    sign = by_test(page, "wo-sign")
    sign.wait_for()
    page.wait_for_function("() => document.querySelector('[data-test=wo-sign-qr]').naturalWidth > 0")
    check_desk_screen(page, "wo-console-sign")
    picture = feed_dir / f"sign-{point['code']}.png"
    sign.screenshot(path=str(picture))
    assert decode_qr(picture.read_bytes()) == point["qr_content"]  # what a scanner reads from that sign
    page.context.close()
    return feeds.still_feed(feed_dir / f"sign-{point['code']}.y4m", picture, seconds=3)


def scan_the_sign(page, point: dict, shots: str | None = None) -> None:
    """From home: 随手拍 → 扫一扫 → the camera reads the sign → the report knows the place."""
    page.get_by_test_id("go-report").click()
    page.get_by_test_id("scan-point").wait_for()
    if shots:
        check_phone_screen(page, f"{shots}-place")
    page.get_by_test_id("scan-point").click()
    page.wait_for_url(re.compile(r"#/report/scan"))
    if shots:
        page.wait_for_function("() => { const v = document.querySelector('video'); return v && v.videoWidth > 0 }")
        check_phone_screen(page, f"{shots}-scan")
    page.get_by_test_id("place-name").wait_for(timeout=30_000)  # shown once the camera has read the sign
    assert page.get_by_test_id("place-name").inner_text() == point["name"]
    assert "不用定位" in page.get_by_test_id("place").inner_text()


# what the app hands to fetch() as a photo upload, read in the page (Playwright does not see a Blob body)
RECORD_UPLOADS = """
(() => {
  const send = window.fetch.bind(window);
  const has = (bytes, text) => {
    const needle = [...text].map((c) => c.charCodeAt(0));
    outer: for (let i = 0; i + needle.length <= bytes.length; i++) {
      for (let j = 0; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer;
      return true;
    }
    return false;
  };
  window.__uploads = [];
  window.fetch = async (input, init) => {
    const body = init && init.body;
    if (body instanceof FormData && body.get('photo') instanceof Blob) {
      const photo = body.get('photo');
      const bytes = new Uint8Array(await photo.arrayBuffer());
      window.__uploads.push({ size: photo.size, type: photo.type, exif: has(bytes, 'Exif'),
                              camera: has(bytes, 'ZhilianTestCam') });
    }
    return send(input, init);
  };
})();
"""


def big_photo(tmp_path) -> tuple:
    """A phone camera's picture: 3000 x 2250 px, with the camera, the owner and a GPS position in its EXIF."""
    data = photo_with_gps(size=(3000, 2250))
    path = tmp_path / "lamp.jpg"
    path.write_bytes(data)
    return path, data


def test_scan_report_follow_and_call_back(e2e_server, staff, feed_dir, launch, tmp_path):
    point = new_point(staff, "9号楼前路灯")
    browser = launch(sign_feed(launch(grey_feed(feed_dir)), e2e_server.url, point, feed_dir))

    # ---- 1. the resident scans the sign and reports with a photo ----
    phone = unique_phone()
    a_resident(staff, phone=phone, name="周桂芳")
    page = phone_context(browser, e2e_server.url).new_page()
    page.add_init_script(RECORD_UPLOADS)
    sign_in(page, e2e_server, phone)
    page.get_by_test_id("go-report").wait_for()
    check_phone_screen(page, "wo-app-home")
    scan_the_sign(page, point, shots="wo-app-report")
    check_phone_screen(page, "wo-app-report-photo")

    picture, original = big_photo(tmp_path)
    page.get_by_test_id("camera-input").set_input_files(str(picture))
    page.get_by_test_id("picked-photo").wait_for()
    check_phone_screen(page, "wo-app-report-photo-taken")
    page.get_by_test_id("photo-next").click()
    page.get_by_test_id("category-FAC-01").wait_for()
    check_phone_screen(page, "wo-app-report-category")
    page.get_by_test_id("category-FAC-01").click()
    page.get_by_test_id("description").wait_for()  # nobody reported it yet: straight on
    page.get_by_test_id("description").fill("9号楼前的路灯晚上不亮，已经三天了")
    check_phone_screen(page, "wo-app-report-describe")
    page.get_by_test_id("send").click()
    page.get_by_test_id("sent").wait_for()
    check_phone_screen(page, "wo-app-report-sent")
    number = re.search(r"GD\d{6}", page.get_by_test_id("sent").inner_text()).group(0)
    wid = int(number[2:])

    # the photo left the phone smaller and without its EXIF; the server stored it without EXIF too
    uploads = page.evaluate("() => window.__uploads")
    assert len(uploads) == 1, uploads
    [sent] = uploads
    print(f"photo: {len(original)} bytes from the camera (3000 x 2250), {sent['size']} bytes sent")
    assert 0 < sent["size"] < len(original) / 2 and sent["type"] == "image/jpeg", sent
    assert not sent["exif"] and not sent["camera"], sent  # nothing of the camera's EXIF left the phone
    case = staff.get(f"/api/workorders/{wid}").json()
    assert case["place"]["point"]["id"] == point["id"] and case["category"]["code"] == "FAC-01"
    [photo] = case["photos"]
    assert max(photo["width"], photo["height"]) <= 1600 and photo["width"] > photo["height"]
    stored = staff.get(photo["url"]).content
    assert "exif" not in Image.open(io.BytesIO(stored)).info and b"ZhilianTestCam" not in stored

    page.get_by_test_id("see-report").click()
    page.get_by_test_id("report-steps").wait_for()
    assert page.get_by_test_id("step-submitted").inner_text().count("现在在这一步") == 1
    page.get_by_test_id("photo-before").wait_for()
    check_phone_screen(page, "wo-app-case-submitted")

    # ---- 2. a neighbour scans the same sign: the same problem is already there, 我也遇到 ----
    neighbour = phone_context(browser, e2e_server.url).new_page()
    neighbour_phone = unique_phone()
    a_resident(staff, phone=neighbour_phone, name="吴淑英")
    sign_in(neighbour, e2e_server, neighbour_phone)
    scan_the_sign(neighbour, point)
    neighbour.get_by_test_id("photo-next").click()
    neighbour.get_by_test_id("category-FAC-01").click()
    same = neighbour.get_by_test_id(f"same-{wid}")
    same.wait_for()
    neighbour.wait_for_function(f"() => document.querySelector('[data-testid=same-{wid}] img')?.naturalWidth > 0")
    assert "9号楼前的路灯晚上不亮" in same.inner_text()
    box = same.locator("img").bounding_box()
    assert box["width"] >= 300, box  # a large photo, to recognise the place
    check_phone_screen(neighbour, "wo-app-report-same")
    same.get_by_test_id("me-too").click()
    neighbour.get_by_test_id("followed").wait_for()
    check_phone_screen(neighbour, "wo-app-report-followed")
    assert staff.get(f"/api/workorders/{wid}").json()["followers"] == 1

    # ---- 3. the community handles it; the message leads to the case; 没解决 reopens ----
    resolve_round(e2e_server.url, staff, wid, round_=1)
    page.goto("/m/#/")
    page.get_by_test_id("go-messages").click()
    resolved = page.get_by_test_id("message-wo_resolved")
    resolved.wait_for()
    check_phone_screen(page, "wo-app-messages")
    page.get_by_test_id("act-wo_resolved").click()
    page.wait_for_url(re.compile(rf"#/reports/{wid}$"))
    page.get_by_test_id("callback").wait_for()
    page.get_by_test_id("photo-after").wait_for()
    check_phone_screen(page, "wo-app-callback")
    page.get_by_test_id("cb-unresolved").click()
    page.get_by_test_id("report-notice").wait_for()
    assert "重新办理" in page.get_by_test_id("report-notice").inner_text()
    page.get_by_test_id("report-state").filter(has_text="重新办理").wait_for()
    check_phone_screen(page, "wo-app-case-reopened")
    after = staff.get(f"/api/workorders/{wid}").json()
    assert after["state"] == "reopened" and after["reopen_count"] == 1 and after["clock"]["round"] == 2

    # ---- the second round: 解决了, 满意 ----
    resolve_round(e2e_server.url, staff, wid, round_=2)
    page.reload()
    page.get_by_test_id("cb-resolved").click()
    page.get_by_test_id("cb-satisfied").wait_for()
    check_phone_screen(page, "wo-app-callback-satisfied")
    page.get_by_test_id("cb-satisfied").click()
    page.get_by_test_id("report-state").filter(has_text="已评价").wait_for()
    assert page.get_by_test_id("step-called_back").inner_text().count("已完成") == 1
    done = staff.get(f"/api/workorders/{wid}").json()
    assert done["state"] == "called_back" and done["satisfied"] is True

    # my reports list the case with its progress in words; the neighbour's 我也遇到 list it too
    page.goto("/m/#/reports")
    page.get_by_test_id(f"report-{wid}").wait_for()
    assert "已评价" in page.get_by_test_id(f"report-{wid}").inner_text()
    check_phone_screen(page, "wo-app-reports")
    neighbour.goto("/m/#/reports?scope=following")
    neighbour.get_by_test_id(f"report-{wid}").wait_for()
    check_phone_screen(neighbour, "wo-app-reports-following")
    neighbour.goto("/m/#/messages")
    neighbour.get_by_test_id("message-wo_resolved").first.wait_for()
    neighbour.get_by_test_id("act-wo_resolved").first.click()
    neighbour.wait_for_url(re.compile(rf"#/reports/{wid}$"))
    neighbour.get_by_test_id("report-history").wait_for()
    assert neighbour.get_by_test_id("callback").count() == 0  # only the reporter answers the call-back
    check_phone_screen(neighbour, "wo-app-case-followed")
    page.context.close()
    neighbour.context.close()


def grey_feed(feed_dir):
    """A camera that sees nothing in particular (the console's browser does not use it)."""
    return feeds.write_y4m(feed_dir / "grey.y4m", [np.full((feeds.H, feeds.W, 3), 128, np.uint8)])


def resolve_round(url: str, staff: httpx.Client, wid: int, *, round_: int) -> None:
    """What the community does over the API: accept (first round), dispatch to 物业, the handler starts,
    closes with an after-photo, the dispatcher checks it."""
    if round_ == 1:
        assert staff.post(f"/api/workorders/{wid}/moves", json={"action": "accept", "note": "签收"}).status_code == 200
    moved = staff.post(f"/api/workorders/{wid}/moves", json={
        "action": "dispatch", "note": "派物业修路灯", "team_id": team_id(staff, "物业")})
    assert moved.status_code == 200, moved.text
    with staff_session(url, "nq_admin") as handler:  # the 物业 team's member in the demo
        assert handler.post(f"/api/workorders/{wid}/moves", json={"action": "start", "note": "去看看"}).status_code == 200
        sent = handler.post(f"/api/workorders/{wid}/photos", data={"kind": "after"},
                            files={"photo": ("after.jpg", photo_with_gps(size=(640, 480)), "image/jpeg")})
        assert sent.status_code == 201, sent.text
        closed = handler.post(f"/api/workorders/{wid}/moves", json={"action": "submit", "note": f"第{round_}次：换了灯泡"})
        assert closed.status_code == 200, closed.text
    checked = staff.post(f"/api/workorders/{wid}/moves", json={"action": "verify", "note": "晚上去看过，亮了"})
    assert checked.status_code == 200, checked.text


def team_id(staff: httpx.Client, name: str) -> int:
    return next(t["id"] for t in staff.get("/api/workorders/teams").json()["items"] if t["name"] == name)


def approved_helper(server, staff: httpx.Client, elder: dict, helper_phone: str) -> None:
    """The helper scanned the elder's card (its QR code read back from the PNG staff print) and staff approved."""
    card = staff.get(f"/api/residents/{elder['id']}/qr.png")
    assert card.status_code == 200, card.text
    token = decode_qr(card.content)
    with httpx.Client(base_url=server.url, timeout=60) as app:
        assert app.post("/api/auth/app/otp", json={"phone": helper_phone}).status_code in (200, 202)
        login = app.post("/api/auth/app/login", json={"phone": helper_phone, "code": server.login_code(helper_phone)})
        assert login.status_code == 200, login.text
        app.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        asked = app.post("/api/app/bindings", json={"token": token, "relation": "child"})
        assert asked.status_code == 201, asked.text
    approved = staff.post(f"/api/residents/{elder['id']}/helpers/{asked.json()['id']}/approve")
    assert approved.status_code == 200, approved.text


def test_a_helper_reports_for_the_elder_at_an_address(e2e_server, staff, feed_dir, launch):
    elder = a_resident(staff, phone=unique_phone(), name="郑秀珍")
    helper_phone = unique_phone()
    approved_helper(e2e_server, staff, elder, helper_phone)

    page = phone_context(launch(grey_feed(feed_dir)), e2e_server.url).new_page()
    sign_in(page, e2e_server, helper_phone)
    page.get_by_test_id("go-report").click()
    page.get_by_test_id("address").fill("解放东路 128弄 15号楼 3单元楼道")
    page.get_by_test_id("address-next").click()
    assert page.get_by_test_id("place-name").inner_text() == "解放东路 128弄 15号楼 3单元楼道"
    page.get_by_test_id("photo-next").click()  # 不拍照，下一步
    page.get_by_test_id("category-SAF-01").click()
    page.get_by_test_id(f"for-elder-{elder['id']}").click()  # 替郑*珍 (代报)
    page.get_by_test_id("description").fill("楼道里堆了旧家具，老人下楼不方便")
    check_phone_screen(page, "wo-app-report-on-behalf")
    page.get_by_test_id("send").click()
    page.get_by_test_id("sent").wait_for()
    wid = int(re.search(r"GD(\d{6})", page.get_by_test_id("sent").inner_text()).group(1))

    case = staff.get(f"/api/workorders/{wid}").json()
    assert case["on_behalf"] is True and case["on_behalf_resident"]["id"] == elder["id"]
    assert case["place"]["address"] == "解放东路 128弄 15号楼 3单元楼道" and case["place"]["point"] is None
    assert case["history"][0]["note"].startswith("居民代报")

    # a phone's own camera app opens a sign's link: the app's scan screen hands it to the report
    demo = next(p for p in staff.get("/api/workorders/points").json()["items"] if p["code"] == "L001")
    page.goto("/m/" + demo["qr_content"].split("/m/", 1)[1])
    page.wait_for_url(re.compile(r"#/report\?t="))
    page.get_by_test_id("place-name").wait_for()
    assert page.get_by_test_id("place-name").inner_text() == demo["name"]
    page.context.close()
