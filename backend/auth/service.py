"""Signing in and out: staff passwords (+ TOTP), app users by phone one-time code, token rotation."""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp

from backend import ratelimit
from backend.audit import service as audit
from backend.audit.service import Actor
from backend.auth.guards import deny_key
from backend.auth.models import AppUser, RefreshToken, Role, StaffUser
from backend.auth.passwords import hash_password, verify_password
from backend.auth.tokens import Principal, hash_refresh_token, issue_access_token, new_refresh_token
from backend.cache import Cache
from backend.errors import ApiError, RateLimited, Unauthorized, ValidationFailed
from backend.notify.service import PHONE_PURPOSE, MessageSender
from backend.residents.models import Resident
from backend.security.fieldcrypt import FieldCipher
from backend.settings import Settings

MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
TOTP_PURPOSE = "totp_secret"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    principal: Principal

    def as_dict(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
        }


def normalise_phone(raw: str) -> str:
    phone = re.sub(r"[\s-]", "", raw or "")
    if phone.startswith("+86"):
        phone = phone[3:]
    if not MOBILE_RE.match(phone):
        raise ValidationFailed("请输入正确的 11 位手机号码", code="phone.invalid", field="phone")
    return phone


async def _issue(
    *, settings: Settings, kind: str, user_id: int, role: str, community_id: int | None = None,
    district: str = "", department_id: int | None = None, family_id: uuid.UUID | None = None,
) -> TokenPair:
    access, principal = issue_access_token(
        secret=settings.secret_key, ttl_s=settings.access_token_ttl_s, kind=kind, user_id=user_id, role=role,
        community_id=community_id, district=district, department_id=department_id,
    )
    refresh, refresh_hash = new_refresh_token()
    await RefreshToken.create(
        id=uuid.uuid4(), token_hash=refresh_hash, subject_kind=kind, subject_id=user_id,
        family_id=family_id or uuid.uuid4(),
        expires_at=datetime.now(UTC) + timedelta(seconds=settings.refresh_token_ttl_s),
    )
    return TokenPair(access, refresh, settings.access_token_ttl_s, principal)


async def _issue_for_staff(user: StaffUser, *, settings: Settings, family_id: uuid.UUID | None = None) -> TokenPair:
    return await _issue(
        settings=settings, kind="staff", user_id=user.id, role=str(user.role), community_id=user.community_id,  # type: ignore[attr-defined]
        district=user.district, department_id=user.department_id, family_id=family_id,  # type: ignore[attr-defined]
    )


async def staff_login(
    *, username: str, password: str, totp_code: str | None, actor: Actor, settings: Settings, cache: Cache,
    cipher: FieldCipher,
) -> TokenPair:
    """Check a staff password (and TOTP when enabled), rate-limited per account and per address."""
    await ratelimit.hit(cache, f"login:ip:{actor.ip}", limit=settings.login_max_per_ip, window_s=settings.login_window_s)
    account_key = f"login:acct:{username.lower()}"
    blocked = await ratelimit.is_blocked(cache, account_key, limit=settings.login_max_per_account)
    if blocked:
        raise RateLimited("密码错误次数过多，账号已暂时锁定，请稍后再试", code="auth.locked", retry_after=blocked)
    user = await StaffUser.get_or_none(username=username)
    # argon2 is deliberately slow (~100 ms of CPU): keep it off the event loop
    password_ok = await asyncio.to_thread(verify_password, user.password_hash if user else None, password)
    if user is None or not password_ok or not user.is_active:
        await ratelimit.hit(cache, account_key, limit=10**6, window_s=settings.login_window_s)
        await audit.record(actor=actor, action="auth.login_failed", target_kind="staff", target_id=username[:64])
        raise Unauthorized("用户名或密码不正确", code="auth.bad_credentials")
    if user.totp_enabled:
        if not totp_code:
            raise Unauthorized("请输入动态验证码", code="auth.totp_required")
        secret = cipher.decrypt_text(user.totp_secret_cipher or "", purpose=TOTP_PURPOSE)
        if not pyotp.TOTP(secret).verify(totp_code, valid_window=1):
            await ratelimit.hit(cache, account_key, limit=10**6, window_s=settings.login_window_s)
            raise Unauthorized("动态验证码不正确", code="auth.totp_invalid")
    await ratelimit.reset(cache, account_key)
    user.last_login_at = datetime.now(UTC)
    await user.save(update_fields=["last_login_at"])
    await audit.record(
        actor=Actor("staff", str(user.id), actor.ip, actor.request_id), action="auth.login",
        target_kind="staff", target_id=user.id, community_id=user.community_id,  # type: ignore[attr-defined]
    )
    return await _issue_for_staff(user, settings=settings)


