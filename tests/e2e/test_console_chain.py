"""The console's 存证与验证 page against a real chain: a sequencer and three department witnesses
(`chain.devstack`), a server with its background worker on, so a certification's credential is
issued and anchored the way production does it. Staff see the cosigned checkpoint and every
witness, paste the credential and see every check pass; a tampered copy fails in words.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chain.devstack import Devstack, free_port
from tests.e2e.conftest import (
    E2EServer,
    by_test,
    console_sign_in,
    desk_context,
    running_server,
    shot,
    staff_session,
)
from tests.e2e.test_console import a_name, new_resident
from tests.support import clips

pytestmark = pytest.mark.browser

DEPARTMENTS = ("civil_affairs", "social_security", "health")


@pytest.fixture(scope="module")
def chained_server(tmp_path_factory: pytest.TempPathFactory, miniapp_dist: Path,
                   console_dist: Path) -> Iterator[E2EServer]:
    chain_dir = tmp_path_factory.mktemp("e2e-chain")
    stack = Devstack(chain_dir, port=free_port(), witness_ports={d: free_port() for d in DEPARTMENTS})
    with stack:
        stack.write_manifest()
        with running_server(tmp_path_factory.mktemp("e2e-chained-data"), miniapp_dist, console_dist,
                            BACKGROUND_WORKER="true", CHAIN_URL=stack.url,
                            CHAIN_SUBMITTER_KEY_FILE=str(chain_dir / "sequencer" / "submitters" / "backend.key"),
                            CHAIN_TRUST_FILE=str(chain_dir / "trust.json")) as server:
            yield server


def anchored_credential(staff: httpx.Client, resident_id: int, timeout: float = 90.0) -> dict:
    """Wait for the worker to issue the credential and store its inclusion proof under a final checkpoint."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = staff.get("/api/credentials", params={"resident_id": resident_id}).json()["items"]
        if items and items[0]["anchored"]:
            return items[0]
        time.sleep(1)
    raise AssertionError(f"no anchored credential for resident {resident_id} after {timeout:.0f} s")


def test_chain_page_shows_the_witnessed_log_and_verifies_a_pasted_credential(chained_server, launch, face_y4m):
    server = chained_server
    with staff_session(server.url, "nq_staff") as staff, staff_session(server.url, "nq_admin") as admin:
        resident = new_resident(staff, a_name("链"), age=97, address="南桥镇江海路 5号")
        visit = staff.post(f"/api/residents/{resident['id']}/home-visits",
                           files={"photo": ("visit.jpg", clips.enrolment_frames()[0], "image/jpeg")},
                           data={"note": "卧床，上门核验"})
        assert visit.status_code == 201, visit.text
        assert admin.post(f"/api/home-visits/{visit.json()['id']}/attest").status_code == 200
        credential = anchored_credential(staff, resident["id"])
        public = httpx.get(f"{server.url}/credentials/{credential['id']}", timeout=30).json()

    browser = launch(face_y4m)
    page = desk_context(browser, server.url).new_page()
    console_sign_in(page, "nq_staff")
    page.locator("[data-menu='/chain']").click()
    size = by_test(page, "chain-size")
    size.wait_for()
    page.wait_for_function("() => Number(document.querySelector('[data-test=chain-size]').innerText) >= 1")
    assert by_test(page, "witness-row").count() == 3
    assert by_test(page, "chain-quorum").inner_text().replace(" ", "").endswith("/3")
    assert "已验证" in by_test(page, "chain-verified").inner_text() or "通过" in by_test(page, "chain-verified").inner_text()

    by_test(page, "verify-input").fill(json.dumps(public, ensure_ascii=False))
    by_test(page, "verify-submit").click()
    result = by_test(page, "verify-result")
    result.wait_for()
    assert result.get_attribute("data-verified") == "true", result.inner_text()
    checks = by_test(result, "verify-check")
    assert checks.count() >= 3
    assert all(checks.nth(i).get_attribute("data-ok") != "false" for i in range(checks.count()))
    shot(page, "console-chain-verified")

    forged = copy.deepcopy(public)
    forged["credential"]["credentialSubject"]["period"] = "2020-01"  # back-dated by hand
    by_test(page, "verify-input").fill(json.dumps(forged, ensure_ascii=False))
    by_test(page, "verify-submit").click()
    page.wait_for_function("() => document.querySelector('[data-test=verify-result]')?.dataset.verified === 'false'")
    failed = by_test(page, "verify-check").and_(page.locator("[data-ok=false]"))
    assert failed.count() >= 1 and "签名" in by_test(page, "verify-result").inner_text()
    shot(page, "console-chain-forged")


def test_officer_verifies_a_whole_export_bundle_and_its_manifest_online(chained_server, launch, face_y4m, tmp_path):
    """The civil-affairs officer checks the package they downloaded, with our server's pinned roots."""
    server = chained_server
    with staff_session(server.url, "nq_staff") as staff:
        period = staff.get("/api/periods/current").json()
        created = staff.post("/api/exports", json={"period_id": period["id"], "department": "civil_affairs"})
        assert created.status_code == 201, created.text
        export_id = created.json()["id"]
    with staff_session(server.url, "mz_officer") as officer:
        deadline = time.monotonic() + 90
        while not officer.get(f"/api/exports/{export_id}").json().get("anchored"):
            assert time.monotonic() < deadline, "the export was not anchored in time"
            time.sleep(1)
        bundle = tmp_path / "bundle.json"
        bundle.write_bytes(officer.get(f"/api/exports/{export_id}/files/json").content)
        manifest = tmp_path / "manifest.json"
        manifest.write_bytes(officer.get(f"/api/exports/{export_id}/files/manifest").content)

    page = desk_context(launch(face_y4m), server.url).new_page()
    console_sign_in(page, "mz_officer")
    page.locator("[data-menu='/chain']").click()
    by_test(page, "verify-file").locator("input[type=file]").set_input_files(str(bundle))
    by_test(page, "bundle-manifest-file").locator("input[type=file]").set_input_files(str(manifest))
    by_test(page, "bundle-verify").click()
    result = by_test(page, "bundle-verify-result")
    result.wait_for(timeout=60_000)
    assert result.get_attribute("data-verified") == "true", result.inner_text()
    assert result.get_attribute("data-trust") == "server_pinned"
    own = by_test(page, "bundle-self-report")  # the bundle's own signature: its month and completeness
    assert own.get_attribute("data-verified") == "true" and "数据包签名" in own.inner_text()
    shot(page, "console-chain-bundle-verified")

