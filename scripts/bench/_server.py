"""Backend servers for the benchmarks: start one in a subprocess, wait for it, stop it, clean up.

Shared by `scripts/bench/api.py` and `scripts/bench/certify_load.py`. A server runs in a session
of its own (so stopping its process group reaches whatever it started) on a free loopback port,
with a temporary DATA_DIR and an environment stripped of every variable the backend reads, so a
developer's shell cannot point it at real data. A temporary PostgreSQL database and a Redis key
prefix can be made for it and are removed afterwards. Every process started here is also stopped
when the interpreter exits, and `run_main` makes SIGTERM unwind like Ctrl-C.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # backend.settings names the variables to strip

DEMO_STAFF_USER = "nq_staff"  # community staff of 南桥社区 in the `--seed-demo` data
DEMO_PASSWORD = "Zhilian-demo-2026"  # the published demo password (backend/demo.py)
DEFAULT_PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
HUGE = str(10**9)  # a limit no benchmark reaches (login and start throttles)
BACKEND_ARGV = (sys.executable, "-m", "backend", "serve", "--seed-demo")

Log = Callable[[str], None]
T = TypeVar("T")


def make_log(tag: str) -> Log:
    """A progress logger to stderr under the benchmark's tag: stdout carries only its figures."""

    def log(message: str) -> None:
        print(f"[{tag}] {message}", file=sys.stderr, flush=True)

    return log


# ---------------------------------------------------------------- processes


_LIVE: dict[int, subprocess.Popen] = {}


def stop_process(proc: subprocess.Popen, *, grace_s: float = 10.0) -> None:
    """SIGTERM the process group (the server leads its own session), then SIGKILL if it lingers.

    The group is swept with SIGKILL even when the leader has already gone, so nothing it started
    (a worker, a helper) outlives it.
    """
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    _LIVE.pop(proc.pid, None)


@atexit.register
def stop_all() -> None:
    """Stop every server still running: an error or Ctrl-C must not leave one behind."""
    for proc in list(_LIVE.values()):
        stop_process(proc, grace_s=3.0)


