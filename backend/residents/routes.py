"""HTTP routes for communities, residents, consent and roster import (no rules here)."""

from __future__ import annotations

from sanic import Blueprint, Request, json, raw
from sanic_ext import openapi

from backend.audit import service as audit
from backend.auth.guards import RESIDENT_ADMINS, RESIDENT_MANAGERS, actor_of, authenticated
from backend.auth.models import Role
from backend.auth.scope import visible_community_ids, within
from backend.certification import enrolment
from backend.errors import ApiError, ValidationFailed
from backend.http import validated_body, validated_query
from backend.idempotency.http import idempotent
from backend.residents import bindings, moves, roster, schemas, service
from backend.residents.models import Community

bp = Blueprint("residents", url_prefix="/api")



async def _scope(request: Request) -> list[int] | None:
    return await visible_community_ids(request.ctx.principal)


async def _target_community(request: Request, requested: int | None) -> Community:
    """The community a write goes to: one's own, or (admins above a community) the one named."""
    principal = request.ctx.principal
    community_id = principal.community_id if requested is None else requested
    if community_id is None:
        raise ValidationFailed("请选择社区", code="community.required", field="community_id")
    return await service.get_community_or_raise(community_id=community_id, community_ids=await _scope(request))


async def _resident(request: Request, rid: int):
    return await service.get_resident_or_raise(resident_id=rid, community_ids=await _scope(request))


@bp.get("/communities")
@authenticated(roles=tuple(Role))
async def communities(request: Request):
    items = await service.list_communities(community_ids=await _scope(request))
    return json({"items": [
        {"id": c.id, "code": c.code, "name": c.name, "street": c.street, "district": c.district, "phone": c.phone}
        for c in items
    ]})


@bp.get("/departments")
@authenticated(roles=tuple(Role))
async def departments(request: Request):
    return json({"items": [{"id": d.id, "code": d.code, "name": d.name} for d in await service.list_departments()]})


@bp.get("/residents")
@authenticated(roles=RESIDENT_MANAGERS)
@validated_query(schemas.ResidentQuery)
async def list_residents(request: Request, query: schemas.ResidentQuery):
    scope = within(await _scope(request), query.community_id)
    cipher = request.app.ctx.cipher
    total, residents = await service.search_residents(
        community_ids=scope, cipher=cipher, q=query.q, id_suffix=query.id_suffix, status=query.status,
        tier=query.tier, page=query.page, size=query.size,
    )
    filters = query.model_dump(exclude_none=True)
    if query.q:
        filters["q"] = service.redacted_search(query.q)  # no whole ID or phone number in the audit trail
    await audit.record(
        actor=actor_of(request), action="resident.list", target_kind="resident",
        community_id=request.ctx.principal.community_id, details={"filters": filters, "returned": len(residents)},
    )
    enrolled = await enrolment.enrolled_among([r.id for r in residents])  # a column staff sort their work by
    return json({
        "total": total, "page": query.page, "size": query.size,
        "items": [{**service.summary_view(r, cipher), "face_enrolled": r.id in enrolled} for r in residents],
    })


@bp.post("/residents")
@authenticated(roles=RESIDENT_MANAGERS)
@idempotent
@validated_body(schemas.ResidentCreate)
async def create_resident(request: Request, body: schemas.ResidentCreate):
    community = await _target_community(request, body.community_id)
    resident = await service.create_resident(
        community=community, name=body.name, national_id=body.national_id, phone=body.phone,
        address=body.address, living_address=body.living_address, cipher=request.app.ctx.cipher,
    )
    await audit.record(
        actor=actor_of(request), action="resident.create", target_kind="resident", target_id=resident.id,
        community_id=community.id,
    )
    return json(service.detail_view(resident, request.app.ctx.cipher), status=201)


MOVE_RESOLVERS = (Role.DISTRICT_ADMIN, Role.PLATFORM_ADMIN)  # they see both communities of a move


@bp.get("/residents/moves")
@authenticated(roles=MOVE_RESOLVERS)
async def pending_moves(request: Request):
    """People registered in more than one of the caller's communities, for the district to resolve."""
    groups = await moves.pending_moves(community_ids=await _scope(request))
    await audit.record(
        actor=actor_of(request), action="resident.moves", target_kind="resident",
        community_id=request.ctx.principal.community_id, details={"returned": len(groups)},
    )
    return json({"items": [moves.move_view(g, request.app.ctx.cipher) for g in groups]})


@bp.post("/residents/moves")
@authenticated(roles=MOVE_RESOLVERS)
@idempotent
@validated_body(schemas.MoveResolve)
async def resolve_move(request: Request, body: schemas.MoveResolve):
    scope = await _scope(request)
    keep = await service.get_resident_or_raise(resident_id=body.keep_resident_id, community_ids=scope)
    moved = await moves.resolve_move(keep=keep, community_ids=scope, reason=body.reason)
    await audit.record(
        actor=actor_of(request), action="resident.move_resolve", target_kind="resident", target_id=keep.id,
        community_id=keep.community_id,  # type: ignore[attr-defined]
        details={"moved": [rid for rid, _ in moved], "reason": body.reason},
    )
    for rid, community_id in moved:  # each community's own trail says why its resident left
        await audit.record(
            actor=actor_of(request), action="resident.moved_out", target_kind="resident", target_id=rid,
            community_id=community_id, details={"reason": body.reason},
        )
    return json({"kept": keep.id, "moved": [rid for rid, _ in moved]})


