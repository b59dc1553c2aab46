"""The staff-facing chain status on a real devstack (sequencer + 3 witnesses as processes): the latest
final checkpoint checked against the pinned trust roots, each department's witness and the size it
last cosigned, a witness going down, and a clear 503 when the chain is not configured or not answering."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from datetime import datetime

from backend.auth.models import Role
from backend.residents import service as residents
from tests.integration.conftest import create_staff_login

DEPARTMENTS = ("civil_affairs", "social_security", "health")


async def append_and_finalize(server, label: str = "credential") -> int:
    """Put a fresh hash on the chain through the backend's own client and wait for a final checkpoint."""
    chain = server.app.ctx.chain
    index = await chain.submit(hashlib.sha256(secrets.token_bytes(16)).digest(), label)
    record = await chain.latest_checkpoint(wait_size=index + 1, timeout=20)
    assert record is not None and record["size"] >= index + 1, record
    return index


async def test_status_shows_the_verified_checkpoint_and_every_witness(client, server, make_world, chain):
    await residents.ensure_department(code="civil_affairs", name="民政局")
    world = await make_world()
    index = await append_and_finalize(server)

    response = await client.get("/api/chain/status", headers=world.staff.headers)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    state = response.json()
    trust = chain.trust()
    checkpoint = state["checkpoint"]
    assert checkpoint["size"] >= index + 1 and state["final_size"] == checkpoint["size"]
    assert len(base64.b64decode(checkpoint["root_hash"])) == 32
    assert checkpoint["verified"] is True, checkpoint["verification"]
    assert checkpoint["signer_count"] >= 2 and set(checkpoint["signers"]) <= set(DEPARTMENTS)
    assert state["quorum"] == trust["quorum"] == 2 and state["quorum_met"] is True and state["trust_pinned"] is True
    assert state["log_size"] >= checkpoint["size"] and state["pending_leaves"] == state["log_size"] - checkpoint["size"]
    assert state["checked_at"].endswith("+00:00")
    finalized = datetime.fromisoformat(checkpoint["finalized_at"])  # when quorum was reached, for staff to read
    assert finalized <= datetime.fromisoformat(state["checked_at"])

    witnesses = {w["department"]: w for w in state["witnesses"]}
    assert [w["department"] for w in state["witnesses"]] == list(DEPARTMENTS)  # trust (bitmap) order
    assert witnesses["civil_affairs"]["name"] == "民政局"
    pinned_keys = {w["department"]: w["public_key"] for w in trust["witnesses"]}
    for department, witness in witnesses.items():
        assert witness["registered"] and witness["reachable"] and witness["pinned"] and not witness["refused"]
        assert witness["public_key"] == pinned_keys[department] and witness["key_matches_pin"] is True
        # the size each witness last cosigned, from the witness itself
        assert witness["last_signed_size"] is not None and witness["last_signed_size"] <= state["log_size"]
        assert witness["cosigned_latest"] == (department in checkpoint["signers"])
        if witness["cosigned_latest"]:
            assert witness["last_signed_size"] >= checkpoint["size"]

    # every staff role may look, department officers included
    department = await residents.ensure_department(code=f"d{secrets.token_hex(3)}", name="测试部门")
    officer = await create_staff_login(client, role=Role.DEPARTMENT_OFFICER, department_id=department.id)
    assert (await client.get("/api/chain/status", headers=officer.headers)).status_code == 200
    assert (await client.get("/api/chain/status")).status_code == 401


async def test_a_witness_down_is_shown_and_quorum_still_holds(client, server, make_world, chain):
    world = await make_world()
    await append_and_finalize(server)
    await asyncio.to_thread(chain.stop_child, "health")
    before = (await client.get("/api/chain/status", headers=world.admin.headers)).json()
    await append_and_finalize(server, "export")  # two of three witnesses are a quorum

    state = (await client.get("/api/chain/status", headers=world.admin.headers)).json()
    witnesses = {w["department"]: w for w in state["witnesses"]}
    assert state["checkpoint"]["size"] > before["checkpoint"]["size"]
    assert state["checkpoint"]["verified"] is True and state["quorum_met"] is True
    assert state["checkpoint"]["signers"] == ["civil_affairs", "social_security"]
    down = witnesses["health"]
    assert down["registered"] is True and down["reachable"] is False and down["cosigned_latest"] is False
    assert down["last_signed_size"] is None
    for department in ("civil_affairs", "social_security"):
        assert witnesses[department]["cosigned_latest"] is True
        assert witnesses[department]["last_signed_size"] == state["checkpoint"]["size"]

    # the sequencer itself down: a clear 503, not a stack trace or a hang
    await asyncio.to_thread(chain.stop_child, "sequencer")
    response = await client.get("/api/chain/status", headers=world.admin.headers)
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "chain.unavailable" and "存证链服务没有响应" in error["message"]


async def test_no_chain_configured_answers_503_in_words(client, server, make_world):
    assert getattr(server.app.ctx, "chain", None) is None
    world = await make_world()
    response = await client.get("/api/chain/status", headers=world.staff.headers)
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "chain.unavailable" and "CHAIN_URL" in error["message"]


async def test_witnesses_refusing_the_log_turn_readiness_and_the_status_red(client, server, make_world, chain):
    import time

    import httpx

    from chain.checkpoint import Checkpoint, NoteSigner, sign_checkpoint

    world = await make_world()
    await append_and_finalize(server)
    server.app.ctx.chain_readiness = None  # readiness caches the chain's answer for a few seconds
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["chain"] == "ok", ready.text
    state = (await client.get("/api/chain/status", headers=world.admin.headers)).json()
    assert state["alerts"] == [] and state["sequencer_status"] == "ok"
    assert state["checkpoint"]["witnessed_at"].endswith("+00:00")

    # what a forked log would show a witness: another root at a size it cosigned, under the log key
    log_key = NoteSigner.from_skey((chain.sequencer_dir / "log.key").read_text())

    async def fork(department: str) -> None:
        async with httpx.AsyncClient() as http:
            url = chain.children[department].url
            size = (await http.get(f"{url}/v1/health")).json()["size"]
            forged = sign_checkpoint(Checkpoint(chain.origin, size, hashlib.sha256(b"fork").digest()), log_key)
            answer = await http.post(f"{url}/v1/add-checkpoint", json={
                "old_size": size, "consistency_proof": [], "checkpoint": forged, "timestamp": int(time.time())})
            assert answer.status_code == 409 and answer.json()["error"]["code"] == "fork_refused", answer.text

    await fork("health")
    await append_and_finalize(server)  # the two others still make a quorum; the round meets the refusal
    server.app.ctx.chain_readiness = None
    ready = await client.get("/readyz")
    assert ready.status_code == 503, ready.text
    detail = ready.json()["error"]["details"]["chain"]
    assert detail.startswith("refused: witnesses refuse the log (health: log_refused"), detail
    state = (await client.get("/api/chain/status", headers=world.admin.headers)).json()
    witnesses = {w["department"]: w for w in state["witnesses"]}
    assert witnesses["health"]["refused"] is True and "fork_refused" in witnesses["health"]["refusal"]
    assert state["quorum_met"] is True  # two willing witnesses still make the quorum of 2
    assert [a["code"] for a in state["alerts"]] == ["chain.witness_refused"]

    await fork("social_security")
    server.app.ctx.chain_readiness = None
    state = (await client.get("/api/chain/status", headers=world.admin.headers)).json()
    assert state["quorum_met"] is False
    assert {a["code"] for a in state["alerts"]} == {"chain.witness_refused", "chain.no_quorum"}
    assert (await client.get("/readyz")).status_code == 503
