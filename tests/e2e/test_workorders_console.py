"""The console's work-order pages in a real Chromium over the seeded server (南桥社区's demo cases).

1. a resident's 随手拍 arrives on the dispatch board; the dispatcher signs it, dispatches it to the
   grid team with an assignee, the grid worker hands it back (退单) and it is transferred (改派) to
   the property team; the handler asks for more time, cannot approve it himself, another admin does;
   the handler closes it with an after-photo and the dispatcher checks it; the board's counts move
   with each step (new, per team, awaiting the call-back);
2. a second report of the same lamp is merged into the first from the case page;
3. staff enter a phone call; the map of open cases, the monthly figures (ECharts, the xlsx for the
   deliberation) and the QR points (add one, look at its sign, print it as PDF) work.
Every page and dialog passes axe-core with no violations; screenshots go to test-artifacts/e2e/.
"""

from __future__ import annotations

import io
import re
from datetime import datetime

import httpx
import pytest
from openpyxl import load_workbook

from tests.e2e.a11y import check_axe, check_desk_screen
from tests.e2e.conftest import by_test, console_sign_in, desk_context
from tests.e2e.test_miniapp import unique_phone
from tests.e2e.test_miniapp_shell import a_resident
from tests.e2e.test_workorders_app import grey_feed, new_point
from tests.integration.workorders_support import photo_with_gps

pytestmark = pytest.mark.browser


def app_client(server, phone: str) -> httpx.Client:
    """A resident signed in to the app's API (the SMS code read from the dev outbox)."""
    app = httpx.Client(base_url=server.url, timeout=60)
    assert app.post("/api/auth/app/otp", json={"phone": phone}).status_code in (200, 202)
    login = app.post("/api/auth/app/login", json={"phone": phone, "code": server.login_code(phone)})
    assert login.status_code == 200, login.text
    app.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    return app


def resident_report(server, staff: httpx.Client, point: dict, text: str) -> int:
    phone = unique_phone()
    a_resident(staff, phone=phone, name="孙秀英")
    app = app_client(server, phone)
    try:
        created = app.post("/api/app/workorders", json={
            "category_id": lamp_category(staff), "description": text, "point": point["qr_content"]})
        assert created.status_code == 201, created.text
        wid = created.json()["id"]
        sent = app.post(f"/api/app/workorders/{wid}/photos", data={"kind": "before"},
                        files={"photo": ("lamp.jpg", photo_with_gps(size=(800, 600)), "image/jpeg")})
        assert sent.status_code == 201, sent.text
    finally:
        app.close()
    return wid


def lamp_category(staff: httpx.Client) -> int:
    return next(c["id"] for c in staff.get("/api/workorders/categories").json()["items"] if c["code"] == "FAC-01")


def count(page, key: str) -> int:
    return int(by_test(page, f"wo-count-{key}").locator(".value").get_attribute("data-value"))


def team_open(page, name: str) -> int:
    return int(by_test(page, f"wo-team-{name}").locator("strong").get_attribute("data-value"))


def open_board(page) -> None:
    """The board, loaded afresh (going to the same hash route would keep the page as it was)."""
    page.goto("/console/#/workorders")
    page.reload()
    by_test(page, "wo-count-new").wait_for()
    page.wait_for_load_state("networkidle")


def open_case(page, wid: int) -> None:
    page.goto(f"/console/#/workorders/{wid}")
    page.reload()
    by_test(page, "wo-state").wait_for()
    page.wait_for_load_state("networkidle")


def typed(page, name: str):
    """The text box of a form item marked `name` (Element Plus puts the mark on the box itself, or around it)."""
    return page.locator(f"textarea[data-test='{name}'], input[data-test='{name}'], [data-test='{name}'] input")


def pick(page, select_test: str, option: str) -> None:
    """Choose `option` in an Element Plus select (its list opens in a layer at the end of the page)."""
    by_test(page, select_test).click()
    page.locator(".el-select-dropdown__item:visible", has_text=option).first.click()


def move(page, action: str, note: str, *, shot: str | None = None, before_confirm=None) -> None:
    """Press the move's button on the case page, fill in its dialog and confirm."""
    by_test(page, f"wo-action-{action}").click()
    dialog = by_test(page, "wo-move-dialog").locator("visible=true")
    typed(page, "wo-move-note").fill(note)
    if before_confirm:
        before_confirm()
    if shot:
        page.wait_for_timeout(300)  # the dialog's opening transition
        check_desk_screen(page, shot)
    by_test(page, "wo-move-confirm").click()
    dialog.wait_for(state="hidden")


