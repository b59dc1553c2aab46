"""eddsa-jcs-2022 on the W3C vc-di-eddsa test vector, multikey, Bitstring Status List, SD-JWT VC."""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from backend.credentials import eddsa_jcs, errors, multikey, sdjwt, status_list
from backend.credentials.did import did_document, did_web, did_web_url, resolve_assertion_key

# W3C vc-di-eddsa, TestVectors/keyPair.json and TestVectors/eddsa-jcs-2022/signedJCS.json
VECTOR_PUBLIC = "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"
VECTOR_SECRET = "z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq"
VECTOR_DOC_HASH = "59b7cb6251b8991add1ce0bc83107e3db9dbbab5bd2c28f687db1a03abc92f19"  # docHashJCS.txt
CONTEXT = ["https://www.w3.org/ns/credentials/v2", "https://www.w3.org/ns/credentials/examples/v2"]
UNSIGNED = {
    "@context": CONTEXT,
    "id": "urn:uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33",
    "type": ["VerifiableCredential", "AlumniCredential"],
    "name": "Alumni Credential",
    "description": "A minimum viable example of an Alumni Credential.",
    "issuer": "https://vc.example/issuers/5678",
    "validFrom": "2023-01-01T00:00:00Z",
    "credentialSubject": {"id": "did:example:abcdefgh", "alumniOf": "The School of Examples"},
}
VECTOR_METHOD = f"https://vc.example/issuers/5678#{VECTOR_PUBLIC}"
VECTOR_PROOF_VALUE = "z63t83Y53KfzJ5ZosfKTnqfMcKB2dmTrfjSaQjeNNjAD5srBowQfmWqeRb8rRjmeEuCBEsddF9LsVogtuTsijJKh4"


def vector_key() -> Ed25519PrivateKey:
    raw = multikey.multibase_decode(VECTOR_SECRET)
    assert raw[:2] == b"\x80\x26"  # ed25519-priv multicodec
    return Ed25519PrivateKey.from_private_bytes(raw[2:])


def test_multikey_round_trip_matches_the_vector_key() -> None:
    public = vector_key().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert multikey.encode_ed25519_multikey(public) == VECTOR_PUBLIC
    assert multikey.decode_ed25519_multikey(VECTOR_PUBLIC) == public
    assert multikey.b58decode(multikey.b58encode(b"\0\0abc")) == b"\0\0abc"
    with pytest.raises(errors.MalformedMultikey):
        multikey.decode_ed25519_multikey("z" + multikey.b58encode(b"\xe7\x01" + public))


def test_add_proof_reproduces_the_w3c_eddsa_jcs_2022_vector() -> None:
    signed = eddsa_jcs.add_proof(UNSIGNED, private_key=vector_key(), verification_method=VECTOR_METHOD,
                                 created="2023-02-24T23:36:38Z")
    assert signed["proof"]["proofValue"] == VECTOR_PROOF_VALUE
    options = {k: v for k, v in signed["proof"].items() if k != "proofValue"}
    combined = eddsa_jcs._hashing(eddsa_jcs._transformation(UNSIGNED, options), eddsa_jcs._proof_configuration(options))
    assert combined[32:].hex() == VECTOR_DOC_HASH and len(combined) == 64


def test_verify_proof_of_the_vector_and_each_named_failure() -> None:
    signed = eddsa_jcs.add_proof(UNSIGNED, private_key=vector_key(), verification_method=VECTOR_METHOD,
                                 created="2023-02-24T23:36:38Z")
    key = multikey.decode_ed25519_multikey(VECTOR_PUBLIC)
    assert eddsa_jcs.verify_proof(signed, lambda _m: key)["proofValue"] == VECTOR_PROOF_VALUE

    changed = copy.deepcopy(signed)
    changed["credentialSubject"]["alumniOf"] = "Another School"
    with pytest.raises(errors.SignatureMismatch, match="expected the Ed25519 signature"):
        eddsa_jcs.verify_proof(changed, lambda _m: key)
    wrong_suite = copy.deepcopy(signed)
    wrong_suite["proof"]["cryptosuite"] = "eddsa-rdfc-2022"
    with pytest.raises(errors.UnsupportedCryptosuite, match="eddsa-jcs-2022"):
        eddsa_jcs.verify_proof(wrong_suite, lambda _m: key)
    context = copy.deepcopy(signed)
    context["@context"] = CONTEXT[:1]
    with pytest.raises(errors.ProofContextMismatch):
        eddsa_jcs.verify_proof(context, lambda _m: key)
    created = copy.deepcopy(signed)
    created["proof"]["created"] = "2023-02-24T23:36:39Z"
    with pytest.raises(errors.SignatureMismatch):
        eddsa_jcs.verify_proof(created, lambda _m: key)
    short = copy.deepcopy(signed)
    short["proof"]["proofValue"] = VECTOR_PROOF_VALUE[:-4]
    with pytest.raises(errors.MalformedProof, match="64-byte"):
        eddsa_jcs.verify_proof(short, lambda _m: key)


