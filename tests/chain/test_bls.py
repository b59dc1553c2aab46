"""BLS ciphersuite BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_: IETF/Ethereum vectors, fast vs py-ecc.

py-ecc's pairing check costs ~0.5 s, so it runs on a handful of cases only;
the fast backend runs on every vector.
"""

from __future__ import annotations

import json

import pytest

from chain import bls

from .conftest import VECTORS

V = json.loads((VECTORS / "bls_sign.json").read_text())
FAST = bls.get_backend("fast")
PYECC = bls.get_backend("pyecc")
INFINITY_PK = bytes.fromhex("c0" + "00" * 47)


def test_default_backend_is_fast() -> None:
    assert bls.BACKEND.name == "fast"


@pytest.mark.parametrize("case", V["pubkeys"], ids=lambda c: c["privkey"][:8])
def test_sk_to_pk_vectors(case: dict) -> None:
    assert FAST.SkToPk(int(case["privkey"], 16)).hex() == case["pubkey"]


@pytest.mark.parametrize("case", V["sign"], ids=lambda c: c["name"])
def test_sign_vectors_fast(case: dict) -> None:
    sk = int(case["privkey"], 16)
    message = bytes.fromhex(case["message"])
    if case["signature"] is None:
        with pytest.raises(bls.BLSError):
            FAST.Sign(sk, message)
        return
    signature = FAST.Sign(sk, message)
    assert signature.hex() == case["signature"]
    pk = FAST.SkToPk(sk)
    assert FAST.Verify(pk, message, signature)
    assert not FAST.Verify(pk, bytes(32) if any(message) else b"\x01" * 32, signature)


def test_sign_vector_pyecc() -> None:
    case = V["sign"][5]
    sk, message = int(case["privkey"], 16), bytes.fromhex(case["message"])
    assert PYECC.Sign(sk, message).hex() == case["signature"]
    assert PYECC.Verify(PYECC.SkToPk(sk), message, bytes.fromhex(case["signature"]))


def test_keygen_matches_reference() -> None:
    ikm = bytes(range(32))
    assert FAST.KeyGen(ikm) == PYECC.KeyGen(ikm)
    assert FAST.KeyGen(ikm, b"info") == PYECC.KeyGen(ikm, b"info")
    with pytest.raises(bls.KeyGenError):
        FAST.KeyGen(b"short")


def test_fast_signatures_and_pops_verify_under_reference() -> None:
    sk = FAST.KeyGen(b"\x07" * 32)
    pk = FAST.SkToPk(sk)
    assert pk == PYECC.SkToPk(sk)
    pop = FAST.PopProve(sk)
    assert pop == PYECC.PopProve(sk)
    assert PYECC.PopVerify(pk, pop)
    message = b"zhilian cosignature"
    assert FAST.Sign(sk, message) == PYECC.Sign(sk, message)


def test_aggregate_matches_reference_and_verifies_both_ways() -> None:
    message = bytes.fromhex("ab" * 32)
    cases = [c for c in V["sign"] if c["message"] == "ab" * 32 and c["signature"]]
    signatures = [bytes.fromhex(c["signature"]) for c in cases]
    pks = [FAST.SkToPk(int(c["privkey"], 16)) for c in cases]
    aggregate = FAST.Aggregate(signatures)
    assert aggregate == PYECC.Aggregate(signatures)
    assert FAST.FastAggregateVerify(pks, message, aggregate)
    assert PYECC.FastAggregateVerify(pks, message, aggregate)
    assert not FAST.FastAggregateVerify(pks[:2], message, aggregate)
    assert not FAST.FastAggregateVerify(pks, bytes(32), aggregate)
    assert not FAST.FastAggregateVerify([], message, aggregate)


def test_invalid_inputs_do_not_verify() -> None:
    case = V["sign"][0]
    sk, message, signature = (
        int(case["privkey"], 16),
        bytes.fromhex(case["message"]),
        bytes.fromhex(case["signature"]),
    )
    pk = FAST.SkToPk(sk)
    assert not FAST.Verify(INFINITY_PK, message, signature)
    assert not FAST.KeyValidate(INFINITY_PK)
    assert not FAST.Verify(pk[:-1], message, signature)
    assert not FAST.Verify(pk, message, signature[:-1])
    assert not FAST.Verify(pk, message, b"\xff" * 96)
    with pytest.raises(bls.AggregateError):
        FAST.Aggregate([])
    with pytest.raises(bls.AggregateError):
        FAST.Aggregate([b"\x00" * 96])


def test_pop_defeats_a_rogue_key() -> None:
    """A rogue key pk_r = pk_attacker - pk_victim makes a 'joint' signature easy; PoP refuses pk_r."""
    import py_arkworks_bls12381 as ark

    victim_pk = FAST.SkToPk(FAST.KeyGen(b"\x01" * 32))
    attacker_sk = FAST.KeyGen(b"\x02" * 32)
    attacker_point = ark.G1Point() * ark.Scalar.from_be_bytes(attacker_sk.to_bytes(32, "big"))
    rogue_point = attacker_point - ark.G1Point.from_compressed_bytes(victim_pk)
    rogue_pk = bytes(rogue_point.to_compressed_bytes())
    message = b"checkpoint"
    forged = FAST.Sign(attacker_sk, message)
    # Without PoP, the attacker alone "aggregates" for {victim, rogue}:
    assert FAST.FastAggregateVerify([victim_pk, rogue_pk], message, forged)
    # ...but it can produce no proof of possession for the rogue key.
    assert not FAST.PopVerify(rogue_pk, FAST.PopProve(attacker_sk))
    assert not FAST.PopVerify(rogue_pk, FAST.Sign(attacker_sk, rogue_pk))
    # A PoP is not a message signature on the public key (separate DST).
    assert not FAST.PopVerify(FAST.SkToPk(attacker_sk), FAST.Sign(attacker_sk, FAST.SkToPk(attacker_sk)))
