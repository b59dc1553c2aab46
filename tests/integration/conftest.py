"""A real backend server on a loopback port, on the backend chosen for this run."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from sanic import Sanic

from backend.settings import Settings
from tests.conftest import BACKEND, REDIS_URL, free_port

STAFF_PASSWORD = "Test-password-2026"


@pytest.fixture(scope="session")
def app_settings(tmp_path_factory: pytest.TempPathFactory, postgres_database: str | None) -> Settings:
    data_dir = tmp_path_factory.mktemp("zhilian-data")
    base = Settings(
        zhilian_env="test", data_dir=str(data_dir), log_json=True, log_level="WARNING",
        cache_prefix=f"zltest:{secrets.token_hex(3)}:",
        login_max_per_ip=10_000, otp_send_per_phone_per_hour=50, background_worker=False,
    )
    if BACKEND == "postgres":
        base = replace(base, database_url=postgres_database or "", redis_url=REDIS_URL)
    base.validate()
    return base


@dataclass
class RunningServer:
    app: Sanic
    url: str
    settings: Settings


@pytest.fixture(scope="session")
async def server(app_settings: Settings):
    """The real app, served over real HTTP in this test session's event loop."""
    from backend.app import create_app

    Sanic.test_mode = True
    port = free_port()
    app = create_app(replace(app_settings, port=port), name=f"zhilian_test_{port}")
    srv = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True)
    await srv.startup()
    await srv.before_start()
    await srv.after_start()
    serving = asyncio.ensure_future(srv.serve_forever())
    yield RunningServer(app, f"http://127.0.0.1:{port}", app.ctx.settings)
    await srv.before_stop()
    srv.close()
    await srv.after_stop()
    serving.cancel()


@pytest.fixture(scope="session")
async def client(server: RunningServer):
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        yield http


@dataclass
class Staff:
    user_id: int
    username: str
    token: str
    community_id: int | None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class World:
    """A community of one's own, so tests never see each other's data."""

    community_id: int
    community_code: str
    staff: Staff
    admin: Staff


async def login(client: httpx.AsyncClient, username: str, password: str = STAFF_PASSWORD) -> str:
    response = await client.post("/api/auth/staff/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


@pytest.fixture
def make_world(server: RunningServer, client: httpx.AsyncClient) -> Callable[..., Awaitable[World]]:
    from backend.auth import service as auth_service
    from backend.auth.models import Role
    from backend.residents import service as residents

    async def make(district: str = "测试区") -> World:
        tag = secrets.token_hex(4)
        community = await residents.ensure_community(code=f"T{tag}", name=f"测试社区{tag}", district=district)
        people: dict[str, Staff] = {}
        for key, role in (("staff", Role.COMMUNITY_STAFF), ("admin", Role.COMMUNITY_ADMIN)):
            username = f"{key}_{tag}"
            user = await auth_service.create_staff(
                username=username, password=STAFF_PASSWORD, display_name=username, role=role,
                community_id=community.id,
            )
            people[key] = Staff(user.id, username, await login(client, username), community.id)
        return World(community.id, community.code, people["staff"], people["admin"])

    return make


async def create_staff_login(client: httpx.AsyncClient, **kwargs: Any) -> Staff:
    from backend.auth import service as auth_service

    username = kwargs.pop("username", f"user_{secrets.token_hex(4)}")
    user = await auth_service.create_staff(username=username, password=STAFF_PASSWORD, display_name=username, **kwargs)
    return Staff(user.id, username, await login(client, username), kwargs.get("community_id"))


@pytest.fixture
async def chain(server: RunningServer, tmp_path):
    """A devstack connected to the running backend for this test only."""
    from backend.credentials.anchor import attach_chain, detach_chain
    from chain.devstack import Devstack
    from chain.verify import Trust

    stack = Devstack(tmp_path / "chain", port=free_port(),
                     witness_ports={d: free_port() for d in ("civil_affairs", "social_security", "health")})
    await asyncio.to_thread(stack.start)
    client = stack.client(trust=Trust.from_json(stack.trust()))
    attach_chain(server.app, client)
    try:
        yield stack
    finally:
        detach_chain(server.app)
        await client.aclose()
        await asyncio.to_thread(stack.stop)
