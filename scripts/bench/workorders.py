"""Benchmark of the work-order engine's reads at community scale, in process, on a SQLite file.

    .venv/bin/python scripts/bench/workorders.py [--cases 2000] [--rounds 20]

Fills one community with `--cases` cases (about a year of 随手拍 for a large community, spread over
the states, with due times around now), then times what the console and Open311 read most: a board
page (20 rows with counts), a case page (history and photos), the deadline sweep over every open
case, duplicate suggestions at a position and an Open311 `requests` listing (up to 1000). Service
functions are called directly (no HTTP), so the figures are the engine's own cost.

The last line is machine-readable:
    workorders: cases=… board_ms=… detail_ms=… sweep_ms=… duplicates_ms=… open311_ms=…
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from backend import db  # noqa: E402
from backend.app import build_cipher  # noqa: E402
from backend.residents import service as residents  # noqa: E402
from backend.settings import Settings  # noqa: E402
from backend.workorders import catalog, deadlines, open311, queries, service  # noqa: E402
from backend.workorders.models import Category, HandlerTeam, Source, WorkOrder  # noqa: E402
from backend.workorders.states import State  # noqa: E402


async def fill(community_id: int, cases: int, now: datetime) -> None:
    await catalog.ensure_catalog(community_id=community_id)
    leaves = [c for c in await Category.filter(community_id=community_id, parent_id__isnull=False)]
    team = await HandlerTeam.filter(community_id=community_id).first()
    rng = random.Random(7)
    states = list(State)
    rows = []
    for i in range(cases):
        created = now - timedelta(hours=rng.uniform(0, 24 * 365))
        category = rng.choice(leaves)
        due = created + timedelta(hours=category.deadline_hours)
        rows.append(WorkOrder(
            community_id=community_id, category_id=category.id, source=Source.RESIDENT, state=rng.choice(states),
            description=f"第 {i} 号问题", address="南桥镇", lat=30.92 + rng.uniform(-0.01, 0.01),
            long=121.47 + rng.uniform(-0.01, 0.01), team_id=team.id, round_started_at=created,
            response_due_at=created + timedelta(hours=category.response_hours), due_at=due,
            warn_at=created + (due - created) * 0.8, created_at=created, updated_at=created))
    await WorkOrder.bulk_create(rows, batch_size=500)


async def timed(rounds: int, work) -> float:
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        await work()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(zhilian_env="test", data_dir=data_dir)
        await db.init(settings, run_migrations=True)
        try:
            cipher = build_cipher(settings)
            community = await residents.ensure_community(code="BENCH", name="基准社区")
            now = datetime.now(UTC)
            await fill(community.id, args.cases, now)
            staff = service.Caller("staff", 1, "community_staff", [community.id])
            some = await WorkOrder.filter(community_id=community.id).order_by("id").first()
            trash = await Category.get(community_id=community.id, code="ENV-01")
            board = await timed(args.rounds, lambda: queries.board(
                caller=staff, filters=queries.BoardFilter(state="open"), now=now, base="/api/workorders"))
            detail = await timed(args.rounds, lambda: queries.detail(
                caller=staff, work_order_id=some.id, now=now, cipher=cipher, base="/api/workorders"))
            duplicates = await timed(args.rounds, lambda: queries.duplicates(
                caller=staff, community_id=community.id, category_id=trash.id, point_token=None, point_id=None,
                lat=30.92, long=121.47, now=now, public_url_base="/api/workorders"))
            listing = await timed(max(1, args.rounds // 4), lambda: open311.requests(
                query=open311.RequestQuery(jurisdiction_id="BENCH"), now=now))
            sweep = await timed(1, lambda: deadlines.sweep(now=now))  # the first sweep raises every due alarm
            again = await timed(args.rounds, lambda: deadlines.sweep(now=now))  # then nothing is due
        finally:
            await db.close()
    print(f"cases {args.cases}: board page {board:.1f} ms, case page {detail:.1f} ms, duplicates {duplicates:.1f} ms, "
          f"Open311 requests (≤1000) {listing:.1f} ms, first sweep {sweep:.1f} ms, idle sweep {again:.1f} ms")
    print(f"workorders: cases={args.cases} board_ms={board:.1f} detail_ms={detail:.1f} sweep_ms={sweep:.1f} "
          f"idle_sweep_ms={again:.1f} duplicates_ms={duplicates:.1f} open311_ms={listing:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=20)
    asyncio.run(main(parser.parse_args()))
