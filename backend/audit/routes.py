"""HTTP routes to read the audit trail and check that nobody altered it."""

from __future__ import annotations

from datetime import datetime

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
    since: datetime | None = Field(default=None, description="events at or after this time (ISO 8601)")
    until: datetime | None = Field(default=None, description="events at or before this time (ISO 8601)")
    page: int = Field(default=1, ge=1)
    size: int = Field(default=50, ge=1, le=500)


@bp.get("/events")
@authenticated(roles=AUDIT_READERS)
@validated_query(AuditQuery)
async def events(request: Request, query: AuditQuery):
    total, items = await service.search(
        community_ids=await visible_community_ids(request.ctx.principal), **query.model_dump()
    )
    names = await service.staff_names(items)
    return json({"total": total, "items": [service.to_dict(e, names) for e in items]})


@bp.get("/verify")
@authenticated(roles=AUDIT_READERS)
async def verify(request: Request):
    """Recompute the whole chain; any edited, removed or reordered event is reported."""
    result = await service.verify_chain()
    chain = getattr(request.app.ctx, "chain", None)
    anchored = await service.anchored_head(trust=getattr(chain, "trust", None))
    await service.record(actor=actor_of(request), action="audit.verify", details={"ok": result.ok})
    return json({
        "ok": result.ok, "checked": result.checked, "first_bad_event_id": result.first_bad_event_id,
        "reason": result.reason, "message": service.describe(result), "head_hash": result.head_hash,
        "anchored_head": anchored,
    })
