"""Browser tests: the built miniapp, served by a real `python -m backend serve`, in Debian's Chromium.

The server runs as a subprocess with its own DATA_DIR (SQLite, in-process cache, the demo
community seeded), asks for `blink` and `turn_left` only (what the fake camera's clip does,
tests/e2e/feeds.py), and the tests read login codes from its dev SMS outbox, as a person reads
their phone. Chromium's camera is a `.y4m` file made at test time. Nothing here skips: a
missing Chromium or an unbuilt app fails with what to do (`.ci/run` installs Chromium;
`scripts/test` builds the app).
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO_ROOT, free_port
from tests.e2e import feeds

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "test-artifacts" / "e2e"
DEMO_PASSWORD = "Zhilian-demo-2026"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
PHONE_VIEWPORT = {"width": 390, "height": 844}  # a common phone, CSS pixels
DESKTOP_VIEWPORT = {"width": 1440, "height": 900}  # a staff member's office screen


@dataclass
class E2EServer:
    url: str
    data_dir: Path
    env: dict[str, str]
    log: Path

    def login_code(self, phone: str, timeout: float = 10.0) -> str:
        """The newest login code sent to `phone` (the dev sender keeps it in the outbox table)."""
        from backend.app import build_cipher
        from backend.settings import Settings

        index = build_cipher(Settings.from_env(self.env, env_file=None)).blind_index(phone, purpose="phone")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.closing(sqlite3.connect(self.data_dir / "zhilian.sqlite3", timeout=10)) as db:
                row = db.execute("SELECT body FROM outbound_message WHERE recipient_index = ? AND template = "
                                 "'login_code' ORDER BY id DESC LIMIT 1", (index,)).fetchone()
            if row and (found := re.search(r"\d{6}", row[0])):
                return found.group(0)
            time.sleep(0.2)
        raise AssertionError(f"no login code was sent to {phone}")


@pytest.fixture(scope="session")
def miniapp_dist() -> Path:
    """The built app; built here when missing (scripts/test builds it before the tests)."""
    return built_frontend("miniapp")


def built_frontend(name: str) -> Path:
    dist = REPO_ROOT / name / "dist"
    if not (dist / "index.html").is_file():
        if not (REPO_ROOT / "node_modules").is_dir():
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=REPO_ROOT, check=True)
        subprocess.run(["npm", "run", "build", "--workspace", name], cwd=REPO_ROOT, check=True)
    assert (dist / "index.html").is_file(), f"{name} did not build: run `npm ci && npm run build --workspace {name}`"
    return dist


@pytest.fixture(scope="session")
def console_dist() -> Path:
    """The built staff console; built here when missing (scripts/test builds it before the tests)."""
    return built_frontend("console")


@contextlib.contextmanager
def running_server(data_dir: Path, miniapp_dist: Path, console_dist: Path, **extra: str) -> Iterator[E2EServer]:
    """`python -m backend serve --seed-demo` on a free port with its own DATA_DIR, until the block ends."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "CHAIN_"))},
        "ZHILIAN_ENV": "development", "DATA_DIR": str(data_dir), "HOST": "127.0.0.1", "PORT": str(port),
        "LOG_LEVEL": "WARNING", "BACKGROUND_WORKER": "false", "MINIAPP_DIST": str(miniapp_dist),
        "CONSOLE_DIST": str(console_dist),
        "CERT_CHALLENGE_ACTIONS": "blink,turn_left",
        "FACE_CHALLENGE_MIN_ACTIONS": "2", "FACE_CHALLENGE_MAX_ACTIONS": "2", "FACE_CHALLENGE_TTL_S": "30",
        **extra,
    }
    log = data_dir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "backend", "serve", "--seed-demo"], cwd=REPO_ROOT, env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise AssertionError(f"the server exited ({process.returncode}):\n{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"the server did not become ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield E2EServer(url, data_dir, env, log)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture(scope="session")
def e2e_server(tmp_path_factory: pytest.TempPathFactory, miniapp_dist: Path, console_dist: Path) -> Iterator[E2EServer]:
    """The shared server of the browser tests: no chain, no background worker (tests drive what it would do)."""
    with running_server(tmp_path_factory.mktemp("e2e-data"), miniapp_dist, console_dist) as server:
        yield server


@contextlib.contextmanager
def staff_session(url: str, username: str) -> Iterator[httpx.Client]:
    """A demo staff member signed in to the API (password Zhilian-demo-2026)."""
    with httpx.Client(base_url=url, timeout=120) as http:
        login = http.post("/api/auth/staff/login", json={"username": username, "password": DEMO_PASSWORD})
        assert login.status_code == 200, login.text
        http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        yield http


@pytest.fixture(scope="session")
def staff(e2e_server: E2EServer) -> Iterator[httpx.Client]:
    """The demo community's staff member, signed in (enrols faces, approves helpers)."""
    with staff_session(e2e_server.url, "nq_staff") as http:
        yield http


@pytest.fixture(scope="session")
def feed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("camera-feeds")


@pytest.fixture(scope="session")
def face_y4m(feed_dir: Path) -> Path:
    return feeds.face_feed(feed_dir / "face.y4m")


@pytest.fixture(scope="module")
def playwright_instance():
    """Module-scoped on purpose: the sync API keeps an event loop running in this thread while it lives,
    and the asyncio tests that run after tests/e2e need the thread back."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: `apt-get install -y chromium` (.ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture
def launch(playwright_instance):
    """Start a Chromium whose camera plays `y4m`; closed after the test."""
    browsers = []

    def start(y4m: Path):
        browser = playwright_instance.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=[*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={y4m}"],
        )
        browsers.append(browser)
        return browser

    yield start
    for browser in browsers:
        with contextlib.suppress(Exception):
            browser.close()


def phone_context(browser, base_url: str, **kwargs):
    """A phone-sized page context with the camera allowed, as a WebView would grant it."""
    context = browser.new_context(base_url=base_url, viewport=PHONE_VIEWPORT, device_scale_factor=2,
                                  is_mobile=True, has_touch=True, locale="zh-CN", permissions=["camera"], **kwargs)
    context.set_default_timeout(20_000)
    return context


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled")  # transitions finished, not mid-way
    return path


def desk_context(browser, base_url: str, **kwargs):
    """A desktop page context for the staff console (camera allowed for enrolment)."""
    context = browser.new_context(base_url=base_url, viewport=DESKTOP_VIEWPORT, locale="zh-CN",
                                  permissions=["camera"], accept_downloads=True, **kwargs)
    context.set_default_timeout(20_000)
    return context


def console_sign_in(page, username: str, password: str = DEMO_PASSWORD) -> None:
    """Sign in to the console through its login page, as staff do."""
    page.goto("/console/")
    page.wait_for_url(re.compile(r"#/login"))
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    page.get_by_role("button", name="登录").click()
    by_test(page, "who").wait_for()


def by_test(scope, name: str):
    """The console marks what tests read with `data-test` (the phone app uses Playwright's `data-testid`)."""
    return scope.locator(f"[data-test='{name}']")
