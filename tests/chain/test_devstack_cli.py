"""``python -m chain devstack``: starts four processes, reports ready, stops them all on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from chain.devstack import free_port

pytestmark = pytest.mark.processes


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie of an exited child still "exists"; it is gone once its state is Z
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_devstack_cli_starts_and_stops_everything(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "dev"
    proc = subprocess.Popen(
        [sys.executable, "-m", "chain", "devstack", "--data-dir", str(data_dir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "ready" in line, line
        manifest = json.loads((data_dir / "devstack.json").read_text())
        health = httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=5).json()
        assert sorted(health["witnesses"]) == ["civil_affairs", "health", "social_security"]
        for name in ("sequencer/log.key", "sequencer/admin.token", "witness-health/witness.key"):
            assert (data_dir / name).stat().st_mode & 0o777 == 0o600
        pids = list(manifest["pids"].values())
        assert len(pids) == 4
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids)


def test_a_second_stack_on_taken_ports_refuses_instead_of_trusting_a_strangers_answers(tmp_path: Path) -> None:
    from chain.devstack import Devstack

    port = free_port()
    witness_ports = {d: free_port() for d in ("civil_affairs", "social_security", "health")}
    first = Devstack(tmp_path / "first", port=port, witness_ports=witness_ports)
    first.start()
    try:
        leftover_pid = first.children["sequencer"].process.pid
        second = Devstack(tmp_path / "second", port=port, witness_ports=witness_ports)
        with pytest.raises(RuntimeError, match=f"sequencer port {port}, .* already in use"):
            second.start()
        assert not (tmp_path / "second" / "devstack.json").exists()  # never reported ready
        assert _alive(leftover_pid)  # and it did not touch the other stack's processes
    finally:
        first.stop()
