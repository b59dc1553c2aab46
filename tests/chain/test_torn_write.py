"""A torn write in the sequencer's storage, with real processes: SIGKILL the sequencer, tear the last
committed transactions of its storage (SQLite: truncate its WAL inside them; PostgreSQL: the same
transactions deleted, as a restored older backup would lose them), restart it.

It must refuse to sequence, saying exactly what it holds and what was acknowledged or cosigned;
``python -m chain recover`` rebuilds the lost leaves from the submitters' records; it resumes,
every acknowledged leaf keeps its index and gets a quorum checkpoint, and no index is reused.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from chain.client import ChainClient
from chain.verify import Trust, verify_final_checkpoint, verify_inclusion_bundle
from tests.chain.storage_faults import tear_postgres, tear_sqlite_wal
from tests.chain.test_rfc_independent_verifier import rfc_verify_consistency, rfc_verify_inclusion

pytestmark = [pytest.mark.processes, pytest.mark.persistence]

DEPARTMENTS = ("civil_affairs", "social_security", "health")


def _h(tag: str, i: int) -> bytes:
    return hashlib.sha256(f"{tag}-{i}".encode()).digest()


def _is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


def recover(stack, database_url: str, leaves: Path, *extra: str) -> tuple[int, dict]:
    result = subprocess.run(
        [sys.executable, "-m", "chain", "recover", "--data-dir", str(stack.sequencer_dir),
         "--database-url", database_url, "--origin", stack.origin, "--leaves", str(leaves), *extra],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.stdout.strip(), result.stderr
    return result.returncode, json.loads(result.stdout)


def write_leaves(path: Path, acknowledged: dict[bytes, int], *, without: set[int] = frozenset()) -> Path:
    """A submitter's record, as ``python -m backend chain-leaves`` writes it."""
    path.write_text("".join(
        json.dumps({"index": index, "hash": leaf.hex(), "label": "credential", "submitter": "backend"}) + "\n"
        for leaf, index in acknowledged.items() if index not in without
    ))  # fmt: skip
    return path


async def health(url: str) -> dict:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"{url}/v1/health")).json()


async def decided_state(stack) -> dict:
    """The sequencer's health once it decided, with every witness's view (they arrive as they answer)."""
    state: dict = {}
    for _ in range(300):
        try:
            state = await health(stack.url)
        except httpx.HTTPError:
            state = {}
        if state.get("status") in ("ok", "refusing") and len(state.get("witnesses_checked", {})) == len(DEPARTMENTS):
            break
        if state.get("status") == "ok" and "witnesses_checked" not in state:
            break  # a sequencer without a start-up check
        await asyncio.sleep(0.1)
    return state


async def submit_refused(stack, leaf: bytes) -> httpx.Response:
    async with stack.client() as client:
        from chain import keys

        body = json.dumps({"leaves": [{"hash": leaf.hex(), "label": "credential"}]}).encode()
        header = keys.authorization_header("backend", client._key, "POST", "/v1/leaves", body)
        async with httpx.AsyncClient(base_url=stack.url) as http:
            return await http.post("/v1/leaves", content=body, headers={"authorization": header})


async def wait_final(client: ChainClient, size: int, timeout: float = 15.0) -> dict:
    record = await client.latest_checkpoint(wait_size=size, timeout=timeout)
    assert record is not None and record["size"] >= size, record
    return record


async def wait_witnesses_at(stack, size: int) -> dict[str, int]:
    """The size each witness cosigned, once a quorum is at ``size`` (the third may lag a round)."""
    for _ in range(50):
        sizes = {d: (await health(stack.children[d].url))["size"] for d in DEPARTMENTS}
        if set(sizes.values()) == {size}:
            break
        await asyncio.sleep(0.1)
    assert sum(1 for s in sizes.values() if s == size) >= 2, sizes
    return sizes


async def tear(stack, database_url: str, *, transactions: int, keep_leaves: int) -> None:
    if _is_postgres(database_url):
        await tear_postgres(database_url, keep_leaves)
    else:
        tear_sqlite_wal(Path(database_url[len("sqlite:///") :]), transactions)


