"""Sequencer rules that need no network: aggregation drops a bad cosignature, quorum bounds."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from chain import bls
from chain.checkpoint import Checkpoint, NoteSigner, sign_checkpoint
from chain.sequencer import RegisteredWitness, Sequencer, SequencerSettings, _Pending
from chain.verify import Trust, verify_final_checkpoint

DEPTS = ("civil_affairs", "social_security", "health")


def _sequencer(tmp_path: Path, quorum: int = 2) -> tuple[Sequencer, list[int]]:
    signer = NoteSigner.generate("zhilian.local/chain")
    seq = Sequencer(SequencerSettings(data_dir=tmp_path, quorum=quorum), signer)
    sks = [bls.KeyGen(bytes([i + 1]) * 32) for i in range(3)]
    for d, sk in zip(DEPTS, sks, strict=True):
        seq.witnesses[d] = RegisteredWitness(d, bls.SkToPk(sk), bls.PopProve(sk), "http://unused")
    return seq, sks


async def test_a_bad_cosignature_is_dropped_and_quorum_still_counts(tmp_path: Path) -> None:
    seq, sks = _sequencer(tmp_path)
    checkpoint = Checkpoint("zhilian.local/chain", 3, hashlib.sha256(b"r").digest())
    pending = _Pending(checkpoint, sign_checkpoint(checkpoint, seq.signer), int(time.time()))
    message = checkpoint.cosignature_message(pending.timestamp)
    pending.cosignatures = {
        "civil_affairs": bls.Sign(sks[0], message),
        "social_security": bls.Sign(sks[1], b"something else"),
        "health": bls.Sign(sks[2], message),
    }
    seq.log.store.save_checkpoint = _noop  # type: ignore[method-assign]
    record = await seq._finalize(pending)
    assert record is not None and record["signers"] == ["civil_affairs", "health"]
    assert record["signer_bitmap"] == "05"
    trust = Trust.from_json(seq.trust())
    assert verify_final_checkpoint(record, trust) == checkpoint


async def test_no_quorum_of_valid_cosignatures_is_not_final(tmp_path: Path) -> None:
    seq, sks = _sequencer(tmp_path)
    checkpoint = Checkpoint("zhilian.local/chain", 3, hashlib.sha256(b"r").digest())
    pending = _Pending(checkpoint, sign_checkpoint(checkpoint, seq.signer), int(time.time()))
    pending.cosignatures = {
        "civil_affairs": bls.Sign(sks[0], checkpoint.cosignature_message(pending.timestamp)),
        "health": bls.Sign(sks[2], b"wrong"),
    }
    assert await seq._finalize(pending) is None


def test_quorum_must_fit_the_witness_set(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Sequencer(SequencerSettings(data_dir=tmp_path, quorum=4), NoteSigner.generate("o"))


async def _noop(*args: object) -> None:
    return None
