"""Issue 13.6: staff stay signed in when a page fires several requests after the access token expired.

The console's exports page loads departments, communities and exports at once. With an expired
access token all three get a 401 together; the console must refresh once and retry them, not send
the same refresh token three times (which the server reads as a stolen token and ends the sign-in).
"""

from __future__ import annotations

import json
import re
import time

import jwt
import pytest

from backend.settings import Settings
from tests.e2e.conftest import by_test, console_sign_in, desk_context

pytestmark = pytest.mark.browser

SESSION_KEY = "zhilian.console.session"


def expired_copy(access_token: str, secret: str) -> str:
    """The same access token as if it had been issued 20 minutes ago (signed with the server's key)."""
    claims = jwt.decode(access_token, options={"verify_signature": False})
    now = int(time.time())
    claims.update(iat=now - 1200, exp=now - 300)
    return jwt.encode(claims, secret, algorithm="HS256")


def test_parallel_requests_after_the_access_token_expired_stay_signed_in(launch, face_y4m, e2e_server):
    secret = Settings.from_env(e2e_server.env, env_file=None).secret_key
    browser = launch(face_y4m)
    context = desk_context(browser, e2e_server.url)
    page = context.new_page()
    console_sign_in(page, "nq_admin")
    page.goto("/console/#/exports")
    by_test(page, "exports-table").wait_for()

    saved = json.loads(page.evaluate(f"sessionStorage.getItem('{SESSION_KEY}')"))
    saved["access"] = expired_copy(saved["access"], secret)
    page.evaluate("([key, value]) => sessionStorage.setItem(key, value)", [SESSION_KEY, json.dumps(saved)])

    seen: list[tuple[str, int]] = []
    page.on("response", lambda r: seen.append((r.url, r.status)) if "/api/" in r.url else None)
    page.reload()
    by_test(page, "exports-table").wait_for()
    page.wait_for_load_state("networkidle")

    refreshes = [status for url, status in seen if url.endswith("/api/auth/refresh")]
    refused = [url for url, status in seen if status == 401]
    assert len(refused) >= 2, seen  # the page really sent several requests with the expired token
    assert refreshes == [200], seen  # ... and they shared one refresh
    answered = {url for url, status in seen if status == 200}
    assert set(refused) <= answered, seen  # each was retried with the new token and answered
    assert not re.search(r"#/login", page.url), page.url
    assert by_test(page, "who").is_visible()

    # the sign-in is still good on the server: another page loads with the rotated tokens
    seen.clear()
    with page.expect_response(lambda r: "/api/periods/current" in r.url) as board:
        page.locator("[data-menu='/month']").click()
    assert board.value.status == 200
    by_test(page, "month-rate").wait_for()
    assert seen and all(status == 200 for _, status in seen), seen
    assert not re.search(r"#/login", page.url)
    context.close()
