"""Benchmark of the chain: appends, finality, proofs, BLS backends.

    .venv/bin/python scripts/bench/chain.py [--database-url postgresql://…] [--single N] [--batched N]
                                            [--batch-size B] [--trials T] [--time-limit S]

Starts its own sequencer and three department witnesses (``chain.devstack``) as
child processes on free loopback ports with a temporary data dir (SQLite by
default, ``--database-url`` for PostgreSQL: a temporary database is created
and dropped), then measures:

* appends/s, one leaf per signed request (32 concurrent requests, group commit);
* appends/s, ``--batch-size`` leaves per request (4 concurrent requests);
* append → final checkpoint latency with 3 witnesses (submit, then long-poll);
* inclusion proof generation (in the tree, and over HTTP) and offline
  verification (Merkle path only, and the whole bundle: log signature +
  aggregate BLS + path);
* BLS Sign / Verify / FastAggregateVerify(3 keys) for py-ecc and the fast backend.

The whole run is bounded by ``--time-limit`` (SIGALRM) and always stops its
processes.  The last line is machine-readable:

    chain: appends_per_s=… batched_appends_per_s=… final_ms=… inclusion_verify_ms=… bls_verify_fast_ms=… bls_verify_pyecc_ms=…
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from chain import bls  # noqa: E402
from chain.devstack import Devstack, free_port  # noqa: E402
from chain.merkle import MerkleTree, hash_leaf, verify_inclusion  # noqa: E402
from chain.verify import Trust, verify_inclusion_bundle  # noqa: E402


def _h(tag: str, i: int) -> bytes:
    return hashlib.sha256(f"{tag}-{i}".encode()).digest()


def _timeit(fn: Callable[[], object], n: int) -> float:
    """Mean milliseconds per call over n calls."""
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) * 1000 / n


async def _single_appends(stack: Devstack, n: int, concurrency: int, tag: str) -> float:
    queue = list(range(n))
    clients = [stack.client(timeout=30) for _ in range(concurrency)]

    async def worker(client) -> None:
        while queue:
            i = queue.pop()
            await client.submit(_h(tag, i), "credential")

    start = time.perf_counter()
    try:
        await asyncio.gather(*(worker(c) for c in clients))
    finally:
        for c in clients:
            await c.aclose()
    return n / (time.perf_counter() - start)


async def _batched_appends(stack: Devstack, n: int, batch_size: int, concurrency: int, tag: str) -> float:
    batches = [list(range(s, min(n, s + batch_size))) for s in range(0, n, batch_size)]
    clients = [stack.client(timeout=60) for _ in range(concurrency)]

    async def worker(client) -> None:
        while batches:
            batch = batches.pop()
            await client.submit_many([(_h(tag, i), "audit_batch") for i in batch])

    start = time.perf_counter()
    try:
        await asyncio.gather(*(worker(c) for c in clients))
    finally:
        for c in clients:
            await c.aclose()
    return n / (time.perf_counter() - start)


async def _finality(stack: Devstack, trials: int) -> list[float]:
    latencies = []
    async with stack.client(timeout=30) as client:
        for t in range(trials):
            start = time.perf_counter()
            index = await client.submit(_h("final", t), "credential")
            record = await client.latest_checkpoint(wait_size=index + 1, timeout=10)
            if record is None or record["size"] <= index:
                raise RuntimeError(f"append {index} not final within 10 s")
            latencies.append((time.perf_counter() - start) * 1000)
            await asyncio.sleep(0.05)
    return latencies


async def _http_proofs(stack: Devstack, leaves: list[bytes], trust: Trust) -> tuple[float, float, dict]:
    async with stack.client(timeout=30) as client:
        await client.get_inclusion(leaves[0])  # warm
        start = time.perf_counter()
        bundle = None
        for leaf in leaves:
            inclusion = await client.get_inclusion(leaf)
            assert inclusion is not None
            bundle = inclusion.bundle
        http_ms = (time.perf_counter() - start) * 1000 / len(leaves)
    assert bundle is not None
    bundle_verify_ms = _timeit(lambda: verify_inclusion_bundle(bundle, leaves[-1], trust), 20)
    return http_ms, bundle_verify_ms, bundle


def _bls_backend_numbers(backend: bls.Backend, reps: int) -> dict[str, float]:
    """Mean ms of Sign, Verify and FastAggregateVerify over 3 keys (the witness set)."""
    message = b"zhilian/bls-cosignature/v1\nbench\n1\nroot\n"
    sks = [bls.keygen(bytes([i + 1]) * 32) for i in range(3)]
    pks = [backend.SkToPk(sk) for sk in sks]
    sigs = [backend.Sign(sk, message) for sk in sks]
    aggregate = backend.Aggregate(sigs)
    assert backend.Verify(pks[0], message, sigs[0])
    assert backend.FastAggregateVerify(pks, message, aggregate)
    return {
        "sign": _timeit(lambda: backend.Sign(sks[0], message), reps),
        "verify": _timeit(lambda: backend.Verify(pks[0], message, sigs[0]), reps),
        "aggregate_verify": _timeit(lambda: backend.FastAggregateVerify(pks, message, aggregate), reps),
    }


def _bls_numbers(pyecc_reps: int, fast_reps: int) -> dict[str, dict[str, float]]:
    return {
        "fast": _bls_backend_numbers(bls.get_backend("fast"), fast_reps),
        "pyecc": _bls_backend_numbers(bls.get_backend("pyecc"), pyecc_reps),
    }


async def _create_pg_database(url: str) -> tuple[str, str]:
    import asyncpg

    base, _, _ = url.rpartition("/")
    name = f"zhilian_chain_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(f"{base}/postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"{base}/{name}", name


async def _drop_pg_database(url: str, name: str) -> None:
    import asyncpg

    base, _, _ = url.rpartition("/")
    conn = await asyncpg.connect(f"{base}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def run(args: argparse.Namespace) -> int:
    pg_name = None
    database_url = args.database_url
    if database_url and database_url.startswith(("postgres://", "postgresql://")):
        database_url, pg_name = await _create_pg_database(args.database_url)
    with tempfile.TemporaryDirectory(prefix="zhilian-chain-bench-") as tmp:
        ports = {d: free_port() for d in ("civil_affairs", "social_security", "health")}
        stack = Devstack(
            Path(tmp),
            port=free_port(),
            witness_ports=ports,
            database_url=database_url,
            extra_env={"ZHILIAN_CHAIN_LOG_LEVEL": "WARNING"},
        )
        try:
            t0 = time.perf_counter()
            stack.start()
            print(
                f"stack up in {time.perf_counter() - t0:.2f}s ({'postgresql' if pg_name else 'sqlite'})",
                flush=True,
            )
            trust = Trust.from_json(stack.trust())

            await _single_appends(stack, 200, 16, "warm")
            single = await _single_appends(stack, args.single, 32, "single")
            print(f"single appends: {args.single} leaves, {single:,.0f}/s", flush=True)
            batched = await _batched_appends(stack, args.batched, args.batch_size, 4, "batched")
            print(
                f"batched appends: {args.batched} leaves in batches of {args.batch_size}, {batched:,.0f}/s",
                flush=True,
            )

            latencies = await _finality(stack, args.trials)
            final_ms = statistics.median(latencies)
            p95 = sorted(latencies)[max(0, int(len(latencies) * 0.95) - 1)]
            print(
                f"append -> final (3 witnesses): median {final_ms:.1f} ms, p95 {p95:.1f} ms, max {max(latencies):.1f} ms"
            )

            sample = [_h("batched", i) for i in range(0, args.batched, max(1, args.batched // 50))]
            http_ms, bundle_verify_ms, bundle = await _http_proofs(stack, sample, trust)

            # Proof generation and Merkle verification in-process, over a tree of the same size.
            size = bundle["tree_size"]
            tree = MerkleTree(hash_leaf(_h("tree", i)) for i in range(size))
            gen_ms = _timeit(lambda: tree.inclusion_proof(size // 3, size), 1000)
            proof = tree.inclusion_proof(size // 3, size)
            root, leaf = tree.root(size), tree.leaf(size // 3)
            verify_ms = _timeit(lambda: verify_inclusion(leaf, size // 3, size, proof, root), 2000)
            cons_ms = _timeit(lambda: tree.consistency_proof(size // 2, size), 1000)
            print(
                f"proofs at size {size:,}: inclusion generate {gen_ms * 1000:.1f} us, consistency generate "
                f"{cons_ms * 1000:.1f} us, inclusion verify {verify_ms * 1000:.1f} us; "
                f"GET /v1/inclusion {http_ms:.2f} ms; full bundle verify (log sig + aggregate BLS + path) "
                f"{bundle_verify_ms:.2f} ms"
            )
        finally:
            stack.stop()
            if pg_name:
                await _drop_pg_database(args.database_url, pg_name)

    numbers = _bls_numbers(args.pyecc_reps, 50)
    for op in ("sign", "verify", "aggregate_verify"):
        fast, ref = numbers["fast"][op], numbers["pyecc"][op]
        print(f"bls {op:<17} fast {fast:8.2f} ms   py-ecc {ref:8.1f} ms   x{ref / fast:,.0f}")
    print(
        f"chain: appends_per_s={single:.0f} batched_appends_per_s={batched:.0f} final_ms={final_ms:.1f} "
        f"inclusion_verify_ms={verify_ms:.4f} bls_verify_fast_ms={numbers['fast']['aggregate_verify']:.2f} "
        f"bls_verify_pyecc_ms={numbers['pyecc']['aggregate_verify']:.1f}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("ZHILIAN_BENCH_DATABASE_URL"))
    parser.add_argument("--single", type=int, default=3000, help="single-leaf appends")
    parser.add_argument("--batched", type=int, default=50_000, help="leaves appended in batches")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=20, help="append -> final measurements")
    parser.add_argument("--pyecc-reps", type=int, default=3)
    parser.add_argument("--time-limit", type=int, default=300, help="abort after this many seconds")
    args = parser.parse_args(argv)

    def on_alarm(signum: int, frame: object) -> None:
        raise TimeoutError(f"benchmark exceeded --time-limit {args.time_limit}s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(args.time_limit)
    try:
        return asyncio.run(run(args))
    finally:
        signal.alarm(0)


if __name__ == "__main__":
    sys.exit(main())
