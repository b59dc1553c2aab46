"""`python -m backend.oauth create-client` registers a client (audited) and prints its secret once."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO_ROOT


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_cli_creates_a_confidential_client_and_refuses_bad_uris(tmp_path):
    env = {**os.environ, "DATA_DIR": str(tmp_path), "DATABASE_URL": "", "REDIS_URL": "", "ZHILIAN_ENV": "development",
           "LOG_LEVEL": "WARNING"}
    assert _run(["backend", "migrate"], env).returncode == 0
    created = _run(["backend.oauth", "create-client", "--name", "市民云", "--redirect-uri", "https://portal.example/cb",
                    "--scope", "openid", "--scope", "certification:read"], env)
    assert created.returncode == 0, created.stderr
    client = json.loads(created.stdout)
    assert client["client_id"].startswith("zl_") and len(client["client_secret"]) >= 40
    assert client["sector_identifier"] == "portal.example"
    listed = json.loads(_run(["backend.oauth", "list-clients"], env).stdout)["items"]
    assert [c["client_id"] for c in listed] == [client["client_id"]] and "client_secret" not in listed[0]
    bad = _run(["backend.oauth", "create-client", "--name", "x", "--redirect-uri", "http://evil.example/cb",
                "--scope", "openid", "--public"], env)
    assert bad.returncode == 2 and "https" in bad.stderr
