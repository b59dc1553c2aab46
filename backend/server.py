"""Running the API server process (used by `python -m backend serve` and `scripts/dev`)."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import sys
from typing import Any

from sanic import Sanic

from backend.settings import Settings


def _loader_settings() -> Settings:
    return Settings.from_env()


def build_app() -> Sanic:
    """Factory for Sanic's worker processes: each builds its own app from the environment."""
    from backend.app import create_app

    return create_app(_loader_settings())


def serve(settings: Settings, *, host: str | None, port: int | None, workers: int | None, with_demo: bool) -> int:
    settings = dataclasses.replace(
        settings, host=host or settings.host, port=port or settings.port, workers=workers or settings.workers
    )
    problem = port_problem(settings.host, settings.port)
    if problem:
        print(problem, file=sys.stderr, flush=True)
        return 1
    with_demo = with_demo or settings.seed_demo
    seeded = seed(settings) if with_demo else None
    from backend.app import create_app

    app = create_app(settings)

    @app.after_server_start
    async def _banner(app: Sanic) -> None:
        print(banner(settings, seeded), flush=True)

    app.run(host=settings.host, port=settings.port, workers=settings.workers, single_process=settings.workers == 1,
            access_log=False, motd=False)
    return 0


def port_problem(host: str, port: int) -> str | None:
    """A plain sentence when the port is taken (instead of a traceback from deep inside the server)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return (f"cannot listen on {host}:{port}: {exc.strerror or exc}. Another program (or an earlier Zhilian) "
                    f"holds it: stop it, or choose another port with PORT=<port> (environment or .env).")
    return None


def banner(settings: Settings, seeded: dict[str, Any] | None) -> str:
    """Where to open Zhilian and, with the demo data, how to sign in as staff and as a resident."""
    from backend.demo import DEMO_PASSWORD, DEMO_STAFF

    url = settings.effective_public_url.rstrip("/")
    lines = [f"Zhilian is running at {url}",
             f"  staff console: {url}/console/   phone app: {url}/m/   API docs: {url}/docs"]
    if seeded is not None:
        lines.append(f"  demo staff accounts (password {DEMO_PASSWORD}):")
        lines += [f"    {username:<12} {display_name}  [{role.value}]" for username, display_name, role in DEMO_STAFF]
        example = seeded.get("example_resident")
        if example:
            lines.append(f"  phone app: sign in as a demo resident, e.g. {example[0]} with phone {example[1]} "
                         "(any demo resident's phone, or any new number as a helper);")
            if settings.sms_sender == "outbox":
                lines.append("    the one-time code is not sent: the development SMS sender prints it in this log "
                             "(template login_code).")
    return "\n".join(lines)


def seed(settings: Settings) -> dict[str, Any]:
    from backend import db
    from backend.app import build_cipher
    from backend.audit.service import ensure_head
    from backend.demo import seed_demo

    async def run() -> dict[str, Any]:
        await db.init(settings, run_migrations=settings.auto_migrate)
        try:
            await ensure_head()
            return await seed_demo(cipher=build_cipher(settings))
        finally:
            await db.close()

    counts = asyncio.run(run())
    print(f"demo data ready: 南桥社区, {counts['created']} residents created, {counts['unchanged'] + counts['updated']} already there",
          flush=True)
    return counts
