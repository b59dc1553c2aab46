"""HTTP routes to read the audit trail and check that nobody altered it."""

from __future__ import annotations

from pydantic import Field
from sanic import Blueprint, Request, json

from backend.audit import service
from backend.auth.guards import actor_of, authenticated
from backend.auth.models import Role
from backend.auth.scope import visible_community_ids
from backend.http import Schema, validated_query

bp = Blueprint("audit", url_prefix="/api/audit")

AUDIT_READERS = (Role.AUDITOR, Role.COMMUNITY_ADMIN, Role.DISTRICT_ADMIN, Role.PLATFORM_ADMIN)


class AuditQuery(Schema):
    action: str | None = Field(default=None, max_length=64)
    target_kind: str | None = Field(default=None, max_length=32)
    target_id: str | None = Field(default=None, max_length=64)
    actor_id: str | None = Field(default=None, max_length=64)
    page: int = Field(default=1, ge=1)
    size: int = Field(default=50, ge=1, le=500)


@bp.get("/events")
@authenticated(roles=AUDIT_READERS)
@validated_query(AuditQuery)
async def events(request: Request, query: AuditQuery):
    total, items = await service.search(
        community_ids=await visible_community_ids(request.ctx.principal), **query.model_dump()
    )
    return json({"total": total, "items": [service.to_dict(e) for e in items]})


@bp.get("/verify")
@authenticated(roles=AUDIT_READERS)
async def verify(request: Request):
    """Recompute the whole chain; any edited, removed or reordered event is reported."""
    result = await service.verify_chain()
    await service.record(actor=actor_of(request), action="audit.verify", details={"ok": result.ok})
    return json({
        "ok": result.ok, "checked": result.checked, "first_bad_event_id": result.first_bad_event_id,
        "reason": result.reason, "head_hash": result.head_hash,
    })
