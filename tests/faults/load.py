"""Steady certification load, as staff at home visits produce it, and a record of what the clients saw.

One unit of work is one elder certified by a home visit: staff A registers the resident, records
the visit with a photo, staff B attests it. Every request carries its own Idempotency-Key and is
retried with that same key after any failure (no answer, a dropped connection, 5xx, 503, a time-out
of the client itself) — exactly what a phone does when it never heard back. A certification is
*acknowledged* when the attest answered 200 with its id: from then on it must never be lost.
"""

from __future__ import annotations

import asyncio
import io
import secrets
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import httpx
import numpy as np
from PIL import Image

from tests.support.ids import elder_id

REQUEST_TIMEOUT_S = 10.0  # the client gives up on an answer after this long and retries (same key)
UNIT_DEADLINE_S = 180.0  # a unit still unfinished after this long is reported as abandoned


def elder_name(n: int) -> str:
    """A unique name of letters only (names refuse digits): the unit's number in Chinese numerals."""
    return "演练" + "".join("零一二三四五六七八九"[int(d)] for d in f"{n:04d}")


def a_photo(seed: int) -> bytes:
    buffer = io.BytesIO()
    pixels = (np.random.default_rng(seed).random((60, 80, 3)) * 255).astype("uint8")
    Image.fromarray(pixels).save(buffer, "JPEG")
    return buffer.getvalue()


@dataclass
class Observation:
    phase: str
    step: str
    outcome: str  # the HTTP status, or the client-side error's name
    retry_after: bool
    replayed: bool


@dataclass
class Unit:
    """One elder's certification, from registration to the attest's answer."""

    n: int
    keys: dict[str, str] = field(default_factory=lambda: {s: secrets.token_hex(16) for s in ("resident", "visit", "attest")})
    resident_id: int | None = None
    visit_id: int | None = None
    certification_id: int | None = None
    acknowledged_in: str = ""
    abandoned: str = ""
    in_flight: str = ""  # the step whose request is on the wire now
    sent: Counter = field(default_factory=Counter)  # requests per step (retries included)
    replayed: Counter = field(default_factory=Counter)  # answers marked Idempotent-Replayed per step


class Recorder:
    """What each request met, by the phase (fault) that was current when it was sent."""

    def __init__(self) -> None:
        self.phase = "steady"
        self.phases: list[str] = ["steady"]
        self.observations: list[Observation] = []
        self.acknowledged: Counter = Counter()
        self.started: dict[str, str] = {"steady": time.strftime("%H:%M:%S")}  # wall clock, to read the logs by

    def enter(self, phase: str) -> None:
        self.phase = phase
        if phase not in self.phases:
            self.phases.append(phase)
        self.started[phase] = time.strftime("%H:%M:%S")

    def seen(self, phase: str) -> Counter:
        return Counter(o.outcome for o in self.observations if o.phase == phase)

    def of(self, phase: str) -> list[Observation]:
        return [o for o in self.observations if o.phase == phase]

    def describe(self, observations: list[Observation]) -> str:
        seen = Counter(o.outcome for o in observations)
        text = ", ".join(f"{outcome}×{count}" for outcome, count in sorted(seen.items())) or "-"
        retry_after = sum(1 for o in observations if o.retry_after and not o.outcome.startswith("2"))
        if retry_after:
            text += f" (Retry-After on {retry_after})"
        replays = sum(1 for o in observations if o.replayed)
        if replays:
            text += f"; {replays} replayed"
        return text

    def table(self, faults: list[str], caught_up: dict[str, float]) -> str:
        """One row per fault: what clients saw while it lasted (healing included) and just after."""
        rows = [("phase", "requests", "acknowledged", "clients saw while broken / healing", "just after healing",
                 "all anchored after healing")]
        steady = self.of("steady")
        rows.append(("steady load", str(len(steady)), str(self.acknowledged["steady"]), self.describe(steady), "", ""))
        for name in faults:
            during = self.of(name) + self.of(f"{name}: healing")
            after = self.of(f"after {name}")
            acknowledged = self.acknowledged[name] + self.acknowledged[f"{name}: healing"]
            lag = f"{caught_up[name]:.0f} s" if name in caught_up else "not within the run"
            rows.append((name, str(len(during)), str(acknowledged), self.describe(during), self.describe(after), lag))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["| " + " | ".join(f"{cell:<{widths[i]}}" for i, cell in enumerate(row)) + " |" for row in rows]
        lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
        return "\n".join(lines)


