"""After the faults have healed: prove that every acknowledged certification is whole.

For each certification a client was told about (the attest answered 200): it is stored exactly
once (one resident, one visit, one certification, one credential, one outbox event), its credential
verifies (the API's public verifier), and it is anchored: its stored inclusion proof checks against
a checkpoint signed by the log and cosigned by a witness quorum, and the log today still holds it at
the same index in a tree consistent with every checkpoint ever handed out — all checked with the
suite's own RFC 9162 / C2SP / BLS code (`independent`), not the log's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

import asyncpg
import httpx

from tests.faults import independent
from tests.faults.load import Unit, elder_name

ANCHOR_TIMEOUT_S = 180.0


@dataclass
class Verdict:
    acknowledged: int = 0
    anchored: int = 0
    anchor_wait_s: float = 0.0
    checkpoints: int = 0
    final_size: int = 0
    problems: list[str] = field(default_factory=list)
    latency: dict[str, str] = field(default_factory=dict)  # certification -> anchored, by phase

    def problem(self, text: str) -> None:
        if len(self.problems) < 200:
            self.problems.append(text)

    def summary(self) -> str:
        return (f"{self.acknowledged} acknowledged certifications; {self.anchored} anchored "
                f"(all anchored {self.anchor_wait_s:.1f} s after the load stopped); "
                f"{self.checkpoints} distinct quorum checkpoints verified; final tree size {self.final_size}; "
                f"{len(self.problems)} problems")


async def wait_anchored(database_url: str, certification_ids: list[int], timeout: float = ANCHOR_TIMEOUT_S) -> float:
    """Seconds until every credential of these certifications has its inclusion proof (or the timeout)."""
    started = time.monotonic()
    connection = await asyncpg.connect(database_url)
    try:
        while True:
            anchored = await connection.fetchval(
                "SELECT count(*) FROM credential WHERE certification_id = ANY($1::bigint[]) AND inclusion IS NOT NULL",
                certification_ids)
            if anchored >= len(certification_ids) or time.monotonic() - started > timeout:
                return time.monotonic() - started
            await asyncio.sleep(1.0)
    finally:
        await connection.close()


async def check(*, database_url: str, api_url: str, chain_url: str, trust: dict, units: list[Unit],
                community_id: int) -> Verdict:
    verdict = Verdict()
    acknowledged = [u for u in units if u.certification_id is not None]
    verdict.acknowledged = len(acknowledged)
    connection = await asyncpg.connect(database_url)
    try:
        await _stored_once(connection, units, community_id, verdict)
        credentials = {
            row["certification_id"]: row for row in await connection.fetch(
                "SELECT id, certification_id, document, leaf_hash, anchor_index, inclusion FROM credential "
                "WHERE certification_id = ANY($1::bigint[])", [u.certification_id for u in acknowledged])
        }
        verdict.latency = await _anchoring_latency(connection, acknowledged)
    finally:
        await connection.close()
    async with httpx.AsyncClient(timeout=30) as http:
        await _anchored(http, api_url, chain_url, trust, acknowledged, credentials, verdict)
    return verdict


async def _anchoring_latency(connection: asyncpg.Connection, acknowledged: list[Unit]) -> dict[str, str]:
    """Seconds from certification to stored inclusion proof, by the phase it was acknowledged in: the
    median and worst in total, and the median of each outbox step (issue, append, proof)."""
    rows = await connection.fetch(
        "SELECT c.id, EXTRACT(EPOCH FROM (k.anchored_at - c.certified_at)) AS total, "
        "EXTRACT(EPOCH FROM (i.processed_at - c.certified_at)) AS issue, "
        "EXTRACT(EPOCH FROM (a.processed_at - i.processed_at)) AS append, "
        "EXTRACT(EPOCH FROM (k.anchored_at - a.processed_at)) AS proof "
        "FROM certification c JOIN credential k ON k.certification_id = c.id "
        "JOIN outbox_event i ON i.dedupe_key = 'certification:' || c.id "
        "JOIN outbox_event a ON a.dedupe_key = 'credential.anchor:' || k.id "
        "WHERE c.id = ANY($1::bigint[]) AND k.anchored_at IS NOT NULL",
        [u.certification_id for u in acknowledged])
    by_id = {row["id"]: row for row in rows}
    grouped: dict[str, list] = {}
    for unit in acknowledged:
        if unit.certification_id in by_id:
            grouped.setdefault(unit.acknowledged_in, []).append(by_id[unit.certification_id])

    def median(values: list, column: str) -> float:
        return statistics.median(float(v[column]) for v in values)

    return {phase: (f"median {median(values, 'total'):.0f} s, max {max(float(v['total']) for v in values):.0f} s "
                    f"(issue {median(values, 'issue'):.0f}, append {median(values, 'append'):.0f}, "
                    f"proof {median(values, 'proof'):.0f})")
            for phase, values in grouped.items()}


async def _stored_once(connection: asyncpg.Connection, units: list[Unit], community_id: int, verdict: Verdict) -> None:
    residents = Counter(dict(await connection.fetch(
        "SELECT name, count(*) FROM resident WHERE community_id = $1 GROUP BY name", community_id)))
    visits = Counter(dict(await connection.fetch("SELECT resident_id, count(*) FROM home_visit GROUP BY resident_id")))
    certifications: dict[int, list[int]] = {}
    for row in await connection.fetch("SELECT id, resident_id FROM certification"):
        certifications.setdefault(row["resident_id"], []).append(row["id"])
    events = Counter(dict(await connection.fetch(
        "SELECT dedupe_key, count(*) FROM outbox_event WHERE dedupe_key LIKE 'certification:%' GROUP BY dedupe_key")))
    per_certification = Counter(dict(await connection.fetch(
        "SELECT certification_id, count(*) FROM credential GROUP BY certification_id")))
    for unit in units:
        name = elder_name(unit.n)
        if residents[name] > 1:
            verdict.problem(f"unit {unit.n}: {residents[name]} residents registered, expected one")
        if unit.resident_id is not None and visits[unit.resident_id] > 1:
            verdict.problem(f"unit {unit.n}: {visits[unit.resident_id]} home visits recorded, expected one")
        stored = certifications.get(unit.resident_id, []) if unit.resident_id is not None else []
        if len(stored) > 1:
            verdict.problem(f"unit {unit.n}: {len(stored)} certifications {stored}, expected one")
        if unit.certification_id is None:
            continue
        if stored != [unit.certification_id]:
            verdict.problem(f"unit {unit.n}: acknowledged certification {unit.certification_id}, stored {stored}")
        if events[f"certification:{unit.certification_id}"] != 1:
            verdict.problem(f"unit {unit.n}: {events[f'certification:{unit.certification_id}']} outbox events")
        if per_certification[unit.certification_id] != 1:
            verdict.problem(f"unit {unit.n}: {per_certification[unit.certification_id]} credentials, expected one")


async def _anchored(http: httpx.AsyncClient, api_url: str, chain_url: str, trust: dict, acknowledged: list[Unit],
                    credentials: dict, verdict: Verdict) -> None:
    checkpoints: dict[str, independent.Checkpoint] = {}

    def checkpoint_of(record: dict) -> independent.Checkpoint:
        if record["note"] not in checkpoints:
            # the first one also on py-ecc's reference BLS (a second, slower implementation)
            checkpoints[record["note"]] = independent.check_final_checkpoint(record, trust,
                                                                             reference=not checkpoints)
        return checkpoints[record["note"]]

    indices: dict[int, int] = {}
    gate = asyncio.Semaphore(8)

    async def one(unit: Unit) -> None:
        row = credentials.get(unit.certification_id)
        if row is None:
            verdict.problem(f"unit {unit.n}: no credential for certification {unit.certification_id}")
            return
        document = json.loads(row["document"])
        leaf = independent.credential_leaf(document)
        if leaf.hex() != row["leaf_hash"]:
            verdict.problem(f"unit {unit.n}: leaf {row['leaf_hash']} is not SHA-256 of the credential's JCS form")
        async with gate:
            report = (await http.post(f"{api_url}/credentials/verify", json={"credential": document})).json()
            fresh = await http.get(f"{chain_url}/v1/inclusion/{leaf.hex()}")
        if not report.get("verified"):
            verdict.problem(f"unit {unit.n}: credential does not verify: {report.get('failed')}")
        if row["inclusion"] is None:
            verdict.problem(f"unit {unit.n}: credential {row['id']} not anchored")
            return
        verdict.anchored += 1
        for source, bundle in (("stored", json.loads(row["inclusion"])), ("log today", fresh.json())):
            try:
                checkpoint = checkpoint_of(bundle["checkpoint"])
            except Exception as error:  # any failure to check is a finding, not a crash of the checker
                verdict.problem(f"unit {unit.n}: {source} checkpoint rejected: {error}")
                continue
            path = [bytes.fromhex(h) for h in bundle["proof"]]
            if bundle["hash"] != leaf.hex() or bundle["tree_size"] != checkpoint.size or not independent.verify_inclusion(
                    bundle["leaf_index"], checkpoint.size, independent.leaf_hash(leaf), path, checkpoint.root):
                verdict.problem(f"unit {unit.n}: {source} inclusion proof of leaf {bundle.get('leaf_index')} "
                                f"does not verify at size {checkpoint.size}")
            if bundle["leaf_index"] != row["anchor_index"]:
                verdict.problem(f"unit {unit.n}: {source} index {bundle['leaf_index']}, stored {row['anchor_index']}")
        indices[row["anchor_index"]] = indices.get(row["anchor_index"], 0) + 1

    await asyncio.gather(*(one(unit) for unit in acknowledged))
    reused = {index: count for index, count in indices.items() if count > 1}
    if reused:
        verdict.problem(f"leaf indices used by more than one credential: {sorted(reused)[:10]}")
    verdict.checkpoints = len(checkpoints)
    if not checkpoints:
        return
    # one history: every checkpoint handed out is a prefix of the largest (RFC 9162 consistency)
    latest = max(checkpoints.values(), key=lambda c: c.size)
    verdict.final_size = latest.size
    for size, root in sorted({(c.size, c.root) for c in checkpoints.values()}):
        answer = (await http.get(f"{chain_url}/v1/consistency", params={"first": size, "second": latest.size})).json()
        if not independent.verify_consistency(size, latest.size, root, latest.root,
                                               [bytes.fromhex(h) for h in answer["proof"]]):
            verdict.problem(f"the checkpoint at size {size} is not a prefix of the one at size {latest.size}: "
                            "the log forked")


class CatchUp:
    """How long after each fault healed every certification acknowledged before then was anchored.

    A background poll (once a second) of the credentials' inclusion proofs; outages of the
    database itself are waited out.
    """

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.waiting: dict[str, tuple[float, set[int]]] = {}
        self.caught_up: dict[str, float] = {}

    def healed(self, name: str, acknowledged: set[int]) -> None:
        self.waiting[name] = (time.monotonic(), set(acknowledged))

    async def run(self) -> None:
        while True:
            if self.waiting:
                with contextlib.suppress(Exception):
                    connection = await asyncpg.connect(self.database_url, timeout=2)
                    try:
                        anchored = {row[0] for row in await connection.fetch(
                            "SELECT certification_id FROM credential WHERE inclusion IS NOT NULL")}
                    finally:
                        await connection.close()
                    for name, (healed_at, ids) in list(self.waiting.items()):
                        if ids <= anchored:
                            self.caught_up[name] = time.monotonic() - healed_at
                            del self.waiting[name]
            await asyncio.sleep(1.0)
