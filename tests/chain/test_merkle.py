"""RFC 6962/9162 Merkle hashing and proofs: reference vectors, then properties."""

from __future__ import annotations

import json
import random

import pytest

from chain.merkle import (
    EMPTY_ROOT,
    ConsistencyProofError,
    InclusionProofError,
    MerkleError,
    MerkleTree,
    TreeRangeError,
    hash_leaf,
    root_of,
    verify_consistency,
    verify_inclusion,
)

from .conftest import VECTORS

V = json.loads((VECTORS / "rfc6962.json").read_text())
LEAVES = [hash_leaf(bytes.fromhex(x)) for x in V["leaves_hex"]]
ROOTS = [bytes.fromhex(r) for r in V["roots"]]


def _tree(n: int) -> MerkleTree:
    return MerkleTree(hash_leaf(i.to_bytes(4, "big")) for i in range(n))


def test_empty_tree_root_is_hash_of_empty_string() -> None:
    assert (
        MerkleTree().root()
        == EMPTY_ROOT
        == bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    )


def test_roots_match_reference_vectors() -> None:
    tree = MerkleTree(LEAVES)
    for size, root in enumerate(ROOTS, start=1):
        assert tree.root(size) == root
        assert root_of(LEAVES[:size]) == root


@pytest.mark.parametrize("case", V["inclusion"], ids=lambda c: f"{c['index']}-of-{c['size']}")
def test_inclusion_vectors(case: dict) -> None:
    tree = MerkleTree(LEAVES)
    proof = [bytes.fromhex(h) for h in case["proof"]]
    assert tree.inclusion_proof(case["index"], case["size"]) == proof
    verify_inclusion(LEAVES[case["index"]], case["index"], case["size"], proof, ROOTS[case["size"] - 1])


@pytest.mark.parametrize("case", V["consistency"], ids=lambda c: f"{c['first']}-to-{c['second']}")
def test_consistency_vectors(case: dict) -> None:
    tree = MerkleTree(LEAVES)
    proof = [bytes.fromhex(h) for h in case["proof"]]
    assert tree.consistency_proof(case["first"], case["second"]) == proof
    verify_consistency(
        case["first"], case["second"], proof, ROOTS[case["first"] - 1], ROOTS[case["second"] - 1]
    )


def test_every_proof_of_small_trees_verifies() -> None:
    for n in range(1, 40):
        tree = _tree(n)
        assert tree.root() == root_of([tree.leaf(i) for i in range(n)])
        for i in range(n):
            verify_inclusion(tree.leaf(i), i, n, tree.inclusion_proof(i), tree.root())
        for m in range(n + 1):
            verify_consistency(m, n, tree.consistency_proof(m, n), tree.root(m), tree.root(n))


def test_random_large_sizes() -> None:
    rng = random.Random(6962)
    tree = _tree(3000)
    for _ in range(200):
        n = rng.randint(1, 3000)
        m = rng.randint(0, n)
        i = rng.randrange(n)
        verify_inclusion(tree.leaf(i), i, n, tree.inclusion_proof(i, n), tree.root(n))
        verify_consistency(m, n, tree.consistency_proof(m, n), tree.root(m), tree.root(n))


def _flip(proof: list[bytes], i: int) -> list[bytes]:
    out = list(proof)
    out[i] = bytes([out[i][0] ^ 8]) + out[i][1:]
    return out


def test_corrupted_inclusion_proofs_fail() -> None:
    tree = _tree(13)
    index, size = 6, 13
    proof, root, leaf = tree.inclusion_proof(index, size), tree.root(size), tree.leaf(index)
    probes = [
        (leaf, index - 1, size, proof, root),
        (leaf, index + 1, size, proof, root),
        (leaf, index, size * 2, proof, root),
        (leaf, index, size // 2, proof, root),
        (hash_leaf(b"wrong"), index, size, proof, root),
        (leaf, index, size, proof, EMPTY_ROOT),
        (leaf, index, size, proof + [root], root),
        (leaf, index, size, [root] + proof, root),
        (leaf, index, size, proof[:-1], root),
        *[(leaf, index, size, _flip(proof, i), root) for i in range(len(proof))],
    ]
    for probe in probes:
        with pytest.raises(InclusionProofError):
            verify_inclusion(*probe)


def test_corrupted_consistency_proofs_fail() -> None:
    tree = _tree(21)
    m, n = 6, 21
    proof, r1, r2 = tree.consistency_proof(m, n), tree.root(m), tree.root(n)
    probes = [
        (m - 1, n, proof, r1, r2),
        (m + 1, n, proof, r1, r2),
        (m, n * 2, proof, r1, r2),
        (m, n, proof, r2, r1),
        (m, n, [], r1, r2),
        (m, n, proof + [r1], r1, r2),
        (m, n, [r2] + proof, r1, r2),
        (m, n, proof[:-1], r1, r2),
        (n, m, proof, r2, r1),
        *[(m, n, _flip(proof, i), r1, r2) for i in range(len(proof))],
    ]
    for probe in probes:
        with pytest.raises(ConsistencyProofError):
            verify_consistency(*probe)


def test_error_messages_say_expected_and_computed() -> None:
    tree = _tree(5)
    with pytest.raises(InclusionProofError, match=r"expected root .* computed"):
        verify_inclusion(tree.leaf(1), 1, 5, tree.inclusion_proof(1), EMPTY_ROOT)


def test_out_of_range_requests_raise() -> None:
    tree = _tree(4)
    with pytest.raises(TreeRangeError):
        tree.inclusion_proof(4, 4)
    with pytest.raises(TreeRangeError):
        tree.consistency_proof(2, 5)
    with pytest.raises(MerkleError):
        tree.append(b"short")
