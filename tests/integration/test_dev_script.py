"""scripts/dev after a SIGKILL: the next run stops what the killed one left running and starts cleanly.

Killing the script (a closed terminal, `kill -9`) leaves its server and chain holding their ports; the
next run must find them through its pid file, stop them (only processes of this checkout), and come up
with its own chain rather than talking to the old one.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO_ROOT, free_port

pytestmark = pytest.mark.processes


def four_free_ports() -> int:
    for _ in range(50):
        base = free_port()
        if base > 65000:
            continue
        try:
            for offset in range(4):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", base + offset))
        except OSError:
            continue
        return base
    raise RuntimeError("no four consecutive free ports")


def start_dev(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(["bash", "scripts/dev"], cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def wait_for(log: Path, pattern: str, process: subprocess.Popen[bytes], seconds: float = 240) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if re.search(pattern, text):
            return text
        if process.poll() is not None:
            raise AssertionError(f"scripts/dev exited ({process.returncode}):\n{text[-3000:]}")
        time.sleep(0.5)
    raise AssertionError(f"{pattern!r} never appeared:\n{log.read_text(errors='replace')[-3000:]}")


def test_a_killed_run_is_cleaned_up_by_the_next(tmp_path):
    port, chain_port = free_port(), four_free_ports()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZHILIAN_", "CHAIN_", "DATABASE_", "REDIS_"))}
    env.update(PORT=str(port), CHAIN_PORT=str(chain_port), DATA_DIR=str(tmp_path / "data"), LOG_LEVEL="WARNING")
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"

    runs: list[subprocess.Popen[bytes]] = []
    first = start_dev(env, first_log)
    runs.append(first)
    try:
        wait_for(first_log, r"Zhilian is running at", first)
        text = first_log.read_text()
        assert "nq_staff" in text and "auditor" in text and "platform" in text  # every demo account named
        assert re.search(r"phone 1700\d{7}", text)  # and a resident to sign in as
        os.kill(first.pid, signal.SIGKILL)  # the script only: its server and chain keep running
        first.wait()
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200

        second = start_dev(env, second_log)
        runs.append(second)
        try:
            text = wait_for(second_log, r"Zhilian is running at", second)
            assert "stopping the server left running by a previous run" in text
            assert "stopping the chain left running by a previous run" in text
            assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
            chain = httpx.get(f"http://127.0.0.1:{chain_port}/v1/health", timeout=5)
            assert chain.status_code == 200
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(60)
        with pytest.raises(httpx.HTTPError):  # everything of the second run stopped with it
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    finally:  # whatever a failed assertion left behind: each run is its own process group
        for run in runs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(run.pid, signal.SIGKILL)
