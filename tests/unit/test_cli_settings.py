"""The command line reads configuration the way the server does (environment over .env over defaults),
and a taken port is one plain sentence, not a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


def backend(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in {"HOST", "PORT", "DATA_DIR", "CHAIN_PORT"}}
    return subprocess.run([sys.executable, "-m", "backend", *args], cwd=cwd, capture_output=True, text=True,
                          env={**base, "PYTHONPATH": str(REPO_ROOT), **env}, timeout=60)


def test_settings_come_from_dotenv_and_the_environment_wins(tmp_path):
    (tmp_path / ".env").write_text("PORT=8123\nDATA_DIR=/srv/zhilian\nCHAIN_PORT=9650\n")
    from_file = backend(["settings", "--shell", "host", "port", "data_dir", "chain_port"], tmp_path)
    assert from_file.returncode == 0, from_file.stderr
    assert from_file.stdout.split() == ["HOST=127.0.0.1", "PORT=8123", "DATA_DIR=/srv/zhilian", "CHAIN_PORT=9650"]

    overridden = backend(["settings", "port"], tmp_path, PORT="9001")
    assert overridden.stdout.strip() == "9001"


def test_secrets_are_never_printed(tmp_path):
    (tmp_path / ".env").write_text("SECRET_KEY=do-not-print-this-secret-0123456789abcdef\n")
    shown = backend(["settings", "secret_key"], tmp_path)
    assert shown.returncode == 2
    assert "do-not-print" not in shown.stdout + shown.stderr


def test_a_taken_port_is_named_with_how_to_choose_another(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = backend(["serve"], tmp_path, PORT=str(port), DATA_DIR=str(tmp_path / "data"))
    assert result.returncode == 1
    assert f"127.0.0.1:{port}" in result.stderr and "PORT=" in result.stderr
    assert "Traceback" not in result.stderr
