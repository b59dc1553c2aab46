"""Kill the parts one at a time under steady certification load; no acknowledged certification is lost.

Real processes (see processes.py): the API (`python -m backend serve`), the sequencer and three
witnesses, a private Redis and a private PostgreSQL. About two home-visit certifications a second
(load.py), each request with its own Idempotency-Key and retried with it. The faults (faults.py)
run one at a time; afterwards the checker (checker.py) proves every acknowledged certification
stored once, verifiable and anchored. The table of what clients saw is printed (`-s` shows it)
and kept in README.md.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.faults import checker, independent
from tests.faults.faults import FAULTS, Seen
from tests.faults.load import Load, Recorder
from tests.faults.processes import Stack

WARM_UP_S = 6.0
RECOVER_S = 6.0  # load after each fault healed, before the next one
# every certification acknowledged before a fault healed is anchored this soon after (the probe resets
# back-offs; a SIGKILLed API's leases expire after LEASE_S = 30 s)
CATCH_UP_BOUND_S = 120.0


def test_the_independent_verifier_knows_right_from_wrong() -> None:
    """The checker's RFC 9162 code, against trees built from the RFC's definitions."""
    entries = [f"leaf-{i}".encode() for i in range(21)]
    for size in range(1, 22):
        root = independent.merkle_tree_hash(entries[:size])
        for index in range(size):
            path = independent.inclusion_path(index, entries[:size])
            assert independent.verify_inclusion(index, size, independent.leaf_hash(entries[index]), path, root)
            assert not independent.verify_inclusion(index, size, independent.leaf_hash(b"other"), path, root)
            if path:
                bent = [bytes([path[0][0] ^ 1]) + path[0][1:], *path[1:]]
                assert not independent.verify_inclusion(index, size, independent.leaf_hash(entries[index]), bent, root)


async def test_no_acknowledged_certification_is_lost_under_faults(stack: Stack) -> None:
    started = time.monotonic()
    recorder = Recorder()
    load = Load(stack.api.url, stack.world, recorder)
    await load.login()
    producing = asyncio.create_task(load.run())
    catch_up = checker.CatchUp(stack.database_url)
    watching = asyncio.create_task(catch_up.run())
    expectations: list[tuple[str, Seen]] = []
    try:
        await asyncio.sleep(WARM_UP_S)
        for fault in FAULTS:
            if fault.pending:
                print(f"\n[faults] skipped '{fault.name}': {fault.pending}")
                continue
            notes: dict = {}
            steps = fault.run(stack, load, notes)
            recorder.enter(fault.name)
            await anext(steps)  # break it
            await asyncio.sleep(fault.hold_s)
            recorder.enter(f"{fault.name}: healing")
            with pytest.raises(StopAsyncIteration):
                await anext(steps)  # heal it (returns once the part answers again)
            catch_up.healed(fault.name, {u.certification_id for u in load.units if u.certification_id})
            after = f"after {fault.name}"
            recorder.enter(after)
            await asyncio.sleep(RECOVER_S)
            during = recorder.of(fault.name) + recorder.of(f"{fault.name}: healing")
            expectations.append((fault.name, Seen(during, recorder.of(after), notes)))
    finally:
        load.stop()
        await producing
    stopped_at = time.monotonic()

    acknowledged = [u.certification_id for u in load.units if u.certification_id is not None]
    anchor_wait = await checker.wait_anchored(stack.database_url, acknowledged)
    await asyncio.sleep(1.5)  # one more poll for the last fault's catch-up
    watching.cancel()
    verdict = await checker.check(
        database_url=stack.database_url, api_url=stack.api.url, chain_url=stack.chain.url,
        trust=stack.chain.trust(), units=load.units, community_id=stack.world["community_id"],
    )
    verdict.anchor_wait_s = anchor_wait
    late = {name: lag for name, lag in catch_up.caught_up.items() if lag > CATCH_UP_BOUND_S}
    abandoned = [f"unit {u.n}: {u.abandoned}" for u in load.units if u.abandoned]
    failed = []
    for name, seen in expectations:
        try:
            FAULTS_BY_NAME[name].expect(seen)
        except AssertionError as error:
            failed.append(f"{name}: {error}")

    ran = [name for name, _ in expectations]
    print(f"\n[faults] what the clients saw (each request counted in the phase it was sent in):\n"
          f"{recorder.table(ran, catch_up.caught_up)}")
    print(f"[faults] {verdict.summary()}")
    print("[faults] certification -> anchored, by the phase it was acknowledged in: "
          + "; ".join(f"{phase}: {text}" for phase, text in verdict.latency.items()))
    for name, seen in expectations:
        if "refused" in seen.notes:
            refusal = seen.notes["refused"].get("refusal") or {}
            print(f"[faults] {name}: after tear {seen.notes['tears']} the restarted sequencer said "
                  f"{seen.notes['refused'].get('status')} "
                  f"({refusal.get('reason')}: {str(refusal.get('message'))[:160]}); /readyz {seen.notes['readyz']}; "
                  f"recovery exit {seen.notes['recovery']['exit']} (fill-gaps: {seen.notes['recovery']['fill_gaps']}): "
                  f"{seen.notes['recovery']['report']}; then {seen.notes['resumed'].get('status')}")
        if seen.notes.get("in_flight"):
            units = seen.notes["in_flight"]
            print(f"[faults] {name}: {len(units)} attest(s) on the wire at the kill; after the restart "
                  f"{sum(1 for u in units if u.replayed['attest'])} answered from the stored first answer "
                  f"(Idempotent-Replayed), {sum(1 for u in units if u.certification_id and not u.replayed['attest'])} "
                  f"ran afresh; certifications stored for them: exactly one each (checked below)")
    print("[faults] phases began at: " + ", ".join(f"{p} {t}" for p, t in recorder.started.items()))
    print(f"[faults] load ran {stopped_at - started:.0f} s; the checker finished {time.monotonic() - started:.0f} s in")
    problems = verdict.problems + abandoned + failed
    for problem in problems[:20]:
        print(f"[faults] PROBLEM {problem}")
    if len(problems) > 20:
        print(f"[faults] … and {len(problems) - 20} more problems")

    assert verdict.acknowledged > 0
    assert not verdict.problems, verdict.problems[:20]
    assert verdict.anchored == verdict.acknowledged
    assert not abandoned, abandoned[:20]
    assert not failed, failed
    assert not late and set(catch_up.caught_up) == set(ran), (
        f"expected anchoring to catch up within {CATCH_UP_BOUND_S:.0f} s of each fault healing: {catch_up.caught_up}")


FAULTS_BY_NAME = {f.name: f for f in FAULTS}
