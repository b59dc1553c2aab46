"""Merkle Tree hashing and proofs of RFC 9162 §2.1 (identical to RFC 6962 §2.1).

Leaf hash ``SHA-256(0x00 || d)``, node hash ``SHA-256(0x01 || left || right)``.
Proof *generation* follows the recursive definitions of RFC 6962 §2.1.1
(``PATH``) and §2.1.2 (``PROOF``/``SUBPROOF``) over an in-memory cache of
complete subtrees; proof *verification* follows the iterative algorithms of
RFC 9162 §2.1.3.2 and §2.1.4.2, split into the same steps as
transparency-dev/merkle and sigstore-python (``_decomp_inclusion_proof``,
``_chain_inner``, ``_chain_inner_right``, ``_chain_border_right``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()


class MerkleError(ValueError):
    """Base class of every Merkle failure."""


class InclusionProofError(MerkleError):
    """An inclusion proof is malformed or does not lead to the expected root."""


class ConsistencyProofError(MerkleError):
    """A consistency proof is malformed or does not link the two roots."""


class TreeRangeError(MerkleError):
    """A proof was asked for sizes or indices the tree does not have."""


def hash_leaf(data: bytes) -> bytes:
    """RFC 9162 §2.1.1: MTH({d}) = SHA-256(0x00 || d)."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: SHA-256(0x01 || MTH(left) || MTH(right))."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """The ``k`` of RFC 9162 §2.1.1: the largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of a list of leaf hashes, straight from the recursive definition."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = _largest_power_of_two_below(n)
    return hash_children(root_of(leaf_hashes[:k]), root_of(leaf_hashes[k:]))


class MerkleTree:
    """An append-only tree that keeps every complete subtree hash.

    ``_levels[h][i]`` is the hash of the complete subtree over leaves
    ``[i * 2**h, (i + 1) * 2**h)``.  Those never change once formed, so any
    MTH of a historical size, any audit path and any consistency proof costs
    O(log n) hash operations.
    """

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        for leaf in leaf_hashes:
            self.append(leaf)

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def leaf(self, index: int) -> bytes:
        return self._levels[0][index]

    def append(self, leaf_hash: bytes) -> int:
        """Append one leaf hash; returns its index."""
        if len(leaf_hash) != HASH_SIZE:
            raise MerkleError(f"expected a {HASH_SIZE}-byte leaf hash, got {len(leaf_hash)} bytes")
        index = self.size
        self._levels[0].append(leaf_hash)
        level = 0
        while len(self._levels[level]) % 2 == 0:
            row = self._levels[level]
            parent = hash_children(row[-2], row[-1])
            if level + 1 == len(self._levels):
                self._levels.append([])
            self._levels[level + 1].append(parent)
            level += 1
        return index

    def _subtree_hash(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for a range that occurs in the RFC recursion."""
        n = end - start
        if n == 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and start % n == 0:
            return self._levels[n.bit_length() - 1][start // n]
        k = _largest_power_of_two_below(n)
        return hash_children(self._subtree_hash(start, start + k), self._subtree_hash(start + k, end))

    def root(self, size: int | None = None) -> bytes:
        """MTH(D[size]), the root of the tree when it had ``size`` leaves."""
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise TreeRangeError(f"expected a size in [0, {self.size}], got {size}")
        return self._subtree_hash(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 6962 §2.1.1 PATH(m, D[n]): the audit path of leaf ``index`` in tree ``size``."""
        size = self.size if size is None else size
        if not 0 <= index < size <= self.size:
            raise TreeRangeError(f"expected 0 <= index < size <= {self.size}, got index={index} size={size}")
        return self._path(index, 0, size)

    def _path(self, m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = _largest_power_of_two_below(n)
        if m < k:
            return self._path(m, start, start + k) + [self._subtree_hash(start + k, end)]
        return self._path(m - k, start + k, end) + [self._subtree_hash(start, start + k)]

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        """RFC 6962 §2.1.2 PROOF(m, D[n]); empty when m == 0 or m == n."""
        second = self.size if second is None else second
        if not 0 <= first <= second <= self.size:
            raise TreeRangeError(f"expected 0 <= first <= second <= {self.size}, got {first}, {second}")
        if first == 0 or first == second:
            return []
        return self._subproof(first, 0, second, True)

    def _subproof(self, m: int, start: int, end: int, b: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if b else [self._subtree_hash(start, end)]
        k = _largest_power_of_two_below(n)
        if m <= k:
            return self._subproof(m, start, start + k, b) + [self._subtree_hash(start + k, end)]
        return self._subproof(m - k, start + k, end, False) + [self._subtree_hash(start, start + k)]


# --- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) -------------------------------------------


def _decomp_inclusion_proof(index: int, size: int) -> tuple[int, int]:
    """Split an audit path into its inner part (below the fork with the right border) and the border."""
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Fold the inner proof nodes, left or right of the running hash by the index bits."""
    for i, node in enumerate(proof):
        seed = hash_children(seed, node) if (index >> i) & 1 == 0 else hash_children(node, seed)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Like ``_chain_inner`` but only the nodes on the left: rebuilds the *older* root."""
    for i, node in enumerate(proof):
        if (index >> i) & 1 == 1:
            seed = hash_children(node, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    """Fold the right-border nodes, which always sit to the left of the running hash."""
    for node in proof:
        seed = hash_children(node, seed)
    return seed


def _check_hashes(proof: Sequence[bytes], error: type[MerkleError]) -> None:
    for i, node in enumerate(proof):
        if len(node) != HASH_SIZE:
            raise error(f"expected proof[{i}] to be {HASH_SIZE} bytes, got {len(node)}")


def root_from_inclusion_proof(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2: the root that ``proof`` implies for leaf ``index`` of tree ``size``."""
    if not 0 <= index < size:
        raise InclusionProofError(f"expected leaf index < tree size, got index={index} size={size}")
    if len(leaf_hash) != HASH_SIZE:
        raise InclusionProofError(f"expected a {HASH_SIZE}-byte leaf hash, got {len(leaf_hash)} bytes")
    _check_hashes(proof, InclusionProofError)
    inner, border = _decomp_inclusion_proof(index, size)
    if len(proof) != inner + border:
        raise InclusionProofError(
            f"expected {inner + border} proof hashes for index {index} in size {size}, got {len(proof)}"
        )
    seed = _chain_inner(leaf_hash, proof[:inner], index)
    return _chain_border_right(seed, proof[inner:])


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Raise ``InclusionProofError`` unless ``proof`` places ``leaf_hash`` at ``index`` under ``root``."""
    computed = root_from_inclusion_proof(leaf_hash, index, size, proof)
    if computed != root:
        raise InclusionProofError(f"expected root {root.hex()}, computed {computed.hex()}")


def verify_consistency(
    first: int, second: int, proof: Sequence[bytes], first_root: bytes, second_root: bytes
) -> None:
    """RFC 9162 §2.1.4.2: raise ``ConsistencyProofError`` unless tree ``second`` extends tree ``first``."""
    if not 0 <= first <= second:
        raise ConsistencyProofError(f"expected first <= second, got first={first} second={second}")
    _check_hashes(proof, ConsistencyProofError)
    if first == second:
        if proof:
            raise ConsistencyProofError(f"expected an empty proof for equal sizes, got {len(proof)} hashes")
        if first_root != second_root:
            raise ConsistencyProofError(
                f"expected equal roots at equal size {first}, got {first_root.hex()} and {second_root.hex()}"
            )
        return
    if first == 0:
        if proof:
            raise ConsistencyProofError(f"expected an empty proof from size 0, got {len(proof)} hashes")
        return
    if not proof:
        raise ConsistencyProofError(f"expected a non-empty proof from size {first} to {second}")

    inner, border = _decomp_inclusion_proof(first - 1, second)
    shift = (first & -first).bit_length() - 1
    inner -= shift
    if first == 1 << shift:
        seed, start = first_root, 0
    else:
        seed, start = proof[0], 1
    if len(proof) != start + inner + border:
        raise ConsistencyProofError(
            f"expected {start + inner + border} proof hashes from size {first} to {second}, got {len(proof)}"
        )
    path = proof[start:]
    mask = (first - 1) >> shift

    computed_first = _chain_border_right(_chain_inner_right(seed, path[:inner], mask), path[inner:])
    if computed_first != first_root:
        raise ConsistencyProofError(
            f"expected root {first_root.hex()} at size {first}, computed {computed_first.hex()}"
        )
    computed_second = _chain_border_right(_chain_inner(seed, path[:inner], mask), path[inner:])
    if computed_second != second_root:
        raise ConsistencyProofError(
            f"expected root {second_root.hex()} at size {second}, computed {computed_second.hex()}"
        )
