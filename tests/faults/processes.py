"""The real processes of the fault suite, each private to the run: PostgreSQL, Redis, the chain, the API.

Nothing here touches the machine's shared PostgreSQL or Redis: each server gets a free port and a
folder under the test's temporary directory, and is stopped (or killed) only through the handle
that started it.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from chain.devstack import Devstack
from tests.conftest import REPO_ROOT, free_port

DEPARTMENTS = ("civil_affairs", "social_security", "health")


def _wait(condition, timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise TimeoutError(f"expected {what} within {timeout:.0f} s")


def pg_root() -> Path:
    """A folder for a private cluster that the `postgres` account can reach (pytest's are 0700 root)."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix="zhilian-faults-pg-"))


def _pg_bin() -> Path:
    """PostgreSQL's server binaries (Debian keeps them off PATH): the newest /usr/lib/postgresql/*/bin."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    raise RuntimeError("the fault suite needs PostgreSQL's initdb and pg_ctl (Debian: apt-get install postgresql)")


@dataclass
class PrivatePostgres:
    """A throw-away cluster: initdb into `root`, served on a free loopback port, trust auth.

    Running as root, the server runs as the `postgres` account, so `root` must be a folder that
    account can reach (`pg_root()` makes one in the system temp folder).
    """

    root: Path
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.bin = _pg_bin()
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        # initdb and postgres refuse to run as root: use the postgres account when we are root
        self._user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        def demote() -> None:
            if self._user is not None:
                os.setgid(self._user.pw_gid)
                os.setuid(self._user.pw_uid)

        return subprocess.run([str(self.bin / args[0]), *args[1:]], capture_output=True, text=True,
                              preexec_fn=demote, check=False, timeout=120)

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
        done = self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                         "--no-locale", "--no-sync")
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stdout}{done.stderr}")
        with open(self.data / "postgresql.conf", "a") as conf:
            # durable like production (fsync on), small, loopback only, socket in our own folder
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.root}'\n"
                       "max_connections = 50\nshared_buffers = 32MB\nfsync = on\n")

    def start(self) -> None:
        done = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {done.stdout}{done.stderr}\n{self._tail()}")

    def stop(self, mode: str = "fast") -> None:
        """`immediate` is a crash as far as the data is concerned: no checkpoint, recovery on next start."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def answers(self) -> bool:
        return self._run("pg_isready", "-h", "127.0.0.1", "-p", str(self.port), "-t", "2").returncode == 0

    def create_database(self, name: str) -> str:
        import asyncio

        import asyncpg

        async def create() -> None:
            connection = await asyncpg.connect(self.url)
            try:
                await connection.execute(f'CREATE DATABASE "{name}"')
            finally:
                await connection.close()

        asyncio.run(create())  # called from a worker thread: no loop is running here
        return self.database_url(name)

    def remove(self) -> None:
        if os.environ.get("ZHILIAN_FAULTS_KEEP"):  # to look at the data after a run
            print(f"[faults] kept the PostgreSQL cluster in {self.root} (port {self.port})")
            return
        shutil.rmtree(self.root, ignore_errors=True)

    def _tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""


@dataclass
class PrivateRedis:
    """redis-server on a free port, nothing persisted (as the machine's own: `--save "" --appendonly no`)."""

    root: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("the fault suite needs redis-server (Debian: apt-get install redis-server)")
        with open(self.root / "redis.log", "ab") as log:
            self.process = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(self.root)], stdout=log, stderr=subprocess.STDOUT)
        import redis

        def answers() -> bool:
            with contextlib.suppress(Exception):
                return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
            return False

        _wait(answers, 15, "the private Redis to answer")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class ApiProcess:
    """`python -m backend serve` in its own process, configured only through its environment."""

    root: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        """The process environment the API runs with (also for its other commands, e.g. chain-leaves)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ZHILIAN_TEST_", "DATABASE_URL", "REDIS_URL"))}
        env.update(self.env)
        env.update({"HOST": "127.0.0.1", "PORT": str(self.port), "WORKERS": "1", "DATA_DIR": str(self.root / "data"),
                    "PYTHONPATH": str(REPO_ROOT)})
        return env

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        env = self.environment()
        self.starts += 1
        with open(self.root / "api.log", "ab") as log:
            log.write(f"\n===== start {self.starts} =====\n".encode())
            log.flush()
            self.process = subprocess.Popen([sys.executable, "-m", "backend", "serve"], cwd=REPO_ROOT, env=env,
                                            stdout=log, stderr=subprocess.STDOUT)

    def ready(self) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        return False

    def wait_ready(self, timeout: float = 90) -> None:
        def up() -> bool:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"the API exited; see {self.root / 'api.log'}:\n{self.log_tail()}")
            return self.ready()

        _wait(up, timeout, "the API to be ready", interval=0.25)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, chars: int = 3000) -> str:
        path = self.root / "api.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""


@dataclass
class Stack:
    """Everything the suite starts, and what it needs to talk to it."""

    root: Path
    postgres: PrivatePostgres
    redis: PrivateRedis
    chain: Devstack
    api: ApiProcess
    database_url: str
    world: dict = field(default_factory=dict)

    def stop(self) -> None:
        for step in (self.api.stop, self.chain.stop, self.redis.stop, lambda: self.postgres.stop("fast"),
                     self.postgres.remove):
            with contextlib.suppress(Exception):
                step()


def seed(database_url: str, root: Path) -> dict:
    """Migrate and create one community with two staff (the visit needs two people) in a child process.

    A child process, because this pytest process may hold a Tortoise connection to another database.
    """
    env = {**os.environ, "DATABASE_URL": database_url, "DATA_DIR": str(root / "seed-data"), "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-m", "tests.faults.seed"], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=180, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"seeding failed: {done.stdout}{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def build_stack(root: Path) -> Stack:
    """Start PostgreSQL, Redis, the chain (sequencer + three witnesses) and the API; seed; wait until ready."""
    started: list = []
    try:
        postgres = PrivatePostgres(pg_root())
        started += [postgres.remove, lambda: postgres.stop("fast")]
        postgres.init()
        postgres.start()
        redis = PrivateRedis(root / "redis")
        started.append(redis.stop)
        redis.start()
        chain = Devstack(root / "chain", port=free_port(), witness_ports={d: free_port() for d in DEPARTMENTS})
        started.append(chain.stop)
        chain.start()
        database_url = postgres.create_database("zhilian")
        world = seed(database_url, root)
        api = ApiProcess(root / "api", env={
            "ZHILIAN_ENV": "development", "DATABASE_URL": database_url, "REDIS_URL": redis.url,
            "CHAIN_URL": chain.url, "CHAIN_SUBMITTER_KEY_FILE": str(chain.submitter_key_path),
            "CHAIN_TRUST_FILE": str(chain.data_dir / "trust.json"), "CHAIN_PROOF_WAIT_S": "2",
            "ACCESS_TOKEN_TTL_S": "7200", "CREDENTIAL_VERIFY_PER_MINUTE": "100000", "LOG_LEVEL": "INFO",
            "AUTO_MIGRATE": "true", "FACE_THREADS": "1",
        })
        started.append(api.stop)
        api.start()
        api.wait_ready()
    except BaseException:
        for step in reversed(started):
            with contextlib.suppress(Exception):
                step()
        raise
    return Stack(root, postgres, redis, chain, api, database_url, world)
