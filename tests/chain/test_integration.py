"""The chain as real processes: a sequencer and three department witnesses on loopback ports."""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from chain.checkpoint import Checkpoint, NoteSigner, sign_checkpoint
from chain.client import ChainClient, ChainClientError
from chain.merkle import MerkleTree, hash_leaf, verify_consistency
from chain.verify import QuorumNotReached, Trust, verify_final_checkpoint, verify_inclusion_bundle

pytestmark = pytest.mark.processes

DEPARTMENTS = ("civil_affairs", "social_security", "health")


def _h(tag: str, i: int) -> bytes:
    return hashlib.sha256(f"{tag}-{i}".encode()).digest()


async def _wait_final(client: ChainClient, size: int, timeout: float = 10.0) -> dict:
    record = await client.latest_checkpoint(wait_size=size, timeout=timeout)
    assert record is not None and record["size"] >= size, f"no final checkpoint covering {size}: {record}"
    return record


@pytest.mark.persistence
async def test_append_finalize_and_verify_offline(
    stack_factory, fresh_database_url: str, tmp_path: Path
) -> None:
    stack = stack_factory("happy", fresh_database_url)
    stack.start()
    trust = Trust.from_json(stack.trust())
    async with stack.client(trust=trust) as client:
        single = await client.submit(_h("a", 0), "credential")
        batch = await client.submit_many([(_h("a", i), "audit_batch") for i in range(1, 50)])
        assert [single, *batch] == list(range(50))
        assert await client.submit(_h("a", 7), "credential") == 7  # duplicate: same index
        started = time.monotonic()
        record = await _wait_final(client, 50)
        assert time.monotonic() - started < 5
        assert len(record["signers"]) >= 2
        verify_final_checkpoint(record, trust)

        inclusion = await client.get_inclusion(_h("a", 42))  # verified by the client against `trust`
        assert inclusion is not None and inclusion.leaf_index == 42
        assert await client.get_inclusion(_h("never", 0)) is None

    # The offline CLI, with nothing but the bundle and the trust roots.
    bundle_path, trust_path = tmp_path / "bundle.json", tmp_path / "trust.json"
    bundle_path.write_text(json.dumps(inclusion.bundle))
    trust_path.write_text(json.dumps(stack.trust()))
    ok = subprocess.run(
        [sys.executable, "-m", "chain", "verify", "--bundle", str(bundle_path), "--trust", str(trust_path)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "OK:" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "chain", "verify", "--bundle", str(bundle_path), "--trust", str(trust_path),
         "--hash", _h("a", 43).hex()],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert bad.returncode == 1
    quorum3 = subprocess.run(
        [sys.executable, "-m", "chain", "verify", "--bundle", str(bundle_path), "--trust", str(trust_path),
         "--quorum", "3"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    all_three = len(inclusion.checkpoint["signers"]) == 3
    assert quorum3.returncode == (0 if all_three else 1)


async def test_http_errors_are_json_and_only_hashes_go_in(stack_factory) -> None:
    stack = stack_factory("errors")
    stack.start()
    async with httpx.AsyncClient(base_url=stack.url) as http:
        response = await http.post(
            "/v1/leaves", json={"leaves": [{"hash": "00" * 32, "label": "credential"}]}
        )
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
        response = await http.get("/v1/nowhere")
        assert response.status_code == 404 and "error" in response.json()
        response = await http.get("/v1/checkpoint")
        assert response.status_code == 404 and response.json()["error"]["code"] == "no_final_checkpoint"
    async with ChainClient.from_manifest(stack.data_dir / "devstack.json") as from_manifest:
        assert (await from_manifest.health())["witnesses"] == sorted(DEPARTMENTS)
        assert from_manifest.trust is not None and from_manifest.trust.quorum == 2
    async with stack.client() as client:
        with pytest.raises(ChainClientError) as info:
            await client.submit(b"short", "credential")
        assert info.value.code == "invalid_hash"
        with pytest.raises(ChainClientError) as info:
            await client.submit(_h("x", 0), "resident_name")
        assert info.value.code == "invalid_label"
        # anything beyond hash + label is refused
        from chain import keys

        body = json.dumps(
            {"leaves": [{"hash": _h("x", 1).hex(), "label": "credential", "name": "张三"}]}
        ).encode()
        header = keys.authorization_header("backend", client._key, "POST", "/v1/leaves", body)
        async with httpx.AsyncClient(base_url=stack.url) as http:
            response = await http.post("/v1/leaves", content=body, headers={"authorization": header})
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_leaf"
        # witness registration without the admin token, or with a key lacking a valid PoP
        async with httpx.AsyncClient(base_url=stack.url) as http:
            response = await http.post("/v1/witnesses", json={})
            assert response.status_code == 401
            from chain import bls

            sk = bls.KeyGen(b"\x09" * 32)
            response = await http.post(
                "/v1/witnesses",
                headers={"authorization": f"Bearer {stack.admin_token}"},
                json={"department": "health", "public_key": bls.SkToPk(sk).hex(), "pop": bls.Sign(sk, b"x").hex(),
                      "url": "http://127.0.0.1:9"},
            )  # fmt: skip
            assert response.status_code == 403
            assert response.json()["error"]["code"] == "bad_proof_of_possession"


async def test_finality_with_witness_outages(stack_factory) -> None:
    stack = stack_factory("outages")
    stack.start()
    trust = Trust.from_json(stack.trust())
    async with stack.client(trust=trust) as client:
        await client.submit_many([(_h("o", i), "credential") for i in range(10)])
        await _wait_final(client, 10)

        stack.stop_child("health", signal.SIGKILL)
        await client.submit_many([(_h("o", i), "credential") for i in range(10, 20)])
        record = await _wait_final(client, 20)
        assert record["signers"] == ["civil_affairs", "social_security"]
        verify_final_checkpoint(record, trust)
        with pytest.raises(QuorumNotReached):
            verify_final_checkpoint(record, Trust(trust.log_vkey, trust.witnesses, 3))

        stack.stop_child("social_security", signal.SIGKILL)
        indices = await client.submit_many([(_h("o", i), "export") for i in range(20, 30)])
        assert indices == list(range(20, 30))  # appends stay durable and acknowledged
        stalled = await client.latest_checkpoint(wait_size=30, timeout=2.5)
        assert stalled is not None and stalled["size"] == 20
        assert await client.get_inclusion(_h("o", 25)) is None  # known, not final yet
        async with httpx.AsyncClient(base_url=stack.url) as http:
            pending = await http.get(f"/v1/inclusion/{_h('o', 25).hex()}")
        assert pending.status_code == 202 and pending.json()["leaf_index"] == 25

        stack.start_child("health")
        stack.wait_child("health")
        record = await _wait_final(client, 30, timeout=15)
        assert set(record["signers"]) == {"civil_affairs", "health"}
        inclusion = await client.get_inclusion(_h("o", 25))
        assert inclusion is not None and inclusion.tree_size == 30
        first = stalled
        proof = await client.consistency(first["size"], record["size"])
        import base64

        verify_consistency(
            first["size"], record["size"], proof,
            base64.b64decode(first["root_hash"]), base64.b64decode(record["root_hash"]),
        )  # fmt: skip


async def _post_checkpoint(url: str, old_size: int, proof: list[bytes], note: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(
            f"{url}/v1/add-checkpoint",
            json={"old_size": old_size, "consistency_proof": [p.hex() for p in proof], "checkpoint": note,
                  "timestamp": int(time.time())},
        )


async def _witness_sizes(stack) -> dict[str, int]:
    async with httpx.AsyncClient() as http:
        return {d: (await http.get(f"{stack.children[d].url}/v1/health")).json()["size"] for d in DEPARTMENTS}


@pytest.mark.parametrize("attack", ["fork", "rollback"])
async def test_every_witness_refuses_a_forked_or_rolled_back_tree(stack_factory, attack: str) -> None:
    stack = stack_factory(attack)
    stack.start()
    leaves = [_h(attack, i) for i in range(12)]
    async with stack.client() as client:
        await client.submit_many([(h, "credential") for h in leaves])
        final = await _wait_final(client, 12)
    # every witness has cosigned 12 (the third may lag by one round)
    for _ in range(50):
        if set((await _witness_sizes(stack)).values()) == {12}:
            break
        await asyncio.sleep(0.1)
    log_key = NoteSigner.from_skey((stack.sequencer_dir / "log.key").read_text())
    honest = MerkleTree(hash_leaf(h) for h in leaves)
    assert honest.root() == __import__("base64").b64decode(final["root_hash"])

    if attack == "fork":
        # a tree that rewrites leaf 3 and grows to 16: no consistency proof can link it
        forked = MerkleTree(hash_leaf(_h("evil", i) if i == 3 else (leaves[i] if i < 12 else _h("new", i)))
                            for i in range(16))  # fmt: skip
        note = sign_checkpoint(Checkpoint(stack.origin, 16, forked.root()), log_key)
        crafted = (12, forked.consistency_proof(12, 16), note)
        expected_code = "fork_refused"
    else:
        note = sign_checkpoint(Checkpoint(stack.origin, 8, honest.root(8)), log_key)
        crafted = (12, [], note)
        expected_code = "rollback_refused"

    for department in DEPARTMENTS:
        response = await _post_checkpoint(stack.children[department].url, *crafted)
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == expected_code

    # the refusal persists: an honest checkpoint is refused too, even after a restart
    stack.stop_child("health")
    stack.start_child("health")
    stack.wait_child("health")
    honest_note = sign_checkpoint(Checkpoint(stack.origin, 12, honest.root()), log_key)
    for department in DEPARTMENTS:
        response = await _post_checkpoint(stack.children[department].url, 12, [], honest_note)
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "log_refused"
    async with httpx.AsyncClient() as http:
        health = (await http.get(f"{stack.children['health'].url}/v1/health")).json()
    assert health["refused"]["code"] == expected_code


@pytest.mark.persistence
async def test_sequencer_sigkill_mid_batch_loses_nothing_acknowledged(
    stack_factory, fresh_database_url: str
) -> None:
    stack = stack_factory("crash", fresh_database_url)
    stack.start()
    acknowledged: dict[bytes, int] = {}
    stop = asyncio.Event()

    async def writer(worker: int) -> None:
        async with stack.client(timeout=5) as client:
            batch_no = 0
            while not stop.is_set():
                items = [(_h(f"w{worker}-b{batch_no}", i), "credential") for i in range(100)]
                batch_no += 1
                try:
                    indices = await client.submit_many(items)
                except (httpx.HTTPError, ChainClientError):
                    return
                for (leaf, _), index in zip(items, indices, strict=True):
                    acknowledged[leaf] = index

    writers = [asyncio.create_task(writer(i)) for i in range(6)]
    await asyncio.sleep(1.5)
    async with stack.client() as client:
        before = await client.latest_checkpoint()
    stack.stop_child("sequencer", signal.SIGKILL)
    stop.set()
    await asyncio.gather(*writers)
    assert len(acknowledged) >= 500, f"only {len(acknowledged)} leaves acknowledged before the kill"

    stack.start_child("sequencer")
    stack.wait_child("sequencer")
    async with stack.client() as client, httpx.AsyncClient(base_url=stack.url) as http:
        health = (await http.get("/v1/health")).json()
        assert health["size"] >= len(acknowledged)
        for leaf, index in list(acknowledged.items())[:: max(1, len(acknowledged) // 300)]:
            response = await http.get(f"/v1/inclusion/{leaf.hex()}")
            assert response.status_code in (200, 202), response.text
            assert response.json()["leaf_index"] == index
        # the restarted log extends what the witnesses cosigned before the crash
        await client.submit(_h("after-crash", 0), "credential")
        record = await _wait_final(client, health["size"] + 1, timeout=15)
        assert len(record["signers"]) >= 2
        if before is not None:
            import base64

            proof = await client.consistency(before["size"], record["size"])
            verify_consistency(before["size"], record["size"], proof,
                               base64.b64decode(before["root_hash"]), base64.b64decode(record["root_hash"]))  # fmt: skip
        trust = Trust.from_json(stack.trust())
        sample = next(iter(acknowledged))
        inclusion = await client.get_inclusion(sample)
        assert inclusion is not None
        verify_inclusion_bundle(inclusion.bundle, sample, trust)
