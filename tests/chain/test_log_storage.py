"""The log over SQLite or PostgreSQL (``ZHILIAN_TEST_DATABASE_URL``): durability, idempotence, recovery."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from chain.log import Entry, LeafRejected, Log, LogLocked, StoredRow, make_store
from chain.merkle import MerkleTree, hash_leaf, verify_inclusion

pytestmark = pytest.mark.persistence


def _h(i: int) -> bytes:
    return hashlib.sha256(f"leaf-{i}".encode()).digest()


def _entries(rng: range, label: str = "credential") -> list[Entry]:
    return [Entry(_h(i), label, "backend") for i in rng]


async def test_append_reopen_and_prove(fresh_database_url: str) -> None:
    log = Log(make_store(fresh_database_url))
    await log.open()
    try:
        first = await log.append(_entries(range(5)))
        assert [a.index for a in first] == [0, 1, 2, 3, 4]
        root5 = log.tree.root()
        second = await log.append(_entries(range(5, 12), "export"))
        assert [a.index for a in second] == list(range(5, 12))
        row = await log.store.find(_h(7))
        assert row is not None and (row.index, row.label, row.submitter) == (7, "export", "backend")
        assert await log.store.find(_h(99)) is None
    finally:
        await log.close()

    reopened = Log(make_store(fresh_database_url))
    await reopened.open()
    try:
        assert reopened.size == 12
        assert reopened.tree.root(5) == root5
        assert reopened.tree.root() == MerkleTree(hash_leaf(_h(i)) for i in range(12)).root()
        assert reopened.index_of(_h(3)) == 3
        proof = reopened.tree.inclusion_proof(3)
        verify_inclusion(hash_leaf(_h(3)), 3, 12, proof, reopened.tree.root())
    finally:
        await reopened.close()


async def test_duplicates_are_stored_once(fresh_database_url: str) -> None:
    log = Log(make_store(fresh_database_url))
    await log.open()
    try:
        a = await log.append(_entries(range(3)))
        b = await log.append([Entry(_h(1), "credential", "other"), Entry(_h(3), "audit_batch", "backend")])
        assert [x.index for x in a] == [0, 1, 2]
        assert (b[0].index, b[0].duplicate) == (1, True)
        assert (b[1].index, b[1].duplicate) == (3, False)
        same_batch = await log.append([Entry(_h(9), "credential", "backend")] * 3)
        assert [x.index for x in same_batch] == [4, 4, 4]
        assert log.size == 5
        assert len(await log.store.load_leaves()) == 5
    finally:
        await log.close()


async def test_concurrent_appends_are_group_committed(fresh_database_url: str) -> None:
    log = Log(make_store(fresh_database_url))
    await log.open()
    try:
        results = await asyncio.gather(*(log.append(_entries(range(i * 10, i * 10 + 10))) for i in range(30)))
        indices = sorted(a.index for r in results for a in r)
        assert indices == list(range(300))
        assert len(await log.store.load_leaves()) == 300
    finally:
        await log.close()


async def test_only_hashes_with_known_labels_go_in(fresh_database_url: str) -> None:
    log = Log(make_store(fresh_database_url))
    await log.open()
    try:
        for bad in [
            Entry(b"x" * 31, "credential", "backend"),
            Entry(_h(1), "name_and_id_number", "backend"),
            Entry(_h(1), "credential", ""),
            Entry(_h(1), "credential", "has space"),
        ]:
            with pytest.raises(LeafRejected):
                await log.append([bad])
        assert log.size == 0
    finally:
        await log.close()


class _FailingStore:
    """Wraps a store; the next append writes half its rows then fails (a crash mid-batch)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.fail_next = False

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def append(self, rows: list[StoredRow]) -> None:
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("simulated crash before commit")
        await self.inner.append(rows)


async def test_failed_batch_is_not_acknowledged_and_log_stays_consistent(fresh_database_url: str) -> None:
    store = _FailingStore(make_store(fresh_database_url))
    log = Log(store)
    await log.open()
    try:
        await log.append(_entries(range(4)))
        store.fail_next = True
        with pytest.raises(ConnectionError):
            await log.append(_entries(range(4, 8)))
        assert log.size == 4
        after = await log.append(_entries(range(4, 6)))
        assert [a.index for a in after] == [4, 5]
        assert len(await log.store.load_leaves()) == 6
    finally:
        await log.close()


async def test_checkpoints_and_witnesses_persist(fresh_database_url: str) -> None:
    store = make_store(fresh_database_url)
    await store.open()
    try:
        await store.save_checkpoint({"size": 3, "note": "a"})
        await store.save_checkpoint({"size": 7, "note": "b"})
        assert (await store.latest_checkpoint())["size"] == 7
        await store.save_witness({"department": "health", "public_key": "aa", "pop": "bb", "url": "u"})
        await store.save_witness({"department": "health", "public_key": "aa", "pop": "bb", "url": "v"})
        assert [w["url"] for w in await store.load_witnesses()] == ["v"]
    finally:
        await store.close()


async def test_a_second_writer_is_refused(fresh_database_url: str) -> None:
    first = make_store(fresh_database_url)
    await first.open()
    try:
        with pytest.raises(LogLocked):
            await make_store(fresh_database_url).open()
    finally:
        await first.close()
    second = make_store(fresh_database_url)
    await second.open()
    await second.close()
