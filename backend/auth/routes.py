"""HTTP routes for signing in and out. Rules live in `auth.service`."""

from __future__ import annotations

from sanic import Blueprint, Request, json

from backend.auth import schemas, service
from backend.auth.guards import ALL_STAFF, RESIDENT_ADMINS, actor_of, authenticated
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


def _colleague_view(user: StaffUser) -> dict:
    return {**_staff_view(user), "is_active": user.is_active}


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
    ctx = request.app.ctx
    pair = await service.refresh(refresh_token=body.refresh_token, settings=ctx.settings, cache=ctx.cache)
    return json(pair.as_dict())


@bp.post("/logout")
@authenticated(kinds=("staff", "app"))
async def logout(request: Request):
    body = schemas.LogoutRequest.model_validate(request.json or {}) if request.body else schemas.LogoutRequest()
    ctx = request.app.ctx
    await service.logout(principal=request.ctx.principal, refresh_token=body.refresh_token, cache=ctx.cache,
                         settings=ctx.settings)
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


@bp.post("/staff/totp/reset")
@authenticated(roles=ALL_STAFF)
@validated_body(schemas.Reauthenticate)
async def totp_reset(request: Request, body: schemas.Reauthenticate):
    """Replace one's authenticator: the current password and code, then confirm a code from the new one."""
    ctx = request.app.ctx
    uri = await service.totp_reset(
        user_id=request.ctx.principal.user_id, password=body.password, totp_code=body.totp_code, cipher=ctx.cipher,
        cache=ctx.cache, settings=ctx.settings, actor=actor_of(request),
    )
    return json({"otpauth_uri": uri})


@bp.post("/staff/totp/disable")
@authenticated(roles=ALL_STAFF)
@validated_body(schemas.Reauthenticate)
async def totp_disable(request: Request, body: schemas.Reauthenticate):
    ctx = request.app.ctx
    await service.totp_disable(
        user_id=request.ctx.principal.user_id, password=body.password, totp_code=body.totp_code, cipher=ctx.cipher,
        cache=ctx.cache, settings=ctx.settings, actor=actor_of(request),
    )
    return json({"totp_enabled": False})


# ---- admins: colleagues' accounts ----

@bp.get("/staff")
@authenticated(roles=RESIDENT_ADMINS)
async def colleagues(request: Request):
    """The staff accounts the caller may administer (reset a lost authenticator, disable)."""
    return json({"items": [_colleague_view(u) for u in await service.administered_staff(request.ctx.principal)]})


@bp.post("/staff/<uid:int>/totp/reset")
@authenticated(roles=RESIDENT_ADMINS)
@validated_body(schemas.AdminTotpReset)
async def admin_totp_reset(request: Request, uid: int, body: schemas.AdminTotpReset):
    """Remove a locked-out colleague's authenticator (audited with the reason); their sessions end."""
    ctx = request.app.ctx
    user = await service.admin_reset_totp(
        admin=request.ctx.principal, target_id=uid, password=body.password, totp_code=body.totp_code,
        reason=body.reason, cipher=ctx.cipher, cache=ctx.cache, settings=ctx.settings, actor=actor_of(request),
    )
    return json(_colleague_view(user))


@bp.post("/staff/<uid:int>/active")
@authenticated(roles=RESIDENT_ADMINS)
@validated_body(schemas.AccountActive)
async def set_active(request: Request, uid: int, body: schemas.AccountActive):
    """Disable a colleague's account (their access tokens stop at once) or enable it again; audited."""
    ctx = request.app.ctx
    user = await service.set_staff_active(
        admin=request.ctx.principal, target_id=uid, active=body.active, reason=body.reason, actor=actor_of(request),
        settings=ctx.settings, cache=ctx.cache,
    )
    return json(_colleague_view(user))


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
