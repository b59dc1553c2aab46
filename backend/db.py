"""Tortoise ORM configuration and migrations.

One Tortoise app (`zhilian`) holds every domain's tables; the committed migrations live in
`backend/migrations/`. The embedded mode applies them on start-up; production runs
`python -m backend migrate` as a deploy step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tortoise import Tortoise
from tortoise.migrations.api import migrate as migrate_api

from backend.settings import Settings

APP_LABEL = "zhilian"

MODEL_MODULES = [
    "backend.residents.models",
    "backend.auth.models",
    "backend.audit.models",
    "backend.notify.models",
    "backend.outbox.models",
    "backend.idempotency.models",
    "backend.certification.models",
    "backend.oauth.models",
    "backend.credentials.models",
    "backend.exports.models",
    "backend.workorders.models",
]


def tortoise_url(database_url: str) -> str:
    """Accept the usual spellings of a PostgreSQL URL and hand Tortoise its asyncpg scheme."""
    for prefix in ("postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "asyncpg://" + database_url[len(prefix) :]
    return database_url


def tortoise_config(settings: Settings) -> dict[str, Any]:
    url = tortoise_url(settings.effective_database_url)
    if url.startswith("sqlite://"):
        Path(url[len("sqlite://") :]).parent.mkdir(parents=True, exist_ok=True)
    return {
        "connections": {"default": url},
        "apps": {
            APP_LABEL: {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "backend.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def is_sqlite(settings: Settings) -> bool:
    return tortoise_url(settings.effective_database_url).startswith("sqlite://")


async def migrate(settings: Settings) -> None:
    """Apply every committed migration not yet applied (idempotent)."""
    await migrate_api(config=tortoise_config(settings))


async def init(settings: Settings, *, run_migrations: bool) -> None:
    if run_migrations:
        await migrate(settings)
        await Tortoise.close_connections()
    await Tortoise.init(config=tortoise_config(settings), _enable_global_fallback=True)
    if is_sqlite(settings):
        from tortoise.connection import get_connection

        conn = get_connection("default")
        # WAL lets readers run beside the single writer; busy_timeout waits instead of failing.
        await conn.execute_script("PRAGMA journal_mode=WAL; PRAGMA busy_timeout=5000; PRAGMA foreign_keys=ON;")


def unavailable(exc: BaseException) -> bool:
    """True when `exc` means the database is not answering (down, restarting, refusing connections).

    Such failures are waited out (start-up) or retried promptly once it answers (the outbox),
    unlike errors in the query or the data.
    """
    import asyncpg

    return isinstance(exc, OSError | asyncpg.PostgresConnectionError | asyncpg.exceptions.OperatorInterventionError
                      | asyncpg.exceptions.InsufficientResourcesError | asyncpg.InterfaceError)


async def close() -> None:
    await Tortoise.close_connections()


# `tortoise -c backend.db.TORTOISE_ORM makemigrations` reads this.
TORTOISE_ORM = tortoise_config(Settings.from_env())