async def refresh(*, refresh_token: str, settings: Settings) -> TokenPair:
    """Rotate a refresh token. Presenting a spent token revokes its whole family (theft signal)."""
    now = datetime.now(UTC)
    record = await RefreshToken.get_or_none(token_hash=hash_refresh_token(refresh_token))
    if record is None or record.revoked_at is not None:
        raise Unauthorized("登录已失效，请重新登录", code="auth.refresh_invalid")
    if record.expires_at <= now:
        raise Unauthorized("登录已过期，请重新登录", code="auth.refresh_expired")
    claimed = await RefreshToken.filter(id=record.id, used_at=None).update(used_at=now)
    if claimed == 0:
        await RefreshToken.filter(family_id=record.family_id, revoked_at=None).update(revoked_at=now)
        raise Unauthorized("登录凭证已被使用，为安全起见请重新登录", code="auth.refresh_reused")
    if record.subject_kind == "staff":
        user = await StaffUser.get_or_none(id=record.subject_id, is_active=True)
        if user is None:
            raise Unauthorized("账号已停用", code="auth.account_disabled")
        return await _issue_for_staff(user, settings=settings, family_id=record.family_id)
    app_user = await AppUser.get_or_none(id=record.subject_id, is_active=True)
    if app_user is None:
        raise Unauthorized("账号已停用", code="auth.account_disabled")
    return await _issue(settings=settings, kind="app", user_id=app_user.id, role="app", family_id=record.family_id)


async def logout(*, principal: Principal, refresh_token: str | None, cache: Cache) -> None:
    """Deny the access token until it expires and revoke the refresh family."""
    remaining = max(1, principal.expires_at - int(datetime.now(UTC).timestamp()))
    await cache.set(deny_key(principal.jti), "1", ttl=remaining)
    if refresh_token:
        record = await RefreshToken.get_or_none(token_hash=hash_refresh_token(refresh_token))
        if record and record.subject_kind == principal.kind and record.subject_id == principal.user_id:
            await RefreshToken.filter(family_id=record.family_id, revoked_at=None).update(revoked_at=datetime.now(UTC))


# ---- staff accounts and TOTP ----

async def create_staff(
    *, username: str, password: str, display_name: str, role: Role, community_id: int | None = None,
    district: str = "", department_id: int | None = None,
) -> StaffUser:
    return await StaffUser.create(
        username=username, password_hash=await asyncio.to_thread(hash_password, password),
        display_name=display_name, role=role,
        community_id=community_id, district=district, department_id=department_id,
    )


async def totp_setup(*, user_id: int, cipher: FieldCipher) -> str:
    """Start TOTP enrolment: store a new secret (not yet enforced) and return its otpauth URI."""
    user = await StaffUser.get(id=user_id)
    secret = pyotp.random_base32()
    user.totp_secret_cipher = cipher.encrypt_text(secret, purpose=TOTP_PURPOSE)
    user.totp_enabled = False
    await user.save(update_fields=["totp_secret_cipher", "totp_enabled"])
    return pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name="智链 Zhilian")


