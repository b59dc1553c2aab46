"""Routes for home visits, passive (无感) evidence, devices and reminders (rules in evidence/reminders)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import Field
from sanic import Blueprint, Request, json, raw
from sanic_ext import openapi

from backend.audit import service as audit
from backend.audit.service import Actor
from backend.auth.guards import RESIDENT_ADMINS, RESIDENT_MANAGERS, actor_of, authenticated
from backend.auth.scope import target_community_id, visible_community_ids
from backend.certification import evidence, periods, reminders
from backend.certification.records import certification_view
from backend.errors import ValidationFailed
from backend.http import Schema, validated_body, validated_query
from backend.idempotency.http import idempotent
from backend.residents import service as residents

bp = Blueprint("certification_evidence")



class DeviceCreate(Schema):
    name: str = Field(min_length=1, max_length=64)
    public_key: str = Field(min_length=40, max_length=64)
    community_id: int | None = None


class CommunityQuery(Schema):
    community_id: int | None = None


class VisitQuery(Schema):
    status: str = Field(default="pending", pattern=r"^(pending|confirmed)$")
    community_id: int | None = None
    page: int = Field(default=1, ge=1)
    size: int = Field(default=50, ge=1, le=200)


async def _scope(request: Request) -> list[int] | None:
    return await visible_community_ids(request.ctx.principal)


async def _community_id(request: Request, requested: int | None) -> int:
    return await target_community_id(request.ctx.principal, requested)


@bp.post("/api/residents/<rid:int>/home-visits")
@authenticated(roles=RESIDENT_MANAGERS)
@idempotent
@openapi.body({"multipart/form-data": {"photo": {"type": "string", "format": "binary"}, "note": {"type": "string"}}})
async def home_visit(request: Request, rid: int):
    resident = await residents.get_resident_or_raise(resident_id=rid, community_ids=await _scope(request))
    photo = request.files.get("photo") if request.files else None
    visit = await evidence.record_home_visit(
        resident=resident, staff_id=request.ctx.principal.user_id, photo=photo.body if photo else b"",
        note=(request.form.get("note") or "") if request.form else "", cipher=request.app.ctx.cipher,
    )
    await audit.record(actor=actor_of(request), action="visit.record", target_kind="resident", target_id=rid,
                       community_id=resident.community_id, details={"visit_id": visit.id})  # type: ignore[attr-defined]
    return json({"id": visit.id, "status": "awaiting_second_staff",
                 "message": "已记录上门情况，请另一位工作人员确认后完成认证"}, status=201)


@bp.get("/api/home-visits")
@authenticated(roles=RESIDENT_MANAGERS)
@validated_query(VisitQuery)
async def list_visits(request: Request, query: VisitQuery):
    """Home visits waiting for a second staff member (or already confirmed), in the caller's communities."""
    scope = await _scope(request)
    if query.community_id is not None:
        scope = [await _community_id(request, query.community_id)]
    total, visits = await evidence.list_visits(community_ids=scope, pending=query.status == "pending",
                                               page=query.page, size=query.size)
    await audit.record(actor=actor_of(request), action="visit.list", target_kind="home_visit",
                       community_id=query.community_id or request.ctx.principal.community_id,
                       details={"filters": query.model_dump(exclude_none=True), "returned": len(visits)})
    return json({"total": total, "items": await evidence.visit_views(visits, viewer_id=request.ctx.principal.user_id)})


@bp.get("/api/home-visits/<hid:int>/photo")
@authenticated(roles=RESIDENT_MANAGERS)
async def visit_photo(request: Request, hid: int):
    """The photo taken at the visit, for the second staff member to check before attesting (audited)."""
    visit = await evidence.get_visit_or_raise(visit_id=hid, community_ids=await _scope(request))
    data, content_type = evidence.visit_photo(visit, request.app.ctx.cipher)
    await audit.record(actor=actor_of(request), action="visit.view_photo", target_kind="resident",
                       target_id=visit.resident_id, community_id=visit.resident.community_id,  # type: ignore[attr-defined]
                       details={"visit_id": hid})
    return raw(data, content_type=content_type, headers={"Cache-Control": "no-store"})


