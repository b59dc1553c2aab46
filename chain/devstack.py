"""A local chain: one sequencer and the three department witnesses as child processes.

``python -m chain devstack --data-dir D --port P`` (or ``Devstack(...)`` from
Python) creates the keys on first run, starts ``python -m chain sequencer`` on
port P and ``python -m chain witness`` for civil_affairs, social_security and
health on P+1..P+3, waits until every witness is registered and healthy,
writes ``D/devstack.json`` (URLs, trust roots, submitter key path) and stops
all children on SIGTERM/SIGINT.

Layout::

    D/sequencer/            log.key log.vkey admin.token submitters.json submitters/backend.key chain.sqlite3
    D/witness-<department>/ witness.key witness.pub witness.pop cosigner.key cosigner.vkey log.vkey
                            state-<log key id>.json refusals-<log key id>.jsonl
    D/logs/<name>.log       child stdout+stderr
    D/devstack.json
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from . import keys
from .witness import DEPARTMENTS

DEFAULT_ORIGIN = "zhilian.local/chain"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """Linux: deliver SIGTERM to the child when its parent dies (no orphans after a crash)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Child:
    name: str
    args: list[str]
    url: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str]) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "chain", *self.args],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if not self.alive:
            return
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Devstack:
    """Start, query and stop a local sequencer + witnesses."""

    data_dir: Path
    port: int = 8650
    host: str = "127.0.0.1"
    database_url: str | None = None
    quorum: int = 2
    origin: str = DEFAULT_ORIGIN
    departments: tuple[str, ...] = DEPARTMENTS
    witness_ports: dict[str, int] | None = None
    checkpoint_interval: float = 0.5
    extra_env: dict[str, str] = field(default_factory=dict)
    children: dict[str, Child] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if self.witness_ports is None:
            self.witness_ports = {d: self.port + 1 + i for i, d in enumerate(self.departments)}
        self.sequencer_dir = self.data_dir / "sequencer"
        self.url = f"http://{self.host}:{self.port}"

    # --- keys and children ------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create every key on first run (so their public halves are known before anything starts)."""
        self.signer = keys.log_signer(self.sequencer_dir, self.origin)
        self.admin_token = keys.admin_token(self.sequencer_dir)
        self.submitter_key_path = keys.submitter_key(self.sequencer_dir, "backend")
        assert self.witness_ports is not None
        seq_args = [
            "sequencer",
            "--data-dir", str(self.sequencer_dir),
            "--host", self.host,
            "--port", str(self.port),
            "--origin", self.origin,
            "--quorum", str(self.quorum),
            "--departments", ",".join(self.departments),
            "--checkpoint-interval", str(self.checkpoint_interval),
        ]  # fmt: skip
        if self.database_url:
            seq_args += ["--database-url", self.database_url]
        logs = self.data_dir / "logs"
        self.children["sequencer"] = Child("sequencer", seq_args, self.url, logs / "sequencer.log")
        for department in self.departments:
            witness_dir = self.data_dir / f"witness-{department}"
            keys.witness_secret_key(witness_dir)
            keys.witness_cosigner_key(witness_dir, keys.witness_cosigner_name(department))
            port = self.witness_ports[department]
            args = [
                "witness",
                "--department", department,
                "--data-dir", str(witness_dir),
                "--host", self.host,
                "--port", str(port),
                "--sequencer-url", self.url,
                "--log-vkey", self.signer.verifier.vkey,
                "--admin-token-file", str(self.sequencer_dir / "admin.token"),
            ]  # fmt: skip
            self.children[department] = Child(
                department, args, f"http://{self.host}:{port}", logs / f"{department}.log"
            )

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.extra_env)
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        return env

    def start_child(self, name: str) -> None:
        self.children[name].start(self._env())

    def stop_child(self, name: str, sig: int = signal.SIGTERM) -> None:
        self.children[name].stop(sig)

    def ports_in_use(self) -> list[str]:
        """Children whose port something else already holds (then "healthy" would be a stranger's answer)."""
        taken = []
        for name, child in self.children.items():
            port = int(child.url.rsplit(":", 1)[1])
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((self.host, port))
                except OSError:
                    taken.append(f"{name} port {port}")
        return taken

    def start(self, timeout: float = 30.0) -> None:
        """Start everything and wait until healthy; on failure, stop what started and raise."""
        self.prepare()
        taken = self.ports_in_use()
        if taken:
            raise RuntimeError(
                f"cannot start the chain on {self.host}: {', '.join(taken)} already in use "
                "(a chain left running by an earlier run, or another program); stop it or choose other ports"
            )
        try:
            for name in self.children:
                self.start_child(name)
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        self.write_manifest()

    def stop(self) -> None:
        """SIGTERM every child at once, then wait (SIGKILL after 10 s)."""
        for child in self.children.values():
            if child.alive and child.process is not None:
                child.process.send_signal(signal.SIGTERM)
        for child in self.children.values():
            child.stop()

    def __enter__(self) -> Devstack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- health ------------------------------------------------------------------------------------

    def _get(self, url: str) -> dict[str, Any] | None:
        try:
            response = httpx.get(url, timeout=2)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    def wait_child(self, name: str, timeout: float = 30.0) -> dict[str, Any]:
        """Wait for one child's /v1/health (and, for a witness, its registration)."""
        child = self.children[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not child.alive:
                raise RuntimeError(
                    f"{name} exited early; see {child.log_path}:\n{child.log_path.read_text()[-3000:]}"
                )
            health = self._get(f"{child.url}/v1/health")
            if health and (name == "sequencer" or health.get("registered")):
                return health
            time.sleep(0.05)
        raise TimeoutError(f"expected {name} healthy within {timeout}s; see {child.log_path}")

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Every child healthy, and the sequencer past its start-up check (``ok`` or ``refusing``)."""
        deadline = time.monotonic() + timeout
        for name in self.children:
            if self.children[name].alive:
                self.wait_child(name, max(0.1, deadline - time.monotonic()))
        if self.children["sequencer"].alive:
            self.wait_sequencer_checked(max(0.1, deadline - time.monotonic()))

    def wait_sequencer_checked(self, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until the sequencer has decided: sequencing (``ok``) or refusing; returns its health."""
        deadline = time.monotonic() + timeout
        health: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            health = self._get(f"{self.url}/v1/health")
            if health and health.get("status") in ("ok", "refusing"):
                return health
            time.sleep(0.05)
        raise TimeoutError(f"expected the sequencer to finish its start-up check within {timeout}s: {health}")

    # --- what others need ----------------------------------------------------------------------------

    def trust(self) -> dict[str, Any]:
        """Trust roots from the key files on disk (not from the server)."""
        witnesses = []
        for department in self.departments:
            witness_dir = self.data_dir / f"witness-{department}"
            witnesses.append({
                "department": department,
                "public_key": (witness_dir / "witness.pub").read_text().strip(),
                "pop": (witness_dir / "witness.pop").read_text().strip(),
                "cosigner_vkey": (witness_dir / "cosigner.vkey").read_text().strip(),
            })
        return {"log_vkey": self.signer.verifier.vkey, "quorum": self.quorum, "witnesses": witnesses}

    def write_manifest(self) -> Path:
        manifest = {
            "url": self.url,
            "witness_urls": {d: self.children[d].url for d in self.departments},
            "submitter": "backend",
            "submitter_key": str(self.submitter_key_path),
            "trust": self.trust(),
            "pids": {n: c.process.pid for n, c in self.children.items() if c.process is not None},
        }
        path = self.data_dir / "devstack.json"
        keys.write_public(path, json.dumps(manifest, indent=2) + "\n")
        keys.write_public(self.data_dir / "trust.json", json.dumps(self.trust(), indent=2) + "\n")
        return path

    def client(self, **kwargs: Any):  # -> ChainClient
        from .client import ChainClient

        return ChainClient(self.url, submitter="backend", private_key=self.submitter_key_path, **kwargs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chain devstack", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("ZHILIAN_CHAIN_DATA_DIR", "var/chain"))
    )
    parser.add_argument("--port", type=int, default=int(os.environ.get("ZHILIAN_CHAIN_PORT", "8650")))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--database-url", default=os.environ.get("ZHILIAN_CHAIN_DATABASE_URL"))
    parser.add_argument("--quorum", type=int, default=2)
    args = parser.parse_args(argv)

    stack = Devstack(
        args.data_dir, port=args.port, host=args.host, database_url=args.database_url, quorum=args.quorum
    )
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stack.start()
    print(f"chain devstack ready: {stack.url} (manifest {stack.data_dir / 'devstack.json'})", flush=True)
    try:
        while not stopping:
            for name, child in stack.children.items():
                if not child.alive and not stopping:
                    print(
                        f"{name} exited (code {child.process.returncode if child.process else '?'}); restarting",
                        flush=True,
                    )
                    stack.start_child(name)
            time.sleep(0.2)
    finally:
        stack.stop()
    print("chain devstack stopped", flush=True)
    return 0
