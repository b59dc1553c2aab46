"""Test infrastructure shared by every suite.

The backend under test is chosen per run (never mixed in one process, see DESIGN §9):
  ZHILIAN_TEST_BACKEND=sqlite   (default) a SQLite file and the in-process cache
  ZHILIAN_TEST_BACKEND=postgres a fresh PostgreSQL database and a real Redis
`scripts/test` runs the whole suite on SQLite, then the `persistence` tests on PostgreSQL + Redis.
"""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
BACKEND = os.environ.get("ZHILIAN_TEST_BACKEND", "sqlite")
PG_ADMIN_URL = os.environ.get("ZHILIAN_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("ZHILIAN_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

PERSISTENCE_FIXTURES = {"server", "client", "app_settings", "db"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that touch the database or cache are persistence tests: they run on both backends."""
    for item in items:
        if PERSISTENCE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.persistence)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def backend_kind() -> str:
    return BACKEND


@pytest.fixture(scope="session")
async def postgres_database():
    """A fresh, uniquely named PostgreSQL database for this test session, dropped afterwards."""
    if BACKEND != "postgres":
        yield None
        return
    import asyncpg

    name = f"zhilian_test_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(PG_ADMIN_URL)  # a missing server fails the run: it does not skip
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
