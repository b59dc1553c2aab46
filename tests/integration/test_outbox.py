"""The outbox: idempotent enqueue, retries with back-off, and work done exactly once."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from backend.outbox import service as outbox
from backend.outbox.models import OutboxEvent


async def test_enqueue_is_idempotent_and_failures_are_retried(server):
    key = f"test:{secrets.token_hex(4)}"
    kind = f"test.{secrets.token_hex(3)}"
    first = await outbox.enqueue(kind=kind, dedupe_key=key, payload={"n": 1})
    again = await outbox.enqueue(kind=kind, dedupe_key=key, payload={"n": 2})
    assert first.id == again.id
    calls: list[int] = []

    async def flaky(event: OutboxEvent) -> None:
        calls.append(event.id)
        if len(calls) == 1:
            raise ConnectionError("chain down")

    assert await outbox.run_due({kind: flaky}) == 0
    failed = await OutboxEvent.get(id=first.id)
    assert failed.attempts == 1 and "chain down" in failed.last_error and failed.processed_at is None
    assert failed.next_attempt_at > datetime.now(UTC)
    # not due yet: nothing runs
    assert await outbox.run_due({kind: flaky}) == 0 and len(calls) == 1
    await OutboxEvent.filter(id=first.id).update(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
    assert await outbox.run_due({kind: flaky}) == 1
    assert (await OutboxEvent.get(id=first.id)).processed_at is not None
    assert await outbox.run_due({kind: flaky}) == 0 and len(calls) == 2


async def test_a_failed_attempt_gives_its_lease_back_at_once(server):
    """Another worker may take the event as soon as its back-off ends, not after the 30 s lease."""
    kind = f"test.{secrets.token_hex(3)}"
    event = await outbox.enqueue(kind=kind, dedupe_key=f"test:{secrets.token_hex(4)}", payload={})

    async def failing(_: OutboxEvent) -> None:
        raise ConnectionError("gateway down")

    assert await outbox.run_due({kind: failing}) == 0
    failed = await OutboxEvent.get(id=event.id)
    assert failed.leased_until is None and failed.attempts == 1
    # due again (back-off over): claimable right away by any worker
    await OutboxEvent.filter(id=event.id).update(next_attempt_at=datetime.now(UTC))
    seen: list[int] = []

    async def working(e: OutboxEvent) -> None:
        seen.append(e.id)

    assert await outbox.run_due({kind: working}) == 1 and seen == [event.id]


async def test_anchoring_resumes_as_soon_as_the_witnesses_answer_again(client, server, make_world, chain,
                                                                       monkeypatch):
    """Issue 14 item 3: a long outage backs retries off up to 600 s; the worker's probe of the chain cuts
    that short the moment a larger checkpoint is final again."""
    import asyncio
    import dataclasses
    import time

    from backend import worker
    from backend.credentials.models import Credential
    from tests.integration.test_credentials import certified_resident

    monkeypatch.setattr(server.app.ctx, "settings", dataclasses.replace(server.app.ctx.settings,
                                                                        chain_proof_wait_s=0.5))
    state = worker.WorkerState(last_upkeep=time.monotonic(), last_deadlines=time.monotonic())  # outbox only
    await worker.run_round(server.app, state)  # the probes see the chain as it is now
    world = await make_world()
    for department in ("social_security", "health"):  # below quorum: nothing becomes final
        await asyncio.to_thread(chain.stop_child, department)
    _, credential = await certified_resident(client, server, world, seed=8801)
    proof_key = f"credential.proof:{credential.id}"
    for _ in range(20):
        await worker.run_round(server.app, state)
        proof = await OutboxEvent.get_or_none(dedupe_key=proof_key)
        if proof is not None and proof.attempts >= 1:
            break
        await OutboxEvent.filter(dedupe_key=f"credential.anchor:{credential.id}").update(
            next_attempt_at=datetime.now(UTC))
    assert proof is not None and proof.processed_at is None and "final checkpoint" in proof.last_error
    # as after a quarter of an hour of outage: the next try is 512 s away
    await OutboxEvent.filter(id=proof.id).update(attempts=9,
                                                 next_attempt_at=datetime.now(UTC) + timedelta(seconds=512))
    await worker.run_round(server.app, state)  # the chain answers but makes no progress: still backed off
    assert (await OutboxEvent.get(id=proof.id)).attempts == 9

    for department in ("social_security", "health"):
        await asyncio.to_thread(chain.start_child, department)
    for department in ("social_security", "health"):
        await asyncio.to_thread(chain.wait_child, department, 30)
    started = time.monotonic()
    while (await Credential.get(id=credential.id)).inclusion is None:
        assert time.monotonic() - started < 30, (await OutboxEvent.get(id=proof.id)).last_error
        await worker.run_round(server.app, state)
        await asyncio.sleep(0.5)
    done = await OutboxEvent.get(id=proof.id)
    assert done.processed_at is not None and done.attempts == 10
