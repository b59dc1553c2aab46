"""HTTP routes for signing in and out. Rules live in `auth.service`."""

from __future__ import annotations

from sanic import Blueprint, Request, json

from backend.auth import schemas, service
from backend.auth.guards import ALL_STAFF, actor_of, authenticated
from backend.auth.models import AppUser, StaffUser
from backend.http import validated_body

bp = Blueprint("auth", url_prefix="/api/auth")


def _staff_view(user: StaffUser) -> dict:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "role": str(user.role),
        "community_id": user.community_id,  # type: ignore[attr-defined]
        "district": user.district,
        "department_id": user.department_id,  # type: ignore[attr-defined]
        "totp_enabled": user.totp_enabled,
    }


@bp.post("/staff/login")
@validated_body(schemas.StaffLogin)
async def staff_login(request: Request, body: schemas.StaffLogin):
    ctx = request.app.ctx
    pair = await service.staff_login(
        username=body.username, password=body.password, totp_code=body.totp_code, actor=actor_of(request),
        settings=ctx.settings, cache=ctx.cache, cipher=ctx.cipher,
    )
    user = await StaffUser.get(id=pair.principal.user_id)
    return json({**pair.as_dict(), "user": _staff_view(user)})


@bp.post("/refresh")
@validated_body(schemas.RefreshRequest)
async def refresh(request: Request, body: schemas.RefreshRequest):
    pair = await service.refresh(refresh_token=body.refresh_token, settings=request.app.ctx.settings)
    return json(pair.as_dict())


@bp.post("/logout")
@authenticated(kinds=("staff", "app"))
async def logout(request: Request):
    body = schemas.LogoutRequest.model_validate(request.json or {}) if request.body else schemas.LogoutRequest()
    await service.logout(principal=request.ctx.principal, refresh_token=body.refresh_token, cache=request.app.ctx.cache)
    return json({"ok": True})


@bp.get("/me")
@authenticated(kinds=("staff", "app"))
async def me(request: Request):
    principal = request.ctx.principal
    if principal.kind == "staff":
        return json({"kind": "staff", "user": _staff_view(await StaffUser.get(id=principal.user_id))})
    user = await AppUser.get(id=principal.user_id)
    return json({"kind": "app", "user": {"id": user.id, "resident_id": user.resident_id}})  # type: ignore[attr-defined]


@bp.post("/staff/totp/setup")
@authenticated(roles=ALL_STAFF)
async def totp_setup(request: Request):
    uri = await service.totp_setup(user_id=request.ctx.principal.user_id, cipher=request.app.ctx.cipher)
    return json({"otpauth_uri": uri})


@bp.post("/staff/totp/confirm")
@authenticated(roles=ALL_STAFF)
@validated_body(schemas.TotpConfirm)
async def totp_confirm(request: Request, body: schemas.TotpConfirm):
    await service.totp_confirm(
        user_id=request.ctx.principal.user_id, code=body.code, cipher=request.app.ctx.cipher, actor=actor_of(request)
    )
    return json({"totp_enabled": True})


@bp.post("/app/otp")
@validated_body(schemas.OtpRequest)
async def request_otp(request: Request, body: schemas.OtpRequest):
    ctx = request.app.ctx
    ttl = await service.request_otp(
        phone=body.phone, actor=actor_of(request), settings=ctx.settings, cache=ctx.cache, cipher=ctx.cipher,
        sender=ctx.sender,
    )
    return json({"sent": True, "expires_in": ttl, "message": "验证码已发送，请查看短信"})


@bp.post("/app/login")
@validated_body(schemas.OtpLogin)
async def app_login(request: Request, body: schemas.OtpLogin):
    ctx = request.app.ctx
    pair, user = await service.login_with_otp(
        phone=body.phone, code=body.code, actor=actor_of(request), settings=ctx.settings, cache=ctx.cache,
        cipher=ctx.cipher,
    )
    return json({**pair.as_dict(), "user": {"id": user.id, "resident_id": user.resident_id}})  # type: ignore[attr-defined]
