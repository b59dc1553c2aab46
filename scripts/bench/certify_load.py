#!/usr/bin/env python
"""Load benchmark of liveness certification: N concurrent sessions answered with real frames.

    .venv/bin/python scripts/bench/certify_load.py --url http://127.0.0.1:8000 [--server-pid PID]
    .venv/bin/python scripts/bench/certify_load.py --start-server [--database-url [ADMIN_URL]] [--redis-url [URL]]
        [--sessions 20] [--concurrency 4] [--fps 10] [--transport ws|http] [--seed N]

Against an already running server (`--url`, loopback only) or one it starts itself
(`--start-server`: `python -m backend serve --seed-demo`, one worker, temporary DATA_DIR, free
port, BACKGROUND_WORKER=false, LOG_LEVEL=WARNING; `--database-url` creates a temporary
PostgreSQL database on that server with asyncpg and uses Redis — `--redis-url`, default
redis://127.0.0.1:6379/13 — under a unique CACHE_PREFIX; all of it is removed at the end).

The server must draw challenges only from the actions the clip shows:
CERT_CHALLENGE_ACTIONS=blink,turn_left,turn_right,open_mouth (there is no nod in the clip), and
allow many starts and logins from one staff account and one address (CERT_STARTS_PER_HOUR,
LOGIN_MAX_PER_IP); `--start-server` sets all three.

1. Setup (not measured): log in as staff (`--username/--password`, default the demo staff of
   南桥社区), create one resident per session with a synthetic, checksum-valid national ID (aged
   80-95, drawn from a random.Random seeded per run, so each run's IDs are new), record the
   biometric consent, enrol the face from frames of ../shared/facedata/video/lp_driving_d3.mp4.
2. Sessions (measured), `--concurrency` at a time: start, answer the server's random challenge
   with the frames of the clip showing each asked action, paced like a camera (`--fps`), read
   the decision. `ws` (default) is the live WebSocket /ws/certify, one binary message per frame
   sent on the camera's clock whatever the server answers; `http` is the fallback: frames are
   "captured" at the camera's pace, then uploaded at once with their capture times.

Decision latency is from the last frame sent (ws: the last binary message; http: the upload) to
the decision received. CPU per session is the server's CPU time (the process and its
descendants: psutil if installed, else /proc/<pid>/stat) over the session phase divided by the
sessions run; the client's own CPU is printed too. Progress goes to stderr. Last line:

    certify_load: sessions_per_s=… p50_ms=… p99_ms=… cpu_ms_per_session=…
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import math
import os
import random
import secrets
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from _server import (
    DEFAULT_PG_ADMIN_URL,
    DEMO_PASSWORD,
    DEMO_STAFF_USER,
    HUGE,
    REPO_ROOT,
    Server,
    backend_server,
    make_log,
    process_cpu_seconds,
    run_main,
    running,
    temporary_stores,
)

from backend.residents.national_id import synthetic_national_id  # _server put the repository on sys.path

FACEDATA = Path(os.environ.get("FACEDATA_DIR", REPO_ROOT.parent / "shared" / "facedata"))
CLIP = "lp_driving_d3"
# Frames of lp_driving_d3 showing each action and no other (measured with the engine: yaw,
# mouth opening, and the MANIFEST's blink notes): ahead at 36-47, blink at 48-61, her left
# (yaw > 0) at 255-290, her right (yaw < 0) at 0-35, mouth open at 326-353 (briefly: every frame).
SEGMENTS = {  # action: (first frame, end frame, step)
    "lead_in": (36, 48, 2),
    "blink": (40, 72, 3),
    "turn_left": (255, 291, 3),
    "turn_right": (0, 36, 3),
    "open_mouth": (326, 354, 1),
    "still": (66, 100, 10),
}
CLIP_ACTIONS = ("blink", "turn_left", "turn_right", "open_mouth")
SERVER_ACTIONS = ",".join(CLIP_ACTIONS)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
REQUEST_TIMEOUT_S = 120.0
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = ("桂英", "秀英", "玉兰", "凤英", "建国", "德明", "志强", "淑珍", "金凤", "国华", "永福", "美华")


log = make_log("certify_load")


# ---------------------------------------------------------------- frames of the clip


@lru_cache(maxsize=1)
def clip_frames() -> tuple[bytes, ...]:
    """Every frame of the clip as JPEG bytes (quality 85, what a phone would send)."""
    import cv2

    path = FACEDATA / "video" / f"{CLIP}.mp4"
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
    capture.release()
    if not frames:
        raise FileNotFoundError(f"no frames in {path}")
    return tuple(frames)


def segment(action: str) -> list[bytes]:
    start, end, step = SEGMENTS[action]
    return list(clip_frames()[start:end:step])


def session_frames(actions: list[str]) -> tuple[list[bytes], list[str]]:
    """Frames performing `actions` in order after a short lead-in, and the actions the clip cannot show."""
    frames = segment("lead_in")
    missing = []
    for action in actions:
        if action in CLIP_ACTIONS:
            frames += segment(action)
        else:
            missing.append(action)
    return frames, missing


def enrolment_frames() -> list[bytes]:
    return segment("still")


# ---------------------------------------------------------------- CPU time


def _proc_children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    return children


def server_cpu_seconds(pid: int) -> tuple[float | None, str]:
    """CPU time (user + system) of `pid` and its live descendants, and how it was read."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            proc = psutil.Process(pid)
            total = sum(proc.cpu_times()[:2])
            for child in proc.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += sum(child.cpu_times()[:2])
            return total, "psutil"
        except psutil.Error:
            return None, "psutil: no such process"
    total = process_cpu_seconds(pid)
    if total is None:
        return None, "/proc: no such process"
    tree = _proc_children()
    todo = list(tree.get(pid, []))
    while todo:
        child = todo.pop()
        total += process_cpu_seconds(child) or 0.0  # a child that just exited counts nothing
        todo.extend(tree.get(child, []))
    return total, "/proc/<pid>/stat"


