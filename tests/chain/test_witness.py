"""The witness rule in-process: consistency checked, rollback and fork refused for good."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from chain import bls
from chain.checkpoint import Checkpoint, NoteSigner, sign_checkpoint
from chain.merkle import MerkleTree, hash_leaf
from chain.witness import BadCheckpoint, ForkRefused, LogRefused, OldSizeMismatch, RollbackRefused, Witness

ORIGIN = "test.example/log"


def _tree(n: int, salt: str = "") -> MerkleTree:
    return MerkleTree(hash_leaf(hashlib.sha256(f"{salt}{i}".encode()).digest()) for i in range(n))


def _note(signer: NoteSigner, tree: MerkleTree, size: int) -> str:
    return sign_checkpoint(Checkpoint(ORIGIN, size, tree.root(size)), signer)


@pytest.fixture
def signer() -> NoteSigner:
    return NoteSigner.generate(ORIGIN)


def _witness(signer: NoteSigner, path: Path) -> Witness:
    return Witness("health", bls.KeyGen(b"\x05" * 32), signer.verifier, path)


def test_cosigns_a_growing_log(signer: NoteSigner, tmp_path: Path) -> None:
    w = _witness(signer, tmp_path)
    tree = _tree(10)
    cosigned = w.add_checkpoint(0, [], _note(signer, tree, 4))
    assert bls.Verify(w.public_key, cosigned.checkpoint.cosignature_message(cosigned.timestamp), cosigned.signature)
    cosigned = w.add_checkpoint(4, tree.consistency_proof(4, 10), _note(signer, tree, 10))
    assert cosigned.checkpoint.size == 10 and w.state.size == 10
    # the same checkpoint again is cosigned again (idempotent)
    again = w.add_checkpoint(10, [], _note(signer, tree, 10))
    assert again.checkpoint.size == 10


def test_wrong_old_size_is_a_conflict_not_a_refusal(signer: NoteSigner, tmp_path: Path) -> None:
    w = _witness(signer, tmp_path)
    tree = _tree(8)
    w.add_checkpoint(0, [], _note(signer, tree, 3))
    with pytest.raises(OldSizeMismatch) as info:
        w.add_checkpoint(0, [], _note(signer, tree, 8))
    assert info.value.size == 3
    w.add_checkpoint(3, tree.consistency_proof(3, 8), _note(signer, tree, 8))


def test_unsigned_checkpoint_is_refused_without_penalty(signer: NoteSigner, tmp_path: Path) -> None:
    w = _witness(signer, tmp_path)
    impostor = NoteSigner.generate(ORIGIN)
    with pytest.raises(BadCheckpoint):
        w.add_checkpoint(0, [], _note(impostor, _tree(2), 2))
    assert w.state.refused is None


def test_rollback_is_refused_and_the_refusal_persists(signer: NoteSigner, tmp_path: Path) -> None:
    w = _witness(signer, tmp_path)
    tree = _tree(10)
    w.add_checkpoint(0, [], _note(signer, tree, 10))
    with pytest.raises(RollbackRefused, match="expected a tree of size >= 10"):
        w.add_checkpoint(10, [], _note(signer, tree, 6))
    with pytest.raises(LogRefused):
        w.add_checkpoint(10, [], _note(signer, tree, 10))
    reborn = _witness(signer, tmp_path)
    with pytest.raises(LogRefused):
        reborn.add_checkpoint(10, [], _note(signer, tree, 10))
    evidence = tmp_path / f"refusals-{signer.verifier.key_id.hex()}.jsonl"
    assert evidence.read_text().count("rollback_refused") == 1


def test_a_new_log_key_starts_a_fresh_state(signer: NoteSigner, tmp_path: Path) -> None:
    _witness(signer, tmp_path).add_checkpoint(0, [], _note(signer, _tree(10), 10))
    other = NoteSigner.generate(ORIGIN)
    w = Witness("health", bls.KeyGen(b"\x05" * 32), other.verifier, tmp_path)
    assert w.add_checkpoint(0, [], _note(other, _tree(3), 3)).checkpoint.size == 3


def test_fork_at_same_size_is_refused(signer: NoteSigner, tmp_path: Path) -> None:
    w = _witness(signer, tmp_path)
    w.add_checkpoint(0, [], _note(signer, _tree(5), 5))
    with pytest.raises(ForkRefused):
        w.add_checkpoint(5, [], _note(signer, _tree(5, salt="fork"), 5))
    assert _witness(signer, tmp_path).state.refused["code"] == "fork_refused"


def test_fork_that_cannot_prove_consistency_is_refused(signer: NoteSigner, tmp_path: Path) -> None:
    w = _witness(signer, tmp_path)
    honest = _tree(5)
    w.add_checkpoint(0, [], _note(signer, honest, 5))
    forked = MerkleTree(
        [*(hash_leaf(bytes([i]) * 32) for i in range(5)), *(hash_leaf(b"z" * 32) for _ in range(4))]
    )
    with pytest.raises(ForkRefused, match="expected size 9 to extend size 5"):
        w.add_checkpoint(5, forked.consistency_proof(5, 9), _note(signer, forked, 9))
    with pytest.raises(LogRefused):
        w.add_checkpoint(5, [], _note(signer, honest, 5))