def state_is(page, label: str) -> None:
    by_test(page, "wo-state").filter(has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")).wait_for()


def test_dispatch_transfer_extend_close_and_the_board_moves(e2e_server, staff, feed_dir, launch, tmp_path):
    point = new_point(staff, "11号楼路灯", lat=30.92075)
    browser = launch(grey_feed(feed_dir))
    desk = desk_context(browser, e2e_server.url).new_page()
    console_sign_in(desk, "nq_staff")
    open_board(desk)
    new0, callback0 = count(desk, "new"), count(desk, "callback")
    grid0, property0 = team_open(desk, "网格员"), team_open(desk, "物业")

    wid = resident_report(e2e_server, staff, point, "11号楼路灯一闪一闪")
    open_board(desk)
    assert count(desk, "new") == new0 + 1
    by_test(desk, "wo-count-new").click()  # the card filters the list: the new case is there
    by_test(desk, f"wo-open-{wid}").wait_for()
    check_desk_screen(desk, "wo-console-board")
    by_test(desk, f"wo-open-{wid}").click()
    desk.wait_for_url(re.compile(rf"#/workorders/{wid}$"))
    by_test(desk, "wo-state").wait_for()
    by_test(desk, "wo-photos-before").locator("img").wait_for()
    assert "11号楼路灯" in by_test(desk, "wo-place").inner_text()
    assert "孙秀英" in by_test(desk, "wo-reporter").inner_text()  # staff see who reported it, for the call-back
    check_desk_screen(desk, "wo-console-case-new")
    due = staff.get(f"/api/workorders/{wid}").json()["clock"]["due_at"]

    # 签收, then 派单 to the grid team with its member as the assignee
    move(desk, "accept", "已签收")
    state_is(desk, "已受理")
    move(desk, "dispatch", "请网格员先去看看", shot="wo-console-dispatch",
         before_confirm=lambda: (pick(desk, "wo-move-team", "网格员"), pick(desk, "wo-move-assignee", "王晓燕")))
    state_is(desk, "已派单")
    assert "网格员" in by_test(desk, "wo-team").inner_text() and "王晓燕" in by_test(desk, "wo-team").inner_text()
    open_board(desk)
    assert count(desk, "new") == new0 and team_open(desk, "网格员") == grid0 + 1

    # 退单 by the grid worker (the dispatcher is in that team in the demo), 改派 to the property team
    open_case(desk, wid)
    move(desk, "return", "路灯归物业维修，不是网格员能处理的", shot="wo-console-return")
    state_is(desk, "退单待处理")
    move(desk, "reassign", "改派物业维修", before_confirm=lambda: pick(desk, "wo-move-team", "物业"))
    state_is(desk, "已派单")
    assert staff.get(f"/api/workorders/{wid}").json()["clock"]["due_at"] == due  # bouncing never resets the clock
    open_board(desk)
    assert team_open(desk, "网格员") == grid0 and team_open(desk, "物业") == property0 + 1
    history = staff.get(f"/api/workorders/{wid}").json()["history"]
    assert [h["action"] for h in history][-3:] == ["dispatch", "return", "reassign"]

    # the property handler starts and asks for a day more; he cannot approve it himself
    handler = desk_context(browser, e2e_server.url).new_page()
    console_sign_in(handler, "nq_admin")
    open_case(handler, wid)
    move(handler, "start", "已联系电工")
    state_is(handler, "处置中")
    move(handler, "request_extension", "要等灯具到货", shot="wo-console-extension",
         before_confirm=lambda: typed(handler, "wo-move-hours").fill("24"))
    state_is(handler, "延期待审批")
    assert "24 小时" in by_test(handler, "wo-extension").inner_text()
    by_test(handler, "wo-action-approve_extension").click()
    typed(handler, "wo-move-note").fill("同意")
    by_test(handler, "wo-move-confirm").click()
    handler.locator(".el-message--error", has_text="另一位").wait_for()
    by_test(handler, "wo-move-dialog").get_by_role("button", name="取消").click()
    state_is(handler, "延期待审批")

    approver = desk_context(browser, e2e_server.url).new_page()
    console_sign_in(approver, "platform")
    open_case(approver, wid)
    move(approver, "approve_extension", "同意延期一天")
    state_is(approver, "处置中")
    after = staff.get(f"/api/workorders/{wid}").json()
    assert datetime.fromisoformat(after["clock"]["due_at"]) - datetime.fromisoformat(due) == \
        datetime.fromisoformat("2026-01-02T00:00:00") - datetime.fromisoformat("2026-01-01T00:00:00")
    approver.context.close()

    # closing needs the after-photo: the dialog refuses without one, then takes it
    photo = tmp_path / "after.jpg"
    photo.write_bytes(photo_with_gps(size=(1024, 768)))
    handler.reload()
    by_test(handler, "wo-state").wait_for()
    by_test(handler, "wo-action-submit").click()
    typed(handler, "wo-move-note").fill("换了新灯具，晚上亮了")
    by_test(handler, "wo-move-confirm").click()
    handler.locator(".el-message--error", has_text="整改后的照片").wait_for()
    by_test(handler, "wo-move-photo").set_input_files(str(photo))
    handler.get_by_alt_text("整改后照片预览").wait_for()
    check_desk_screen(handler, "wo-console-close")
    by_test(handler, "wo-move-confirm").click()
    state_is(handler, "待核查")
    by_test(handler, "wo-photos-after").locator("img").wait_for()
    handler.context.close()

    open_case(desk, wid)
    move(desk, "verify", "核查：路灯已亮")
    state_is(desk, "已办结")
    check_desk_screen(desk, "wo-console-case-resolved")
    open_board(desk)
    assert count(desk, "callback") == callback0 + 1 and team_open(desk, "物业") == property0
    by_test(desk, "wo-count-callback").click()
    by_test(desk, f"wo-open-{wid}").wait_for()

    # ---- 2. the same lamp reported again: merged into the first ----
    again = resident_report(e2e_server, staff, point, "11号楼门口的灯坏了")
    open_case(desk, again)
    by_test(desk, "wo-action-merge").click()
    by_test(desk, f"wo-merge-{wid}").click()
    typed(desk, "wo-move-note").fill("同一盏路灯，合并")
    check_desk_screen(desk, "wo-console-merge")
    by_test(desk, "wo-move-confirm").click()
    state_is(desk, "重复（已合并）")
    merged = staff.get(f"/api/workorders/{wid}").json()
    assert merged["duplicates"] == [again] and merged["followers"] == 1
    desk.context.close()


def test_map_figures_and_points(e2e_server, staff, feed_dir, launch):
    browser = launch(grey_feed(feed_dir))
    page = desk_context(browser, e2e_server.url).new_page()
    console_sign_in(page, "nq_staff")

    # a phone call entered by staff, at an address, with the caller's name for the call-back
    open_board(page)
    by_test(page, "wo-new-entry").click()
    pick(page, "wo-entry-category", "噪音扰民")
    typed(page, "wo-entry-description").fill("6号楼有人半夜唱卡拉OK（来电）")
    typed(page, "wo-entry-address").fill("6号楼 3单元")
    page.wait_for_timeout(300)
    check_desk_screen(page, "wo-console-entry")
    by_test(page, "wo-entry-save").click()
    page.wait_for_url(re.compile(r"#/workorders/\d+$"))
    by_test(page, "wo-state").filter(has_text="已提交").wait_for()
    assert "工作人员登记" in page.locator(".facts").inner_text()
    assert "6号楼 3单元" in by_test(page, "wo-place").inner_text()

    # the demo's open cases on a plain drawing of the points, and grouped by grid
    page.locator("[data-menu='/workorders/map']").click()
    by_test(page, "wo-map").wait_for()
    label = by_test(page, "wo-map").get_attribute("aria-label")
    assert "在办工单" in label and "3号楼前路灯" in label, label
    assert by_test(page, "wo-map-G001").count() == 1 and "件" in by_test(page, "wo-map-G001").text_content()
    assert "第一网格" in by_test(page, "wo-by-grid").inner_text()
    check_desk_screen(page, "wo-console-map")

    # this month's figures, drawn and downloadable for the deliberation
    page.locator("[data-menu='/workorders/figures']").click()
    by_test(page, "wo-figures-chart-category").locator("canvas").wait_for()
    assert int(by_test(page, "wo-figures-cases").inner_text()) > 0
    assert "路灯损坏" in by_test(page, "wo-figures-table-category").inner_text()
    assert "物业" in by_test(page, "wo-figures-table-team").inner_text()
    check_desk_screen(page, "wo-console-figures")
    with page.expect_download() as download:
        by_test(page, "wo-figures-xlsx").click()
    book = load_workbook(io.BytesIO(download.value.path().read_bytes()))
    cells = [str(c) for row in book.active.iter_rows(values_only=True) for c in row if c is not None]
    assert {"响应率", "按时办结率", "满意率", "重办率", "路灯损坏", "物业"} <= set(cells), cells[:40]

    # a new point: added, its sign shown, printed as a PDF
    page.locator("[data-menu='/workorders/points']").click()
    by_test(page, "wo-points-table").wait_for()
    check_desk_screen(page, "wo-console-points")
    by_test(page, "wo-points-new").click()
    typed(page, "wo-point-name").fill("18号楼电动车棚")
    typed(page, "wo-point-code").fill("C018")
    typed(page, "wo-point-address").fill("南桥镇解放东路 128弄 18号楼北侧")
    typed(page, "wo-point-lat").fill("30.9186")
    typed(page, "wo-point-long").fill("121.4751")
    page.wait_for_timeout(300)
    check_desk_screen(page, "wo-console-point-new")
    by_test(page, "wo-point-save").click()
    by_test(page, "wo-sign").wait_for()
    assert "18号楼电动车棚" in by_test(page, "wo-sign").inner_text()
    check_axe(page, "point sign")
    by_test(page, "wo-sign-dialog").get_by_role("button", name="Close").or_(
        by_test(page, "wo-sign-dialog").get_by_label("关闭此对话框")).first.click()
    with page.expect_download() as download:
        by_test(page, "wo-sign-print-C018").click()
    assert download.value.path().read_bytes().startswith(b"%PDF")
    created = [p for p in staff.get("/api/workorders/points").json()["items"] if p["code"] == "C018"]
    assert len(created) == 1 and created[0]["lat"] == pytest.approx(30.9186)