# ---------------------------------------------------------------- loopback only


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_loopback(url: str, what: str) -> None:
    host = urlsplit(url).hostname
    if not is_loopback_host(host):
        raise SystemExit(f"certify_load: {what} must point at this machine (127.0.0.1/localhost/::1), not {host!r}")


# ---------------------------------------------------------------- the server it may start


# The server must draw challenges only from actions the clip shows and allow many session starts
# from one staff account.
CERT_ENV = {"BACKGROUND_WORKER": "false", "CERT_CHALLENGE_ACTIONS": SERVER_ACTIONS, "CERT_STARTS_PER_HOUR": HUGE}


@contextlib.asynccontextmanager
async def started_server(args: argparse.Namespace):
    """`python -m backend serve --seed-demo` on a free port; everything it made is removed afterwards."""
    run_id = secrets.token_hex(4)
    work_dir = Path(tempfile.mkdtemp(prefix="certify_load_"))
    database = f"zl_certify_load_{run_id}" if args.database_url else None
    redis_prefix = f"zl:certify_load:{run_id}:" if args.redis_url else None
    backend = ("PostgreSQL " + database if database else "SQLite") + (" + Redis" if redis_prefix else " + in-process cache")
    try:
        async with temporary_stores(log=log, pg_admin_url=args.database_url, database=database,
                                    redis_url=args.redis_url, redis_prefix=redis_prefix) as stores:
            server = backend_server("certify_load", cwd=work_dir, data_dir=work_dir / "data",  # no .env from the repo
                                    log_path=work_dir / "server.log", extra_env=stores | CERT_ENV)
            log(f"starting the server on 127.0.0.1:{server.port} ({backend}); seeding the demo data takes a while")
            began = time.monotonic()
            try:
                async with running(server, timeout_s=args.startup_timeout, grace_s=15.0):
                    log(f"server pid {server.pid} ready after {time.monotonic() - began:.1f} s")
                    yield server, backend
            finally:
                report_stopped(server, keep_log=args.keep_log)
    finally:
        if not args.keep_log:
            shutil.rmtree(work_dir, ignore_errors=True)


def report_stopped(server: Server, *, keep_log: bool) -> None:
    """Say whether the server is gone and show its log's last lines (warnings, a traceback)."""
    if server.proc is not None:
        gone = server.proc.poll() is not None
        log(f"server pid {server.pid} stopped (exit code {server.proc.returncode})" if gone
            else f"server pid {server.pid} may still be running")
    if keep_log:
        log(f"server log: {server.log_path}")
    tail = server.log_tail(20)
    if tail.strip():
        log("last lines of the server log:\n" + tail)


# ---------------------------------------------------------------- setup through the API


