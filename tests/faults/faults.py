"""The faults, one small function each: break something, `yield` while the load runs, heal it.

To add a fault, write an async generator taking (stack, load) and decorate it with `@fault(name,
expect=...)`; `expect` receives what the clients saw during the fault (a `Seen`) and asserts only
what must hold. The runner (test_faults.py) runs them in the order written, one at a time, under
steady load, and records every request's outcome by phase.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.chain.storage_faults import tear_sqlite_wal
from tests.conftest import REPO_ROOT
from tests.faults.load import Load, Observation, Unit
from tests.faults.processes import Stack

HOLD_S = 8.0  # how long a fault lasts under load before it is healed


@dataclass
class Seen:
    """What the clients saw while one fault lasted (and while it healed)."""

    during: list[Observation]
    after: list[Observation]
    notes: dict

    def outcomes(self) -> set[str]:
        return {o.outcome for o in self.during}

    def failures(self) -> list[Observation]:
        return [o for o in self.during if not o.outcome.startswith("2")]


@dataclass
class Fault:
    name: str
    run: Callable[[Stack, Load, dict], AsyncIterator[None]]
    expect: Callable[[Seen], None]
    hold_s: float = HOLD_S
    pending: str = ""  # why it does not run yet (the change it waits for)


FAULTS: list[Fault] = []


def fault(name: str, *, expect: Callable[[Seen], None], hold_s: float = HOLD_S, pending: str = ""):
    def register(run: Callable[[Stack, Load, dict], AsyncIterator[None]]):
        FAULTS.append(Fault(name, run, expect, hold_s, pending))
        return run

    return register


# --- expectations ----------------------------------------------------------------------------------


def unaffected(seen: Seen) -> None:
    """The chain is behind the outbox: a certification never waits for it."""
    assert not seen.failures(), f"expected every request answered 2xx, saw {sorted(seen.outcomes())}"


def recovered(seen: Seen) -> None:
    assert any(o.outcome.startswith("2") for o in seen.after), "expected requests to succeed again after healing"


# Issue 14 item 2 (merged): Redis being down answers 503 with Retry-After, never 500. Set False only to
# record what an older backend does (it answered 500: the deny-list check failed).
REDIS_DOWN_ANSWERS_503 = True


def redis_down(seen: Seen) -> None:
    statuses = {o.outcome for o in seen.failures()}
    if REDIS_DOWN_ANSWERS_503:
        assert statuses <= {"503"}, f"expected only 503 while Redis is down, saw {sorted(statuses)}"
        assert all(o.retry_after for o in seen.failures()), "expected Retry-After on every 503"
    else:
        assert statuses <= {"500", "503"}, f"expected server-side refusals only, saw {sorted(statuses)}"
    recovered(seen)


def database_down(seen: Seen) -> None:
    statuses = {o.outcome for o in seen.failures()}
    assert not {s for s in statuses if s.startswith("4")}, f"a database outage is no client error: {sorted(statuses)}"
    recovered(seen)


def api_killed(seen: Seen) -> None:
    killed: list[Unit] = seen.notes.get("in_flight", [])
    assert killed, "expected the API to be killed with an attest on the wire"
    assert any(unit.sent["attest"] >= 2 for unit in killed), "expected a lost attest to be sent again (same key)"
    recovered(seen)


# --- the faults, in the order they run -----------------------------------------------------------------


async def _restart(stack: Stack, *names: str) -> None:
    for name in names:
        await asyncio.to_thread(stack.chain.start_child, name)
    for name in names:
        await asyncio.to_thread(stack.chain.wait_child, name, 60)


@fault("one witness down", expect=unaffected)
async def one_witness_down(stack: Stack, load: Load, notes: dict) -> AsyncIterator[None]:
    await asyncio.to_thread(stack.chain.stop_child, "health", signal.SIGKILL)
    yield
    await _restart(stack, "health")


@fault("two witnesses down (no quorum)", expect=unaffected)
async def two_witnesses_down(stack: Stack, load: Load, notes: dict) -> AsyncIterator[None]:
    for name in ("social_security", "health"):
        await asyncio.to_thread(stack.chain.stop_child, name, signal.SIGKILL)
    yield
    await _restart(stack, "social_security", "health")


@fault("sequencer SIGKILL + restart", expect=unaffected)
async def sequencer_killed(stack: Stack, load: Load, notes: dict) -> AsyncIterator[None]:
    await asyncio.to_thread(stack.chain.stop_child, "sequencer", signal.SIGKILL)
    yield
    await _restart(stack, "sequencer")


async def _sequencer_decided(stack: Stack) -> dict:
    """The sequencer's health once its start-up check against the witnesses has decided."""
    async with httpx.AsyncClient(timeout=2) as http:
        state: dict = {}
        for _ in range(600):
            with contextlib.suppress(httpx.HTTPError, ValueError):
                state = (await http.get(f"{stack.chain.url}/v1/health")).json()
                if state.get("status") in ("ok", "refusing"):
                    return state
            await asyncio.sleep(0.1)
    raise AssertionError(f"the sequencer did not decide: {state}")


