"""Running the API server process (used by `python -m backend serve` and `scripts/dev`)."""

from __future__ import annotations

import asyncio
import dataclasses

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
    with_demo = with_demo or settings.seed_demo
    if with_demo:
        seed(settings)
    from backend.app import create_app

    app = create_app(settings)
    demo = " — demo logins: nq_staff / nq_admin / platform, password Zhilian-demo-2026" if with_demo else ""

    @app.after_server_start
    async def _banner(app: Sanic) -> None:
        url = settings.effective_public_url.rstrip("/")
        print(f"Zhilian is running at {url}  staff console: {url}/console/  phone app: {url}/m/  "
              f"(API docs: /docs){demo}", flush=True)

    app.run(host=settings.host, port=settings.port, workers=settings.workers, single_process=settings.workers == 1,
            access_log=False, motd=False)
    return 0


def seed(settings: Settings) -> None:
    from backend import db
    from backend.app import build_cipher
    from backend.audit.service import ensure_head
    from backend.demo import seed_demo

    async def run() -> dict[str, int]:
        await db.init(settings, run_migrations=settings.auto_migrate)
        try:
            await ensure_head()
            return await seed_demo(cipher=build_cipher(settings))
        finally:
            await db.close()

    counts = asyncio.run(run())
    print(f"demo data ready: 南桥社区, {counts['created']} residents created, {counts['unchanged'] + counts['updated']} already there",
          flush=True)