def test_did_web_names_and_documents() -> None:
    did = did_web("http://127.0.0.1:8000", "communities", "NQ01")
    assert did == "did:web:127.0.0.1%3A8000:communities:NQ01"
    assert did_web_url(did) == "https://127.0.0.1:8000/communities/NQ01/did.json"
    assert did_web_url("did:web:example.com") == "https://example.com/.well-known/did.json"
    document = did_document(did, [("k1", VECTOR_PUBLIC)])
    assert resolve_assertion_key(document, f"{did}#k1", issuer=did) == multikey.decode_ed25519_multikey(VECTOR_PUBLIC)
    with pytest.raises(errors.IssuerKeyUnknown, match="assertion methods"):
        resolve_assertion_key(document, f"{did}#k2", issuer=did)
    with pytest.raises(errors.IssuerKeyUnknown, match="issuer"):
        resolve_assertion_key(document, f"{did}#k1", issuer="did:web:other")


def test_bitstring_status_list_generate_and_expand() -> None:
    encoded = status_list.generate_encoded_list({0, 7, 131_071})
    assert encoded.startswith("u")
    raw = gzip.decompress(base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4)))
    assert len(raw) == 16 * 1024 and raw[0] == 0b1000_0001 and raw[-1] == 0b0000_0001
    bits = status_list.expand_encoded_list(encoded)
    assert [status_list.bit_at(bits, i) for i in (0, 1, 7, 8, 131_071)] == [1, 0, 1, 0, 1]
    small = "u" + base64.urlsafe_b64encode(gzip.compress(b"\0" * 100)).rstrip(b"=").decode()
    with pytest.raises(errors.StatusListInvalid, match="at least 131072"):
        status_list.expand_encoded_list(small)
    with pytest.raises(ValueError):
        status_list.generate_encoded_list(set(), size=1024)


def test_sd_jwt_vc_discloses_name_and_suffix_separately() -> None:
    key = Ed25519PrivateKey.generate()
    token = sdjwt.issue(claims={"sub": "urn:uuid:1", "period": "2026-11"},
                        disclosable={"name": "王桂英", "id_number_suffix": "123X"},
                        private_key=key, kid="did:web:x#k1", issuer="did:web:x")
    jwt_part, *disclosures, tail = token.split("~")
    assert tail == "" and len(disclosures) == 2
    header = json.loads(base64.urlsafe_b64decode(jwt_part.split(".")[0] + "=="))
    payload = json.loads(base64.urlsafe_b64decode(jwt_part.split(".")[1] + "=="))
    assert header["typ"] == "dc+sd-jwt" and payload["_sd_alg"] == "sha-256" and payload["vct"]
    assert "name" not in payload and "id_number_suffix" not in payload
    for d in disclosures:  # each disclosure digest is in _sd (SHA-256 of its ASCII form)
        digest = base64.urlsafe_b64encode(hashlib.sha256(d.encode()).digest()).rstrip(b"=").decode()
        assert digest in payload["_sd"]
    public = key.public_key()
    full = sdjwt.verify(token, public, expected_issuer="did:web:x")
    assert full["name"] == "王桂英" and full["id_number_suffix"] == "123X"
    only_suffix = sdjwt.verify(sdjwt.present(token, reveal={"id_number_suffix"}), public)
    assert "name" not in only_suffix and only_suffix["id_number_suffix"] == "123X"
    forged = sdjwt._create_disclosure("name", "李四")
    with pytest.raises(errors.SdJwtError, match="_sd"):
        sdjwt.verify(jwt_part + "~" + forged + "~", public)
    with pytest.raises(errors.SdJwtError, match="signature"):
        sdjwt.verify(token, Ed25519PrivateKey.generate().public_key())
