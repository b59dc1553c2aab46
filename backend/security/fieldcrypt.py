"""Encryption of short personal fields (national ID, phone, face templates) at rest.

AES-256-GCM (NIST SP 800-38D) with a fresh random 96-bit nonce per value. The
field's *purpose* (``"resident.national_id"``, ``"resident.phone"`` ...) and the
key id are bound in as associated data, so a ciphertext copied from the phone
column into the ID column, or relabelled with another key id, fails to decrypt
instead of silently yielding the wrong field.

Token format (ASCII, fits a VARCHAR column)::

    v1.<key id>.<base64url(nonce || ciphertext || tag), no padding>

Rotation: every key id ever used stays in ``keys`` for decryption; new values
are encrypted under ``active_key_id``; ``rotate()`` re-encrypts old tokens.

Equality lookup ("is this ID already enrolled?") uses ``blind_index``: an
HMAC-SHA256 under a separate index key, domain-separated by purpose, so the
database can be searched without decrypting every row. The index key cannot be
rotated without recomputing every index, so it is kept apart from the
encryption keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["DecryptionError", "FieldCipher", "TOKEN_VERSION", "generate_key", "parse_key"]

TOKEN_VERSION = "v1"
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16

_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_PURPOSE = re.compile(r"[a-z0-9][a-z0-9_.:-]{0,63}")
_B64 = re.compile(r"[A-Za-z0-9_\-+/]+={0,2}")
_B64URL_BODY = re.compile(r"[A-Za-z0-9_-]+")
_AAD_PREFIX = b"zhilian.field." + TOKEN_VERSION.encode() + b"\x00"
_INDEX_PREFIX = b"zhilian.blind-index." + TOKEN_VERSION.encode() + b"\x00"


class DecryptionError(ValueError):
    """A token that is malformed, under an unknown key, for another purpose, or tampered with.

    Deliberately one type with a terse message: callers should treat all of
    these the same way (refuse, alert), and the reason must not help an attacker.
    """


def parse_key(b64: str) -> bytes:
    """Decode a base64 (standard or URL-safe, padding optional) AES-256 / HMAC key; exactly 32 bytes.

    Raises ValueError with a message fit for an operator's log; the key itself is never echoed.
    """
    text = "".join((b64 or "").split())
    if not text or not _B64.fullmatch(text):
        raise ValueError("key must be base64 text encoding exactly 32 bytes")
    text = text.rstrip("=").replace("+", "-").replace("/", "_")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("key must be base64 text encoding exactly 32 bytes") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"key must encode exactly {KEY_BYTES} bytes, got {len(raw)}")
    return raw


def generate_key() -> str:
    """A fresh random key as URL-safe base64, for `.env` files and dev setups."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode("ascii").rstrip("=")


def _check_purpose(purpose: str) -> bytes:
    if not isinstance(purpose, str) or not _PURPOSE.fullmatch(purpose):
        raise ValueError("purpose must match [a-z0-9][a-z0-9_.:-]{0,63}, e.g. 'resident.phone'")
    return purpose.encode("ascii")


