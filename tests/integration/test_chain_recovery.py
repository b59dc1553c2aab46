"""The backend and a real chain (sequencer + 3 witnesses as processes) through a torn write in the
sequencer's storage: readiness and the chain status go red with the reason while the log refuses,
credentials keep being issued (their anchoring waits in the outbox), the log is rebuilt from the
backend's own record of submitted leaves (`python -m backend chain-leaves` then `python -m chain
recover`), and every credential ends anchored at the index the log first acknowledged. A leaf the
log lost without any record is submitted again by the backend instead of being waited on forever."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx

from backend.credentials.models import Credential
from backend.outbox import service as outbox
from backend.outbox.models import OutboxEvent
from chain.verify import Trust, verify_inclusion_bundle
from tests.chain.storage_faults import tear_sqlite_wal
from tests.conftest import REPO_ROOT
from tests.integration.test_credentials import certified_resident
from tests.integration.test_exports import anchor_everything

DEPARTMENTS = ("civil_affairs", "social_security", "health")


async def sequencer_state(stack) -> dict:
    """The sequencer's health once its start-up check has decided (ok or refusing)."""
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            try:
                state = (await http.get(f"{stack.url}/v1/health")).json()
            except httpx.HTTPError:
                state = {}
            if state.get("status") in ("ok", "refusing") or ("witnesses_checked" not in state and state):
                return state
            await asyncio.sleep(0.1)
    raise AssertionError(f"the sequencer did not decide: {state}")


async def readyz(client: httpx.AsyncClient, server) -> httpx.Response:
    server.app.ctx.chain_readiness = None  # readiness caches the chain's answer for a few seconds
    return await client.get("/readyz")


def export_leaves(server, stack, path: Path) -> list[dict]:
    """`python -m backend chain-leaves` against this server's database, as an operator runs it."""
    settings = server.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZHILIAN", "DATABASE", "REDIS", "CHAIN"))}
    env.update({"ZHILIAN_ENV": "test", "DATA_DIR": settings.data_dir, "DATABASE_URL": settings.database_url,
                "CHAIN_TRUST_FILE": str(stack.data_dir / "trust.json"), "PYTHONPATH": str(REPO_ROOT)})
    result = subprocess.run([sys.executable, "-m", "backend", "chain-leaves", "--output", str(path)],
                            capture_output=True, text=True, timeout=120, env=env, cwd=path.parent)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in path.read_text().splitlines()]


def run_recover(stack, leaves: Path) -> tuple[int, dict]:
    result = subprocess.run(
        [sys.executable, "-m", "chain", "recover", "--data-dir", str(stack.sequencer_dir), "--origin", stack.origin,
         "--leaves", str(leaves)],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
    )  # fmt: skip
    return result.returncode, json.loads(result.stdout or "{}")


