"""Offline verification of a leaf against a final checkpoint.

A verifier needs only (DESIGN §6): the log key (C2SP signed-note verifier
key), the witness public keys in bitmap order, and the quorum.  It checks

1. the log's Ed25519 signature on the checkpoint note (C2SP signed-note);
2. the signer bitmap names at least ``quorum`` trusted witnesses, and the
   aggregate BLS signature verifies (FastAggregateVerify of draft-irtf-cfrg-
   bls-signature-05 §3.3.4) over the checkpoint's cosignature message;
3. the RFC 9162 §2.1.3.2 inclusion proof of ``SHA-256(0x00 || hash)``.

Bitmap encoding: hex of ``ceil(n/8)`` bytes; witness ``i`` (0-based, in trust
order) is bit ``i % 8`` (least significant first) of byte ``i // 8``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import bls
from .checkpoint import Checkpoint, NoteVerifier, open_checkpoint
from .merkle import hash_leaf, verify_inclusion


class VerificationError(ValueError):
    """Base class of offline verification failures."""


class WitnessSetMismatch(VerificationError):
    """The checkpoint names witnesses other than the trusted ones."""


class QuorumNotReached(VerificationError):
    """Fewer trusted witnesses cosigned than the quorum requires."""


class CosignatureInvalid(VerificationError):
    """The aggregate BLS signature does not verify for the named signers."""


class BundleMismatch(VerificationError):
    """The proof bundle talks about another leaf or another tree than its checkpoint."""


class RogueKey(VerificationError):
    """A trusted witness key comes with a proof of possession that does not verify."""


def encode_bitmap(signers: list[bool]) -> str:
    out = bytearray((len(signers) + 7) // 8)
    for i, signed in enumerate(signers):
        if signed:
            out[i // 8] |= 1 << (i % 8)
    return out.hex()


def decode_bitmap(text: str, n: int) -> list[bool]:
    raw = bytes.fromhex(text)
    if len(raw) != (n + 7) // 8:
        raise WitnessSetMismatch(
            f"expected a {(n + 7) // 8}-byte bitmap for {n} witnesses, got {len(raw)} bytes"
        )
    bits = [bool(raw[i // 8] >> (i % 8) & 1) for i in range(len(raw) * 8)]
    if any(bits[n:]):
        raise WitnessSetMismatch(f"expected no bits set beyond witness {n - 1}")
    return bits[:n]


@dataclass(frozen=True)
class Trust:
    """The verifier's trust roots."""

    log_vkey: str
    witnesses: tuple[tuple[str, bytes], ...]  # (department, BLS public key) in bitmap order
    quorum: int

    @classmethod
    def from_json(cls, data: dict[str, Any], *, check_pop: bool = True) -> Trust:
        witnesses = []
        for w in data["witnesses"]:
            pk = bytes.fromhex(w["public_key"])
            if check_pop and w.get("pop") and not bls.PopVerify(pk, bytes.fromhex(w["pop"])):
                raise RogueKey(
                    f"expected a valid proof of possession for {w['department']}, it does not verify"
                )
            witnesses.append((w["department"], pk))
        return cls(log_vkey=data["log_vkey"], witnesses=tuple(witnesses), quorum=int(data["quorum"]))

    @classmethod
    def load(cls, path: str | Path) -> Trust:
        return cls.from_json(json.loads(Path(path).read_text()))


def verify_final_checkpoint(record: dict[str, Any], trust: Trust) -> Checkpoint:
    """Check the log signature and the witness quorum of a final-checkpoint record."""
    checkpoint = open_checkpoint(record["note"], NoteVerifier.from_vkey(trust.log_vkey))
    names = [w["department"] for w in record["witnesses"]]
    trusted = [d for d, _ in trust.witnesses]
    if names != trusted:
        raise WitnessSetMismatch(f"expected witnesses {trusted} in that order, checkpoint names {names}")
    bits = decode_bitmap(record["signer_bitmap"], len(trusted))
    signers = [pk for (_, pk), bit in zip(trust.witnesses, bits, strict=True) if bit]
    if len(signers) < trust.quorum:
        raise QuorumNotReached(f"expected at least {trust.quorum} cosigners, bitmap has {len(signers)}")
    aggregate = bytes.fromhex(record["aggregate_signature"])
    if not bls.FastAggregateVerify(signers, checkpoint.cosignature_message(), aggregate):
        raise CosignatureInvalid(
            f"expected the aggregate signature to verify for {len(signers)} signers at size {checkpoint.size}, "
            "it does not"
        )
    return checkpoint


def verify_inclusion_bundle(bundle: dict[str, Any], leaf: bytes, trust: Trust) -> Checkpoint:
    """Check that the 32-byte ``leaf`` is in the tree of a final checkpoint."""
    checkpoint = verify_final_checkpoint(bundle["checkpoint"], trust)
    if bundle["tree_size"] != checkpoint.size:
        raise BundleMismatch(
            f"expected a proof for size {checkpoint.size}, bundle is for {bundle['tree_size']}"
        )
    if "hash" in bundle and bytes.fromhex(bundle["hash"]) != leaf:
        raise BundleMismatch(f"expected a proof for {leaf.hex()}, bundle is for {bundle['hash']}")
    proof = [bytes.fromhex(h) for h in bundle["proof"]]
    verify_inclusion(hash_leaf(leaf), int(bundle["leaf_index"]), checkpoint.size, proof, checkpoint.root_hash)
    return checkpoint


def root_b64(checkpoint: Checkpoint) -> str:
    return base64.b64encode(checkpoint.root_hash).decode()
