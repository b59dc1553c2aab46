"""QR tokens: compact, opaque, signed, versioned; anything altered is refused."""

from __future__ import annotations

import base64
import uuid

import pytest

from backend.qr.tokens import PREFIX, QrSigner, TokenError, extract_token, key_id, scan_url

KEY = "unit-test-qr-signing-key-000000000000000000"


def test_round_trip_and_size():
    signer = QrSigner.from_secret(KEY)
    public_id = uuid.uuid4()
    token = signer.make(public_id=public_id, version=7)
    assert token.startswith(PREFIX + ".") and len(token) == 54
    claims = signer.verify(token)
    assert (claims.public_id, claims.version, claims.kid) == (public_id, 7, key_id(KEY.encode()))


def signer_verifies_lowercase(token: str) -> bool:
    return QrSigner.from_secret(KEY).verify(token.lower()).version == 1


def test_token_is_opaque():
    public_id = uuid.uuid4()
    token = QrSigner.from_secret(KEY).make(public_id=public_id, version=1)
    assert str(public_id) not in token and public_id.hex not in token
    assert all(c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" for c in token[4:])  # QR alphanumeric set
    assert signer_verifies_lowercase(token)


def test_every_single_character_change_is_refused():
    signer = QrSigner.from_secret(KEY)
    token = signer.make(public_id=uuid.uuid4(), version=3)
    for i in range(len(PREFIX) + 1, len(token)):
        for replacement in "AB27":
            if token[i] == replacement:
                continue
            tampered = token[:i] + replacement + token[i + 1 :]
            with pytest.raises(TokenError):
                signer.verify(tampered)


def test_version_cannot_be_changed_without_the_key():
    signer = QrSigner.from_secret(KEY)
    token = signer.make(public_id=uuid.uuid4(), version=1)
    raw = bytearray(base64.b32decode(token[4:] + "======"))
    raw[20] = 2  # the low byte of the version
    forged = PREFIX + "." + base64.b32encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(TokenError):
        signer.verify(forged)


def test_other_key_and_garbage_are_refused():
    token = QrSigner.from_secret("another-key-entirely-0000000000000").make(public_id=uuid.uuid4(), version=1)
    signer = QrSigner.from_secret(KEY)
    for bad in (token, "", "ZL1.", "ZL1.!!!!", "ZL1.0189" * 7, "ZL2." + token[4:], token + "A", token[:-1], "hello"):
        with pytest.raises(TokenError):
            signer.verify(bad)


def test_retired_key_still_verifies_after_key_rotation():
    old = QrSigner.from_secret("old-qr-key-00000000000000000000000")
    token = old.make(public_id=uuid.uuid4(), version=1)
    new = QrSigner.from_secret(KEY, retired=("old-qr-key-00000000000000000000000",))
    assert new.verify(token).version == 1
    assert new.make(public_id=uuid.uuid4(), version=1) != token


def test_scan_url_carries_the_token_and_can_be_read_back():
    token = QrSigner.from_secret(KEY).make(public_id=uuid.uuid4(), version=1)
    url = scan_url("https://zl.example.cn/", token)
    assert url == f"https://zl.example.cn/m/#/scan?t={token}"
    assert extract_token(url) == token
    assert extract_token(f"  {token} ") == token
    assert extract_token(f"https://zl.example.cn/m/?t={token}") == token
