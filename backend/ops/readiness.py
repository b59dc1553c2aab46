"""Start-up that never makes a caller wait on a half-built process, and readiness that says why not.

The HTTP listener opens before the database is connected: until `bring_up` has finished,
`/readyz` answers 503 with the reason and every other route (but `/healthz` and `/metrics`)
answers 503 with `Retry-After`, instead of queueing connections in the listen backlog (which
clients saw as hangs, then as 500s when they gave up). A database that is not answering yet is
waited for, with the reason shown in `/readyz`; any other start-up failure still stops the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from backend import db

log = logging.getLogger("zhilian.startup")

OPEN_WHILE_STARTING = frozenset({"/healthz", "/readyz", "/metrics"})
RETRY_AFTER_S = 2
MAX_RETRY_DELAY_S = 5.0


@dataclass
class Readiness:
    """Whether this process has finished starting, and if not, what it is waiting for."""

    ready: bool = False
    waiting_for: str = "starting"
    task: asyncio.Task | None = None

    def blocks(self, path: str) -> bool:
        """True when a request to `path` must be turned away because the process is still starting."""
        return not self.ready and path not in OPEN_WHILE_STARTING


async def bring_up(readiness: Readiness, step: Callable[[], Awaitable[None]]) -> None:
    """Run `step` (connect, migrate …) now; if the database does not answer, keep trying in the background.

    Returns once the process is ready or once a background retry is scheduled, so the server
    answers (503) while it waits.
    """
    if await _attempt(readiness, step):
        return
    readiness.task = asyncio.get_running_loop().create_task(_retry(readiness, step), name="zhilian-startup")


async def stop(readiness: Readiness) -> None:
    if readiness.task is not None and not readiness.task.done():
        readiness.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await readiness.task


async def _retry(readiness: Readiness, step: Callable[[], Awaitable[None]]) -> None:
    delay = 0.5
    try:
        while not await _attempt(readiness, step):
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY_S)
    except Exception as exc:  # a broken start-up stays visible in /readyz and the log
        readiness.waiting_for = f"start-up failed: {type(exc).__name__}"
        log.exception("start-up failed")


async def _attempt(readiness: Readiness, step: Callable[[], Awaitable[None]]) -> bool:
    try:
        await step()
    except Exception as exc:
        if not db.unavailable(exc):
            raise
        readiness.waiting_for = f"database unavailable: {type(exc).__name__}"
        log.warning("waiting for the database", extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
        with contextlib.suppress(Exception):
            await db.close()
        return False
    readiness.ready = True
    readiness.waiting_for = ""
    log.info("ready")
    return True
