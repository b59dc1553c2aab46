"""`/healthz` (process up), `/readyz` (database, cache and face models ready, chain not refusing), `/metrics`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from prometheus_client import CONTENT_TYPE_LATEST
from sanic import Blueprint, Request, json, raw
from sanic_ext import openapi
from tortoise.connection import get_connection

from backend.ops.readiness import RETRY_AFTER_S

bp = Blueprint("ops")
CHECK_TIMEOUT_S = 2.0


@bp.get("/healthz")
@openapi.summary("Process is up")
async def healthz(request: Request):
    return json({"status": "ok"})


@bp.get("/readyz")
@openapi.summary("Database and cache answer, face models in place, the chain does not refuse")
async def readyz(request: Request):
    """200 when this process can serve; 503 with the reason otherwise (while starting too), never 500."""
    state = request.app.ctx.readiness
    checks: dict[str, str] = {"startup": "ok" if state.ready else state.waiting_for}
    if state.ready:
        checks["database"] = await _check(_database_answers())
        checks["cache"] = await _check(request.app.ctx.cache.ping())
    checks["face_models"] = _models(request)
    chain_ready, checks["chain"] = await _chain(request)  # red only on a refusal: an outage waits in the outbox
    if all(value == "ok" for name, value in checks.items() if name != "chain") and chain_ready:
        return json({"status": "ready", "checks": checks})
    response = json({"error": {"code": "not_ready", "message": "服务暂不可用", "details": checks}}, status=503)
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


async def _chain(request: Request) -> tuple[bool, str]:
    from backend.credentials.chain_status import readiness as chain_readiness

    try:
        chain = await chain_readiness(request.app)
    except Exception as exc:  # readiness never fails with a 500
        return False, f"error: {type(exc).__name__}"
    return chain.ready, chain.detail


def _models(request: Request) -> str:
    try:
        problem = request.app.ctx.face.models_problem()
    except Exception as exc:  # readiness never fails with a 500
        return f"error: {type(exc).__name__}"
    return "ok" if problem is None else f"error: {problem}"


async def _database_answers() -> bool:
    await get_connection("default").execute_query("SELECT 1")
    return True


async def _check(probe: Awaitable[bool]) -> str:
    """"ok", or why not: a failure, a refusal or no answer within CHECK_TIMEOUT_S (a probe must not hang)."""
    try:
        return "ok" if await asyncio.wait_for(probe, CHECK_TIMEOUT_S) else "error"
    except TimeoutError:
        return "error: no answer"
    except Exception as exc:  # any driver failure means not ready
        return f"error: {type(exc).__name__}"


@bp.get("/metrics")
@openapi.exclude()
async def metrics(request: Request):
    return raw(request.app.ctx.metrics.render(), content_type=CONTENT_TYPE_LATEST)
