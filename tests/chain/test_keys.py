"""Key files (0600, idempotent) and the Zhilian-Ed25519 submitter request signature."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from chain import keys


def test_keys_are_private_and_stable(tmp_path: Path) -> None:
    signer = keys.log_signer(tmp_path, "zhilian.local/chain")
    assert keys.log_signer(tmp_path, "zhilian.local/chain").skey == signer.skey
    assert (tmp_path / "log.key").stat().st_mode & 0o777 == 0o600
    assert keys.admin_token(tmp_path) == keys.admin_token(tmp_path)
    sk = keys.witness_secret_key(tmp_path / "w")
    assert keys.witness_secret_key(tmp_path / "w") == sk
    assert (tmp_path / "w" / "witness.key").stat().st_mode & 0o777 == 0o600
    key_path = keys.submitter_key(tmp_path, "backend")
    assert key_path.stat().st_mode & 0o777 == 0o600
    assert set(keys.load_submitters(tmp_path)) == {"backend"}
    with pytest.raises(ValueError, match="expected the log key"):
        keys.log_signer(tmp_path, "another.origin")


def test_request_signature_round_trip_and_failures() -> None:
    key = Ed25519PrivateKey.generate()
    submitters = {"backend": key.public_key()}
    body = b'{"leaves": []}'
    header = keys.authorization_header("backend", key, "POST", "/v1/leaves", body, ts=1_000_000)
    assert (
        keys.verify_authorization(header, "POST", "/v1/leaves", body, submitters, now=1_000_010) == "backend"
    )
    failures = [
        (None, body, 1_000_010),
        ("Bearer x", body, 1_000_010),
        (header, body + b" ", 1_000_010),  # body changed
        (header, body, 1_000_000 + 301),  # stale
        (header.replace("keyid=backend", "keyid=other"), body, 1_000_010),
        (keys.authorization_header("backend", Ed25519PrivateKey.generate(), "POST", "/v1/leaves", body, 1_000_000),
         body, 1_000_010),
    ]  # fmt: skip
    for value, request_body, now in failures:
        with pytest.raises(keys.AuthError):
            keys.verify_authorization(value, "POST", "/v1/leaves", request_body, submitters, now=now)


def test_keygen_cli(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "chain", "keygen", "sequencer", "--data-dir", str(tmp_path), "--submitter", "backend"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    data = json.loads(out.stdout)
    assert data["log_vkey"].startswith("zhilian.local/chain+")
    assert Path(data["submitter:backend"]).exists()


def test_backend_can_be_forced_to_the_reference() -> None:
    env = dict(os.environ, ZHILIAN_BLS_BACKEND="pyecc")
    out = subprocess.run(
        [sys.executable, "-c", "from chain import bls; print(bls.BACKEND.name)"],
        capture_output=True, text=True, timeout=60, env=env, check=True,
    )  # fmt: skip
    assert out.stdout.strip() == "pyecc"
