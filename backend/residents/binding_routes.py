"""HTTP routes for helper bindings: requests and decisions in the app, decisions by staff (no rules here)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from sanic import Blueprint, Request, json

from backend.audit import service as audit
from backend.auth.guards import RESIDENT_MANAGERS, actor_of, authenticated
from backend.auth.scope import visible_community_ids
from backend.http import Schema, validated_body
from backend.idempotency.http import idempotent
from backend.qr import service as qr_service
from backend.qr.routes import qr_signer
from backend.residents import bindings
from backend.residents import service as residents
from backend.residents.models import HelperBinding

bp = Blueprint("helper_bindings", url_prefix="/api")

RelationCode = Literal["child", "spouse", "relative", "neighbour", "grid_worker", "other"]


class BindingRequest(Schema):
    token: str = Field(min_length=1, max_length=512, description="the scanned QR token (or the whole link)")
    relation: RelationCode = Field(description="子女 child · 配偶 spouse · 亲属 relative · 邻居 neighbour · 网格员 grid_worker · 其他 other")


async def _audit(request: Request, action: str, binding: HelperBinding, community_id: int | None, **details):
    await audit.record(
        actor=actor_of(request), action=action, target_kind="helper_binding", target_id=binding.id,
        community_id=community_id,
        details={"resident_id": binding.resident_id, "helper_id": binding.helper_id,  # type: ignore[attr-defined]
                 "relation": binding.relation, "status": str(binding.status), **details},
    )


# ---- app: helpers and elders ----

@bp.get("/app/bindings/relations")
async def relations(request: Request):
    return json({"items": [{"code": code, "label": label} for code, label in bindings.RELATION_LABELS.items()]})


@bp.post("/app/bindings")
@authenticated(kinds=("app",))
@idempotent
@validated_body(BindingRequest)
async def request_binding(request: Request, body: BindingRequest):
    resident = await qr_service.resolve_token(token=body.token, signer=qr_signer(request))
    binding = await bindings.request_binding(
        resident=resident, helper_id=request.ctx.principal.user_id, relation=body.relation,
        cache=request.app.ctx.cache, cipher=request.app.ctx.cipher,
    )
    await _audit(request, "binding.request", binding, resident.community_id)  # type: ignore[attr-defined]
    return json(bindings.binding_view(binding), status=201)


@bp.get("/app/bindings")
@authenticated(kinds=("app",))
async def list_bindings(request: Request):
    as_helper, as_elder = await bindings.list_for_app_user(app_user_id=request.ctx.principal.user_id)
    cipher = request.app.ctx.cipher
    return json({
        "as_helper": [bindings.helper_side_view(b) for b in as_helper],
        "as_resident": [bindings.elder_side_view(b, cipher) for b in as_elder],
    })


async def _elder_decides(request: Request, bid: int, approve: bool):
    binding = await bindings.get_for_elder_or_raise(binding_id=bid, app_user_id=request.ctx.principal.user_id)
    binding = await bindings.decide(binding=binding, approve=approve, decided_by="resident",
                                    cipher=request.app.ctx.cipher)
    await _audit(request, "binding.approve" if approve else "binding.reject", binding,
                 binding.resident.community_id, by="resident")  # type: ignore[attr-defined]
    return json(bindings.binding_view(binding))


@bp.post("/app/bindings/<bid:int>/approve")
@authenticated(kinds=("app",))
async def elder_approve(request: Request, bid: int):
    return await _elder_decides(request, bid, True)


@bp.post("/app/bindings/<bid:int>/reject")
@authenticated(kinds=("app",))
async def elder_reject(request: Request, bid: int):
    return await _elder_decides(request, bid, False)


@bp.post("/app/bindings/<bid:int>/revoke")
@authenticated(kinds=("app",))
async def app_revoke(request: Request, bid: int):
    user_id = request.ctx.principal.user_id
    binding = await bindings.get_for_party_or_raise(binding_id=bid, app_user_id=user_id)
    by = bindings.party_of(binding, user_id)
    binding = await bindings.revoke(binding=binding, by=by, cipher=request.app.ctx.cipher)
    await _audit(request, "binding.revoke", binding, binding.resident.community_id, by=by)  # type: ignore[attr-defined]
    return json(bindings.binding_view(binding))


# ---- staff console ----

async def _staff_binding(request: Request, rid: int, bid: int) -> HelperBinding:
    scope = await visible_community_ids(request.ctx.principal)
    resident = await residents.get_resident_or_raise(resident_id=rid, community_ids=scope)
    return await bindings.get_for_resident_or_raise(binding_id=bid, resident=resident)


async def _staff_decides(request: Request, rid: int, bid: int, approve: bool):
    binding = await _staff_binding(request, rid, bid)
    by = f"staff:{request.ctx.principal.user_id}"
    binding = await bindings.decide(binding=binding, approve=approve, decided_by=by, cipher=request.app.ctx.cipher)
    await _audit(request, "binding.approve" if approve else "binding.reject", binding,
                 binding.resident.community_id, by=by)  # type: ignore[attr-defined]
    return json(bindings.staff_view(binding, request.app.ctx.cipher))


@bp.post("/residents/<rid:int>/helpers/<bid:int>/approve")
@authenticated(roles=RESIDENT_MANAGERS)
async def staff_approve(request: Request, rid: int, bid: int):
    return await _staff_decides(request, rid, bid, True)


@bp.post("/residents/<rid:int>/helpers/<bid:int>/reject")
@authenticated(roles=RESIDENT_MANAGERS)
async def staff_reject(request: Request, rid: int, bid: int):
    return await _staff_decides(request, rid, bid, False)


@bp.post("/residents/<rid:int>/helpers/<bid:int>/revoke")
@authenticated(roles=RESIDENT_MANAGERS)
async def staff_revoke(request: Request, rid: int, bid: int):
    binding = await _staff_binding(request, rid, bid)
    by = f"staff:{request.ctx.principal.user_id}"
    binding = await bindings.revoke(binding=binding, by=by, cipher=request.app.ctx.cipher)
    await _audit(request, "binding.revoke", binding, binding.resident.community_id, by=by)  # type: ignore[attr-defined]
    return json(bindings.staff_view(binding, request.app.ctx.cipher))