class Staff:
    def __init__(self, client: httpx.AsyncClient, username: str, password: str):
        self.client = client
        self.username = username
        self.password = password
        self.token = ""

    async def login(self) -> None:
        response = await self.client.post("/api/auth/staff/login",
                                          json={"username": self.username, "password": self.password})
        if response.status_code != 200:
            raise RuntimeError(f"staff login as {self.username} failed: {response.status_code} {response.text[:300]}")
        self.token = response.json()["access_token"]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def synthetic_elder(rng: random.Random, today: date) -> tuple[str, str]:
    """A name and a synthetic national ID of someone aged 80-95 today."""
    age = rng.randint(80, 95)
    try:
        anniversary = today.replace(year=today.year - age)
    except ValueError:  # 29 February
        anniversary = today.replace(year=today.year - age, day=28)
    birth = anniversary - timedelta(days=rng.randint(1, 360))
    sex = rng.choice("MF")
    name = rng.choice(SURNAMES) + rng.choice(GIVEN)
    return name, synthetic_national_id(rng, birth_date=birth, sex=sex)


async def enrol_residents(staff: Staff, count: int, *, rng: random.Random, concurrency: int,
                          errors: Counter) -> list[int]:
    """Create `count` residents, record consent and enrol the clip's face; returns their ids."""
    today = date.today()
    ids: list[int] = []
    used: set[str] = set()
    files = [("frame", (f"e{i}.jpg", f, "image/jpeg")) for i, f in enumerate(enrolment_frames())]
    gate = asyncio.Semaphore(concurrency)

    def fresh() -> tuple[str, str]:
        while True:
            name, number = synthetic_elder(rng, today)
            if number not in used:
                used.add(number)
                return name, number

    async def one(i: int) -> None:
        async with gate:
            client = staff.client
            for _ in range(8):
                name, number = fresh()
                created = await client.post("/api/residents", headers=staff.headers, json={
                    "name": name, "national_id": number, "address": f"南桥镇解放路 {i + 1}弄 {rng.randint(1, 60)}号"})
                if created.status_code == 409:  # someone already has the number (an earlier run): draw again
                    continue
                break
            if created.status_code != 201:
                errors[f"create_resident:{created.status_code}"] += 1
                log(f"creating a resident failed: {created.status_code} {created.text[:200]}")
                return
            rid = created.json()["id"]
            consent = await client.post(f"/api/residents/{rid}/consents", headers=staff.headers,
                                        json={"kind": "biometric", "version": "v1", "method": "paper"})
            if consent.status_code != 201:
                errors[f"consent:{consent.status_code}"] += 1
                log(f"recording consent failed: {consent.status_code} {consent.text[:200]}")
                return
            enrolled = await client.post(f"/api/residents/{rid}/enrolment", headers=staff.headers, files=files)
            if enrolled.status_code != 201:
                errors[f"enrolment:{enrolled.status_code}"] += 1
                log(f"enrolment failed: {enrolled.status_code} {enrolled.text[:200]}")
                return
            ids.append(rid)

    await asyncio.gather(*(one(i) for i in range(count)))
    return sorted(ids)


# ---------------------------------------------------------------- one session


@dataclass
class SessionResult:
    resident_id: int
    kind: str = "error:unknown"  # pass | fail | review | error:<code>
    reasons: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    missing_actions: list[str] = field(default_factory=list)
    start_s: float | None = None  # request → challenge received
    send_s: float | None = None  # first frame → last frame sent (ws) / capture wait (http)
    latency_s: float | None = None  # last frame sent → decision received
    total_s: float | None = None
    frames_sent: int = 0
    frame_rtts_s: list[float] = field(default_factory=list)  # ws: frame sent → its progress message
    scores: dict = field(default_factory=dict)

    @property
    def decided(self) -> bool:
        return self.kind in ("pass", "fail", "review")


