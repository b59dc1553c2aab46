"""HTTP routes of credentials: DID documents, status lists, verification, the resident's credentials."""

from __future__ import annotations

from sanic import Blueprint, Request, json, raw
from sanic.response import HTTPResponse

from backend import ratelimit
from backend.audit import service as audit
from backend.auth.guards import ALL_STAFF, RESIDENT_MANAGERS, actor_of, authenticated
from backend.auth.scope import visible_community_ids
from backend.certification.sessions import resident_for_caller
from backend.credentials import chain_status, context, keys, schemas, service, status_list, token_status
from backend.credentials.did import DID_CONTEXTS
from backend.credentials.models import Credential
from backend.errors import NotFoundError
from backend.http import client_ip, validated_body, validated_query
from backend.residents.models import Community, Department

bp = Blueprint("credentials")

_CACHE_PUBLIC = {"Cache-Control": "public, max-age=60"}


def _settings(request: Request):
    return request.app.ctx.settings


def _trust(request: Request):
    chain = getattr(request.app.ctx, "chain", None)
    return getattr(chain, "trust", None)


@bp.get("/.well-known/did.json")
@bp.get("/did.json", name="platform_did_path")  # did:web with a path in PUBLIC_URL resolves to <path>/did.json
async def platform_did(request: Request) -> HTTPResponse:
    """The platform's did:web document: it points at each community's issuer DID."""
    settings = _settings(request)
    did = keys.platform_did(settings)
    communities = await Community.filter(issuer_keys__id__not_isnull=True).distinct().order_by("code")
    return json({
        "@context": list(DID_CONTEXTS),
        "id": did,
        "service": [
            {"id": f"{did}#community-{c.code}", "type": "LinkedDomains",
             "serviceEndpoint": f"{settings.effective_public_url}/communities/{c.code}/did.json"}
            for c in communities
        ],
    }, headers=_CACHE_PUBLIC)


@bp.get("/communities/<code:str>/did.json")
async def community_did(request: Request, code: str) -> HTTPResponse:
    """A community issuer's did:web document (Multikey assertion methods, rotated keys kept)."""
    community = await Community.get_or_none(code=code)
    if community is None:
        raise NotFoundError("没有这个社区", code="credentials.unknown_issuer")
    document = await keys.community_did_document(settings=_settings(request), community=community)
    return json(document, headers=_CACHE_PUBLIC)


@bp.get("/credentials/status/<code:str>/<number:int>/<purpose:str>")
async def status_list_credential(request: Request, code: str, number: int, purpose: str) -> HTTPResponse:
    """A signed BitstringStatusListCredential (revocation or suspension)."""
    community = await Community.get_or_none(code=code)
    if community is None or purpose not in status_list.PURPOSES or number < 0:
        raise NotFoundError("没有这个状态列表", code="credentials.unknown_status_list")
    document = await service.status_list_credential(
        settings=_settings(request), community=community, number=number, purpose=purpose
    )
    return json(document, headers={"Cache-Control": "public, max-age=30"})


@bp.get("/credentials/statuslists/<code:str>/<number:int>")
async def token_status_list(request: Request, code: str, number: int) -> HTTPResponse:
    """The IETF Status List Token (JWT) the SD-JWT VCs of a list pair point at."""
    community = await Community.get_or_none(code=code) if len(code) <= 32 and 0 <= number < 2**31 else None
    if community is None:
        raise NotFoundError("没有这个状态列表", code="credentials.unknown_status_list")
    token = await service.token_status_list(settings=_settings(request), community=community, number=number)
    return raw(token.encode(), content_type=token_status.MEDIA_TYPE,
               headers={"Cache-Control": f"public, max-age={min(token_status.TTL_S, 30)}"})


@bp.get(context.CONTEXT_PATH)
async def credential_context(request: Request) -> HTTPResponse:
    """The JSON-LD context defining the terms of our credentials (stable, versioned URL)."""
    document = context.context_document(_settings(request).effective_public_url)
    return json(document, content_type=context.MEDIA_TYPE, headers={"Cache-Control": "public, max-age=86400"})


@bp.post("/credentials/verify")
@validated_body(schemas.VerifyRequest)
async def verify(request: Request, body: schemas.VerifyRequest) -> HTTPResponse:
    """Verify a credential: issuer key, signature, status, and (when anchored) the chain proofs."""
    settings = _settings(request)
    await ratelimit.hit(request.app.ctx.cache, f"vc-verify:{client_ip(request)}",
                        limit=settings.credential_verify_per_minute, window_s=60)
    report = await service.verify_document(
        settings=_settings(request), document=body.credential, inclusion=body.inclusion, trust=_trust(request)
    )
    return json(report.as_dict())


