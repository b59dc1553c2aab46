"""`python -m tests.faults.outbox_worker DIR`: one outbox event whose first attempt outlives the database.

The first attempt signals `DIR/started`, waits for `DIR/go` (the test stops PostgreSQL meanwhile)
and fails; writing that failure fails too, since the database is gone. The loop keeps running
rounds the way the backend's worker does. The second attempt succeeds and writes `DIR/done` with
the time. Run in a child process with DATABASE_URL set (this pytest process may hold another
database); the test measures how soon after PostgreSQL returns the event is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from pathlib import Path

from backend import db
from backend.outbox import service as outbox
from backend.outbox.models import OutboxEvent
from backend.settings import Settings

KIND = "faults.lease_probe"


async def main(folder: Path) -> None:
    await db.init(Settings.from_env(), run_migrations=True)
    event = await outbox.enqueue(kind=KIND, dedupe_key=f"{KIND}:1", payload={})
    (folder / "event").write_text(str(event.id))
    attempts = 0

    async def handler(_: OutboxEvent) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            (folder / "started").write_text(str(time.time()))
            while not (folder / "go").exists():
                await asyncio.sleep(0.05)
            raise ConnectionError("the dependency went away with the database")
        (folder / "done").write_text(str(time.time()))

    leases = outbox.Leases()
    while not (folder / "done").exists():
        with contextlib.suppress(Exception):  # rounds fail while the database is away; the worker goes on
            await outbox.run_due({KIND: handler}, leases=leases)
        await asyncio.sleep(0.5)
    await db.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
