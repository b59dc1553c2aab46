"""Field encryption (AES-256-GCM + purpose as associated data), blind indexes, key rotation, masking."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest

from backend.security.fieldcrypt import DecryptionError, FieldCipher, generate_key, parse_key
from backend.security.masking import mask_id, mask_name, mask_phone

K1 = bytes(range(32))
K2 = bytes(range(32, 64))
INDEX = bytes(range(64, 96))
ID = "resident.national_id"
PHONE = "resident.phone"


@pytest.fixture
def cipher() -> FieldCipher:
    return FieldCipher({"k1": K1}, "k1", INDEX)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_text_round_trip_and_token_shape(cipher: FieldCipher) -> None:
    token = cipher.encrypt_text("31011219450101123X", purpose=ID)
    version, key_id, body = token.split(".")
    assert (version, key_id) == ("v1", "k1")
    assert len(_unb64url(body)) == 12 + len("31011219450101123X") + 16
    assert "31011219450101123X" not in token
    assert cipher.decrypt_text(token, purpose=ID) == "31011219450101123X"


def test_unicode_and_empty_text(cipher: FieldCipher) -> None:
    for value in ("张桂英", "", "上海市奉贤区南桥镇江海路128弄3号402室"):
        assert (
            cipher.decrypt_text(cipher.encrypt_text(value, purpose="resident.name"), purpose="resident.name")
            == value
        )


def test_bytes_round_trip(cipher: FieldCipher) -> None:
    template = os.urandom(2048)  # a 512-d float32 embedding
    token = cipher.encrypt_bytes(template, purpose="face.template")
    assert cipher.decrypt_bytes(token, purpose="face.template") == template


def test_fresh_nonce_every_time(cipher: FieldCipher) -> None:
    tokens = {cipher.encrypt_text("13812345678", purpose=PHONE) for _ in range(50)}
    assert len(tokens) == 50
    nonces = {_unb64url(t.split(".")[2])[:12] for t in tokens}
    assert len(nonces) == 50


def test_any_flipped_bit_is_detected(cipher: FieldCipher) -> None:
    token = cipher.encrypt_text("13812345678", purpose=PHONE)
    prefix, body = token.rsplit(".", 1)
    blob = _unb64url(body)
    for index in range(len(blob)):  # nonce, ciphertext and tag alike
        for bit in (0x01, 0x80):
            tampered = bytearray(blob)
            tampered[index] ^= bit
            with pytest.raises(DecryptionError):
                cipher.decrypt_text(f"{prefix}.{_b64url(bytes(tampered))}", purpose=PHONE)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "v1",
        "v1.k1",
        "v2.k1.AAAA",
        "v1.k1.",
        "v1.k1.AAAA",
        "v1.k.1.AAAA",
        "v1.k1.****",
        "v1.k1.A",
        None,
        42,
    ],
)
def test_malformed_tokens(cipher: FieldCipher, token: object) -> None:
    with pytest.raises(DecryptionError):
        cipher.decrypt_text(token, purpose=PHONE)  # type: ignore[arg-type]


def test_truncated_and_extended_tokens(cipher: FieldCipher) -> None:
    token = cipher.encrypt_text("13812345678", purpose=PHONE)
    prefix, body = token.rsplit(".", 1)
    blob = _unb64url(body)
    for bad in (blob[:-1], blob[:28], blob + b"\x00"):
        with pytest.raises(DecryptionError):
            cipher.decrypt_text(f"{prefix}.{_b64url(bad)}", purpose=PHONE)


def test_non_canonical_base64_rejected(cipher: FieldCipher) -> None:
    token = cipher.encrypt_text("1381234567", purpose=PHONE)  # 38 bytes: last char carries spare bits
    prefix, body = token.rsplit(".", 1)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    sibling = alphabet[alphabet.index(body[-1]) ^ 1]
    forged = f"{prefix}.{body[:-1]}{sibling}"
    assert _unb64url(forged.rsplit(".", 1)[1]) == _unb64url(body)  # same bytes, other spelling
    with pytest.raises(DecryptionError):
        cipher.decrypt_text(forged, purpose=PHONE)


def test_purpose_separation(cipher: FieldCipher) -> None:
    phone_token = cipher.encrypt_text("13812345678", purpose=PHONE)
    with pytest.raises(DecryptionError):
        cipher.decrypt_text(phone_token, purpose=ID)
    assert cipher.decrypt_text(phone_token, purpose=PHONE) == "13812345678"


def test_bad_purpose_is_a_programming_error(cipher: FieldCipher) -> None:
    for purpose in ("", "Resident", "a b", "x\x00y", "a" * 65):
        with pytest.raises(ValueError):
            cipher.encrypt_text("x", purpose=purpose)


def test_wrong_key_and_relabelled_key_id() -> None:
    a = FieldCipher({"k1": K1}, "k1", INDEX)
    b = FieldCipher({"k1": K2}, "k1", INDEX)
    token = a.encrypt_text("13812345678", purpose=PHONE)
    with pytest.raises(DecryptionError):
        b.decrypt_text(token, purpose=PHONE)
    # Same key under two ids: the key id is authenticated, so relabelling fails.
    both = FieldCipher({"k1": K1, "k2": K1}, "k1", INDEX)
    relabelled = token.replace("v1.k1.", "v1.k2.", 1)
    with pytest.raises(DecryptionError):
        both.decrypt_text(relabelled, purpose=PHONE)


def test_key_rotation() -> None:
    old = FieldCipher({"k1": K1}, "k1", INDEX)
    token_k1 = old.encrypt_text("310112194501011237", purpose=ID)

    rotated = FieldCipher({"k1": K1, "k2": K2}, "k2", INDEX)
    assert rotated.active_key_id == "k2"
    assert rotated.decrypt_text(token_k1, purpose=ID) == "310112194501011237"
    assert rotated.key_id_of(token_k1) == "k1"
    assert rotated.needs_rotation(token_k1)

    token_k2 = rotated.rotate(token_k1, purpose=ID)
    assert token_k2.startswith("v1.k2.")
    assert not rotated.needs_rotation(token_k2)
    assert rotated.rotate(token_k2, purpose=ID) == token_k2
    assert rotated.encrypt_text("x", purpose=ID).startswith("v1.k2.")

    retired = FieldCipher({"k2": K2}, "k2", INDEX)
    assert retired.decrypt_text(token_k2, purpose=ID) == "310112194501011237"
    with pytest.raises(DecryptionError):
        retired.decrypt_text(token_k1, purpose=ID)


def test_rotate_refuses_forged_tokens() -> None:
    rotated = FieldCipher({"k1": K1, "k2": K2}, "k2", INDEX)
    token = rotated.encrypt_text("13812345678", purpose=PHONE)
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BA")
    with pytest.raises(DecryptionError):
        rotated.rotate(forged, purpose=PHONE)
    with pytest.raises(DecryptionError):
        rotated.rotate(token, purpose=ID)


def test_blind_index(cipher: FieldCipher) -> None:
    index = cipher.blind_index("310112194501011237", purpose=ID)
    assert len(index) == 64 and int(index, 16) >= 0
    assert index == cipher.blind_index("310112194501011237", purpose=ID)
    assert index != cipher.blind_index("310112194501011238", purpose=ID)
    assert index != hashlib.sha256(b"310112194501011237").hexdigest()
    # Same digits, other purpose: unrelated index.
    assert cipher.blind_index("13812345678", purpose=ID) != cipher.blind_index("13812345678", purpose=PHONE)
    # Independent of the encryption keys (survives their rotation), dependent on the index key.
    rotated = FieldCipher({"k1": K1, "k2": K2}, "k2", INDEX)
    assert rotated.blind_index("310112194501011237", purpose=ID) == index
    other = FieldCipher({"k1": K1}, "k1", bytes(32))
    assert other.blind_index("310112194501011237", purpose=ID) != index


def test_constructor_validation() -> None:
    with pytest.raises(ValueError):
        FieldCipher({}, "k1", INDEX)
    with pytest.raises(ValueError):
        FieldCipher({"k1": K1}, "k2", INDEX)
    with pytest.raises(ValueError):
        FieldCipher({"k1": K1[:16]}, "k1", INDEX)
    with pytest.raises(ValueError):
        FieldCipher({"k.1": K1}, "k.1", INDEX)
    with pytest.raises(ValueError):
        FieldCipher({"k1": K1}, "k1", INDEX[:16])
    with pytest.raises(ValueError):
        FieldCipher({"k1": K1}, "k1", K1)  # index key must not double as an encryption key
    assert "k1" in repr(FieldCipher({"k1": K1}, "k1", INDEX))
    assert K1.hex() not in repr(FieldCipher({"k1": K1}, "k1", INDEX))


def test_parse_key_accepts_common_spellings() -> None:
    std = base64.b64encode(K1).decode()
    url = base64.urlsafe_b64encode(K1).decode().rstrip("=")
    assert parse_key(std) == K1
    assert parse_key(url) == K1
    assert parse_key(f"  {std}\n") == K1
    assert (
        parse_key(base64.b64encode(b"dev-insecure-field-key-32-bytes!").decode())
        == b"dev-insecure-field-key-32-bytes!"
    )
    generated = generate_key()
    assert len(parse_key(generated)) == 32
    assert generated != generate_key()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "not base64!",
        base64.b64encode(bytes(16)).decode(),
        base64.b64encode(bytes(33)).decode(),
        "A",
    ],
)
def test_parse_key_rejects(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_key(text)
    assert "32" in str(info.value)
    if len(text) > 8:
        assert text.strip() not in str(info.value)


def test_mask_phone() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("138 1234 5678") == "138****5678"
    assert mask_phone("1234567") == "*******"
    assert mask_phone("") == ""
    assert mask_phone(None) == ""


def test_mask_id() -> None:
    assert mask_id("310112194501011234") == "3101**********1234"
    assert mask_id("11010519491231002X") == "1101**********002X"
    assert mask_id("12345678") == "********"
    assert mask_id(None) == ""


def test_mask_name() -> None:
    assert mask_name("张桂英") == "张*英"
    assert mask_name("王明") == "王*"
    assert mask_name("欧阳建国") == "欧**国"
    assert mask_name("英") == "*"
    assert mask_name("") == ""
