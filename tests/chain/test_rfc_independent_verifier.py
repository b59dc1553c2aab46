"""A second RFC 9162 verifier, written from the RFC's prose and sharing no code with chain.merkle.

RFC 9162 §2.1.3.2 (verifying an inclusion proof) and §2.1.4.2 (verifying a
consistency proof) are transcribed step by step, with the RFC's variable names
(fn, sn, r, fr, sr), using only hashlib.  They check the proofs our tree emits.
"""

from __future__ import annotations

import hashlib
import random

from chain.merkle import MerkleTree


def _leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def rfc_verify_inclusion(
    leaf_index: int, tree_size: int, leaf_hash: bytes, path: list[bytes], root: bytes
) -> bool:
    # 1. If leaf_index is greater than or equal to tree_size, then fail.
    if leaf_index >= tree_size:
        return False
    # 2. Set fn to leaf_index and sn to tree_size - 1.
    fn, sn = leaf_index, tree_size - 1
    # 3. Set r to hash.
    r = leaf_hash
    # 4. For each value p in the inclusion_path array:
    for p in path:
        # a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0:
            return False
        # b. If LSB(fn) is set, or if fn is equal to sn, then:
        if fn & 1 or fn == sn:
            # 1. Set r to HASH(0x01 || p || r).
            r = _node(p, r)
            # 2. If LSB(fn) is not set, then right-shift both fn and sn equally until
            #    either LSB(fn) is set or fn is 0.
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        # Otherwise: Set r to HASH(0x01 || r || p).
        else:
            r = _node(r, p)
        # c. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 5. Compare sn to 0. Compare r against the root_hash. If sn is equal to 0 and r and
    #    the root_hash are equal, then the log has proven the inclusion of hash.
    return sn == 0 and r == root


def rfc_verify_consistency(
    first: int, second: int, first_hash: bytes, second_hash: bytes, consistency_path: list[bytes]
) -> bool:
    # 1. If consistency_path is an empty array, stop and fail the proof verification.
    if not consistency_path:
        return False
    path = list(consistency_path)
    # 2. If first is an exact power of 2, then prepend first_hash to the consistency_path array.
    if first & (first - 1) == 0:
        path.insert(0, first_hash)
    # 3. Set fn to first - 1 and sn to second - 1.
    fn, sn = first - 1, second - 1
    # 4. If LSB(fn) is set, then right-shift both fn and sn equally until LSB(fn) is not set.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5. Set both fr and sr to the first value in the consistency_path array.
    fr = sr = path[0]
    # 6. For each subsequent value c in the consistency_path array:
    for c in path[1:]:
        # a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0:
            return False
        # b. If LSB(fn) is set, or if fn is equal to sn, then:
        if fn & 1 or fn == sn:
            # 1. Set fr to HASH(0x01 || c || fr). Set sr to HASH(0x01 || c || sr).
            fr = _node(c, fr)
            sr = _node(c, sr)
            # 2. If LSB(fn) is not set, then right-shift both fn and sn equally until
            #    either LSB(fn) is set or fn is 0.
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        # Otherwise: Set sr to HASH(0x01 || sr || c).
        else:
            sr = _node(sr, c)
        # c. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 7. After completing iterating through the consistency_path array as described above,
    #    verify that the fr calculated is equal to the first_hash supplied, that the sr
    #    calculated is equal to the second_hash value supplied, and that sn is 0.
    return fr == first_hash and sr == second_hash and sn == 0


def _rfc_mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH, recursively, straight from the definition."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return _leaf(leaves[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return _node(_rfc_mth(leaves[:k]), _rfc_mth(leaves[k:]))


def test_our_proofs_pass_the_independent_verifier() -> None:
    data = [f"credential-{i}".encode() for i in range(70)]
    tree = MerkleTree(_leaf(d) for d in data)
    roots = {n: _rfc_mth(data[:n]) for n in range(1, 71)}
    for n in range(1, 71):
        assert tree.root(n) == roots[n]
        for i in range(n):
            assert rfc_verify_inclusion(i, n, _leaf(data[i]), tree.inclusion_proof(i, n), roots[n])
        for m in range(1, n):
            assert rfc_verify_consistency(m, n, roots[m], roots[n], tree.consistency_proof(m, n))


def test_independent_verifier_rejects_tampering() -> None:
    data = [bytes([i]) for i in range(37)]
    tree = MerkleTree(_leaf(d) for d in data)
    rng = random.Random(9162)
    for _ in range(100):
        n = rng.randint(2, 37)
        i = rng.randrange(n)
        m = rng.randint(1, n - 1)
        proof = tree.inclusion_proof(i, n)
        bad = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
        assert not rfc_verify_inclusion(i, n, _leaf(data[i]), bad, tree.root(n))
        assert not rfc_verify_inclusion(i, n, _leaf(b"other"), proof, tree.root(n))
        cproof = tree.consistency_proof(m, n)
        assert not rfc_verify_consistency(m, n, tree.root(m), _leaf(b"x"), cproof)