@bp.post("/api/home-visits/<hid:int>/attest")
@authenticated(roles=RESIDENT_MANAGERS)
@idempotent
async def attest(request: Request, hid: int):
    visit = await evidence.get_visit_or_raise(visit_id=hid, community_ids=await _scope(request))
    recorded = await evidence.attest_home_visit(visit=visit, staff_id=request.ctx.principal.user_id)
    await audit.record(actor=actor_of(request), action="visit.attest", target_kind="resident",
                       target_id=visit.resident_id, community_id=visit.resident.community_id,  # type: ignore[attr-defined]
                       details={"visit_id": hid, "certification_id": recorded.certification.id})
    return json({"certification": certification_view(recorded.certification), "created": recorded.created})


@bp.post("/api/devices")
@authenticated(roles=RESIDENT_ADMINS)
@idempotent
@validated_body(DeviceCreate)
async def register_device(request: Request, body: DeviceCreate):
    community_id = await _community_id(request, body.community_id)
    device = await evidence.register_device(community_id=community_id, name=body.name, public_key=body.public_key,
                                            registered_by=request.ctx.principal.user_id)
    await audit.record(actor=actor_of(request), action="device.register", target_kind="device", target_id=device.id,
                       community_id=community_id, details={"name": device.name})
    return json({"id": device.id, "name": device.name, "community_id": community_id,
                 "registered_by": device.registered_by}, status=201)


@bp.post("/api/passive/sightings")
@openapi.parameter("X-Device-Id", int, location="header", required=True)
@openapi.parameter("X-Signature", str, location="header", required=True)
async def sighting(request: Request):
    """A registered device reports that it saw an enrolled resident (Ed25519-signed body)."""
    try:
        device_id = int(request.headers.get("x-device-id", ""))
    except ValueError:
        raise ValidationFailed("X-Device-Id header required", code="device.missing", field="X-Device-Id") from None
    seen = await evidence.record_sighting(
        device_id=device_id, signature_b64=request.headers.get("x-signature", ""), body=request.body or b"",
        min_score=request.app.ctx.settings.passive_min_score,
    )
    await audit.record(actor=Actor("device", str(device_id), request.remote_addr or "", request.ctx.request_id),
                       action="passive.sighting", target_kind="resident", target_id=seen.resident_id)  # type: ignore[attr-defined]
    return json({"accepted": True, "id": seen.id}, status=201)


@bp.get("/api/passive/candidates")
@authenticated(roles=RESIDENT_MANAGERS)
@validated_query(CommunityQuery)
async def candidates(request: Request, query: CommunityQuery):
    community_id = await _community_id(request, query.community_id)
    items = await evidence.passive_candidates(community_id=community_id,
                                              min_sightings=request.app.ctx.settings.passive_min_sightings)
    await audit.record(actor=actor_of(request), action="passive.list", target_kind="resident",
                       community_id=community_id, details={"returned": len(items)})
    return json({"items": items, "min_sightings": request.app.ctx.settings.passive_min_sightings})


@bp.post("/api/residents/<rid:int>/passive-confirm")
@authenticated(roles=RESIDENT_MANAGERS)
@idempotent
async def confirm_passive(request: Request, rid: int):
    resident = await residents.get_resident_or_raise(resident_id=rid, community_ids=await _scope(request))
    recorded = await evidence.confirm_passive(resident=resident, staff_id=request.ctx.principal.user_id,
                                              min_sightings=request.app.ctx.settings.passive_min_sightings)
    await audit.record(actor=actor_of(request), action="passive.confirm", target_kind="resident", target_id=rid,
                       community_id=resident.community_id)  # type: ignore[attr-defined]
    return json({"certification": certification_view(recorded.certification), "created": recorded.created})


@bp.post("/api/periods/<pid:int>/reminders")
@authenticated(roles=RESIDENT_MANAGERS)
async def send_reminders(request: Request, pid: int):
    period = await periods.get_period_or_raise(period_id=pid, community_ids=await _scope(request))
    result = await reminders.send_reminders(period=period, now=datetime.now(UTC), sender=request.app.ctx.sender,
                                            cipher=request.app.ctx.cipher, wechat=request.app.ctx.wechat)
    await audit.record(actor=actor_of(request), action="reminders.send", target_kind="period", target_id=pid,
                       community_id=period.community_id, details=result)  # type: ignore[attr-defined]
    return json(result)