def run_main(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)`, with SIGTERM handled like Ctrl-C: KeyboardInterrupt once cleaned up.

    The signal cancels the main task, so every `finally` (servers stopped, databases dropped, Redis
    keys deleted) runs on a live event loop. Raising KeyboardInterrupt from a signal handler
    instead can land inside a task, leave the main task pending and its cleanup to run without a
    loop, and the default action would leave the servers running in their own sessions. A repeated
    SIGTERM is ignored while cleaning up (SIGKILL remains; the atexit hook does not run then).
    """
    terminated = False

    async def cancel_on_sigterm() -> T:
        task = asyncio.current_task()
        assert task is not None

        def on_sigterm() -> None:
            nonlocal terminated
            if not terminated:
                terminated = True
                task.cancel()

        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
        try:
            return await main
        finally:
            loop.remove_signal_handler(signal.SIGTERM)

    try:
        return asyncio.run(cancel_on_sigterm())
    except asyncio.CancelledError:
        if terminated:
            raise KeyboardInterrupt from None
        raise


def free_port() -> int:
    """A loopback port free right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_cpu_seconds(pid: int) -> float | None:
    """utime + stime of one process (Linux /proc), or None when it is gone or unreadable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


# ---------------------------------------------------------------- environment


def settings_variables() -> set[str]:
    """Every variable backend/settings.py reads, taken from Settings so that none is forgotten."""
    from backend.settings import Settings

    return {f.name.upper() for f in fields(Settings) if f.name != "extra"}


def clean_environ() -> dict[str, str]:
    """The inherited environment without the backend's settings and FACE_* engine tunables."""
    drop = settings_variables()
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("FACE_")}


def backend_env(data_dir: Path, port: int, extra: dict[str, str]) -> dict[str, str]:
    """A development server's environment: one worker on 127.0.0.1, quiet logs, login throttles lifted.

    The benchmarks log in hundreds of times from one address, hence the throttles; `extra` adds
    or overrides variables (a database, Redis, a benchmark's own limits).
    """
    env = clean_environ()
    env.update({
        "PYTHONPATH": str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""),
        "PYTHONUNBUFFERED": "1",
        "PYTHONFAULTHANDLER": "1",  # dump_stacks relies on it
        "ZHILIAN_ENV": "development",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WORKERS": "1",
        "DATA_DIR": str(data_dir),
        "AUTO_MIGRATE": "true",
        "LOG_LEVEL": "WARNING",
        "LOGIN_MAX_PER_IP": HUGE,
        "LOGIN_MAX_PER_ACCOUNT": HUGE,
        **extra,
    })
    return env


# ---------------------------------------------------------------- one server


@dataclass
class Server:
    """A server subprocess with its output in `log_path`, started in a session of its own."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log_path: Path
    port: int
    proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> None:
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,  # Ctrl-C reaches us, we stop it
            )
        _LIVE[self.proc.pid] = self.proc

    def stop(self, grace_s: float = 10.0) -> None:
        if self.proc is not None:
            stop_process(self.proc, grace_s=grace_s)

    def dump_stacks(self) -> None:
        """A stuck server: SIGABRT makes faulthandler (PYTHONFAULTHANDLER=1) write every thread's stack to its log."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGABRT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def wait_ready(self, path: str, timeout_s: float) -> None:
        """Poll `path` until it answers 200; fail early if the process exits, with its log's last lines."""
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(base_url=self.base_url, timeout=5.0, trust_env=False) as client:
            while True:
                assert self.proc is not None, "start() first"
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} server exited with code {self.proc.returncode}:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(path)).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    self.dump_stacks()
                    raise RuntimeError(f"{self.name} server not ready after {timeout_s:.0f} s:\n{self.log_tail(60)}")
                await asyncio.sleep(0.25)


def backend_server(name: str, *, cwd: Path, data_dir: Path, log_path: Path,
                   extra_env: dict[str, str] | None = None) -> Server:
    """`python -m backend serve --seed-demo` on a free port (not started yet).

    `cwd` should be a temporary directory: the backend reads a `.env` file from its working
    directory, and the repository's must not apply. It is created if need be.
    """
    cwd.mkdir(parents=True, exist_ok=True)
    port = free_port()
    return Server(name, list(BACKEND_ARGV), backend_env(data_dir, port, extra_env or {}), cwd, log_path, port)


@contextlib.asynccontextmanager
async def running(server: Server, *, timeout_s: float, ready_path: str = "/readyz",
                  grace_s: float = 10.0) -> AsyncIterator[Server]:
    """Start `server`, wait until `ready_path` answers 200, and stop it on the way out whatever happened."""
    server.start()
    try:
        await server.wait_ready(ready_path, timeout_s)
        yield server
    finally:
        server.stop(grace_s)


# ---------------------------------------------------------------- PostgreSQL and Redis


def database_url_for(admin_url: str, name: str) -> str:
    """The admin URL pointed at database `name` (same host, user and options)."""
    return urlunsplit(urlsplit(admin_url)._replace(path="/" + name))


async def pg_execute(admin_url: str, statement: str) -> None:
    """One statement on a connection of its own (CREATE/DROP DATABASE cannot run in a transaction)."""
    import asyncpg

    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def create_database(admin_url: str, name: str) -> None:
    await pg_execute(admin_url, f'CREATE DATABASE "{name}"')


async def drop_database(admin_url: str, name: str) -> None:
    """Drop `name`, closing any connection left to it (a killed server's)."""
    await pg_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def delete_redis_prefix(url: str, prefix: str) -> int:
    """Delete every key under `prefix` (SCAN, not KEYS: a shared Redis is not blocked); returns how many."""
    import redis.asyncio as redis_asyncio

    client = redis_asyncio.from_url(url)
    deleted = 0
    try:
        async for key in client.scan_iter(match=prefix + "*", count=500):
            deleted += await client.delete(key)
    finally:
        await client.aclose()
    return deleted


@contextlib.asynccontextmanager
async def temporary_stores(*, log: Log, pg_admin_url: str | None = None, database: str | None = None,
                           redis_url: str | None = None, redis_prefix: str | None = None,
                           ) -> AsyncIterator[dict[str, str]]:
    """A new PostgreSQL database and/or a Redis key prefix for one server, removed on the way out.

    Yields the variables that point a server at them (DATABASE_URL, REDIS_URL, CACHE_PREFIX;
    empty when neither is asked for). Stop the server inside the block: it holds connections to
    the database. Cleanup failures are logged, not raised, so the rest of the cleanup still runs.
    """
    env: dict[str, str] = {}
    if pg_admin_url and database:
        await create_database(pg_admin_url, database)
        env["DATABASE_URL"] = database_url_for(pg_admin_url, database)
        log(f"created database {database}")
    if redis_url and redis_prefix:
        env.update(REDIS_URL=redis_url, CACHE_PREFIX=redis_prefix)
        log(f"Redis {redis_url} under prefix {redis_prefix}")
    try:
        yield env
    finally:
        if pg_admin_url and database:
            try:
                await drop_database(pg_admin_url, database)
                log(f"dropped database {database}")
            except Exception as exc:  # noqa: BLE001 - report it and go on cleaning
                log(f"could not drop database {database} ({type(exc).__name__}: {exc}); drop it by hand")
        if redis_url and redis_prefix:
            try:
                log(f"deleted {await delete_redis_prefix(redis_url, redis_prefix)} Redis keys under {redis_prefix}")
            except Exception as exc:  # noqa: BLE001
                log(f"could not delete Redis keys {redis_prefix}* ({type(exc).__name__}: {exc})")
