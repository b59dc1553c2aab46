"""The ``eddsa-jcs-2022`` cryptosuite of W3C "Data Integrity EdDSA Cryptosuites v1.0" §3.3.

A Data Integrity proof over JSON canonicalized with RFC 8785 (JCS, the ``rfc8785`` package):

    hashData   = SHA-256(JCS(proofConfig)) || SHA-256(JCS(document without proof))   §3.3.6
    proofValue = multibase base58btc( Ed25519.sign(secret key, hashData) )           §3.3.7

``proofConfig`` is the proof without ``proofValue``, carrying the document's ``@context``
(§3.3.1 step 2). Private helpers are named after the spec's algorithms.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from backend.credentials.errors import (
    MalformedCredential,
    MalformedMultikey,
    MalformedProof,
    ProofContextMismatch,
    SignatureMismatch,
    UnsupportedCryptosuite,
)
from backend.credentials.multikey import multibase_base58btc, multibase_decode

PROOF_TYPE = "DataIntegrityProof"
CRYPTOSUITE = "eddsa-jcs-2022"
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")

KeyResolver = Callable[[str], bytes]  # verificationMethod id -> raw Ed25519 public key


def canonicalize(value: Any) -> bytes:
    """RFC 8785 JSON Canonicalization Scheme."""
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise MalformedCredential(f"expected JSON that RFC 8785 can canonicalize: {exc}") from None


def now_xsd() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_suite(proof: dict[str, Any]) -> None:
    if proof.get("type") != PROOF_TYPE or proof.get("cryptosuite") != CRYPTOSUITE:
        raise UnsupportedCryptosuite(
            f"expected type {PROOF_TYPE!r} with cryptosuite {CRYPTOSUITE!r}, "
            f"got {proof.get('type')!r} / {proof.get('cryptosuite')!r}"
        )


def _transformation(unsecured_document: dict[str, Any], options: dict[str, Any]) -> bytes:
    """§3.3.4 Transformation (eddsa-jcs-2022): the JCS form of the document."""
    _check_suite(options)
    return canonicalize(unsecured_document)


def _proof_configuration(options: dict[str, Any]) -> bytes:
    """§3.3.5 Proof Configuration (eddsa-jcs-2022): the JCS form of the proof options."""
    _check_suite(options)
    created = options.get("created")
    if created is not None and (not isinstance(created, str) or not _DATETIME.match(created)):
        raise MalformedProof(f"expected proof.created to be an XML Schema dateTimeStamp, got {created!r}")
    return canonicalize(options)


def _hashing(transformed_document: bytes, canonical_proof_config: bytes) -> bytes:
    """§3.3.6 Hashing: SHA-256(proof config) || SHA-256(document), 64 bytes."""
    return hashlib.sha256(canonical_proof_config).digest() + hashlib.sha256(transformed_document).digest()


def _proof_serialization(hash_data: bytes, private_key: Ed25519PrivateKey) -> bytes:
    """§3.3.7 Proof Serialization: the Ed25519 signature of the hash data."""
    return private_key.sign(hash_data)


def _proof_verification(hash_data: bytes, proof_bytes: bytes, public_key: bytes) -> bool:
    """§3.3.8 Proof Verification: Ed25519 verification of the signature."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(proof_bytes, hash_data)
    except (InvalidSignature, ValueError):
        return False
    return True


def add_proof(
    unsecured_document: dict[str, Any],
    *,
    private_key: Ed25519PrivateKey,
    verification_method: str,
    proof_purpose: str = "assertionMethod",
    created: str | None = None,
) -> dict[str, Any]:
    """§3.3.1 Create Proof: the document with a Data Integrity proof added."""
    if "proof" in unsecured_document:
        raise MalformedCredential("expected an unsecured document, it already carries a proof")
    proof: dict[str, Any] = {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "created": created or now_xsd(),
        "verificationMethod": verification_method,
        "proofPurpose": proof_purpose,
    }
    if "@context" in unsecured_document:
        proof["@context"] = copy.deepcopy(unsecured_document["@context"])
    hash_data = _hashing(_transformation(unsecured_document, proof), _proof_configuration(proof))
    proof["proofValue"] = multibase_base58btc(_proof_serialization(hash_data, private_key))
    secured = copy.deepcopy(unsecured_document)
    secured["proof"] = proof
    return secured


def _contexts(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def verify_proof(
    secured_document: dict[str, Any], resolve_key: KeyResolver, *, expected_purpose: str = "assertionMethod"
) -> dict[str, Any]:
    """§3.3.2 Verify Proof; returns the proof on success, raises the failure kind otherwise."""
    if not isinstance(secured_document, dict):
        raise MalformedCredential(f"expected a JSON object, got {type(secured_document).__name__}")
    proof = secured_document.get("proof")
    if not isinstance(proof, dict):
        raise MalformedProof(f"expected one proof object, got {type(proof).__name__}")
    for member in ("type", "cryptosuite", "verificationMethod", "proofPurpose", "proofValue"):
        if not isinstance(proof.get(member), str):
            raise MalformedProof(f"expected proof.{member} to be a string, got {proof.get(member)!r}")
    _check_suite(proof)
    if proof["proofPurpose"] != expected_purpose:
        raise MalformedProof(f"expected proofPurpose {expected_purpose!r}, got {proof['proofPurpose']!r}")
    unsecured = {k: v for k, v in secured_document.items() if k != "proof"}
    options = {k: v for k, v in proof.items() if k != "proofValue"}
    try:
        proof_bytes = multibase_decode(proof["proofValue"])
    except MalformedMultikey as exc:
        raise MalformedProof(f"expected proofValue in multibase base58btc: {exc}") from None
    if not proof["proofValue"].startswith("z") or len(proof_bytes) != 64:
        raise MalformedProof(
            f"expected a 'z' multibase 64-byte Ed25519 signature, got {len(proof_bytes)} bytes"
        )
    if "@context" in options:
        document_context = _contexts(secured_document.get("@context"))
        proof_context = _contexts(options["@context"])
        if document_context[: len(proof_context)] != proof_context:
            raise ProofContextMismatch(
                f"expected the document @context to start with {proof_context}, got {document_context}"
            )
        unsecured["@context"] = options["@context"]
    public_key = resolve_key(proof["verificationMethod"])
    hash_data = _hashing(_transformation(unsecured, options), _proof_configuration(options))
    if not _proof_verification(hash_data, proof_bytes, public_key):
        raise SignatureMismatch(
            f"expected the Ed25519 signature by {proof['verificationMethod']} to verify over "
            f"hashData {hash_data.hex()[:16]}…, it does not"
        )
    return proof
