"""Fixtures for the chain tests: database URL per session, real process stacks."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from chain.devstack import Devstack, free_port

VECTORS = Path(__file__).parent / "vectors"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "persistence: storage test run against SQLite or PostgreSQL")
    config.addinivalue_line("markers", "processes: starts real sequencer and witness processes")


def _is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``ZHILIAN_TEST_DATABASE_URL`` or a temp SQLite file; a fresh PostgreSQL database per session.

    ``ZHILIAN_TEST_BACKEND=sqlite`` (pass 1 of ``scripts/test``) forces SQLite even when the URL is set.
    """
    url = os.environ.get("ZHILIAN_TEST_DATABASE_URL")
    if not url or os.environ.get("ZHILIAN_TEST_BACKEND") == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'chain.sqlite3'}"
        return
    if not _is_postgres(url):
        yield url
        return
    import asyncio

    import asyncpg

    name = f"zhilian_chain_test_{uuid.uuid4().hex[:12]}"
    base, _, _ = url.rpartition("/")

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(f"{base}/postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def fresh_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A database no other test has written to (a new SQLite file, or a new PostgreSQL schema-less DB)."""
    if not _is_postgres(database_url):
        yield f"sqlite:///{tmp_path / 'log.sqlite3'}"
        return
    import asyncio

    import asyncpg

    base, _, _ = database_url.rpartition("/")
    name = f"zhilian_chain_t_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(f"{base}/postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def make_stack(data_dir: Path, database_url: str | None = None, **kwargs: object) -> Devstack:
    ports = {d: free_port() for d in ("civil_affairs", "social_security", "health")}
    return Devstack(data_dir, port=free_port(), witness_ports=ports, database_url=database_url, **kwargs)


@pytest.fixture
def stack_factory(tmp_path: Path) -> Iterator:
    """Build stacks of real processes; every one is stopped at teardown."""
    stacks: list[Devstack] = []

    def build(name: str = "stack", database_url: str | None = None, **kwargs: object) -> Devstack:
        stack = make_stack(tmp_path / name, database_url, **kwargs)
        stacks.append(stack)
        return stack

    yield build
    for stack in stacks:
        stack.stop()
