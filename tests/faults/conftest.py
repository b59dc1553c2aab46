"""The fault suite's processes: started once per session, private to it, stopped at the end.

Every test here is marked `faults`; `scripts/test` runs them in its PostgreSQL pass only.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.faults.processes import Stack, build_stack


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.faults)


@pytest.fixture(scope="session")
async def stack(tmp_path_factory: pytest.TempPathFactory):
    """PostgreSQL, Redis, the chain (sequencer + three witnesses) and the API, as real processes."""
    built: Stack = await asyncio.to_thread(build_stack, tmp_path_factory.mktemp("faults"))
    try:
        yield built
    finally:
        await asyncio.to_thread(built.stop)