@bp.get("/residents/<rid:int>")
@authenticated(roles=RESIDENT_MANAGERS)
async def get_resident(request: Request, rid: int):
    resident = await _resident(request, rid)
    await audit.record(
        actor=actor_of(request), action="resident.read", target_kind="resident", target_id=resident.id,
        community_id=resident.community_id,  # type: ignore[attr-defined]
        details={"fields": ["national_id", "phone", "address"]},
    )
    return json(service.detail_view(resident, request.app.ctx.cipher))


@bp.patch("/residents/<rid:int>")
@authenticated(roles=RESIDENT_MANAGERS)
@validated_body(schemas.ResidentUpdate)
async def update_resident(request: Request, rid: int, body: schemas.ResidentUpdate):
    resident = await _resident(request, rid)
    changed = await service.update_resident(
        resident=resident, changes=body.model_dump(exclude_unset=True), cipher=request.app.ctx.cipher
    )
    await audit.record(
        actor=actor_of(request), action="resident.update", target_kind="resident", target_id=resident.id,
        community_id=resident.community_id, details={"changed": changed},  # type: ignore[attr-defined]
    )
    return json(service.detail_view(resident, request.app.ctx.cipher))


@bp.delete("/residents/<rid:int>")
@authenticated(roles=RESIDENT_ADMINS)
async def delete_resident(request: Request, rid: int):
    resident = await _resident(request, rid)
    community_id = resident.community_id  # type: ignore[attr-defined]
    await service.delete_resident(resident=resident)
    await audit.record(
        actor=actor_of(request), action="resident.delete", target_kind="resident", target_id=rid,
        community_id=community_id,
    )
    return json({"deleted": True})


@bp.get("/residents/<rid:int>/consents")
@authenticated(roles=RESIDENT_MANAGERS)
async def list_consents(request: Request, rid: int):
    resident = await _resident(request, rid)
    return json({"items": [service.consent_view(c) for c in await service.list_consents(resident=resident)]})


@bp.post("/residents/<rid:int>/consents")
@authenticated(roles=RESIDENT_MANAGERS)
@idempotent
@validated_body(schemas.ConsentCreate)
async def record_consent(request: Request, rid: int, body: schemas.ConsentCreate):
    resident = await _resident(request, rid)
    consent = await service.record_consent(
        resident=resident, kind=body.kind, version=body.version, method=body.method,
        witnessed_by_id=request.ctx.principal.user_id,
    )
    await audit.record(
        actor=actor_of(request), action="consent.record", target_kind="resident", target_id=resident.id,
        community_id=resident.community_id, details={"kind": body.kind, "version": body.version},  # type: ignore[attr-defined]
    )
    return json(service.consent_view(consent), status=201)


@bp.delete("/residents/<rid:int>/consents/<cid:int>")
@authenticated(roles=RESIDENT_MANAGERS)
async def revoke_consent(request: Request, rid: int, cid: int):
    resident = await _resident(request, rid)
    consent = await service.revoke_consent(resident=resident, consent_id=cid)
    await audit.record(
        actor=actor_of(request), action="consent.revoke", target_kind="resident", target_id=resident.id,
        community_id=resident.community_id, details={"consent_id": cid},  # type: ignore[attr-defined]
    )
    return json(service.consent_view(consent))


@bp.get("/residents/<rid:int>/helpers")
@authenticated(roles=RESIDENT_MANAGERS)
async def list_helpers(request: Request, rid: int):
    resident = await _resident(request, rid)
    items = await service.list_helpers(resident=resident)
    await audit.record(
        actor=actor_of(request), action="resident.helpers", target_kind="resident", target_id=resident.id,
        community_id=resident.community_id,  # type: ignore[attr-defined]
        details={"fields": ["helper_phone_masked"], "returned": len(items)},
    )
    return json({"items": [bindings.staff_view(b, request.app.ctx.cipher) for b in items]})


@bp.post("/residents/import")
@authenticated(roles=RESIDENT_MANAGERS)
@idempotent
@validated_query(schemas.ImportQuery)
@openapi.body({"multipart/form-data": {"file": {"type": "string", "format": "binary"}}})
async def import_roster(request: Request, query: schemas.ImportQuery):
    upload = request.files.get("file") if request.files else None
    if upload is None:
        raise ApiError("请选择要导入的名册文件（xlsx 或 csv）", code="roster.no_file", status=400, field="file")
    community = await _target_community(request, query.community_id)
    report = await service.import_roster(
        community=community, filename=upload.name or "roster", data=upload.body,
        commit=query.mode == "commit", cipher=request.app.ctx.cipher,
    )
    await audit.record(
        actor=actor_of(request), action=f"roster.{query.mode}", target_kind="community", target_id=community.id,
        community_id=community.id,
        details={k: v for k, v in report.as_dict().items() if k != "errors"} | {"error_count": len(report.errors)},
    )
    status = 200 if report.ok else 422
    body = report.as_dict()
    if not report.ok:
        body["error"] = {"code": "roster.invalid_rows", "message": f"名册有 {len(report.errors)} 处问题，未导入任何数据"}
    return json(body, status=status)


@bp.get("/residents/import/template")
@authenticated(roles=RESIDENT_MANAGERS)
async def roster_template(request: Request):
    data = roster.write_roster_xlsx([])
    return raw(
        data,
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": 'attachment; filename="roster-template.xlsx"'},
    )
