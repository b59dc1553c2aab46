"""Issue 14.2: Redis down answers 503 with Retry-After where Redis is needed, and nothing else stops.

A private `redis-server` (no persistence) is started for this test only, and a real
`python -m backend serve --seed-demo` process uses it over a private database of the run's kind
(a PostgreSQL database of its own, or a SQLite file of its own: never the file the in-process
test server has open). Redis is stopped, then started again empty: staff reads keep working
throughout, sign-in and certification answer 503 + Retry-After while it is down and resume by
themselves, and a signed-out token stays refused after the empty restart because revocations
live in the database.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import BACKEND, PG_ADMIN_URL, REPO_ROOT, free_port
from tests.integration.test_residents import an_elder_id

DEMO_PASSWORD = "Zhilian-demo-2026"

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class PrivateRedis:
    """A redis-server on a free loopback port that keeps nothing on disk (a restart starts empty)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if redis.Redis(port=self.port, socket_connect_timeout=1).ping():
                    return
            time.sleep(0.05)
        raise AssertionError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def keys(self) -> int:
        return redis.Redis(port=self.port).dbsize()


@pytest.fixture
async def private_database() -> AsyncIterator[str]:
    """A database of this run's kind for one backend process: a fresh PostgreSQL database, or "" (SQLite in DATA_DIR)."""
    if BACKEND != "postgres":
        yield ""
        return
    import asyncpg

    name = f"zhilian_outage_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@contextlib.contextmanager
def backend_process(database_url: str, data_dir: Path, redis_url: str, log: Path) -> Iterator[str]:
    """`python -m backend serve --seed-demo` over its own database, with its cache in the private Redis."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "CHAIN_"))},
        "ZHILIAN_ENV": "test", "HOST": "127.0.0.1", "PORT": str(port), "DATA_DIR": str(data_dir),
        "DATABASE_URL": database_url, "REDIS_URL": redis_url, "CACHE_PREFIX": "outage:",
        "BACKGROUND_WORKER": "false", "LOG_LEVEL": "WARNING", "LOGIN_MAX_PER_IP": "10000",
    }
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "backend", "serve", "--seed-demo"], cwd=REPO_ROOT, env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise AssertionError(f"the backend exited ({process.returncode}):\n{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"the backend did not become ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    error = response.json()["error"]
    assert error["code"] == "cache.unavailable" and "稍后再试" in error["message"]


@pytest.mark.persistence
async def test_redis_down_gives_503_for_what_needs_it_and_revocations_survive_an_empty_restart(
    private_database: str, tmp_path: Path
):
    cache = PrivateRedis(tmp_path / "redis")
    cache.start()
    try:
        with backend_process(private_database, tmp_path / "data", cache.url, tmp_path / "backend.log") as url, \
                httpx.Client(base_url=url, timeout=30) as http:
            def sign_in() -> dict[str, str]:
                answer = http.post("/api/auth/staff/login", json={"username": "nq_staff", "password": DEMO_PASSWORD})
                assert answer.status_code == 200, answer.text
                return {"Authorization": f"Bearer {answer.json()['access_token']}"}

            working, signed_out, signed_out_while_down = sign_in(), sign_in(), sign_in()
            created = http.post("/api/residents", headers=working, json={
                "name": "宋秀英", "national_id": an_elder_id(1401), "address": "南桥镇解放路 1号"})
            assert created.status_code == 201, created.text
            resident_id = created.json()["id"]
            assert http.post("/api/auth/logout", headers=signed_out).status_code == 200
            assert http.get("/api/auth/me", headers=signed_out).status_code == 401
            assert cache.keys() > 0  # the session checks went through Redis

            cache.stop()
            # reads that need no Redis keep working for signed-in staff
            for path in ("/api/auth/me", "/api/residents", f"/api/residents/{resident_id}", "/api/periods/current"):
                answer = http.get(path, headers=working)
                assert answer.status_code == 200, (path, answer.text)
            # what needs Redis says so: 503 with Retry-After, never 500
            assert_unavailable(http.post("/api/auth/staff/login",
                                         json={"username": "nq_staff", "password": DEMO_PASSWORD}))
            assert_unavailable(http.post("/api/auth/app/otp", json={"phone": "13700001401"}))
            assert_unavailable(http.post("/api/certify/sessions", headers=working,
                                         json={"resident_id": resident_id, "device_id": "desk-outage"}))
            ready = http.get("/readyz")
            assert ready.status_code == 503 and ready.json()["error"]["details"]["cache"] == "error"
            # revocations: the one made before is still refused; signing out still works and holds
            assert http.get("/api/auth/me", headers=signed_out).json()["error"]["code"] == "auth.revoked_token"
            assert http.post("/api/auth/logout", headers=signed_out_while_down).status_code == 200
            assert http.get("/api/auth/me", headers=signed_out_while_down).status_code == 401

            cache.start()  # same port, nothing kept: an empty Redis
            assert cache.keys() == 0
            time.sleep(1.2)  # the fail-fast window after the last failure
            for headers in (signed_out, signed_out_while_down):
                refused = http.get("/api/auth/me", headers=headers)
                assert refused.status_code == 401 and refused.json()["error"]["code"] == "auth.revoked_token"
            assert http.get("/api/residents", headers=working).status_code == 200
            # and work resumes by itself
            assert http.get("/readyz").status_code == 200
            sign_in()
            started = http.post("/api/certify/sessions", headers=working,
                                json={"resident_id": resident_id, "device_id": "desk-outage"})
            assert started.status_code == 201, started.text
    finally:
        cache.stop()
