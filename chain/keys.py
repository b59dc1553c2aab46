"""Key files in a data directory, and the submitter request signature.

Every secret is written 0600 through a temporary file and an atomic rename,
created on first run and reused afterwards.

Submitter authentication (``Zhilian-Ed25519``): the submitter signs

    zhilian-chain-request/v1 \\n METHOD \\n PATH \\n UNIX-SECONDS \\n hex(SHA-256(body))

with its Ed25519 key and sends
``Authorization: Zhilian-Ed25519 keyid=<submitter>,ts=<unix seconds>,sig=<base64>``.
The sequencer holds only public keys (``submitters.json``); it accepts a
timestamp within ±300 s.  A replay inside that window can only repeat an
idempotent append, never forge a new one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
import time
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from . import bls
from .checkpoint import CosignerKey, NoteSigner

AUTH_SCHEME = "Zhilian-Ed25519"
AUTH_CONTEXT = b"zhilian-chain-request/v1"
MAX_CLOCK_SKEW = 300


class AuthError(Exception):
    """A request signature is missing, malformed, stale or wrong."""


def write_secret(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600, atomically and durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write_public(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def log_signer(data_dir: Path, origin: str) -> NoteSigner:
    """The log's Ed25519 note key (``log.key``/``log.vkey``), created on first run."""
    key_path = data_dir / "log.key"
    if key_path.exists():
        signer = NoteSigner.from_skey(key_path.read_text())
        if signer.name != origin:
            raise ValueError(
                f"expected the log key in {key_path} to be named {origin!r}, it is {signer.name!r}"
            )
    else:
        signer = NoteSigner.generate(origin)
        write_secret(key_path, signer.skey + "\n")
    write_public(data_dir / "log.vkey", signer.verifier.vkey + "\n")
    return signer


def admin_token(data_dir: Path) -> str:
    """The bearer token that witness registration requires (``admin.token``)."""
    path = data_dir / "admin.token"
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    write_secret(path, token + "\n")
    return token


def witness_secret_key(data_dir: Path) -> int:
    """A witness's BLS secret key (``witness.key``, hex), created with KeyGen on first run.

    Its public key (``witness.pub``) and proof of possession (``witness.pop``) are written
    beside it: verifiers' trust files must carry both (a key without its proof is refused)."""
    path = data_dir / "witness.key"
    if path.exists():
        sk = int(path.read_text().strip(), 16)
    else:
        sk = bls.KeyGen(secrets.token_bytes(32))
        write_secret(path, f"{sk:064x}\n")
    write_public(data_dir / "witness.pub", bls.SkToPk(sk).hex() + "\n")
    pop_path = data_dir / "witness.pop"
    if not pop_path.exists():
        write_public(pop_path, bls.PopProve(sk).hex() + "\n")
    return sk


def witness_cosigner_name(department: str) -> str:
    """The default C2SP cosigner name of a department's witness (a schema-less URL)."""
    return f"zhilian.local/witness/{department}"


def witness_cosigner_key(data_dir: Path, name: str) -> CosignerKey:
    """A witness's Ed25519 tlog-cosignature key (``cosigner.key``, base64 seed), created on first run;
    its type-0x04 verifier key goes to ``cosigner.vkey``."""
    path = data_dir / "cosigner.key"
    if path.exists():
        seed = base64.b64decode(path.read_text().strip())
    else:
        seed = secrets.token_bytes(32)
        write_secret(path, base64.b64encode(seed).decode() + "\n")
    key = CosignerKey.from_seed(name, seed)
    write_public(data_dir / "cosigner.vkey", key.verifier.vkey + "\n")
    return key


def submitter_key(data_dir: Path, name: str) -> Path:
    """Create (once) a submitter key pair: private key in ``submitters/<name>.key``,
    public key added to ``submitters.json``.  Returns the private key path."""
    key_path = data_dir / "submitters" / f"{name}.key"
    if key_path.exists():
        private = load_private_key(key_path)
    else:
        private = Ed25519PrivateKey.generate()
        raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        write_secret(key_path, base64.b64encode(raw).decode() + "\n")
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    registry_path = data_dir / "submitters.json"
    registry = json.loads(registry_path.read_text()) if registry_path.exists() else {}
    registry[name] = base64.b64encode(public).decode()
    write_public(registry_path, json.dumps(registry, indent=2, sort_keys=True) + "\n")
    return key_path


def load_private_key(path: Path) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(path.read_text().strip()))


def load_submitters(data_dir: Path) -> dict[str, Ed25519PublicKey]:
    path = data_dir / "submitters.json"
    if not path.exists():
        return {}
    return {
        name: Ed25519PublicKey.from_public_bytes(base64.b64decode(pub))
        for name, pub in json.loads(path.read_text()).items()
    }


def _signing_input(method: str, path: str, ts: int, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return b"\n".join(
        [AUTH_CONTEXT, method.upper().encode(), path.encode(), str(ts).encode(), digest.encode()]
    )


def authorization_header(
    submitter: str, key: Ed25519PrivateKey, method: str, path: str, body: bytes, ts: int | None = None
) -> str:
    """The ``Authorization`` value for one request."""
    ts = int(time.time()) if ts is None else ts
    signature = base64.b64encode(key.sign(_signing_input(method, path, ts, body))).decode()
    return f"{AUTH_SCHEME} keyid={submitter},ts={ts},sig={signature}"


def verify_authorization(
    header: str | None,
    method: str,
    path: str,
    body: bytes,
    submitters: dict[str, Ed25519PublicKey],
    now: float | None = None,
) -> str:
    """Check a request signature; returns the authenticated submitter id."""
    if not header or not header.startswith(AUTH_SCHEME + " "):
        raise AuthError(f"expected an Authorization header with scheme {AUTH_SCHEME}")
    fields: dict[str, str] = {}
    for part in header[len(AUTH_SCHEME) + 1 :].split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise AuthError(f"expected key=value pairs in the Authorization header, got {part!r}")
        fields[key] = value
    if set(fields) != {"keyid", "ts", "sig"}:
        raise AuthError(f"expected keyid, ts and sig in the Authorization header, got {sorted(fields)}")
    public = submitters.get(fields["keyid"])
    if public is None:
        raise AuthError(f"expected a registered submitter, got {fields['keyid']!r}")
    try:
        ts = int(fields["ts"])
        signature = base64.b64decode(fields["sig"], validate=True)
    except (ValueError, binascii.Error) as exc:
        raise AuthError("expected an integer ts and a base64 sig") from exc
    now = time.time() if now is None else now
    if abs(now - ts) > MAX_CLOCK_SKEW:
        raise AuthError(f"expected a timestamp within {MAX_CLOCK_SKEW}s of {int(now)}, got {ts}")
    try:
        public.verify(signature, _signing_input(method, path, ts, body))
    except InvalidSignature as exc:
        raise AuthError(f"expected a valid signature by {fields['keyid']}, it does not verify") from exc
    return fields["keyid"]