async def session_ws(args: argparse.Namespace, staff: Staff, rid: int, device: str) -> SessionResult:
    import websockets

    result = SessionResult(rid)
    ws_url = args.url.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/ws/certify"
    began = time.perf_counter()
    async with websockets.connect(ws_url, max_size=2**22, proxy=None, compression=None, open_timeout=30) as ws:
        await ws.send(json.dumps({"type": "auth", "token": staff.token}))
        await ws.send(json.dumps({"type": "start", "resident_id": rid, "device_id": device}))
        first = json.loads(await asyncio.wait_for(ws.recv(), 60))
        result.start_s = time.perf_counter() - began
        if first.get("type") != "challenge":
            result.kind = f"error:{first.get('code', first.get('type'))}"
            return result
        result.actions = list(first["actions"])
        frames, result.missing_actions = session_frames(result.actions)
        sent_at: list[float] = []
        finished = asyncio.Event()
        outcome: dict = {}

        async def receive() -> None:
            progress = 0
            while True:
                message = json.loads(await ws.recv())
                kind = message.get("type")
                if kind == "progress":
                    if progress < len(sent_at):
                        result.frame_rtts_s.append(time.perf_counter() - sent_at[progress])
                    progress += 1
                    if message.get("finished"):
                        finished.set()
                elif kind in ("result", "error"):
                    outcome.update(message, _at=time.perf_counter())
                    finished.set()
                    return

        receiver = asyncio.create_task(receive())
        try:
            t0 = time.perf_counter()
            for i, frame in enumerate(frames):  # on the camera's clock, whatever the server answers
                delay = t0 + i / args.fps - time.perf_counter()
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(finished.wait(), delay)
                if finished.is_set():
                    break
                await ws.send(frame)
                sent_at.append(time.perf_counter())
            last_sent = sent_at[-1] if sent_at else time.perf_counter()
            result.frames_sent = len(sent_at)
            result.send_s = last_sent - t0
            if not finished.is_set():
                await ws.send(json.dumps({"type": "finish"}))
            await asyncio.wait_for(receiver, 120)
        finally:
            receiver.cancel()
    result.total_s = time.perf_counter() - began
    if outcome.get("type") == "result":
        result.kind = outcome["decision"]
        result.reasons = list(outcome.get("reasons") or [])
        result.scores = outcome.get("scores") or {}
        result.latency_s = outcome["_at"] - last_sent
    else:
        result.kind = f"error:{outcome.get('code', 'no_result')}"
    return result


async def session_http(args: argparse.Namespace, staff: Staff, client: httpx.AsyncClient, rid: int,
                       device: str) -> SessionResult:
    result = SessionResult(rid)
    began = time.perf_counter()
    started = await client.post("/api/certify/sessions", json={"resident_id": rid, "device_id": device},
                                headers=staff.headers)
    shown_at = time.perf_counter()  # the challenge is on screen from here; capture times count from it
    result.start_s = shown_at - began
    if started.status_code != 201:
        code = started.json().get("code", started.status_code) if "json" in started.headers.get("content-type", "") \
            else started.status_code
        result.kind = f"error:{code}"
        return result
    session = started.json()
    result.actions = list(session["actions"])
    frames, result.missing_actions = session_frames(result.actions)
    offsets_ms = [int(1000 * (0.2 + i / args.fps)) for i in range(len(frames))]
    await asyncio.sleep(max(0.0, shown_at + offsets_ms[-1] / 1000 - time.perf_counter()))  # the camera films
    result.send_s = time.perf_counter() - shown_at
    result.frames_sent = len(frames)
    files = [("frame", (f"{i}.jpg", f, "image/jpeg")) for i, f in enumerate(frames)]
    data = {"device_id": device, "t": [str(t) for t in offsets_ms]}
    sent = time.perf_counter()
    response = await client.post(f"/api/certify/sessions/{session['session_id']}/frames", files=files, data=data,
                                 headers=staff.headers)
    result.latency_s = time.perf_counter() - sent
    result.total_s = time.perf_counter() - began
    body = response.json() if "json" in response.headers.get("content-type", "") else {}
    if response.status_code == 200 and body.get("type") == "result":
        result.kind = body["decision"]
        result.reasons = list(body.get("reasons") or [])
        result.scores = body.get("scores") or {}
    else:
        result.kind = f"error:{body.get('code', response.status_code)}"
        result.latency_s = None
    return result


async def run_sessions(args: argparse.Namespace, staff: Staff, residents: list[int], run_tag: str,
                       deadline: float) -> list[SessionResult]:
    queue: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    for i, rid in enumerate(residents):
        queue.put_nowait((i, rid))
    results: list[SessionResult] = []
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    async def worker(w: int) -> None:
        async with httpx.AsyncClient(base_url=args.url, limits=limits, timeout=REQUEST_TIMEOUT_S,
                                     trust_env=False) as client:
            while not queue.empty() and time.monotonic() < deadline:
                i, rid = queue.get_nowait()
                device = f"bench-{run_tag}-{i}"
                try:
                    if args.transport == "ws":
                        one = await asyncio.wait_for(session_ws(args, staff, rid, device), 300)
                    else:
                        one = await asyncio.wait_for(session_http(args, staff, client, rid, device), 300)
                except Exception as exc:  # noqa: BLE001 - a broken session is counted, the run goes on
                    one = SessionResult(rid, kind=f"error:{type(exc).__name__}")
                    log(f"session {i} (resident {rid}) raised {type(exc).__name__}: {exc}")
                results.append(one)
                latency = f"{one.latency_s * 1000:.0f} ms" if one.latency_s is not None else "-"
                log(f"session {len(results)}/{len(residents)}: resident {rid} {'+'.join(one.actions) or '-'} "
                    f"-> {one.kind}{' ' + ','.join(one.reasons) if one.reasons else ''} "
                    f"(frames {one.frames_sent}, decision latency {latency})")

    await asyncio.gather(*(worker(w) for w in range(args.concurrency)))
    return results


