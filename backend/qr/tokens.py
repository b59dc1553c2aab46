"""Personal QR tokens: opaque, signed, versioned identifiers of one resident.

Format (compact so the QR code stays small enough for old phone cameras)::

    ZL1.<base32(kid ‖ public_id ‖ version ‖ tag)>      54 characters in all

    kid        1 byte   which signing key (derived from the key, so keys can rotate)
    public_id  16 bytes the resident's pseudonymous UUID (never a name or ID number)
    version    4 bytes  big-endian `Resident.qr_version`; rotating bumps it
    tag        10 bytes HMAC-SHA256(key, "ZL1" ‖ kid ‖ public_id ‖ version), truncated to 80 bits

Base32 (RFC 4648, upper case, no padding) rather than base64url: every character is in the
QR alphanumeric set (5.5 bits each instead of 8), so the whole app link usually fits one QR
version lower (version 5, 37 modules, at error-correction level M) and the token survives
being read aloud or typed case-insensitively.
80 bits of tag are ample for a code that is only ever checked online, behind rate limits
(NIST SP 800-107 allows truncation; forging needs ~2^80 online guesses). The tag is compared
with `hmac.compare_digest`. This module is pure: no database, no HTTP. Whether a verified
token is still the *current* version is decided by `backend.qr.service`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

PREFIX = "ZL1"
TAG_BYTES = 10
_BODY = struct.Struct(">B16sI")  # kid, public_id, version
_RAW_LEN = _BODY.size + TAG_BYTES
_TOKEN_RE = re.compile(r"ZL1\.[A-Z2-7]{40,64}", re.IGNORECASE)
MAX_VERSION = 2**32 - 1


class TokenError(Exception):
    """The text is not a token we signed (malformed, unknown key, or a bad tag)."""


@dataclass(frozen=True)
class QrClaims:
    """What a verified token says: whose code it is, which version, signed with which key."""

    public_id: uuid.UUID
    version: int
    kid: int


def key_id(key: bytes) -> int:
    """A one-byte id derived from the key itself (no separate setting to keep in sync)."""
    return hashlib.sha256(b"zhilian/qr/kid:" + key).digest()[0]


def _encode(data: bytes) -> str:
    return base64.b32encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    return base64.b32decode(text + "=" * (-len(text) % 8))


class QrSigner:
    """Signs with the active key; verifies with it and any retired keys still accepted."""

    def __init__(self, active: bytes, retired: tuple[bytes, ...] = ()) -> None:
        if len(active) < 16:
            raise ValueError("QR signing key must be at least 16 bytes")
        self._active = active
        self._active_kid = key_id(active)
        self._keys: dict[int, list[bytes]] = {}
        for key in (active, *retired):
            self._keys.setdefault(key_id(key), []).append(key)

    @classmethod
    def from_secret(cls, secret: str, retired: tuple[str, ...] = ()) -> QrSigner:
        return cls(secret.encode(), tuple(r.encode() for r in retired))

    @staticmethod
    def _tag(key: bytes, body: bytes) -> bytes:
        return hmac.new(key, PREFIX.encode() + body, hashlib.sha256).digest()[:TAG_BYTES]

    def make(self, *, public_id: uuid.UUID, version: int) -> str:
        """The token for this resident at this version."""
        if not 0 < version <= MAX_VERSION:
            raise ValueError(f"QR version out of range: {version}")
        body = _BODY.pack(self._active_kid, public_id.bytes, version)
        return f"{PREFIX}.{_encode(body + self._tag(self._active, body))}"

    def verify(self, token: str) -> QrClaims:
        """Check the signature (constant-time) and return the claims, or raise TokenError."""
        prefix, dot, payload = token.strip().upper().partition(".")
        if prefix != PREFIX or not dot or not payload:
            raise TokenError("not a ZL1 token")
        try:
            raw = _decode(payload)
        except (binascii.Error, ValueError):
            raise TokenError("payload is not base32") from None
        if len(raw) != _RAW_LEN or _encode(raw) != payload:
            raise TokenError(f"payload must be {_RAW_LEN} bytes in canonical base32")
        body, tag = raw[: _BODY.size], raw[_BODY.size :]
        kid, public_id, version = _BODY.unpack(body)
        candidates = self._keys.get(kid, [])
        # compare against every key with this id, without stopping early
        matched = False
        for key in candidates:
            matched |= hmac.compare_digest(self._tag(key, body), tag)
        if not matched or version == 0:
            raise TokenError("signature does not verify")
        return QrClaims(uuid.UUID(bytes=public_id), version, kid)


def scan_url(public_url: str, token: str) -> str:
    """What the QR code holds: a link into the app (a phone camera opens it) carrying the token."""
    return f"{public_url.rstrip('/')}/m/#/scan?t={token}"


def extract_token(text: str) -> str:
    """The token from what a scanner read: the bare token, or the app link around it."""
    text = text.strip()
    if text.upper().startswith(PREFIX + "."):
        return text
    parts = urlsplit(text)
    for query in (parts.query, urlsplit(parts.fragment).query if parts.fragment else ""):
        values = parse_qs(query).get("t")
        if values:
            return values[0].strip()
    found = _TOKEN_RE.search(text)
    return found.group(0) if found else text
