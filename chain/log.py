"""The append-only log behind the sequencer: RFC 9162 §2.1 Merkle tree over stored leaves.

Only hashes go in.  A leaf is a 32-byte hash (of a credential, an export
package or an audit batch) with a typed label and the submitter's identity;
the Merkle leaf hash is ``SHA-256(0x00 || hash)`` (RFC 9162 §2.1.1), so a
verifier needs nothing but the 32-byte hash it already holds.

Durability: appends are group-committed — every request waiting when a batch
starts goes into one database transaction, and no request is acknowledged
before that transaction is durable.  A crash mid-batch rolls the whole batch
back, so the stored leaves are always the contiguous indices ``0 .. n-1``.  The
tree itself lives in memory and is rebuilt from the stored leaves at start.

Storage: SQLite (stdlib ``sqlite3`` on one dedicated thread, WAL,
``synchronous=FULL``: the WAL is fsynced at every commit) or PostgreSQL
(asyncpg, ``synchronous_commit=on`` forced per session, and a server running
with ``fsync=off`` refused), chosen by the database URL.

After each committed batch, and before anyone is told, the log also records
its size and root in an *acknowledged mark* (``AckMark``, a small fsynced file
beside the keys; its fsync overlaps the next batch's commit).  At start a store holding fewer leaves than the mark, or a
different tree, has lost acknowledged appends (a torn write, a restored
backup): the sequencer then refuses to sequence rather than hand those indices
to other hashes.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import json
import os
import re
import sqlite3
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .merkle import HASH_SIZE, MerkleTree, hash_leaf

LABELS = ("credential", "export", "audit_batch")
_SUBMITTER_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


class LogError(Exception):
    """Base class of log failures."""


class LeafRejected(LogError, ValueError):
    """A submitted leaf is not a 32-byte hash with a known label and submitter."""


class LogLocked(LogError):
    """Another sequencer already owns this log; two writers would fork it."""


class StorageCorrupt(LogError):
    """The stored leaves are not the contiguous indices 0 .. n-1."""


class NotDurable(LogError):
    """The database is configured so that a commit is not durable; appends would be acknowledged too early."""


@dataclass(frozen=True)
class Entry:
    """One submission: the hash, its type, who sent it."""

    leaf: bytes
    label: str
    submitter: str

    def validate(self) -> None:
        if not isinstance(self.leaf, bytes) or len(self.leaf) != HASH_SIZE:
            got = len(self.leaf) if isinstance(self.leaf, bytes) else type(self.leaf).__name__
            raise LeafRejected(f"expected a {HASH_SIZE}-byte hash, got {got}")
        if self.label not in LABELS:
            raise LeafRejected(f"expected a label in {', '.join(LABELS)}, got {self.label!r}")
        if not isinstance(self.submitter, str) or not _SUBMITTER_RE.match(self.submitter):
            raise LeafRejected(f"expected a submitter id of 1-64 [A-Za-z0-9_.-], got {self.submitter!r}")


@dataclass(frozen=True)
class Appended:
    index: int
    duplicate: bool


@dataclass(frozen=True)
class StoredRow:
    index: int
    leaf: bytes
    label: str
    submitter: str
    created_at: float


class Store(Protocol):
    """What the log needs from a database."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def load_leaves(self, start: int = 0) -> list[bytes]: ...
    async def append(self, rows: list[StoredRow]) -> None: ...
    async def find(self, leaf: bytes) -> StoredRow | None: ...
    async def save_checkpoint(self, record: dict[str, Any]) -> None: ...
    async def latest_checkpoint(self) -> dict[str, Any] | None: ...
    async def save_witness(self, record: dict[str, Any]) -> None: ...
    async def load_witnesses(self) -> list[dict[str, Any]]: ...