async def totp_confirm(*, user_id: int, code: str, cipher: FieldCipher, actor: Actor) -> None:
    user = await StaffUser.get(id=user_id)
    if not user.totp_secret_cipher:
        raise ApiError("请先开始设置动态验证码", code="auth.totp_not_started", status=409)
    secret = cipher.decrypt_text(user.totp_secret_cipher, purpose=TOTP_PURPOSE)
    if not pyotp.TOTP(secret).verify(code, valid_window=1):
        raise ValidationFailed("动态验证码不正确", code="auth.totp_invalid", field="code")
    user.totp_enabled = True
    await user.save(update_fields=["totp_enabled"])
    await audit.record(actor=actor, action="auth.totp_enabled", target_kind="staff", target_id=user.id)


# ---- app users: phone + one-time code ----

def _otp_key(phone_index: str) -> str:
    return f"otp:{phone_index}"


async def request_otp(
    *, phone: str, actor: Actor, settings: Settings, cache: Cache, cipher: FieldCipher, sender: MessageSender
) -> int:
    """Send a 6-digit code; returns its lifetime in seconds."""
    phone = normalise_phone(phone)
    index = cipher.blind_index(phone, purpose=PHONE_PURPOSE)
    await ratelimit.hit(cache, f"otp:send:ip:{actor.ip}", limit=settings.otp_send_per_phone_per_hour * 6, window_s=3600)
    await ratelimit.hit(
        cache, f"otp:send:{index}", limit=settings.otp_send_per_phone_per_hour, window_s=3600,
        message="验证码发送太频繁，请一小时后再试",
    )
    code = f"{secrets.randbelow(10**6):06d}"
    digest = hmac.new(settings.secret_key.encode(), f"{index}:{code}".encode(), "sha256").hexdigest()
    await cache.set(_otp_key(index), json.dumps({"h": digest}), ttl=settings.otp_ttl_s)
    await cache.delete(f"otp:att:{index}")
    await sender.send(phone=phone, template="login_code", params={"code": code, "minutes": str(settings.otp_ttl_s // 60)})
    return settings.otp_ttl_s


async def login_with_otp(
    *, phone: str, code: str, actor: Actor, settings: Settings, cache: Cache, cipher: FieldCipher
) -> tuple[TokenPair, AppUser]:
    """Check the code (limited attempts, single use) and sign the phone's owner in."""
    phone = normalise_phone(phone)
    index = cipher.blind_index(phone, purpose=PHONE_PURPOSE)
    attempts = await cache.incr(f"otp:att:{index}", ttl=settings.otp_ttl_s)
    if attempts > settings.otp_max_attempts:
        await cache.delete(_otp_key(index))
        raise RateLimited("验证码错误次数过多，请重新获取验证码", code="otp.too_many_attempts", retry_after=60)
    stored = await cache.get(_otp_key(index))
    if stored is None:
        raise ApiError("验证码已过期，请重新获取", code="otp.expired", status=400)
    expected = json.loads(stored)["h"]
    given = hmac.new(settings.secret_key.encode(), f"{index}:{code.strip()}".encode(), "sha256").hexdigest()
    if not hmac.compare_digest(expected, given):
        left = settings.otp_max_attempts - attempts
        raise ApiError(f"验证码不正确，还可以再试 {left} 次", code="otp.wrong", status=400, field="code")
    if await cache.pop(_otp_key(index)) is None:  # another request consumed it first
        raise ApiError("验证码已使用，请重新获取", code="otp.expired", status=400)
    await cache.delete(f"otp:att:{index}")
    user = await AppUser.get_or_none(phone_index=index)
    if user is None:
        resident = await Resident.filter(phone_index=index).first()
        user = await AppUser.create(
            phone_cipher=cipher.encrypt_text(phone, purpose=PHONE_PURPOSE), phone_index=index,
            resident=resident,
        )
    if not user.is_active:
        raise Unauthorized("账号已停用，请联系社区", code="auth.account_disabled")
    user.last_login_at = datetime.now(UTC)
    await user.save(update_fields=["last_login_at"])
    await audit.record(
        actor=Actor("app", str(user.id), actor.ip, actor.request_id), action="auth.app_login",
        target_kind="app_user", target_id=user.id,
    )
    return await _issue(settings=settings, kind="app", user_id=user.id, role="app"), user
