"""PostgreSQL away at the wrong moment: at the API's start (issue 14 item 4) and in the middle of an
outbox attempt (item 3). Both on the suite's private PostgreSQL, restarted for real."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import asyncpg
import httpx

from tests.conftest import REPO_ROOT
from tests.faults.processes import ApiProcess, Stack


async def test_readiness_answers_503_until_the_database_answers(stack: Stack, tmp_path: Path) -> None:
    """Started while PostgreSQL is down, the API waits for it and says why: 503, never 500, no crash."""
    database_url = await asyncio.to_thread(stack.postgres.create_database, "readiness")
    api = ApiProcess(tmp_path / "api", env={**stack.api.env, "DATABASE_URL": database_url})
    await asyncio.to_thread(stack.postgres.stop, "immediate")
    seen: Counter = Counter()
    ready = None
    try:
        await asyncio.to_thread(api.start)
        async with httpx.AsyncClient(base_url=api.url, timeout=2) as http:
            waiting_since = time.monotonic()
            while time.monotonic() - waiting_since < 60:  # the process starts, then waits for the database
                try:
                    ready = await http.get("/readyz")
                except httpx.TransportError:
                    assert api.process.poll() is None, api.log_tail()
                    await asyncio.sleep(0.2)
                    continue
                seen[str(ready.status_code)] += 1
                if ready.status_code == 503 and "database unavailable" in ready.json()["error"]["details"]["startup"]:
                    break
            assert ready is not None and ready.status_code == 503 and ready.headers["retry-after"], ready
            for _ in range(10):  # it stays up and keeps saying so; other routes answer 503 "starting"
                await asyncio.sleep(0.3)
                assert (await http.get("/readyz")).status_code == 503
                login = await http.post("/api/auth/staff/login", json={"username": "x", "password": "y"})
                assert login.status_code == 503 and login.json()["error"]["code"] == "starting"
                assert login.headers["retry-after"]
                seen["503"] += 2
            assert api.process.poll() is None, api.log_tail()

            await asyncio.to_thread(stack.postgres.start)
            back = time.monotonic()
            while (ready := await http.get("/readyz")).status_code != 200:
                assert ready.status_code == 503, ready.text
                assert time.monotonic() - back < 30, ready.text
                await asyncio.sleep(0.2)
            assert ready.json()["checks"] == {"startup": "ok", "database": "ok", "cache": "ok", "face_models": "ok",
                                              "chain": "ok"}
            refused = await http.post("/api/auth/staff/login", json={"username": "nobody", "password": "wrong-one"})
            assert refused.status_code == 401, refused.text  # served by the database now
            metrics = (await http.get("/metrics")).text
    finally:
        await asyncio.to_thread(api.stop)
        if not stack.postgres.answers():
            await asyncio.to_thread(stack.postgres.start)
    assert "500" not in seen, seen
    assert 'status="500"' not in metrics


async def test_an_attempt_cut_short_by_the_database_gives_its_lease_back(stack: Stack, tmp_path: Path) -> None:
    """PostgreSQL stops while an outbox handler runs: once it is back, the event runs again at once
    (it waited out its whole lease before: 61.6 s in the first fault run)."""
    from backend.outbox.service import LEASE_S

    database_url = await asyncio.to_thread(stack.postgres.create_database, "leases")
    env = {**os.environ, "DATABASE_URL": database_url, "DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(REPO_ROOT)}
    with open(tmp_path / "worker.log", "wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "tests.faults.outbox_worker", str(tmp_path)], cwd=REPO_ROOT,
                                  env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        started = time.monotonic()
        while not (tmp_path / "started").exists():
            assert worker.poll() is None and time.monotonic() - started < 60, (tmp_path / "worker.log").read_text()
            await asyncio.sleep(0.1)
        await asyncio.to_thread(stack.postgres.stop, "immediate")
        (tmp_path / "go").write_text("")  # the attempt fails now, and so does writing that it failed
        await asyncio.sleep(3)
        await asyncio.to_thread(stack.postgres.start)
        back = time.time()
        while not (tmp_path / "done").exists():
            assert worker.poll() is None and time.time() - back < 2 * LEASE_S, (tmp_path / "worker.log").read_text()
            await asyncio.sleep(0.1)
        waited = float((tmp_path / "done").read_text()) - back
        assert waited < 5, f"the event ran again {waited:.1f} s after PostgreSQL returned (lease: {LEASE_S} s)"
        worker.wait(30)
    finally:
        if worker.poll() is None:
            worker.kill()
        if not stack.postgres.answers():
            await asyncio.to_thread(stack.postgres.start)
    connection = await asyncpg.connect(database_url)
    try:
        row = await connection.fetchrow("SELECT attempts, processed_at, leased_until, last_error FROM outbox_event "
                                        "WHERE dedupe_key = 'faults.lease_probe:1'")
    finally:
        await connection.close()
    assert row["processed_at"] is not None and row["leased_until"] is None
    assert row["attempts"] == 2 and "went away" in row["last_error"]
