"""HTTP routes of department exports: staff generate, officers of that department download (audited)."""

from __future__ import annotations

from sanic import Blueprint, Request, json, raw
from sanic.response import HTTPResponse
from sanic_ext import openapi

from backend import ratelimit
from backend.audit import service as audit
from backend.auth.guards import actor_of, authenticated
from backend.auth.models import Role
from backend.auth.scope import visible_community_ids
from backend.certification.periods import get_period_or_raise
from backend.errors import NotFoundError
from backend.exports import schemas, service, verification
from backend.http import validated_body, validated_query
from backend.idempotency.http import idempotent
from backend.residents.models import Department

bp = Blueprint("exports", url_prefix="/api/exports")

GENERATORS = (Role.COMMUNITY_STAFF, Role.COMMUNITY_ADMIN, Role.PLATFORM_ADMIN)
READERS = (*GENERATORS, Role.DISTRICT_ADMIN, Role.DEPARTMENT_OFFICER, Role.AUDITOR)
VERIFY_PER_MINUTE = 20  # whole-bundle verifications per staff user per minute (each is seconds of CPU)


@bp.post("")
@authenticated(roles=GENERATORS)
@idempotent
@validated_body(schemas.CreateExport)
async def create(request: Request, body: schemas.CreateExport) -> HTTPResponse:
    """Generate the xlsx, JSON bundle and PDF of a period for a department; anchoring follows."""
    principal = request.ctx.principal
    period = await get_period_or_raise(period_id=body.period_id, community_ids=await visible_community_ids(principal))
    department = await Department.get_or_none(code=body.department)
    if department is None:
        raise NotFoundError("没有这个部门", code="exports.unknown_department")
    chain = getattr(request.app.ctx, "chain", None)
    export = await service.generate(
        settings=request.app.ctx.settings, cipher=request.app.ctx.cipher, period=period, department=department,
        created_by=principal.user_id, trust=getattr(chain, "trust", None),
    )
    await audit.record(actor=actor_of(request), action="export.create", target_kind="export", target_id=str(export.id),
                       community_id=export.community_id,  # type: ignore[attr-defined]
                       details={"period_id": period.id, "department": department.code, "leaf_hash": export.leaf_hash})
    return json(service.view(export), status=201)


@bp.get("")
@authenticated(roles=READERS)
@validated_query(schemas.ExportQuery)
async def listing(request: Request, query: schemas.ExportQuery) -> HTTPResponse:
    """Exports the caller may see (officers: their department's only)."""
    rows = await service.search(principal=request.ctx.principal, period_id=query.period_id,
                                department=query.department)
    return json({"items": [service.view(e) for e in rows]})


@bp.get("/<export_id:uuid>")
@authenticated(roles=READERS)
async def detail(request: Request, export_id) -> HTTPResponse:
    export = await service.visible_or_raise(principal=request.ctx.principal, export_id=export_id)
    return json(service.view(export))


@bp.get("/<export_id:uuid>/files/<kind:str>")
@authenticated(roles=READERS)
async def download(request: Request, export_id, kind: str) -> HTTPResponse:
    """One file of the export; every download is audited."""
    if kind not in service.FILES:
        raise NotFoundError("没有这种文件", code="exports.unknown_file")
    export = await service.visible_or_raise(principal=request.ctx.principal, export_id=export_id)
    data = service.file_of(export, kind)
    await audit.record(actor=actor_of(request), action="export.download", target_kind="export",
                       target_id=str(export.id), community_id=export.community_id,  # type: ignore[attr-defined]
                       details={"file": kind, "sha256": service.sha256_hex(data),
                                "department_id": export.department_id})  # type: ignore[attr-defined]
    content_type, extension = service.FILES[kind]
    filename = f"export-{export.manifest['period']}-{export.manifest['department']}-{str(export.id)[:8]}.{extension}"
    return raw(data, content_type=content_type, headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "private, no-store",
        "X-Content-SHA256": service.sha256_hex(data),
    })


@bp.post("/verify")
@authenticated(roles=READERS)
@openapi.body({"multipart/form-data": {"bundle": {"type": "string", "format": "binary"},
                                       "manifest": {"type": "string", "format": "binary"},
                                       "xlsx": {"type": "string", "format": "binary"}}})
async def verify(request: Request) -> HTTPResponse:
    """Verify a downloaded bundle file (its signature, and the signed manifest and xlsx list when given)
    with this server's pinned trust roots.

    A tampered file is a 200 with ``verified: false`` and the failing checks named; only files
    that are not a bundle, a manifest or an xlsx at all are 4xx.
    """
    principal = request.ctx.principal
    await ratelimit.hit(request.app.ctx.cache, f"export-verify:{principal.user_id}", limit=VERIFY_PER_MINUTE,
                        window_s=60, message="核验过于频繁，请一分钟后再试")
    files = request.files or {}
    bundle, manifest, xlsx = files.get("bundle"), files.get("manifest"), files.get("xlsx")
    chain = getattr(request.app.ctx, "chain", None)
    outcome = await verification.verify_upload(
        settings=request.app.ctx.settings, principal=principal, server_trust=getattr(chain, "trust", None),
        bundle_bytes=bundle.body if bundle is not None else b"",
        manifest_bytes=manifest.body if manifest is not None else None,
        xlsx_bytes=xlsx.body if xlsx is not None else None,
    )
    await audit.record(actor=actor_of(request), action="export.verify", target_kind="export",
                       target_id=outcome.export_id, community_id=outcome.community_id,
                       details=outcome.audit_details())
    return json(outcome.body)