class Load:
    """Start a unit every 1/rate seconds until stopped; each unit retries its steps with the same keys."""

    def __init__(self, api_url: str, world: dict, recorder: Recorder, *, rate: float = 2.0,
                 max_in_progress: int = 60) -> None:
        self.api_url = api_url
        self.world = world
        self.recorder = recorder
        self.rate = rate
        self.units: list[Unit] = []
        self.headers: dict[str, dict[str, str]] = {}
        self._slots = asyncio.Semaphore(max_in_progress)
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self._http = httpx.AsyncClient(base_url=api_url, timeout=httpx.Timeout(REQUEST_TIMEOUT_S, connect=3.0),
                                       limits=httpx.Limits(max_connections=80, max_keepalive_connections=40))

    async def login(self) -> None:
        for who in ("visitor", "attester"):
            response = await self._http.post("/api/auth/staff/login",
                                             json={"username": self.world[who], "password": self.world["password"]})
            response.raise_for_status()
            self.headers[who] = {"Authorization": f"Bearer {response.json()['access_token']}"}

    async def run(self) -> None:
        """Produce units until `stop()`; then wait for the ones under way (each bounded by its deadline)."""
        n = 0
        next_at = time.monotonic()
        while not self._stopping.is_set():
            await self._slots.acquire()
            n += 1
            unit = Unit(n)
            self.units.append(unit)
            task = asyncio.create_task(self._certify(unit))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            next_at += 1.0 / self.rate
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        if self._tasks:
            await asyncio.gather(*self._tasks)
        await self._http.aclose()

    def stop(self) -> None:
        self._stopping.set()

    def in_flight(self, step: str) -> list[Unit]:
        return [u for u in self.units if u.in_flight == step]

    async def _certify(self, unit: Unit) -> None:
        deadline = time.monotonic() + UNIT_DEADLINE_S
        try:
            national_id = elder_id(600_000 + unit.n)
            resident = await self._call(unit, "resident", deadline, "POST", "/api/residents", "visitor", json={
                "name": elder_name(unit.n), "national_id": national_id, "address": "南桥镇解放路 12弄"})
            if resident is None:
                return
            unit.resident_id = resident["id"]
            visit = await self._call(unit, "visit", deadline, "POST", f"/api/residents/{unit.resident_id}/home-visits",
                                     "visitor", files={"photo": ("visit.jpg", a_photo(unit.n))}, data={"note": "上门"})
            if visit is None:
                return
            unit.visit_id = visit["id"]
            attested = await self._call(unit, "attest", deadline, "POST", f"/api/home-visits/{unit.visit_id}/attest",
                                        "attester")
            if attested is None:
                return
            unit.certification_id = attested["certification"]["id"]
            unit.acknowledged_in = self.recorder.phase
            self.recorder.acknowledged[self.recorder.phase] += 1
        finally:
            self._slots.release()

    async def _call(self, unit: Unit, step: str, deadline: float, method: str, path: str, who: str,
                    **kwargs) -> dict | None:
        """Send until a 2xx answer (retrying with the same key), a refusal, or the unit's deadline."""
        delay = 0.25
        headers = {**self.headers[who], "Idempotency-Key": unit.keys[step]}
        while True:
            phase = self.recorder.phase
            unit.in_flight = step
            unit.sent[step] += 1
            retry_after = None
            try:
                response = await self._http.request(method, path, headers=headers, **kwargs)
                outcome = str(response.status_code)
                retry_after = response.headers.get("retry-after")
                replayed = response.headers.get("idempotent-replayed") == "true"
            except httpx.HTTPError as error:
                response, outcome, replayed = None, type(error).__name__, False
            finally:
                unit.in_flight = ""
            self.recorder.observations.append(Observation(phase, step, outcome, retry_after is not None, replayed))
            if response is not None and response.is_success:
                if replayed:
                    unit.replayed[step] += 1
                return response.json()
            refused = response is not None and 400 <= response.status_code < 500 and response.status_code not in (408, 409, 429)
            if refused or time.monotonic() > deadline:
                unit.abandoned = f"{step}: {outcome} {response.text[:200] if response is not None else ''}"
                return None
            wait = float(retry_after) if retry_after and retry_after.isdigit() else delay
            await asyncio.sleep(min(wait, 5.0))
            delay = min(delay * 2, 2.0)


def by_phase(units: list[Unit]) -> dict[str, list[Unit]]:
    grouped: dict[str, list[Unit]] = defaultdict(list)
    for unit in units:
        grouped[unit.acknowledged_in or "-"].append(unit)
    return grouped