async def test_torn_sequencer_storage_fails_closed_and_recovers_from_the_backends_leaves(
    client, server, make_world, chain, tmp_path
):
    trust = Trust.from_json(chain.trust())
    await anchor_everything(server)  # whatever earlier tests left queued goes on this chain first
    world = await make_world()
    credentials = []
    for seed in range(3):  # each: its leaf in one transaction, then its final checkpoint in another
        _, credential = await certified_resident(client, server, world, seed=1300 + seed)
        await anchor_everything(server)
        credentials.append(await Credential.get(id=credential.id))
    acknowledged = {c.leaf_hash: c.anchor_index for c in credentials}
    assert all(c.inclusion is not None for c in credentials)
    async with httpx.AsyncClient() as http:  # the witnesses have all seen the last credential's leaf
        for _ in range(50):
            sizes = [(await http.get(f"{chain.children[d].url}/v1/health")).json()["size"] for d in DEPARTMENTS]
            if min(sizes) > max(acknowledged.values()):
                break
            await asyncio.sleep(0.1)
    assert (await readyz(client, server)).status_code == 200

    # SIGKILL, then a tear inside the last two transactions of the WAL; the acknowledged mark is lost too
    await asyncio.to_thread(chain.stop_child, "sequencer", signal.SIGKILL)
    tear_sqlite_wal(chain.sequencer_dir / "chain.sqlite3", transactions=2)
    (chain.sequencer_dir / "acknowledged").unlink(missing_ok=True)
    await asyncio.to_thread(chain.start_child, "sequencer")
    state = await sequencer_state(chain)
    assert state["status"] == "refusing" and state["refusal"]["reason"] == "behind_witness", state
    assert state["size"] == max(acknowledged.values())  # the last credential's leaf is gone

    ready = await readyz(client, server)
    assert ready.status_code == 503, ready.text
    detail = ready.json()["error"]["details"]["chain"]
    assert detail.startswith("refused: the log refuses to sequence (behind_witness)"), detail
    status = (await client.get("/api/chain/status", headers=world.admin.headers)).json()
    assert status["sequencer_status"] == "refusing" and status["quorum_met"] is False
    alert = next(a for a in status["alerts"] if a["code"] == "chain.log_refusing")
    assert "behind_witness" in alert["message"] and "python -m chain recover" in alert["message"]

    # certification goes on; its anchoring waits in the outbox, told why
    _, waiting = await certified_resident(client, server, world, seed=1310)
    await outbox.run_due(server.app.ctx.outbox_handlers)  # the issue step queued the anchoring step
    event = await OutboxEvent.get(dedupe_key=f"credential.anchor:{waiting.id}")
    assert event.processed_at is None and "log_refusing" in event.last_error

    # the backend's record of what it submitted, then recovery (sequencer stopped), then restart
    exported = export_leaves(server, chain, tmp_path / "leaves.jsonl")
    by_hash = {record["hash"]: record for record in exported}
    for leaf_hash, index in acknowledged.items():
        assert by_hash[leaf_hash]["index"] == index and by_hash[leaf_hash]["label"] == "credential"
    assert by_hash[waiting.leaf_hash]["index"] is None
    await asyncio.to_thread(chain.stop_child, "sequencer")
    code, report = run_recover(chain, tmp_path / "leaves.jsonl")
    assert code == 0 and report["restored"] >= 1 and report["filled"] == [], report
    await asyncio.to_thread(chain.start_child, "sequencer")
    assert (await sequencer_state(chain))["status"] == "ok"
    assert (await readyz(client, server)).json()["checks"]["chain"] == "ok"

    await OutboxEvent.filter(processed_at=None).update(attempts=0)
    await anchor_everything(server)
    for credential in [*credentials, await Credential.get(id=waiting.id)]:
        credential = await Credential.get(id=credential.id)
        assert credential.inclusion is not None
        if credential.leaf_hash in acknowledged:  # the index first acknowledged, never another
            assert credential.inclusion["leaf_index"] == acknowledged[credential.leaf_hash]
        verify_inclusion_bundle(credential.inclusion, bytes.fromhex(credential.leaf_hash), trust)
    status = (await client.get("/api/chain/status", headers=world.admin.headers)).json()
    assert status["quorum_met"] is True and status["alerts"] == [] and status["sequencer_status"] == "ok"


async def test_a_leaf_the_log_lost_without_a_trace_is_submitted_again(client, server, make_world, chain):
    trust = Trust.from_json(chain.trust())
    await anchor_everything(server)
    world = await make_world()
    async with httpx.AsyncClient() as http:
        size = (await http.get(f"{chain.url}/v1/health")).json()["size"]
    for department in DEPARTMENTS:  # no witness: the leaf is acknowledged, never cosigned
        await asyncio.to_thread(chain.stop_child, department, signal.SIGKILL)
    _, credential = await certified_resident(client, server, world, seed=1320)
    await outbox.run_due(server.app.ctx.outbox_handlers)  # submitted and acknowledged; the proof step waits
    credential = await Credential.get(id=credential.id)
    assert credential.anchor_index is not None and credential.anchor_index >= size and credential.inclusion is None

    # the sequencer's storage loses everything after `size`, its acknowledged mark with it
    await asyncio.to_thread(chain.stop_child, "sequencer", signal.SIGKILL)
    db = sqlite3.connect(chain.sequencer_dir / "chain.sqlite3")
    with db:
        db.execute("DELETE FROM chain_leaves WHERE idx >= ?", (size,))
    db.close()
    (chain.sequencer_dir / "acknowledged").unlink(missing_ok=True)
    for department in DEPARTMENTS:
        await asyncio.to_thread(chain.start_child, department)
    await asyncio.to_thread(chain.start_child, "sequencer")
    await asyncio.to_thread(chain.wait_healthy)
    assert (await sequencer_state(chain))["status"] == "ok"  # nothing cosigned was lost: nothing to detect

    # the log answers 404 leaf_not_found for it: the backend submits it again instead of waiting forever
    await OutboxEvent.filter(processed_at=None).update(attempts=0)
    await anchor_everything(server, timeout=40)
    credential = await Credential.get(id=credential.id)
    assert credential.inclusion is not None
    verify_inclusion_bundle(credential.inclusion, bytes.fromhex(credential.leaf_hash), trust)
    assert credential.anchor_index == credential.inclusion["leaf_index"]
