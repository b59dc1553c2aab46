"""Checks the fault suite makes with code of its own, written from the public specs (not `chain.*`).

* RFC 9162 §2.1.3.2 / §2.1.4.2: verifying inclusion and consistency proofs, with the RFC's own
  variable names (fn, sn, r, fr, sr).
* C2SP signed-note + tlog-checkpoint: the log's Ed25519 signature line and the checkpoint body
  (origin, size, base64 root hash).
* BLS FastAggregateVerify of the witnesses' cosignature over the checkpoint and its witnessed
  time (ciphersuite BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_; message as chain/README.md
  documents it): sum of the signers' G1 keys, the message hashed to G2 (RFC 9380), one pairing
  equation — on py-arkworks curve operations, and once on py-ecc.
* C2SP tlog-cosignature/v1: each witness's Ed25519 line on the cosigned note, its own time.
* The credential's leaf: SHA-256 of its RFC 8785 (JCS) form, with the `rfc8785` package.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

BLS_DST = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"
# chain/README.md: a witness signs this context, "time <T>\n", then the checkpoint text
COSIGNATURE_CONTEXT = b"zhilian/bls-cosignature/v2\n"


class Rejected(AssertionError):
    """An independent check failed; the message says which and why."""


# --- RFC 9162 -----------------------------------------------------------------------------------


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(leaf_index: int, tree_size: int, hash_: bytes, inclusion_path: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2, step by step."""
    if leaf_index >= tree_size:
        return False
    fn, sn, r = leaf_index, tree_size - 1, hash_
    for p in inclusion_path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _node(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = _node(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_hash: bytes, second_hash: bytes, path: list[bytes]) -> bool:
    """RFC 9162 §2.1.4.2, step by step (first == second needs an empty proof and equal roots)."""
    if first == second:
        return not path and first_hash == second_hash
    if first == 0 or first > second or not path:
        return False
    path = list(path)
    if first & (first - 1) == 0:  # an exact power of two: the old root is the first node
        path.insert(0, first_hash)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = _node(c, fr), _node(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = _node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == first_hash and sr == second_hash and sn == 0


def merkle_tree_hash(entries: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH, recursively from the definition (for the verifier's own self-check)."""
    if not entries:
        return hashlib.sha256(b"").digest()
    if len(entries) == 1:
        return leaf_hash(entries[0])
    k = 1
    while k * 2 < len(entries):
        k *= 2
    return _node(merkle_tree_hash(entries[:k]), merkle_tree_hash(entries[k:]))


def inclusion_path(m: int, entries: list[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(m, D[n]), from the definition (for the self-check)."""
    if len(entries) <= 1:
        return []
    k = 1
    while k * 2 < len(entries):
        k *= 2
    if m < k:
        return [*inclusion_path(m, entries[:k]), merkle_tree_hash(entries[k:])]
    return [*inclusion_path(m - k, entries[k:]), merkle_tree_hash(entries[:k])]


# --- C2SP signed note and checkpoint --------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    text: str  # the signed body, ending with a newline


def open_checkpoint(note: str, vkey: str) -> Checkpoint:
    """Check the log's Ed25519 line on a C2SP signed note and parse the tlog-checkpoint body."""
    name, key_id_hex, key_b64 = vkey.strip().split("+", 2)  # base64 may hold "+" too
    key = base64.b64decode(key_b64)
    if key[0] != 0x01 or len(key) != 33:
        raise Rejected(f"expected an Ed25519 verifier key (type 0x01, 32 bytes), got type {key[0]}")
    key_id = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]
    if key_id.hex() != key_id_hex:
        raise Rejected(f"expected key id {key_id.hex()} for {name}, vkey says {key_id_hex}")
    text, separator, signatures = note.rpartition("\n\n")
    if not separator:
        raise Rejected("expected a blank line between the note text and its signatures")
    text += "\n"
    for line in signatures.strip("\n").split("\n"):
        dash, line_name, blob = line.split(" ")
        raw = base64.b64decode(blob)
        if dash != "\u2014" or line_name != name or raw[:4] != key_id:
            continue
        try:
            Ed25519PublicKey.from_public_bytes(key[1:]).verify(raw[4:], text.encode())
        except InvalidSignature:
            raise Rejected(f"the signature of {name} on the checkpoint does not verify") from None
        origin, size, root, *_ = text[:-1].split("\n")
        if origin != name:
            raise Rejected(f"expected origin {name}, checkpoint says {origin}")
        return Checkpoint(origin, int(size), base64.b64decode(root), text)
    raise Rejected(f"expected a signature line by {name}, found none")


# --- BLS ------------------------------------------------------------------------------------------


def fast_aggregate_verify(public_keys: list[bytes], message: bytes, signature: bytes) -> bool:
    """e(sum of signer keys, H(message)) == e(G1 generator, aggregate signature)."""
    from py_arkworks_bls12381 import GT, G1Point, G2Point

    if not public_keys:
        return False
    aggregate = G1Point.identity()
    for key in public_keys:
        aggregate = aggregate + G1Point.from_compressed_bytes(key)
    hashed = G2Point.hash_to_curve(message, BLS_DST)  # (message, domain separation tag)
    return GT.pairing(aggregate, hashed) == GT.pairing(G1Point(), G2Point.from_compressed_bytes(signature))


def fast_aggregate_verify_reference(public_keys: list[bytes], message: bytes, signature: bytes) -> bool:
    """The same with py-ecc's reference implementation (slow: about a second)."""
    from py_ecc.bls import G2ProofOfPossession

    return bool(G2ProofOfPossession.FastAggregateVerify(public_keys, message, signature))


def check_final_checkpoint(record: dict, trust: dict, *, reference: bool = False) -> Checkpoint:
    """The log signed it and at least `quorum` of the trusted witnesses cosigned it (aggregate BLS)."""
    checkpoint = open_checkpoint(record["note"], trust["log_vkey"])
    bitmap = bytes.fromhex(record["signer_bitmap"])
    signers = [bytes.fromhex(w["public_key"]) for i, w in enumerate(trust["witnesses"]) if bitmap[i // 8] >> (i % 8) & 1]
    if len(signers) < int(trust["quorum"]):
        raise Rejected(f"expected at least {trust['quorum']} cosigners at size {checkpoint.size}, got {len(signers)}")
    timestamp = record.get("timestamp")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool):
        raise Rejected(f"expected a witnessed time on the checkpoint at size {checkpoint.size}, got {timestamp!r}")
    message = COSIGNATURE_CONTEXT + f"time {timestamp}\n".encode() + checkpoint.text.encode()
    verify = fast_aggregate_verify_reference if reference else fast_aggregate_verify
    if not verify(signers, message, bytes.fromhex(record["aggregate_signature"])):
        raise Rejected(f"the witnesses' aggregate signature at size {checkpoint.size} does not verify")
    cosigned = tlog_cosigners(record.get("cosigned_note") or "", checkpoint.text, trust)
    if len(cosigned) < int(trust["quorum"]):
        raise Rejected(f"expected {trust['quorum']} valid tlog-cosignature lines at size {checkpoint.size}, "
                       f"got {sorted(cosigned)}")
    return checkpoint


def tlog_cosigners(note: str, text: str, trust: dict) -> set[str]:
    """Trusted witnesses whose C2SP tlog-cosignature/v1 line on `note` verifies over `text`.

    Key: `<name>+<key id hex>+base64(0x04 || Ed25519 key)`, key id SHA-256(name || 0x0A || 0x04 || key)[:4];
    line: `— <name> base64(key id || big-endian u64 time || signature)`, signed message
    "cosignature/v1\ntime <time>\n" || checkpoint text.
    """
    body, _, lines = note.partition("\n\n")
    if body + "\n" != text:
        return set()
    keys = {}
    for witness in trust["witnesses"]:
        vkey = witness.get("cosigner_vkey")
        if vkey:
            name, key_id, key_b64 = vkey.split("+", 2)
            key = base64.b64decode(key_b64)
            if key[0] == 0x04 and hashlib.sha256(name.encode() + b"\n" + key).digest()[:4].hex() == key_id:
                keys[(name, bytes.fromhex(key_id))] = (witness["department"], Ed25519PublicKey.from_public_bytes(key[1:]))
    found = set()
    for line in lines.strip("\n").split("\n"):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != "\u2014":
            continue
        raw = base64.b64decode(parts[2])
        match = keys.get((parts[1], raw[:4]))
        if match is None or len(raw) != 4 + 8 + 64:
            continue
        signed = f"cosignature/v1\ntime {int.from_bytes(raw[4:12], 'big')}\n".encode() + text.encode()
        try:
            match[1].verify(raw[12:], signed)
        except InvalidSignature:
            continue
        found.add(match[0])
    return found


# --- credentials ------------------------------------------------------------------------------------


def credential_leaf(document: dict) -> bytes:
    """What the backend puts on the chain for a credential: SHA-256 of its RFC 8785 form."""
    import rfc8785

    return hashlib.sha256(rfc8785.dumps(document)).digest()