async def check_everything_included(client: ChainClient, acknowledged: dict[bytes, int], trust: Trust) -> dict:
    record = await wait_final(client, max(acknowledged.values()) + 1)
    verify_final_checkpoint(record, trust)
    root = base64.b64decode(record["root_hash"])
    for leaf, index in acknowledged.items():
        inclusion = await client.get_inclusion(leaf)  # the client verifies it against `trust`
        assert inclusion is not None and inclusion.leaf_index == index, (leaf.hex(), index, inclusion)
        verify_inclusion_bundle(inclusion.bundle, leaf, trust)
        assert rfc_verify_inclusion(index, inclusion.tree_size, hashlib.sha256(b"\0" + leaf).digest(),
                                    inclusion.proof, base64.b64decode(inclusion.checkpoint["root_hash"]))
    assert len(record["signers"]) >= trust.quorum and root
    return record


@pytest.mark.parametrize("mark", ["kept", "lost"])
async def test_torn_storage_refuses_then_recovers_from_the_submitters_leaves(
    stack_factory, fresh_database_url: str, tmp_path: Path, mark: str
) -> None:
    stack = stack_factory(f"torn-{mark}", fresh_database_url)
    stack.start()
    trust = Trust.from_json(stack.trust())
    acknowledged: dict[bytes, int] = {}
    async with stack.client(trust=trust) as client:
        for batch in range(6):  # each batch: one leaves transaction, then one checkpoint transaction
            items = [(_h(f"{mark}{batch}", i), "credential") for i in range(10)]
            for (leaf, _), index in zip(items, await client.submit_many(items), strict=True):
                acknowledged[leaf] = index
            await wait_final(client, len(acknowledged))
        before = await client.latest_checkpoint()
    assert before["size"] == 60
    await wait_witnesses_at(stack, 60)

    stack.stop_child("sequencer", signal.SIGKILL)
    await tear(stack, fresh_database_url, transactions=2, keep_leaves=50)  # the last leaves + their checkpoint
    if mark == "lost":  # the acknowledged mark lost too: only the witnesses know
        (stack.sequencer_dir / "acknowledged").unlink(missing_ok=True)
    stack.start_child("sequencer")
    state = await decided_state(stack)

    # fail closed, loud, with the exact state
    assert state["status"] == "refusing", state
    refusal = state["refusal"]
    assert refusal["log"]["size"] == 50 and state["size"] == 50
    if mark == "kept":
        assert refusal["reason"] == "behind_acknowledged"
        assert refusal["acknowledged"]["size"] == 60
        assert "10 acknowledged leaves are missing" in refusal["message"]
    else:
        assert refusal["reason"] == "behind_witness"
        assert refusal["witness"]["size"] == 60 and refusal["witness"]["signed"] is True
        assert "10 cosigned leaves are missing" in refusal["message"]
    assert "python -m chain recover" in refusal["recovery"]
    assert max(v["size"] for v in state["witnesses_checked"].values()) == 60
    response = await submit_refused(stack, _h("while-refusing", 0))
    assert response.status_code == 503 and response.json()["error"]["code"] == "log_refusing"
    assert response.json()["state"]["refusal"]["reason"] == refusal["reason"]
    # nothing was signed: no witness saw a rollback
    for department in DEPARTMENTS:
        assert (await health(stack.children[department].url))["refused"] is None

    # recovery: not while the sequencer runs; not without every cosigned leaf; then from the records
    leaves = write_leaves(tmp_path / "leaves.jsonl", acknowledged)
    code, report = recover(stack, fresh_database_url, leaves)
    assert code == 1 and "stop the sequencer first" in report["error"]
    stack.stop_child("sequencer")
    code, report = recover(stack, fresh_database_url, write_leaves(tmp_path / "partial.jsonl", acknowledged,
                                                                  without={55}))
    assert code == 1 and report["missing"] == [55] and report["stored_size"] == 50, report
    code, report = recover(stack, fresh_database_url, leaves)
    assert code == 0, report
    assert report["restored"] == 10 and report["size"] == 60 and report["filled"] == []
    assert report["root_hash"] == before["root_hash"]

    stack.start_child("sequencer")
    state = await decided_state(stack)
    assert state["status"] == "ok" and state["size"] == 60, state
    async with stack.client(trust=trust) as client:
        await check_everything_included(client, acknowledged, trust)
        # sequencing resumes after the last acknowledged index: none is given twice
        items = [(_h(f"{mark}-after", i), "export") for i in range(5)]
        assert await client.submit_many(items) == list(range(60, 65))
        acknowledged.update({leaf: 60 + i for i, (leaf, _) in enumerate(items)})
        after = await check_everything_included(client, acknowledged, trust)
        proof = await client.consistency(before["size"], after["size"])
        assert rfc_verify_consistency(before["size"], after["size"], base64.b64decode(before["root_hash"]),
                                      base64.b64decode(after["root_hash"]), proof)
    assert len(set(acknowledged.values())) == len(acknowledged) == 65
    for department in DEPARTMENTS:
        assert (await health(stack.children[department].url))["refused"] is None