class FieldCipher:
    """Encrypts and decrypts personal fields under a key ring; computes blind indexes."""

    def __init__(self, keys: dict[str, bytes], active_key_id: str, index_key: bytes) -> None:
        if not keys:
            raise ValueError("at least one encryption key is required")
        for key_id, key in keys.items():
            if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
                raise ValueError("key ids must match [A-Za-z0-9_-]{1,32} (no dots)")
            if not isinstance(key, bytes | bytearray) or len(key) != KEY_BYTES:
                raise ValueError(f"key {key_id!r} must be exactly {KEY_BYTES} bytes")
        if active_key_id not in keys:
            raise ValueError(f"active key id {active_key_id!r} is not among the keys")
        if not isinstance(index_key, bytes | bytearray) or len(index_key) < KEY_BYTES:
            raise ValueError(f"index key must be at least {KEY_BYTES} bytes")
        if any(hmac.compare_digest(bytes(index_key), bytes(k)) for k in keys.values()):
            raise ValueError("the index key must differ from every encryption key")
        self._aeads = {key_id: AESGCM(bytes(key)) for key_id, key in keys.items()}
        self._active = active_key_id
        self._index_key = bytes(index_key)

    def __repr__(self) -> str:
        return f"FieldCipher(key_ids={sorted(self._aeads)!r}, active={self._active!r})"

    @property
    def active_key_id(self) -> str:
        """Key id new values are encrypted under."""
        return self._active

    @staticmethod
    def _aad(key_id: str, purpose: bytes) -> bytes:
        return _AAD_PREFIX + key_id.encode("ascii") + b"\x00" + purpose

    def encrypt_bytes(self, value: bytes, *, purpose: str) -> str:
        """Encrypt raw bytes (e.g. a face embedding) under the active key, bound to `purpose`."""
        aad = self._aad(self._active, _check_purpose(purpose))
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aeads[self._active].encrypt(nonce, bytes(value), aad)
        body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
        return f"{TOKEN_VERSION}.{self._active}.{body}"

    def decrypt_bytes(self, token: str, *, purpose: str) -> bytes:
        """Decrypt a token made by `encrypt_bytes` under any known key; DecryptionError otherwise."""
        purpose_bytes = _check_purpose(purpose)
        key_id, blob = self._split(token)
        aead = self._aeads.get(key_id)
        if aead is None:
            raise DecryptionError("unknown key id")
        try:
            return aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], self._aad(key_id, purpose_bytes))
        except InvalidTag:
            raise DecryptionError("authentication failed (tampered, wrong key or wrong purpose)") from None

    def encrypt_text(self, value: str, *, purpose: str) -> str:
        """Encrypt a UTF-8 string (national ID, phone) under the active key, bound to `purpose`."""
        return self.encrypt_bytes(value.encode("utf-8"), purpose=purpose)

    def decrypt_text(self, token: str, *, purpose: str) -> str:
        """Decrypt a token made by `encrypt_text`; DecryptionError on any failure."""
        raw = self.decrypt_bytes(token, purpose=purpose)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DecryptionError("plaintext is not UTF-8 text") from None

    def key_id_of(self, token: str) -> str:
        """The key id a token was sealed under (without decrypting it)."""
        return self._split(token)[0]

    def needs_rotation(self, token: str) -> bool:
        """True when the token is not under the active key (a re-encryption job should rotate it)."""
        return self.key_id_of(token) != self._active

    def rotate(self, token: str, *, purpose: str) -> str:
        """Re-encrypt a token under the active key; returns it unchanged when already current."""
        if not self.needs_rotation(token):
            # Still authenticate it: rotation must never launder a forged token.
            self.decrypt_bytes(token, purpose=purpose)
            return token
        return self.encrypt_bytes(self.decrypt_bytes(token, purpose=purpose), purpose=purpose)

    def blind_index(self, value: str, *, purpose: str) -> str:
        """Deterministic HMAC-SHA256 (hex) of `value` for equality lookup; normalise `value` first.

        Domain-separated by purpose, so the same digits as a phone and as an ID
        number give unrelated indexes.
        """
        message = _INDEX_PREFIX + _check_purpose(purpose) + b"\x00" + value.encode("utf-8")
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()

    @staticmethod
    def _split(token: str) -> tuple[str, bytes]:
        if not isinstance(token, str):
            raise DecryptionError("token must be text")
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != TOKEN_VERSION:
            raise DecryptionError("not a v1 field token")
        key_id, body = parts[1], parts[2]
        if not _KEY_ID.fullmatch(key_id) or not _B64URL_BODY.fullmatch(body):
            raise DecryptionError("malformed field token")
        try:
            blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise DecryptionError("malformed field token") from None
        if base64.urlsafe_b64encode(blob).decode("ascii").rstrip("=") != body:
            # Non-canonical base64 (stray bits in the last character): one value, one spelling.
            raise DecryptionError("malformed field token")
        if len(blob) < NONCE_BYTES + TAG_BYTES:
            raise DecryptionError("field token too short")
        return key_id, blob
