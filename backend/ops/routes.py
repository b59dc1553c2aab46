"""`/healthz` (process up), `/readyz` (database, cache and face models ready, chain not refusing), `/metrics`."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from sanic import Blueprint, Request, json, raw
from sanic_ext import openapi
from tortoise.connection import get_connection

bp = Blueprint("ops")


@bp.get("/healthz")
@openapi.summary("Process is up")
async def healthz(request: Request):
    return json({"status": "ok"})


@bp.get("/readyz")
@openapi.summary("Database and cache answer, face models in place, the chain does not refuse")
async def readyz(request: Request):
    from backend.credentials.chain_status import readiness as chain_readiness

    checks: dict[str, str] = {}
    try:
        await get_connection("default").execute_query("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # any driver failure means not ready
        checks["database"] = f"error: {type(exc).__name__}"
    checks["cache"] = "ok" if await request.app.ctx.cache.ping() else "error"
    models_problem = request.app.ctx.face.models_problem()
    checks["face_models"] = "ok" if models_problem is None else f"error: {models_problem}"
    chain = await chain_readiness(request.app)  # red only on a refusal: a chain outage waits in the outbox
    ready = all(value == "ok" for value in checks.values()) and chain.ready
    checks["chain"] = chain.detail
    if ready:
        return json({"status": "ready", "checks": checks})
    return json(
        {"error": {"code": "not_ready", "message": "服务暂不可用", "details": checks}}, status=503
    )


@bp.get("/metrics")
@openapi.exclude()
async def metrics(request: Request):
    return raw(request.app.ctx.metrics.render(), content_type=CONTENT_TYPE_LATEST)