async def test_acknowledged_but_uncosigned_indices_are_never_given_to_another_hash(
    stack_factory, fresh_database_url: str, tmp_path: Path
) -> None:
    stack = stack_factory("uncosigned", fresh_database_url)
    stack.start()
    trust = Trust.from_json(stack.trust())
    acknowledged: dict[bytes, int] = {}
    async with stack.client(trust=trust) as client:
        items = [(_h("u", i), "credential") for i in range(10)]
        acknowledged.update(zip([leaf for leaf, _ in items], await client.submit_many(items), strict=True))
        await wait_final(client, 10)
        witnessed = await wait_witnesses_at(stack, 10)
        for department in DEPARTMENTS:  # no witness: appends are still acknowledged, never cosigned
            stack.stop_child(department, signal.SIGKILL)
        for batch in range(3):
            items = [(_h(f"u{batch}", i), "credential") for i in range(5)]
            acknowledged.update(zip([leaf for leaf, _ in items], await client.submit_many(items), strict=True))
    assert sorted(acknowledged.values()) == list(range(25))

    stack.stop_child("sequencer", signal.SIGKILL)
    await tear(stack, fresh_database_url, transactions=2, keep_leaves=15)
    for department in DEPARTMENTS:
        stack.start_child(department)
    stack.start_child("sequencer")
    await asyncio.to_thread(stack.wait_healthy)
    state = await decided_state(stack)
    # the witnesses agree with what is left (they never saw 15..24): only the mark knows
    assert state["status"] == "refusing" and state["refusal"]["reason"] == "behind_acknowledged", state
    assert state["size"] == 15 and state["refusal"]["acknowledged"]["size"] == 25
    assert len(state["witnesses_checked"]) == 3
    assert all(v["consistent"] and v["size"] == witnessed[d] for d, v in state["witnesses_checked"].items())

    # index 20 was acknowledged but no submitter recorded it (say, it crashed before writing it down)
    stack.stop_child("sequencer")
    leaves = write_leaves(tmp_path / "leaves.jsonl", acknowledged, without={20})
    code, report = recover(stack, fresh_database_url, leaves)
    assert code == 1 and report["missing"] == [20] and "--fill-gaps" in report["error"], report
    code, report = recover(stack, fresh_database_url, leaves, "--fill-gaps")
    assert code == 0 and report["filled"] == [20] and report["restored"] == 9 and report["size"] == 25, report

    stack.start_child("sequencer")
    state = await decided_state(stack)
    assert state["status"] == "ok", state
    lost = next(leaf for leaf, index in acknowledged.items() if index == 20)
    async with stack.client(trust=trust) as client, httpx.AsyncClient(base_url=stack.url) as http:
        missing = await http.get(f"/v1/inclusion/{lost.hex()}")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "leaf_not_found"
        # its submitter sends it again: a new index, never 20 (sealed by a filler anyone can recompute)
        assert await client.submit(lost, "credential") == 25
        from chain.recover import filler_leaf

        assert (await client.find(filler_leaf(stack.origin, 20))).leaf_index == 20
        acknowledged[lost] = 25
        assert await client.submit(_h("u-new", 0), "credential") == 26
        acknowledged[_h("u-new", 0)] = 26
        await check_everything_included(client, acknowledged, trust)
    assert len(set(acknowledged.values())) == len(acknowledged)