@bp.get("/credentials/<credential_id:uuid>")
async def public_credential(request: Request, credential_id) -> HTTPResponse:
    """The credential behind a verifier QR code (pseudonymous: no name, no ID number)."""
    credential = await service.get_or_raise(credential_id=credential_id)
    return json({"credential": credential.document, "inclusion": credential.inclusion,
                 "leaf_hash": credential.leaf_hash})


@bp.get("/api/app/credentials")
@authenticated(kinds=("app",))
@validated_query(schemas.ResidentQuery)
async def app_credentials(request: Request, query: schemas.ResidentQuery) -> HTTPResponse:
    """The resident's credentials with a verifier QR payload (the resident or an approved helper)."""
    resident, _ = await resident_for_caller(principal=request.ctx.principal, resident_id=query.resident_id)
    rows = await Credential.filter(resident_id=resident.id).order_by("-issued_at")
    return json({"items": [service.view(c, _settings(request)) for c in rows]})


@bp.get("/api/app/credentials/<credential_id:uuid>/sd-jwt")
@authenticated(kinds=("app",))
@validated_query(schemas.ResidentQuery)
async def app_sd_jwt(request: Request, credential_id, query: schemas.ResidentQuery) -> HTTPResponse:
    """The SD-JWT VC of a credential (name and ID-number suffix separately disclosable)."""
    resident, _ = await resident_for_caller(principal=request.ctx.principal, resident_id=query.resident_id)
    credential = await service.get(credential_id=credential_id)
    if credential is None or credential.resident_id != resident.id:  # type: ignore[attr-defined]
        raise NotFoundError("没有找到这份凭证", code="credentials.not_found")
    token = await service.sd_jwt_for(settings=_settings(request), credential=credential,
                                     cipher=request.app.ctx.cipher)
    await audit.record(actor=actor_of(request), action="credential.sd_jwt", target_kind="credential",
                       target_id=str(credential.id), community_id=resident.community_id)  # type: ignore[attr-defined]
    return json({"sd_jwt": token, "typ": "dc+sd-jwt"})


@bp.get("/api/credentials")
@authenticated(roles=RESIDENT_MANAGERS)
@validated_query(schemas.StaffListQuery)
async def staff_list(request: Request, query: schemas.StaffListQuery) -> HTTPResponse:
    """Credentials of the caller's communities, by period and/or resident (newest first, at most 500)."""
    scope = await visible_community_ids(request.ctx.principal)
    rows = await service.search(community_ids=scope, period_id=query.period_id, resident_id=query.resident_id)
    return json({"items": [service.view(c, _settings(request)) for c in rows]})


@bp.post("/api/credentials/<credential_id:uuid>/status")
@authenticated(roles=RESIDENT_MANAGERS)
@validated_body(schemas.StatusChange)
async def change_status(request: Request, credential_id, body: schemas.StatusChange) -> HTTPResponse:
    """Revoke (final) or suspend / reinstate a credential of the caller's community."""
    credential = await service.get(credential_id=credential_id)
    scope = await visible_community_ids(request.ctx.principal)
    if credential is None or (scope is not None and credential.community_id not in scope):  # type: ignore[attr-defined]
        raise NotFoundError("没有找到这份凭证", code="credentials.not_found")
    credential = await service.set_status(credential=credential, purpose=body.purpose, value=body.value,
                                          reason=body.reason)
    await audit.record(actor=actor_of(request), action=f"credential.{body.purpose}", target_kind="credential",
                       target_id=str(credential.id), community_id=credential.community_id,  # type: ignore[attr-defined]
                       details={"value": body.value, "reason": body.reason})
    return json(service.view(credential, _settings(request)))


@bp.get("/api/chain/status")
@authenticated(roles=ALL_STAFF)
async def chain_state(request: Request) -> HTTPResponse:
    """The latest final checkpoint, the quorum and each department witness (503 when the chain is out of reach)."""
    names = {d.code: d.name for d in await Department.all()}
    state = await chain_status.status(chain=getattr(request.app.ctx, "chain", None), department_names=names)
    return json(state, headers={"Cache-Control": "no-store"})
