"""Storage faults of the sequencer, as tests inflict them (also for the fault suite)."""

from __future__ import annotations

from pathlib import Path


def tear_sqlite_wal(db: Path, transactions: int) -> None:
    """Cut the WAL in the middle of the first frame of the last ``transactions`` commits.

    WAL layout (sqlite.org/fileformat2.html §4): a 32-byte header (page size at 8..12, salts at
    16..24), then frames of a 24-byte header (commit size at 4..8, non-zero on a commit frame;
    salts at 8..16) and one page. SQLite replays frames up to the last complete, valid commit."""
    wal = Path(f"{db}-wal")
    data = wal.read_bytes()
    page_size = int.from_bytes(data[8:12], "big")
    salts = data[16:24]
    frame = 24 + page_size
    commit_ends, offset = [], 32
    while offset + frame <= len(data) and data[offset + 8 : offset + 16] == salts:
        if int.from_bytes(data[offset + 4 : offset + 8], "big"):
            commit_ends.append(offset + frame)
        offset += frame
    assert len(commit_ends) > transactions, f"only {len(commit_ends)} transactions in the WAL"
    with open(wal, "r+b") as fh:
        fh.truncate(commit_ends[-transactions - 1] + 24 + page_size // 2)
    Path(f"{db}-shm").unlink(missing_ok=True)


async def tear_postgres(url: str, keep_leaves: int) -> None:
    """What losing the last commits looks like in PostgreSQL (a restored older backup)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DELETE FROM chain_leaves WHERE idx >= $1", keep_leaves)
        await conn.execute("DELETE FROM chain_checkpoints WHERE size > $1", keep_leaves)
    finally:
        await conn.close()
