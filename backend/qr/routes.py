"""HTTP routes for personal QR codes, printable cards and scanning (no rules here)."""

from __future__ import annotations

from datetime import date

from sanic import Blueprint, Request, json, raw
from sanic.response import HTTPResponse

from backend.audit import service as audit
from backend.auth.guards import RESIDENT_MANAGERS, actor_of, authenticated
from backend.auth.scope import visible_community_ids
from backend.errors import NotFoundError, ValidationFailed
from backend.http import validated_body
from backend.qr import schemas, service
from backend.qr.images import CONTENT_TYPES, ImageKind, QrImageCache
from backend.qr.tokens import QrSigner
from backend.residents import bindings
from backend.residents import service as residents

bp = Blueprint("qr", url_prefix="/api")


def qr_signer(request: Request) -> QrSigner:
    """This app's token signer (built once from QR_SIGNING_KEY)."""
    ctx = request.app.ctx
    if getattr(ctx, "qr_signer", None) is None:
        ctx.qr_signer = QrSigner.from_secret(ctx.settings.qr_signing_key)
    return ctx.qr_signer


def _images(request: Request) -> QrImageCache:
    ctx = request.app.ctx
    if getattr(ctx, "qr_images", None) is None:
        ctx.qr_images = QrImageCache()
    return ctx.qr_images


def _public_url(request: Request) -> str:
    return request.app.ctx.settings.effective_public_url


async def _resident(request: Request, rid: int):
    scope = await visible_community_ids(request.ctx.principal)
    return await residents.get_resident_or_raise(resident_id=rid, community_ids=scope)


async def _image_response(request: Request, resident, kind: ImageKind) -> HTTPResponse:
    data = await service.image(
        resident=resident, kind=kind, signer=qr_signer(request), public_url=_public_url(request),
        images=_images(request),
    )
    return raw(data, content_type=CONTENT_TYPES[kind], headers={"Cache-Control": "private, no-store"})


# ---- staff ----

async def _staff_image(request: Request, rid: int, kind: ImageKind) -> HTTPResponse:
    resident = await _resident(request, rid)
    await audit.record(
        actor=actor_of(request), action="qr.read", target_kind="resident", target_id=resident.id,
        community_id=resident.community_id, details={"format": kind, "qr_version": resident.qr_version},  # type: ignore[attr-defined]
    )
    return await _image_response(request, resident, kind)


@bp.get("/residents/<rid:int>/qr.png")
@authenticated(roles=RESIDENT_MANAGERS)
async def staff_qr_png(request: Request, rid: int):
    return await _staff_image(request, rid, "png")


@bp.get("/residents/<rid:int>/qr.svg")
@authenticated(roles=RESIDENT_MANAGERS)
async def staff_qr_svg(request: Request, rid: int):
    return await _staff_image(request, rid, "svg")


@bp.post("/residents/<rid:int>/qr/rotate")
@authenticated(roles=RESIDENT_MANAGERS)
async def rotate_qr(request: Request, rid: int):
    resident = await _resident(request, rid)
    before = resident.qr_version
    resident = await service.rotate(resident=resident)
    await audit.record(
        actor=actor_of(request), action="qr.rotate", target_kind="resident", target_id=resident.id,
        community_id=resident.community_id,  # type: ignore[attr-defined]
        details={"from_version": before, "to_version": resident.qr_version},
    )
    return json({"resident_id": resident.id, "qr_version": resident.qr_version})


@bp.post("/residents/qr-cards")
@authenticated(roles=RESIDENT_MANAGERS)
@validated_body(schemas.CardsBody)
async def qr_cards(request: Request, body: schemas.CardsBody):
    principal = request.ctx.principal
    scope = await visible_community_ids(principal)
    community = None
    if body.resident_ids is None:
        community_id = body.community_id if body.community_id is not None else principal.community_id
        if community_id is None:
            raise ValidationFailed("请选择社区", code="community.required", field="community_id")
        community = await residents.get_community_or_raise(community_id=community_id, community_ids=scope)
    chosen = await service.residents_for_cards(community=community, resident_ids=body.resident_ids, community_ids=scope)
    pdf = await service.cards(residents_to_print=chosen, signer=qr_signer(request), public_url=_public_url(request))
    for community_id in sorted({r.community_id for r in chosen}):  # type: ignore[attr-defined]
        ids = [r.id for r in chosen if r.community_id == community_id]  # type: ignore[attr-defined]
        await audit.record(
            actor=actor_of(request), action="qr.cards", target_kind="community", target_id=community_id,
            community_id=community_id, details={"count": len(ids), "resident_ids": ids},
        )
    filename = f"qr-cards-{date.today().isoformat()}.pdf"
    return raw(pdf, content_type="application/pdf",
               headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


# ---- app users: the resident themself and approved helpers ----

async def _app_image(request: Request, rid: int, kind: ImageKind) -> HTTPResponse:
    if request.ctx.principal.kind == "staff":  # staff may use the app too, within their scope
        return await _staff_image(request, rid, kind)
    relation = await bindings.can_certify(app_user_id=request.ctx.principal.user_id, resident_id=rid)
    resident = await residents.get_resident(resident_id=rid, community_ids=None) if relation else None
    if resident is None:
        raise NotFoundError("没有找到这位居民", code="resident.not_found")
    await audit.record(
        actor=actor_of(request), action="qr.read", target_kind="resident", target_id=resident.id,
        community_id=resident.community_id, details={"format": kind, "as": relation},  # type: ignore[attr-defined]
    )
    return await _image_response(request, resident, kind)


@bp.get("/app/residents/<rid:int>/qr.png")
@authenticated(kinds=("app", "staff"), roles=RESIDENT_MANAGERS)
async def app_qr_png(request: Request, rid: int):
    return await _app_image(request, rid, "png")


@bp.get("/app/residents/<rid:int>/qr.svg")
@authenticated(kinds=("app", "staff"), roles=RESIDENT_MANAGERS)
async def app_qr_svg(request: Request, rid: int):
    return await _app_image(request, rid, "svg")


@bp.post("/app/scan")
@authenticated(kinds=("app", "staff"), roles=RESIDENT_MANAGERS)
@validated_body(schemas.ScanBody)
async def scan(request: Request, body: schemas.ScanBody):
    principal = request.ctx.principal
    scope = await visible_community_ids(principal) if principal.kind == "staff" else []
    try:
        resident, view = await service.scan(
            token=body.token, principal=principal, signer=qr_signer(request), cipher=request.app.ctx.cipher,
            cache=request.app.ctx.cache, staff_community_ids=scope,
        )
    except (service.QrInvalid, service.QrRotated) as refused:  # a forged or withdrawn card is worth a record
        await audit.record(actor=actor_of(request), action="qr.scan_refused", target_kind="qr",
                           details={"code": refused.code})
        raise
    await audit.record(
        actor=actor_of(request), action="qr.scan", target_kind="resident", target_id=resident.id,
        community_id=resident.community_id,  # type: ignore[attr-defined]
        details={"as": view.get("relation", "stranger")},
    )
    return json(view)