# ---------------------------------------------------------------- report


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1]  # nearest rank


def ms(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value * 1000:.{digits}f}"


def num(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


async def bench(args: argparse.Namespace, server_pid: int | None, backend: str) -> str:
    run_seed = args.seed if args.seed is not None else secrets.randbits(32)
    rng = random.Random(run_seed)
    run_tag = f"{run_seed:08x}"[-8:]
    began = time.monotonic()
    deadline = began + args.max_seconds
    print(f"certify_load: {args.url} ({backend}), {args.sessions} sessions, concurrency {args.concurrency}, "
          f"{args.fps:g} fps, transport {args.transport}, seed {run_seed}", flush=True)

    clip_frames()  # decode and encode the clip before anything is measured
    errors: Counter = Counter()
    async with httpx.AsyncClient(base_url=args.url, timeout=REQUEST_TIMEOUT_S, trust_env=False) as client:
        staff = Staff(client, args.username, args.password)
        await staff.login()
        t = time.perf_counter()
        residents = await asyncio.wait_for(
            enrol_residents(staff, args.sessions, rng=rng, concurrency=args.concurrency, errors=errors),
            max(1.0, deadline - time.monotonic()))
        setup_s = time.perf_counter() - t
        print(f"setup: {len(residents)}/{args.sessions} residents created, consented and enrolled in {setup_s:.1f} s"
              f"{' — errors ' + str(dict(errors)) if errors else ''}", flush=True)
        if not residents:
            raise RuntimeError("no resident could be enrolled; nothing to certify")
        await staff.login()  # a fresh access token for the measured phase

        load0 = os.getloadavg()[0]
        cpu_client0 = time.process_time()
        cpu_server0, cpu_how = server_cpu_seconds(server_pid) if server_pid else (None, "no --server-pid given")
        t0 = time.perf_counter()
        results = await run_sessions(args, staff, residents, run_tag, deadline)
        elapsed = time.perf_counter() - t0
        cpu_server1, cpu_how1 = server_cpu_seconds(server_pid) if server_pid else (None, cpu_how)
        cpu_client = time.process_time() - cpu_client0
        load1 = os.getloadavg()[0]

    run = len(results)
    decided = [r for r in results if r.decided]
    kinds = Counter(r.kind for r in results)
    reasons = Counter(reason for r in results for reason in r.reasons)
    latencies = [r.latency_s for r in decided if r.latency_s is not None]
    starts = [r.start_s for r in results if r.start_s is not None]
    rtts = [x for r in results for x in r.frame_rtts_s]
    frames = sum(r.frames_sent for r in results)
    missing = Counter(a for r in results for a in r.missing_actions)
    sessions_per_s = len(decided) / elapsed if elapsed > 0 else 0.0
    server_cpu = cpu_server1 - cpu_server0 if cpu_server0 is not None and cpu_server1 is not None else None
    cpu_ms_per_session = server_cpu * 1000 / run if server_cpu is not None and run else None

    skipped = f" ({len(residents) - run} not started before --max-seconds)" if run < len(residents) else ""
    print(f"sessions: {run} run{skipped} in {elapsed:.1f} s, {len(decided)} decided -> {sessions_per_s:.3f} sessions/s")
    print("decisions: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    if reasons:
        print("reasons: " + ", ".join(f"{k} {v}" for k, v in reasons.most_common()))
    if missing:
        print(f"WARNING: challenges asked for actions the clip cannot show: {dict(missing)} — run the server with "
              f"CERT_CHALLENGE_ACTIONS={SERVER_ACTIONS}")
    print(f"decision latency (last frame sent -> decision): p50 {ms(percentile(latencies, 50))} ms, "
          f"p90 {ms(percentile(latencies, 90))} ms, p99 {ms(percentile(latencies, 99))} ms, "
          f"max {ms(max(latencies) if latencies else None)} ms")
    print(f"start (request -> challenge): p50 {ms(percentile(starts, 50))} ms, p99 {ms(percentile(starts, 99))} ms")
    if rtts:
        print(f"frame round trip (ws frame sent -> its progress): p50 {ms(percentile(rtts, 50))} ms, "
              f"p99 {ms(percentile(rtts, 99))} ms over {len(rtts)} frames")
    per_session = [r.total_s for r in results if r.total_s is not None]
    print(f"session wall time: p50 {num(percentile(per_session, 50), 2)} s, max {num(max(per_session) if per_session else None, 2)} s; "
          f"frames sent {frames} ({frames / run if run else 0:.1f}/session)")
    if server_cpu is not None:
        per_frame = f", {server_cpu * 1000 / frames:.1f} ms/frame sent" if frames else ""
        print(f"server CPU ({cpu_how1}, pid {server_pid} and descendants): {server_cpu:.2f} s over the sessions "
              f"-> {cpu_ms_per_session:.1f} ms/session{per_frame}; {server_cpu / elapsed:.2f} cores busy on average "
              f"({os.cpu_count()} here)")
    else:
        print(f"server CPU: unavailable ({cpu_how1})")
    print(f"client CPU: {cpu_client:.2f} s -> {cpu_client * 1000 / max(1, run):.1f} ms/session")
    print(f"machine load average (1 min) before/after the sessions: {load0:.2f}/{load1:.2f} on {os.cpu_count()} CPUs "
          f"(latencies mean little when other work shares the CPUs; the CPU per session does not depend on it)")
    return (f"certify_load: sessions_per_s={sessions_per_s:.3f} p50_ms={ms(percentile(latencies, 50))} "
            f"p99_ms={ms(percentile(latencies, 99))} cpu_ms_per_session={num(cpu_ms_per_session)}")


async def main_async(args: argparse.Namespace) -> int:
    if args.start_server:
        async with started_server(args) as (server, backend):
            args.url = server.base_url
            summary = await bench(args, server.pid, backend)
    else:
        summary = await bench(args, args.server_pid, "already running")
    print(summary, flush=True)
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="base URL of an already running server (loopback only)")
    target.add_argument("--start-server", action="store_true",
                        help="start `python -m backend serve --seed-demo` in a subprocess and stop it at the end")
    parser.add_argument("--server-pid", type=int, help="pid of the server (--url) for the CPU figure")
    parser.add_argument("--database-url", nargs="?", const=DEFAULT_PG_ADMIN_URL,
                        help=f"--start-server on PostgreSQL: a temporary database is created through this "
                             f"(admin) URL [{DEFAULT_PG_ADMIN_URL}]; implies Redis")
    parser.add_argument("--redis-url", nargs="?", const=DEFAULT_REDIS_URL,
                        help=f"--start-server with Redis under a unique CACHE_PREFIX [{DEFAULT_REDIS_URL}]")
    parser.add_argument("--username", default=DEMO_STAFF_USER)
    parser.add_argument("--password", default=DEMO_PASSWORD)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--transport", choices=("ws", "http"), default="ws")
    parser.add_argument("--seed", type=int, help="seed of the synthetic residents (default: random per run)")
    parser.add_argument("--max-seconds", type=float, default=900.0,
                        help="bound of setup + sessions; sessions not started by then are not run")
    parser.add_argument("--startup-timeout", type=float, default=300.0)
    parser.add_argument("--keep-log", action="store_true", help="keep the started server's DATA_DIR and log")
    args = parser.parse_args(argv)
    if args.sessions < 1 or args.concurrency < 1 or args.fps <= 0:
        parser.error("--sessions and --concurrency must be at least 1, --fps positive")
    if args.start_server:
        if args.server_pid:
            parser.error("--server-pid is for --url; --start-server measures the server it starts")
        if args.database_url and not args.redis_url:
            args.redis_url = DEFAULT_REDIS_URL
        for url, what in ((args.database_url, "--database-url"), (args.redis_url, "--redis-url")):
            if url:
                require_loopback(url, what)
    else:
        if args.database_url or args.redis_url:
            parser.error("--database-url/--redis-url only apply to --start-server")
        args.url = args.url.rstrip("/")
        require_loopback(args.url, "--url")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run_main(main_async(args))  # SIGTERM too: the server is stopped, its database dropped
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except RuntimeError as exc:
        log(f"failed: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
