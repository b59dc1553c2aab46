"""Offline verification of a leaf against a final checkpoint.

A verifier needs only (DESIGN §6): the log key (C2SP signed-note verifier
key), the witness public keys in bitmap order with their proofs of possession,
and the quorum.  Loading the trust roots refuses a witness key without a valid
BLS proof of possession (rogue-key defence).  It checks

1. the log's Ed25519 signature on the checkpoint note (C2SP signed-note);
2. the witnessed time ``T``: present, and not in the verifier's future
   (beyond ``MAX_FUTURE_SKEW``);
3. the signer bitmap names at least ``quorum`` trusted witnesses, and the
   aggregate BLS signature verifies (FastAggregateVerify of draft-irtf-cfrg-
   bls-signature-05 §3.3.4) over the checkpoint's cosignature message with
   ``T``: a quorum saw this tree by time ``T``;
4. when the record carries the C2SP ``tlog-cosignature`` lines and the trust
   roots the witnesses' Ed25519 keys: every signer's line verifies, over the
   same checkpoint, with a time not in the future;
5. the RFC 9162 §2.1.3.2 inclusion proof of ``SHA-256(0x00 || hash)``.

Bitmap encoding: hex of ``ceil(n/8)`` bytes; witness ``i`` (0-based, in trust
order) is bit ``i % 8`` (least significant first) of byte ``i // 8``.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import bls
from .checkpoint import (
    Checkpoint,
    CosignatureError,
    CosignerVerifier,
    NoteError,
    NoteVerifier,
    open_checkpoint,
    open_cosignatures,
)
from .merkle import hash_leaf, verify_inclusion

# how far in the verifier's future a witnessed time may be (verifiers' clocks are often off by minutes)
MAX_FUTURE_SKEW = 300


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
    """A trusted witness key comes without a proof of possession, or with one that does not verify."""


class CheckpointTimeInvalid(VerificationError):
    """The checkpoint carries no witnessed time, or one in the future."""


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
    pops: tuple[bytes, ...] = ()  # BLS proofs of possession, same order (checked when loaded)
    cosigners: tuple[str, ...] = ()  # C2SP cosignature/v1 verifier keys, same order ("" if none)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Trust:
        """Load trust roots; every witness key must come with a valid proof of possession."""
        witnesses, pops, cosigners = [], [], []
        for w in data["witnesses"]:
            department = w["department"]
            pk = bytes.fromhex(w["public_key"])
            if not w.get("pop"):
                raise RogueKey(
                    f"expected a proof of possession (pop) with the key of witness {department}, there is none"
                )
            pop = bytes.fromhex(w["pop"])
            if not bls.PopVerify(pk, pop):
                raise RogueKey(f"expected a valid proof of possession for {department}, it does not verify")
            cosigner = str(w.get("cosigner_vkey") or "")
            if cosigner:
                try:
                    CosignerVerifier.from_vkey(cosigner)
                except NoteError as exc:
                    raise VerificationError(f"expected a cosignature/v1 key for {department}: {exc}") from exc
            witnesses.append((department, pk))
            pops.append(pop)
            cosigners.append(cosigner)
        return cls(
            log_vkey=data["log_vkey"],
            witnesses=tuple(witnesses),
            quorum=int(data["quorum"]),
            pops=tuple(pops),
            cosigners=tuple(cosigners),
        )

    @classmethod
    def load(cls, path: str | Path) -> Trust:
        return cls.from_json(json.loads(Path(path).read_text()))

    def to_json(self) -> dict[str, Any]:
        """The JSON ``from_json`` reads (proofs of possession and cosigner keys included)."""
        witnesses = []
        for i, (department, pk) in enumerate(self.witnesses):
            entry = {"department": department, "public_key": pk.hex()}
            if i < len(self.pops):
                entry["pop"] = self.pops[i].hex()
            if i < len(self.cosigners) and self.cosigners[i]:
                entry["cosigner_vkey"] = self.cosigners[i]
            witnesses.append(entry)
        return {"log_vkey": self.log_vkey, "quorum": self.quorum, "witnesses": witnesses}


def witnessed_time(record: dict[str, Any], now: float | None = None) -> int:
    """The time ``T`` a final-checkpoint record says its signers attested (checked by the aggregate)."""
    timestamp = record.get("timestamp")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp < 0:
        raise CheckpointTimeInvalid(
            f"expected a witnessed time (integer timestamp) on the checkpoint, got {timestamp!r}"
        )
    now = time.time() if now is None else now
    if timestamp > now + MAX_FUTURE_SKEW:
        raise CheckpointTimeInvalid(
            f"expected a witnessed time no later than now ({_iso(now)}), the checkpoint says {_iso(timestamp)}"
        )
    return timestamp


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _check_cosigned_note(
    record: dict[str, Any], checkpoint: Checkpoint, trust: Trust, signers: list[str], now: float
) -> None:
    """The standard tlog-cosignature lines agree with the BLS signers (when both sides have them)."""
    note = record.get("cosigned_note")
    keys = {d: v for (d, _), v in zip(trust.witnesses, trust.cosigners, strict=False) if v}
    if not note or not keys:
        return
    verifiers = {d: CosignerVerifier.from_vkey(v) for d, v in keys.items()}
    try:
        text, times = open_cosignatures(str(note), list(verifiers.values()))
    except CosignatureError as exc:
        raise CosignatureInvalid(f"expected valid tlog-cosignature lines: {exc}") from exc
    except NoteError as exc:
        raise CosignatureInvalid(f"expected a cosigned note: {exc}") from exc
    if text != checkpoint.text():
        raise CosignatureInvalid("expected the cosigned note to carry the same checkpoint as the record")
    for department in signers:
        verifier = verifiers.get(department)
        if verifier is None:
            continue
        if verifier.name not in times:
            raise CosignatureInvalid(f"expected a tlog-cosignature line by {verifier.name} ({department}), none")
        if times[verifier.name] > now + MAX_FUTURE_SKEW:
            raise CheckpointTimeInvalid(
                f"expected {verifier.name}'s cosignature time no later than now, it says {_iso(times[verifier.name])}"
            )


def verify_final_checkpoint(record: dict[str, Any], trust: Trust, *, now: float | None = None) -> Checkpoint:
    """Check the log signature, the witnessed time and the witness quorum of a final-checkpoint record."""
    now = time.time() if now is None else now
    checkpoint = open_checkpoint(record["note"], NoteVerifier.from_vkey(trust.log_vkey))
    names = [w["department"] for w in record["witnesses"]]
    trusted = [d for d, _ in trust.witnesses]
    if names != trusted:
        raise WitnessSetMismatch(f"expected witnesses {trusted} in that order, checkpoint names {names}")
    bits = decode_bitmap(record["signer_bitmap"], len(trusted))
    signers = [pk for (_, pk), bit in zip(trust.witnesses, bits, strict=True) if bit]
    if len(signers) < trust.quorum:
        raise QuorumNotReached(f"expected at least {trust.quorum} cosigners, bitmap has {len(signers)}")
    timestamp = witnessed_time(record, now)
    aggregate = bytes.fromhex(record["aggregate_signature"])
    if not bls.FastAggregateVerify(signers, checkpoint.cosignature_message(timestamp), aggregate):
        raise CosignatureInvalid(
            f"expected the aggregate signature to verify for {len(signers)} signers at size {checkpoint.size} "
            f"and time {_iso(timestamp)}, it does not"
        )
    signer_names = [d for (d, _), bit in zip(trust.witnesses, bits, strict=True) if bit]
    _check_cosigned_note(record, checkpoint, trust, signer_names, now)
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
