"""IETF Token Status List (draft-ietf-oauth-status-list): the examples of the draft's §4.1, our encoder
read back by plain zlib, and the Status List Token's signature, typ and sub checks."""

from __future__ import annotations

import base64
import zlib

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backend.credentials import token_status
from backend.credentials.errors import StatusListInvalid

# The draft's own examples (§4.1): one bit per entry, and two bits per entry.
SPEC_1BIT = {"bits": 1, "lst": "eNrbuRgAAhcBXQ"}
SPEC_1BIT_STATUSES = [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]
SPEC_2BIT = {"bits": 2, "lst": "eNo76fITAAPfAgc"}
SPEC_2BIT_STATUSES = [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3]


def test_the_drafts_examples_read_back() -> None:
    assert [token_status.read_status(SPEC_1BIT, i) for i in range(16)] == SPEC_1BIT_STATUSES
    assert [token_status.read_status(SPEC_2BIT, i) for i in range(12)] == SPEC_2BIT_STATUSES


def test_our_encoding_is_the_drafts_byte_layout() -> None:
    for spec, statuses, bits in ((SPEC_1BIT, SPEC_1BIT_STATUSES, 1), (SPEC_2BIT, SPEC_2BIT_STATUSES, 2)):
        ours = token_status.encode_list(dict(enumerate(statuses)), size=len(statuses) // (8 // bits) * (8 // bits),
                                        bits=bits)
        decoded = zlib.decompress(base64.urlsafe_b64decode(ours["lst"] + "=" * (-len(ours["lst"]) % 4)))
        expected = zlib.decompress(base64.urlsafe_b64decode(spec["lst"] + "=" * (-len(spec["lst"]) % 4)))
        assert decoded[: len(expected)] == expected
    big = token_status.encode_list({5: token_status.INVALID, 131_071: token_status.SUSPENDED}, size=131_072)
    assert token_status.read_status(big, 5) == 1 and token_status.read_status(big, 131_071) == 2
    assert token_status.read_status(big, 6) == 0
    with pytest.raises(StatusListInvalid):
        token_status.read_status(big, 131_072)


def test_status_list_token_signature_typ_and_sub() -> None:
    key = Ed25519PrivateKey.generate()
    uri = "https://zl.example/credentials/statuslists/NQ01/0"
    token = token_status.sign_token(uri=uri, issuer="did:web:zl.example", status_list=SPEC_2BIT, private_key=key,
                                    kid="did:web:zl.example#k1")
    assert jwt.get_unverified_header(token)["typ"] == "statuslist+jwt"
    claims = token_status.verify_token(token, key.public_key(), uri=uri)
    assert claims["exp"] - claims["iat"] == token_status.VALIDITY_S and claims["ttl"] == token_status.TTL_S
    with pytest.raises(StatusListInvalid, match="expected sub"):
        token_status.verify_token(token, key.public_key(), uri=uri + "1")
    with pytest.raises(StatusListInvalid):
        token_status.verify_token(token, Ed25519PrivateKey.generate().public_key(), uri=uri)
    expired = token_status.sign_token(uri=uri, issuer="x", status_list=SPEC_1BIT, private_key=key, kid="k",
                                      now=1_000_000)
    with pytest.raises(StatusListInvalid, match="expired"):
        token_status.verify_token(expired, key.public_key(), uri=uri)
