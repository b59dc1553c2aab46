"""Community issuing keys: from ISSUER_KEYS, or key files in ISSUER_KEY_DIR (generated in development).

A key file ``<dir>/<community>/<kid>.key`` holds the base64 32-byte Ed25519 seed (mode 0600);
``<dir>/<community>/active`` names the signing key. Production never generates a key: a
community without a configured key cannot issue (the outbox retries until one is configured).
Every key ever used is registered (public half only) in `IssuerKey`, so the DID document
keeps listing rotated keys and old credentials keep verifying on every worker.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from backend.credentials.did import did_document, did_web
from backend.credentials.models import IssuerKey
from backend.credentials.multikey import encode_ed25519_multikey
from backend.errors import ApiError
from backend.residents.models import Community
from backend.settings import Settings, SettingsError


class IssuerKeyMissing(ApiError):
    status = 503
    code = "credentials.no_issuer_key"


@dataclass(frozen=True)
class IssuerSigner:
    did: str
    kid: str
    private_key: Ed25519PrivateKey

    @property
    def verification_method(self) -> str:
        return f"{self.did}#{self.kid}"

    @property
    def public_key(self) -> bytes:
        return self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def public_multibase(self) -> str:
        return encode_ed25519_multikey(self.public_key)


def community_did(settings: Settings, code: str) -> str:
    return did_web(settings.effective_public_url, "communities", code)


def platform_did(settings: Settings) -> str:
    return did_web(settings.effective_public_url)


def key_dir(settings: Settings) -> Path:
    return Path(settings.issuer_key_dir or Path(settings.data_dir) / "issuer-keys")


def _seed_key(b64: str, where: str) -> Ed25519PrivateKey:
    try:
        seed = base64.b64decode(b64.strip(), validate=True)
    except ValueError:
        raise SettingsError(f"{where}: expected base64 of a 32-byte Ed25519 seed") from None
    if len(seed) != 32:
        raise SettingsError(f"{where}: expected a 32-byte Ed25519 seed, got {len(seed)} bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)


def configured_keys(settings: Settings) -> dict[str, list[tuple[str, Ed25519PrivateKey]]]:
    """ISSUER_KEYS parsed: community code -> [(kid, key)] in the order given (the last signs)."""
    out: dict[str, list[tuple[str, Ed25519PrivateKey]]] = {}
    for item in filter(None, (part.strip() for part in settings.issuer_keys.split(","))):
        code, kid, seed = (item.split(":", 2) + ["", ""])[:3]
        if not code or not kid or not seed:
            raise SettingsError("ISSUER_KEYS: expected COMMUNITY:KID:BASE64-SEED entries")
        out.setdefault(code, []).append((kid, _seed_key(seed, f"ISSUER_KEYS {code}:{kid}")))
    return out


def _write_key_file(path: Path, key: Ed25519PrivateKey) -> None:
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

    path.parent.mkdir(parents=True, exist_ok=True)
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # a concurrent creator wins
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.b64encode(seed).decode() + "\n")


def _set_active(folder: Path, kid: str) -> None:
    tmp = folder / f".active.{os.getpid()}.tmp"
    tmp.write_text(kid + "\n")
    os.replace(tmp, folder / "active")


def new_kid() -> str:
    return "key-" + datetime.now(UTC).strftime("%Y%m%d%H%M%S") + "-" + secrets.token_hex(2)


def _file_key(settings: Settings, code: str, *, create: bool) -> tuple[str, Ed25519PrivateKey] | None:
    folder = key_dir(settings) / code
    active = folder / "active"
    if not active.exists():
        if not create:
            return None
        kid = new_kid()
        try:
            _write_key_file(folder / f"{kid}.key", Ed25519PrivateKey.generate())
            fd = os.open(active, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "w") as handle:
                handle.write(kid + "\n")
        except FileExistsError:
            pass
    kid = active.read_text().strip()
    return kid, _seed_key((folder / f"{kid}.key").read_text(), f"{folder / kid}.key")


async def _register(community_id: int, kid: str, multibase: str) -> IssuerKey:
    """Record the public half once (idempotent across workers)."""
    existing = await IssuerKey.get_or_none(community_id=community_id, kid=kid)
    if existing is None:
        try:
            async with in_transaction():  # a savepoint inside a caller's transaction: losing the race leaves it usable
                await IssuerKey.create(community_id=community_id, kid=kid, public_multibase=multibase)
        except IntegrityError:
            existing = await IssuerKey.get(community_id=community_id, kid=kid)
    if existing is not None and existing.public_multibase != multibase:
        raise SettingsError(f"issuer key {kid} of community {community_id} changed: a key id is never reused")
    return existing if existing is not None else await IssuerKey.get(community_id=community_id, kid=kid)


async def signer_for(*, settings: Settings, community: Community) -> IssuerSigner:
    """The community's signing key (registered in the DID document)."""
    listed = configured_keys(settings).get(community.code)
    if listed:
        for kid, key in listed:  # every configured key is published, the last one signs
            await _register(community.id, kid, encode_ed25519_multikey(
                key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)))
        kid, key = listed[-1]
    else:
        found = _file_key(settings, community.code, create=not settings.is_production)
        if found is None:
            raise IssuerKeyMissing(f"社区 {community.code} 没有配置签发密钥", code="credentials.no_issuer_key")
        kid, key = found
    signer = IssuerSigner(community_did(settings, community.code), kid, key)
    row = await _register(community.id, kid, signer.public_multibase)
    if row.withdrawn_at is not None:
        raise IssuerKeyMissing(f"社区 {community.code} 的签发密钥 {kid} 已撤回，请配置新密钥",
                               code="credentials.issuer_key_withdrawn")
    return signer


async def rotate_file_key(*, settings: Settings, community: Community) -> IssuerSigner:
    """Development/operations: a new key file becomes active; the old one stays published."""
    if settings.is_production and not key_dir(settings).exists():
        raise SettingsError("refusing to generate issuer keys in production without ISSUER_KEY_DIR")
    folder = key_dir(settings) / community.code
    kid = new_kid()
    _write_key_file(folder / f"{kid}.key", Ed25519PrivateKey.generate())
    _set_active(folder, kid)
    return await signer_for(settings=settings, community=community)


async def community_did_document(*, settings: Settings, community: Community) -> dict:
    rows = await IssuerKey.filter(community_id=community.id, withdrawn_at=None).order_by("created_at", "id")
    return did_document(community_did(settings, community.code), [(r.kid, r.public_multibase) for r in rows])