def _recover(stack: Stack, folder: Path) -> dict:
    """As an operator: the backend's record of its submitted leaves, then `python -m chain recover`."""
    folder.mkdir(parents=True, exist_ok=True)
    leaves = folder / "leaves.jsonl"
    exported = subprocess.run([sys.executable, "-m", "backend", "chain-leaves", "--output", str(leaves)],
                              env=stack.api.environment(), cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert exported.returncode == 0, exported.stderr
    stack.chain.stop_child("sequencer")
    command = [sys.executable, "-m", "chain", "recover", "--data-dir", str(stack.chain.sequencer_dir),
               "--origin", stack.chain.origin, "--leaves", str(leaves)]
    recovered = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    report = {"exit": recovered.returncode, "report": _summary(recovered.stdout), "fill_gaps": False}
    if recovered.returncode != 0:  # an acknowledged index no witness saw: seal it, its leaf is re-submitted
        recovered = subprocess.run([*command, "--fill-gaps"], cwd=REPO_ROOT, capture_output=True, text=True,
                                   timeout=120)
        report.update(exit=recovered.returncode, report=_summary(recovered.stdout), fill_gaps=True)
    stack.chain.start_child("sequencer")
    return report


def _summary(stdout: str) -> str:
    try:
        report = json.loads(stdout)
    except ValueError:
        return stdout.strip()[-300:]
    return f"restored {report.get('restored')} leaves, filled {report.get('filled')}"


def torn_write(seen: Seen) -> None:
    refused = seen.notes["refused"]
    assert refused.get("status") == "refusing", f"expected the torn log to refuse to sequence, it said {refused}"
    assert seen.notes["readyz"][0] == 503 and seen.notes["readyz"][1].startswith("refused"), seen.notes["readyz"]
    assert seen.notes["recovery"]["exit"] == 0, seen.notes["recovery"]
    assert seen.notes["resumed"].get("status") == "ok", seen.notes["resumed"]
    unaffected(seen)


async def _kill_when_all_cosigned(stack: Stack) -> None:
    """SIGKILL the sequencer once every leaf it holds is cosigned, so a tear cuts into what witnesses saw.

    The API (the only submitter) is held still (SIGSTOP) for that moment; clients only wait.
    """
    stack.api.process.send_signal(signal.SIGSTOP)
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            for _ in range(250):
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    health = (await http.get(f"{stack.chain.url}/v1/health")).json()
                    if health.get("size") and health.get("size") == health.get("final_size"):
                        break
                await asyncio.sleep(0.02)
        await asyncio.to_thread(stack.chain.stop_child, "sequencer", signal.SIGKILL)
    finally:
        stack.api.process.send_signal(signal.SIGCONT)


@fault("sequencer torn write (refusal, then recovery)", expect=torn_write)
async def sequencer_torn_write(stack: Stack, load: Load, notes: dict) -> AsyncIterator[None]:
    # A crash mid-write: the WAL cut inside its last two commits, the acknowledged mark lost too. When
    # SQLite had just copied the WAL into the database file the cut loses nothing (the log restarts
    # "ok", rightly): then crash it again, up to three times.
    for attempt in range(1, 4):
        await _kill_when_all_cosigned(stack)
        tear_sqlite_wal(stack.chain.sequencer_dir / "chain.sqlite3", transactions=2)
        (stack.chain.sequencer_dir / "acknowledged").unlink(missing_ok=True)
        await asyncio.to_thread(stack.chain.start_child, "sequencer")
        notes["refused"] = await _sequencer_decided(stack)
        notes["tears"] = attempt
        if notes["refused"].get("status") == "refusing":
            break
    yield
    async with httpx.AsyncClient(timeout=5) as http:
        for _ in range(20):  # the API caches the chain's answer for a few seconds
            ready = await http.get(f"{stack.api.url}/readyz")
            notes["readyz"] = (ready.status_code, ready.json().get("error", {}).get("details", {}).get("chain", ""))
            if ready.status_code == 503:
                break
            await asyncio.sleep(0.5)
    notes["recovery"] = await asyncio.to_thread(_recover, stack, stack.root / "recovery")
    notes["resumed"] = await _sequencer_decided(stack)


@fault("Redis killed + restarted", expect=redis_down)
async def redis_killed(stack: Stack, load: Load, notes: dict) -> AsyncIterator[None]:
    await asyncio.to_thread(stack.redis.kill)
    yield
    await asyncio.to_thread(stack.redis.start)


@fault("PostgreSQL stopped (immediate) + restarted", expect=database_down)
async def postgres_stopped(stack: Stack, load: Load, notes: dict) -> AsyncIterator[None]:
    await asyncio.to_thread(stack.postgres.stop, "immediate")
    notes["stopped_at"] = time.monotonic()
    yield
    await asyncio.to_thread(stack.postgres.start)
    notes["started_at"] = time.monotonic()


@fault("API SIGKILL with a request in flight + restart", expect=api_killed, hold_s=1.0)
async def api_killed_mid_request(stack: Stack, load: Load, notes: dict) -> AsyncIterator[None]:
    deadline = time.monotonic() + 20
    while not load.in_flight("attest") and time.monotonic() < deadline:
        await asyncio.sleep(0.002)
    await asyncio.sleep(0.005)  # let the request reach the server
    notes["in_flight"] = load.in_flight("attest")
    await asyncio.to_thread(stack.api.kill)
    yield
    await asyncio.to_thread(stack.api.start)
    await asyncio.to_thread(stack.api.wait_ready)