_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS chain_leaves (
  idx INTEGER PRIMARY KEY,
  leaf BLOB NOT NULL UNIQUE,
  label TEXT NOT NULL,
  submitter TEXT NOT NULL,
  created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS chain_checkpoints (
  size INTEGER PRIMARY KEY,
  record TEXT NOT NULL,
  finalized_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS chain_witnesses (
  department TEXT PRIMARY KEY,
  record TEXT NOT NULL
);
"""


class SQLiteStore:
    """SQLite on one worker thread: every statement runs there, in order."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chain-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._lock_fd: int | None = None

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _open(self) -> None:
        # One writer only: an exclusive lock the kernel drops if the process dies.
        fd = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise LogLocked(
                f"expected to be the only writer of {self.path}, another process holds its lock"
            ) from exc
        self._lock_fd = fd
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        conn.execute("PRAGMA synchronous=FULL")
        synchronous = conn.execute("PRAGMA synchronous").fetchone()[0]
        if str(mode).lower() != "wal" or synchronous != 2:
            conn.close()
            raise NotDurable(f"expected SQLite WAL with synchronous=FULL (2), got {mode} with {synchronous}")
        conn.executescript(_SQLITE_SCHEMA)
        self._conn = conn

    async def open(self) -> None:
        await self._run(self._open)

    async def close(self) -> None:
        if self._conn is not None:
            await self._run(self._conn.close)
            self._conn = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        self._executor.shutdown(wait=True)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise LogError("expected an open SQLite store, it is closed")
        return self._conn

    async def load_leaves(self, start: int = 0) -> list[bytes]:
        def run() -> list[bytes]:
            rows = self._db().execute(
                "SELECT idx, leaf FROM chain_leaves WHERE idx >= ? ORDER BY idx", (start,)
            )
            return _contiguous(rows, start)

        return await self._run(run)

    async def append(self, rows: list[StoredRow]) -> None:
        def run() -> None:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "INSERT INTO chain_leaves (idx, leaf, label, submitter, created_at) VALUES (?, ?, ?, ?, ?)",
                    [(r.index, r.leaf, r.label, r.submitter, r.created_at) for r in rows],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

        if rows:
            await self._run(run)

    async def find(self, leaf: bytes) -> StoredRow | None:
        def run() -> StoredRow | None:
            row = (
                self._db()
                .execute(
                    "SELECT idx, leaf, label, submitter, created_at FROM chain_leaves WHERE leaf = ?", (leaf,)
                )
                .fetchone()
            )
            return StoredRow(*row) if row else None

        return await self._run(run)

    async def save_checkpoint(self, record: dict[str, Any]) -> None:
        def run() -> None:
            self._db().execute(
                "INSERT OR REPLACE INTO chain_checkpoints (size, record, finalized_at) VALUES (?, ?, ?)",
                (record["size"], json.dumps(record), time.time()),
            )

        await self._run(run)

    async def latest_checkpoint(self) -> dict[str, Any] | None:
        def run() -> dict[str, Any] | None:
            row = (
                self._db()
                .execute("SELECT record FROM chain_checkpoints ORDER BY size DESC LIMIT 1")
                .fetchone()
            )
            return json.loads(row[0]) if row else None

        return await self._run(run)

    async def save_witness(self, record: dict[str, Any]) -> None:
        def run() -> None:
            self._db().execute(
                "INSERT OR REPLACE INTO chain_witnesses (department, record) VALUES (?, ?)",
                (record["department"], json.dumps(record)),
            )

        await self._run(run)

    async def load_witnesses(self) -> list[dict[str, Any]]:
        def run() -> list[dict[str, Any]]:
            rows = self._db().execute("SELECT record FROM chain_witnesses ORDER BY department").fetchall()
            return [json.loads(r[0]) for r in rows]

        return await self._run(run)


_PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS chain_leaves (
  idx BIGINT PRIMARY KEY,
  leaf BYTEA NOT NULL UNIQUE,
  label TEXT NOT NULL,
  submitter TEXT NOT NULL,
  created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS chain_checkpoints (
  size BIGINT PRIMARY KEY,
  record TEXT NOT NULL,
  finalized_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS chain_witnesses (
  department TEXT PRIMARY KEY,
  record TEXT NOT NULL
);
"""


class PostgresStore:
    """PostgreSQL through an asyncpg pool; each batch is one transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: Any = None
        self._owner: Any = None

    async def open(self) -> None:
        import asyncpg

        # One writer only: a session advisory lock, released when this connection ends (or dies).
        self._owner = await asyncpg.connect(self.url)
        if not await self._owner.fetchval("SELECT pg_try_advisory_lock(6962, 1)"):
            await self._owner.close()
            self._owner = None
            raise LogLocked(f"expected to be the only writer of {self.url}, another session holds its lock")
        fsync = await self._owner.fetchval("SHOW fsync")
        if fsync != "on":
            await self._owner.close()
            self._owner = None
            raise NotDurable(f"expected PostgreSQL with fsync=on, the server runs with fsync={fsync}")
        # A role or database default of synchronous_commit=off would acknowledge before the WAL flush.
        self._pool = await asyncpg.create_pool(
            self.url, min_size=1, max_size=4, server_settings={"synchronous_commit": "on"}
        )
        # Serialise concurrent schema creation (several test processes, several sequencers).
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(6962)")
            await conn.execute(_PG_SCHEMA)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        if self._owner is not None:
            await self._owner.close()
            self._owner = None

    async def load_leaves(self, start: int = 0) -> list[bytes]:
        rows = await self._pool.fetch(
            "SELECT idx, leaf FROM chain_leaves WHERE idx >= $1 ORDER BY idx", start
        )
        return _contiguous(((r["idx"], bytes(r["leaf"])) for r in rows), start)

    async def append(self, rows: list[StoredRow]) -> None:
        if not rows:
            return
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO chain_leaves (idx, leaf, label, submitter, created_at) "
                "SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::text[], $4::text[], $5::float8[])",
                [r.index for r in rows],
                [r.leaf for r in rows],
                [r.label for r in rows],
                [r.submitter for r in rows],
                [r.created_at for r in rows],
            )

    async def find(self, leaf: bytes) -> StoredRow | None:
        row = await self._pool.fetchrow(
            "SELECT idx, leaf, label, submitter, created_at FROM chain_leaves WHERE leaf = $1", leaf
        )
        if row is None:
            return None
        return StoredRow(row["idx"], bytes(row["leaf"]), row["label"], row["submitter"], row["created_at"])

    async def save_checkpoint(self, record: dict[str, Any]) -> None:
        await self._pool.execute(
            "INSERT INTO chain_checkpoints (size, record, finalized_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (size) DO UPDATE SET record = EXCLUDED.record, finalized_at = EXCLUDED.finalized_at",
            record["size"],
            json.dumps(record),
            time.time(),
        )

    async def latest_checkpoint(self) -> dict[str, Any] | None:
        row = await self._pool.fetchrow("SELECT record FROM chain_checkpoints ORDER BY size DESC LIMIT 1")
        return json.loads(row["record"]) if row else None

    async def save_witness(self, record: dict[str, Any]) -> None:
        await self._pool.execute(
            "INSERT INTO chain_witnesses (department, record) VALUES ($1, $2) "
            "ON CONFLICT (department) DO UPDATE SET record = EXCLUDED.record",
            record["department"],
            json.dumps(record),
        )

    async def load_witnesses(self) -> list[dict[str, Any]]:
        rows = await self._pool.fetch("SELECT record FROM chain_witnesses ORDER BY department")
        return [json.loads(r["record"]) for r in rows]


def _contiguous(rows: Any, start: int) -> list[bytes]:
    leaves: list[bytes] = []
    for idx, leaf in rows:
        expected = start + len(leaves)
        if idx != expected:
            raise StorageCorrupt(f"expected stored leaf index {expected}, found {idx}")
        leaves.append(bytes(leaf))
    return leaves


def make_store(database_url: str) -> Store:
    """``postgres://…``/``postgresql://…`` → PostgreSQL; ``sqlite:///path`` or a plain path → SQLite."""
    if database_url.startswith(("postgres://", "postgresql://")):
        return PostgresStore(database_url)
    if database_url.startswith("sqlite:///"):
        return SQLiteStore(database_url[len("sqlite:///") :])
    if database_url.startswith("sqlite://"):
        raise LogError(f"expected sqlite:///<path>, got {database_url!r}")
    return SQLiteStore(database_url)


class AckMarkError(LogError):
    """The acknowledged mark exists but neither of its slots is readable."""


@dataclass(frozen=True)
class Acknowledged:
    size: int
    root_hash: bytes


class AckMark:
    """The size and root of the log as last acknowledged, fsynced before each acknowledgement.

    Two fixed 128-byte slots written alternately in place (``seq size root crc32``), so a write
    torn by a crash leaves the other slot, one batch older, readable: the mark may lag the store
    by one batch (harmless: it is a lower bound) but never claims more than was acknowledged.
    """

    SLOT = 128

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._seq = 0
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            created = not self.path.exists()
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            if created:
                dir_fd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        return self._fd

    @staticmethod
    def _parse(slot: bytes) -> tuple[int, Acknowledged] | None:
        try:
            seq, size, root, crc = slot.decode("ascii").split()
            body = f"{seq} {size} {root}"
            if f"{zlib.crc32(body.encode()):08x}" != crc:
                return None
            return int(seq), Acknowledged(int(size), base64.b64decode(root, validate=True))
        except (UnicodeDecodeError, ValueError):
            return None

    def read(self) -> Acknowledged | None:
        """The latest mark, None if there is none yet; AckMarkError if it exists but is unreadable."""
        if not self.path.exists():
            return None
        raw = self.path.read_bytes()
        if not raw:
            return None
        slots = [self._parse(raw[i : i + self.SLOT]) for i in range(0, min(len(raw), 2 * self.SLOT), self.SLOT)]
        valid = [slot for slot in slots if slot is not None]
        if not valid:
            raise AckMarkError(f"expected a readable acknowledged mark in {self.path}, both slots are damaged")
        self._seq, mark = max(valid, key=lambda item: item[0])
        return mark

    def write(self, size: int, root_hash: bytes) -> None:
        """Record ``size``/``root_hash`` durably (pwrite + fsync): call before acknowledging."""
        fd = self._open()
        self._seq += 1
        body = f"{self._seq} {size} {base64.b64encode(root_hash).decode()}"
        line = f"{body} {zlib.crc32(body.encode()):08x}\n".encode().ljust(self.SLOT, b" ")
        os.pwrite(fd, line, (self._seq % 2) * self.SLOT)
        os.fsync(fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Log:
    """The sequencer's log: group-committed appends, in-memory tree, proofs."""

    def __init__(self, store: Store, *, max_batch: int = 20_000, mark: AckMark | None = None) -> None:
        self.store = store
        self.max_batch = max_batch
        self.mark = mark
        # what the mark said at open (None: no mark yet); compared with the store by the sequencer
        self.acknowledged: Acknowledged | None = None
        self._mark_writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chain-mark")
        self._last_mark: asyncio.Future[None] | None = None
        self._acks: set[asyncio.Task[None]] = set()
        self.tree = MerkleTree()
        self._index: dict[bytes, int] = {}
        self._queue: list[tuple[list[Entry], asyncio.Future[list[Appended]]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._needs_resync = False
        self._listeners: list[Callable[[int], None]] = []

    async def open(self) -> None:
        """Open the store and rebuild the tree; ``acknowledged`` is read from the mark (AckMarkError
        if the mark is damaged)."""
        await self.store.open()
        await self._resync()
        if self.mark is not None:
            self.acknowledged = self.mark.read()
            if self.acknowledged is None:  # first run (or first run of this version): start the mark now
                self.mark.write(self.size, self.tree.root())

    async def open_tree(self) -> None:
        """Rebuild the tree from an already open store (recovery opens the store itself)."""
        await self._resync()

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        await asyncio.gather(*self._acks, return_exceptions=True)
        self._mark_writer.shutdown(wait=True)
        await self.store.close()
        if self.mark is not None:
            self.mark.close()

    def on_grow(self, callback: Callable[[int], None]) -> None:
        """Call ``callback(new_size)`` after every committed batch."""
        self._listeners.append(callback)

    @property
    def size(self) -> int:
        return self.tree.size

    def index_of(self, leaf: bytes) -> int | None:
        return self._index.get(leaf)

    def leaf_hash(self, index: int) -> bytes:
        return self.tree.leaf(index)

    async def _resync(self) -> None:
        """Bring the tree up to what the store holds (start-up, or after an ambiguous failure)."""
        for leaf in await self.store.load_leaves(self.tree.size):
            self._index[leaf] = self.tree.append(hash_leaf(leaf))
        self._needs_resync = False

    async def append(self, entries: list[Entry]) -> list[Appended]:
        """Append entries (idempotent per hash); returns only after they are durable."""
        for entry in entries:
            entry.validate()
        future: asyncio.Future[list[Appended]] = asyncio.get_running_loop().create_future()
        self._queue.append((entries, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._queue:
            batch: list[tuple[list[Entry], asyncio.Future[list[Appended]]]] = []
            count = 0
            while self._queue and (not batch or count + len(self._queue[0][0]) <= self.max_batch):
                item = self._queue.pop(0)
                batch.append(item)
                count += len(item[0])
            try:
                if self._needs_resync:
                    await self._resync()
                results, rows = self._assign(batch)
                await self.store.append(rows)
            except Exception as exc:
                self._needs_resync = True
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for row in rows:
                self._index[row.leaf] = self.tree.append(hash_leaf(row.leaf))
            if rows and self.mark is not None:
                # The mark's fsync overlaps the next batch's commit; one writer thread keeps marks in order.
                self._last_mark = asyncio.get_running_loop().run_in_executor(
                    self._mark_writer, self.mark.write, self.size, self.tree.root()
                )
            if self._last_mark is None:
                self._acknowledge(batch, results, None)
            else:  # every batch, duplicates included, waits for a mark covering what it was told
                task = asyncio.create_task(self._acknowledge_after(self._last_mark, batch, results))
                self._acks.add(task)
                task.add_done_callback(self._acks.discard)
            if rows:
                for listener in self._listeners:
                    listener(self.size)

    @staticmethod
    def _acknowledge(batch: list[tuple[list[Entry], Any]], results: list[list[Appended]],
                     error: BaseException | None) -> None:
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if error is None:
                future.set_result(result)
            else:  # committed, but not acknowledged: a retry finds them as duplicates
                future.set_exception(error)

    async def _acknowledge_after(self, mark: asyncio.Future[None], batch: list[tuple[list[Entry], Any]],
                                 results: list[list[Appended]]) -> None:
        try:
            await asyncio.shield(mark)
        except OSError as exc:
            self._acknowledge(batch, results, exc)
            return
        self._acknowledge(batch, results, None)

    def _assign(self, batch: list[tuple[list[Entry], Any]]) -> tuple[list[list[Appended]], list[StoredRow]]:
        """Give each new hash the next index; duplicates get the index they already have."""
        now = time.time()
        pending: dict[bytes, int] = {}
        rows: list[StoredRow] = []
        results: list[list[Appended]] = []
        for entries, _ in batch:
            result = []
            for entry in entries:
                index = self._index.get(entry.leaf)
                if index is None:
                    index = pending.get(entry.leaf)
                if index is not None:
                    result.append(Appended(index, True))
                    continue
                index = self.size + len(rows)
                pending[entry.leaf] = index
                rows.append(StoredRow(index, entry.leaf, entry.label, entry.submitter, now))
                result.append(Appended(index, False))
            results.append(result)
        return results, rows
