"""Multibase and Multikey encodings of W3C Controlled Identifiers 1.0 §2.2.2.

* multibase (draft-multiformats-multibase): a one-character prefix names the base:
  ``z`` base58btc (the Bitcoin alphabet), ``u`` base64url without padding;
* Multikey Ed25519 public key: ``z`` + base58btc(0xed 0x01 || 32-byte key), so every
  such key begins ``z6Mk``; the multicodec ``ed25519-pub`` is 0xed, varint-encoded 0xed 0x01.
"""

from __future__ import annotations

import base64

from backend.credentials.errors import MalformedMultikey

BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_INDEX = {c: i for i, c in enumerate(BASE58_ALPHABET)}
ED25519_PUB_MULTICODEC = b"\xed\x01"


def b58encode(data: bytes) -> str:
    """base58btc: the big-endian number in the Bitcoin alphabet, one leading '1' per zero byte."""
    zeros = len(data) - len(data.lstrip(b"\0"))
    number = int.from_bytes(data, "big")
    out = []
    while number:
        number, rem = divmod(number, 58)
        out.append(BASE58_ALPHABET[rem])
    return "1" * zeros + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        if char not in _BASE58_INDEX:
            raise MalformedMultikey(f"expected base58btc characters, got {char!r}")
        number = number * 58 + _BASE58_INDEX[char]
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body


def multibase_base58btc(data: bytes) -> str:
    return "z" + b58encode(data)


def multibase_base64url(data: bytes) -> str:
    return "u" + base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def multibase_decode(text: str) -> bytes:
    """Decode a ``z`` (base58btc) or ``u`` (base64url, unpadded) multibase string."""
    if not isinstance(text, str) or not text:
        raise MalformedMultikey(f"expected a multibase string, got {text!r}")
    prefix, body = text[0], text[1:]
    if prefix == "z":
        return b58decode(body)
    if prefix == "u":
        try:
            return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except ValueError as exc:
            raise MalformedMultikey(f"expected base64url after 'u', {exc}") from None
    raise MalformedMultikey(f"expected multibase prefix 'z' or 'u', got {prefix!r}")


def encode_ed25519_multikey(public_key: bytes) -> str:
    """publicKeyMultibase of a raw 32-byte Ed25519 public key (``z6Mk…``)."""
    if len(public_key) != 32:
        raise MalformedMultikey(f"expected a 32-byte Ed25519 public key, got {len(public_key)} bytes")
    return multibase_base58btc(ED25519_PUB_MULTICODEC + public_key)


def decode_ed25519_multikey(text: str) -> bytes:
    """The raw 32-byte key of an Ed25519 publicKeyMultibase."""
    if not isinstance(text, str) or not text.startswith("z"):
        raise MalformedMultikey(f"expected a base58btc multibase key starting 'z', got {str(text)[:12]!r}")
    raw = multibase_decode(text)
    if raw[:2] != ED25519_PUB_MULTICODEC or len(raw) != 34:
        raise MalformedMultikey(
            f"expected 0xed01 + 32 bytes (ed25519-pub), got prefix {raw[:2].hex()} and {len(raw)} bytes"
        )
    return raw[2:]
