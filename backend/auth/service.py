"""Signing in and out: staff passwords (+ TOTP), app users by phone one-time code, token rotation."""

from __future__ import annotations

import asyncio
import contextlib
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
from backend.auth import sessions
from backend.auth.models import AppUser, RefreshToken, Role, StaffUser
from backend.auth.passwords import hash_password, verify_password
from backend.auth.scope import visible_community_ids
from backend.auth.tokens import (
    Principal,
    access_jti,
    hash_refresh_token,
    issue_access_token,
    new_refresh_token,
    successor_refresh_token,
)
from backend.cache import Cache
from backend.errors import (
    ApiError,
    Conflict,
    Forbidden,
    NotFoundError,
    RateLimited,
    Unauthorized,
    ValidationFailed,
)
from backend.notify.service import PHONE_PURPOSE, MessageSender
from backend.residents.models import Community, Resident
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


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def _claims_of(kind: str, user_id: int) -> dict[str, Any] | None:
    """What an access token says about an active account (None when it is disabled or gone)."""
    if kind == "staff":
        user = await StaffUser.get_or_none(id=user_id, is_active=True)
        if user is None:
            return None
        return {"role": str(user.role), "community_id": user.community_id,  # type: ignore[attr-defined]
                "district": user.district, "department_id": user.department_id}  # type: ignore[attr-defined]
    app_user = await AppUser.get_or_none(id=user_id, is_active=True)
    return None if app_user is None else {"role": "app"}


def _pair(settings: Settings, *, kind: str, user_id: int, claims: dict[str, Any], refresh: str,
          family_id: uuid.UUID, issued_at: int) -> TokenPair:
    """The access token belonging to `refresh`: the same inputs always give the same token."""
    access, principal = issue_access_token(
        secret=settings.secret_key, ttl_s=settings.access_token_ttl_s, kind=kind, user_id=user_id,
        session_id=str(family_id), jti=access_jti(refresh, secret=settings.secret_key), issued_at=issued_at, **claims,
    )
    return TokenPair(access, refresh, settings.access_token_ttl_s, principal)


async def _issue(
    *, settings: Settings, kind: str, user_id: int, claims: dict[str, Any], family_id: uuid.UUID | None = None,
    refresh: str | None = None,
) -> TokenPair:
    """Store a refresh token (a new family on sign-in, the same family on rotation) and sign its access token."""
    family = family_id or uuid.uuid4()
    refresh = refresh or new_refresh_token()[0]
    now = datetime.now(UTC).replace(microsecond=0)  # whole seconds: the access token's iat is read back from it
    await RefreshToken.create(
        id=uuid.uuid4(), token_hash=hash_refresh_token(refresh), subject_kind=kind, subject_id=user_id,
        family_id=family, created_at=now, expires_at=now + timedelta(seconds=settings.refresh_token_ttl_s),
    )
    return _pair(settings, kind=kind, user_id=user_id, claims=claims, refresh=refresh, family_id=family,
                 issued_at=int(now.timestamp()))


async def _issue_for_staff(user: StaffUser, *, settings: Settings) -> TokenPair:
    claims = await _claims_of("staff", user.id)
    assert claims is not None  # callers checked the account is active
    return await _issue(settings=settings, kind="staff", user_id=user.id, claims=claims)


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


async def refresh(*, refresh_token: str, settings: Settings, cache: Cache) -> TokenPair:
    """Rotate a refresh token. Presenting a spent token revokes its whole family (theft signal).

    Except just after rotation: a client that sent the same token twice at once (several requests
    hit a 401 together) gets the same new pair again for `REFRESH_REUSE_GRACE_S` seconds.
    """
    now = datetime.now(UTC)
    record = await RefreshToken.get_or_none(token_hash=hash_refresh_token(refresh_token))
    if record is None or record.revoked_at is not None:
        raise Unauthorized("登录已失效，请重新登录", code="auth.refresh_invalid")
    if record.expires_at <= now:
        raise Unauthorized("登录已过期，请重新登录", code="auth.refresh_expired")
    successor = successor_refresh_token(refresh_token, secret=settings.secret_key)
    claimed = await RefreshToken.filter(id=record.id, used_at=None).update(used_at=now)
    if claimed == 0:
        repeated = await _repeat_within_grace(record, successor=successor, settings=settings, now=now)
        if repeated is not None:
            return repeated
        await sessions.revoke_families([record.family_id], cache=cache, ttl_s=settings.access_token_ttl_s)
        raise Unauthorized("登录凭证已被使用，为安全起见请重新登录", code="auth.refresh_reused")
    claims = await _claims_of(record.subject_kind, record.subject_id)
    if claims is None:
        raise Unauthorized("账号已停用", code="auth.account_disabled")
    return await _issue(settings=settings, kind=record.subject_kind, user_id=record.subject_id, claims=claims,
                        family_id=record.family_id, refresh=successor)


async def _repeat_within_grace(
    record: RefreshToken, *, successor: str, settings: Settings, now: datetime
) -> TokenPair | None:
    """The pair the first rotation of `record` answered, if that was moments ago and is still unspent."""
    spent = await RefreshToken.get_or_none(id=record.id)
    if spent is None or spent.used_at is None or spent.revoked_at is not None:
        return None
    if now - _aware(spent.used_at) > timedelta(seconds=settings.refresh_reuse_grace_s):
        return None
    successor_hash = hash_refresh_token(successor)
    issued = await RefreshToken.get_or_none(token_hash=successor_hash)
    for _ in range(40):  # the first rotation may still be writing it
        if issued is not None:
            break
        await asyncio.sleep(0.05)
        issued = await RefreshToken.get_or_none(token_hash=successor_hash)
    if issued is None or issued.used_at is not None or issued.revoked_at is not None:
        return None
    claims = await _claims_of(record.subject_kind, record.subject_id)
    if claims is None:
        raise Unauthorized("账号已停用", code="auth.account_disabled")
    return _pair(settings, kind=record.subject_kind, user_id=record.subject_id, claims=claims, refresh=successor,
                 family_id=issued.family_id, issued_at=int(_aware(issued.created_at).timestamp()))


async def logout(*, principal: Principal, refresh_token: str | None, cache: Cache, settings: Settings) -> None:
    """End the session: its family is revoked in the database, so every access token of it stops at once."""
    families: list[uuid.UUID] = []
    with contextlib.suppress(ValueError):
        families.append(uuid.UUID(principal.session_id))
    if refresh_token:
        record = await RefreshToken.get_or_none(token_hash=hash_refresh_token(refresh_token))
        if record and record.subject_kind == principal.kind and record.subject_id == principal.user_id:
            families.append(record.family_id)
    await sessions.revoke_families(families, cache=cache, ttl_s=settings.access_token_ttl_s)


# ---- staff accounts ----

COMMUNITY_ROLES = (Role.COMMUNITY_STAFF, Role.COMMUNITY_ADMIN)


async def create_staff(
    *, username: str, password: str, display_name: str, role: Role | str, community_id: int | None = None,
    district: str = "", department_id: int | None = None,
) -> StaffUser:
    """Create a staff account whose scope is set: an account that belongs nowhere is refused, never created.

    Community staff and admins need their community, district admins their district, auditors one
    of the two (what they may read follows from it; an empty scope would be a trap for every query).
    """
    role = Role(role)
    district = (district or "").strip()
    if role in COMMUNITY_ROLES and community_id is None:
        raise ValidationFailed("社区工作人员和社区管理员必须指定所属社区", code="staff.community_required",
                               field="community_id")
    if role == Role.DISTRICT_ADMIN and not district:
        raise ValidationFailed("区级管理员必须指定所属区", code="staff.district_required", field="district")
    if role == Role.AUDITOR and community_id is None and not district:
        raise ValidationFailed("审计员必须指定所属社区或区", code="staff.scope_required", field="community_id")
    if community_id is not None and not await Community.exists(id=community_id):
        raise ValidationFailed("没有这个社区", code="community.not_found", field="community_id")
    if await StaffUser.exists(username=username):
        raise Conflict("这个用户名已被使用", code="staff.username_taken", field="username")
    return await StaffUser.create(
        username=username, password_hash=await asyncio.to_thread(hash_password, password),
        display_name=display_name, role=role,
        community_id=community_id, district=district, department_id=department_id,
    )


async def _may_administer(admin: Principal, target: StaffUser) -> bool:
    """Platform admins reach everyone; district admins their district; community admins their community."""
    if admin.role == Role.PLATFORM_ADMIN:
        return True
    if target.role in COMMUNITY_ROLES:
        visible = await visible_community_ids(admin)
        return target.community_id is not None and (visible is None or target.community_id in visible)  # type: ignore[attr-defined]
    if admin.role == Role.DISTRICT_ADMIN and target.role == Role.DISTRICT_ADMIN:
        return bool(admin.district) and target.district == admin.district
    return False


async def administered_staff(admin: Principal) -> list[StaffUser]:
    """The accounts this admin may reset or disable (the caller's colleagues), by id."""
    if admin.role == Role.PLATFORM_ADMIN:
        return await StaffUser.all().order_by("id")
    visible = await visible_community_ids(admin) or []
    found = [u for u in await StaffUser.filter(role__in=list(COMMUNITY_ROLES), community_id__in=visible).order_by("id")]
    if admin.role == Role.DISTRICT_ADMIN and admin.district:
        found += await StaffUser.filter(role=Role.DISTRICT_ADMIN, district=admin.district).order_by("id")
    return sorted(found, key=lambda u: u.id)


async def _colleague_or_raise(admin: Principal, target_id: int) -> StaffUser:
    target = await StaffUser.get_or_none(id=target_id)
    if target is None or not await _may_administer(admin, target):
        raise NotFoundError("没有找到这位工作人员", code="staff.not_found")
    if target.id == admin.user_id:
        raise Conflict("不能对自己的账号执行此操作，请使用“我的账号”中的设置", code="staff.self")
    return target


async def set_staff_active(
    *, admin: Principal, target_id: int, active: bool, reason: str, actor: Actor, settings: Settings, cache: Cache,
) -> StaffUser:
    """Disable (every session ends at once) or re-enable a colleague's account; audited with the reason."""
    target = await _colleague_or_raise(admin, target_id)
    target.is_active = active
    await target.save(update_fields=["is_active"])
    revoked = 0
    if not active:
        revoked = await sessions.revoke_subject("staff", target.id, cache=cache, ttl_s=settings.access_token_ttl_s)
    await audit.record(actor=actor, action="auth.account_enabled" if active else "auth.account_disabled",
                       target_kind="staff", target_id=target.id, community_id=target.community_id,  # type: ignore[attr-defined]
                       details={"reason": reason, "sessions_revoked": revoked})
    return target


async def disable_staff_by_username(*, username: str, reason: str, settings: Settings, cache: Cache) -> StaffUser:
    """The operator's way (command line) to disable an account; audited as the system."""
    user = await StaffUser.get_or_none(username=username)
    if user is None:
        raise NotFoundError("没有这个用户名", code="staff.not_found")
    user.is_active = False
    await user.save(update_fields=["is_active"])
    revoked = await sessions.revoke_subject("staff", user.id, cache=cache, ttl_s=settings.access_token_ttl_s)
    await audit.record(actor=Actor("system", "cli", "-", ""), action="auth.account_disabled", target_kind="staff",
                       target_id=user.id, community_id=user.community_id,  # type: ignore[attr-defined]
                       details={"reason": reason, "sessions_revoked": revoked})
    return user


# ---- TOTP: enrol, change, remove (the last two prove both factors again) ----

async def _reauthenticate(
    user: StaffUser, *, password: str, totp_code: str | None, cipher: FieldCipher, cache: Cache, settings: Settings,
    actor: Actor,
) -> None:
    """Check the password, and the current TOTP code when it is on, before a change to how this account signs in.

    Failures count toward the same lock-out as sign-in, so an open session cannot be used to guess.
    """
    account_key = f"login:acct:{user.username.lower()}"
    blocked = await ratelimit.is_blocked(cache, account_key, limit=settings.login_max_per_account)
    if blocked:
        raise RateLimited("密码错误次数过多，账号已暂时锁定，请稍后再试", code="auth.locked", retry_after=blocked)
    password_ok = await asyncio.to_thread(verify_password, user.password_hash, password)
    code_ok = True
    if user.totp_enabled:
        secret = cipher.decrypt_text(user.totp_secret_cipher or "", purpose=TOTP_PURPOSE)
        code_ok = bool(totp_code) and pyotp.TOTP(secret).verify(totp_code or "", valid_window=1)
    if password_ok and code_ok:
        return
    await ratelimit.hit(cache, account_key, limit=10**6, window_s=settings.login_window_s)
    await audit.record(actor=actor, action="auth.reauth_failed", target_kind="staff", target_id=user.id,
                       details={"password_ok": password_ok, "totp_ok": code_ok})
    if not password_ok:
        raise Forbidden("当前密码不正确", code="auth.bad_credentials", field="password")
    raise Forbidden("动态验证码不正确", code="auth.totp_invalid", field="totp_code")


def _provisioning_uri(user: StaffUser, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name="智链 Zhilian")


async def totp_setup(*, user_id: int, cipher: FieldCipher) -> str:
    """Start TOTP enrolment: store a new secret (not yet enforced) and return its otpauth URI.

    Refused while TOTP is on: replacing the factor goes through `totp_reset`, which proves both.
    """
    user = await StaffUser.get(id=user_id)
    if user.totp_enabled:
        raise Conflict("动态验证码已启用。更换或关闭需要验证当前密码和动态验证码", code="auth.totp_already_enabled")
    secret = pyotp.random_base32()
    user.totp_secret_cipher = cipher.encrypt_text(secret, purpose=TOTP_PURPOSE)
    user.totp_pending_cipher = None
    await user.save(update_fields=["totp_secret_cipher", "totp_pending_cipher"])
    return _provisioning_uri(user, secret)


async def totp_reset(
    *, user_id: int, password: str, totp_code: str, cipher: FieldCipher, cache: Cache, settings: Settings,
    actor: Actor,
) -> str:
    """Start replacing the second factor (a new phone): the old one stays in force until the new one is confirmed."""
    user = await StaffUser.get(id=user_id)
    if not user.totp_enabled:
        raise Conflict("尚未启用动态验证码", code="auth.totp_not_enabled")
    await _reauthenticate(user, password=password, totp_code=totp_code, cipher=cipher, cache=cache,
                          settings=settings, actor=actor)
    secret = pyotp.random_base32()
    user.totp_pending_cipher = cipher.encrypt_text(secret, purpose=TOTP_PURPOSE)
    await user.save(update_fields=["totp_pending_cipher"])
    return _provisioning_uri(user, secret)


async def totp_confirm(*, user_id: int, code: str, cipher: FieldCipher, actor: Actor) -> None:
    """Prove the new authenticator works: turns TOTP on, or swaps in the replacement started by `totp_reset`."""
    user = await StaffUser.get(id=user_id)
    replacing = user.totp_enabled
    pending = user.totp_pending_cipher if replacing else user.totp_secret_cipher
    if not pending:
        raise ApiError("请先开始设置动态验证码", code="auth.totp_not_started", status=409)
    secret = cipher.decrypt_text(pending, purpose=TOTP_PURPOSE)
    if not pyotp.TOTP(secret).verify(code, valid_window=1):
        raise ValidationFailed("动态验证码不正确", code="auth.totp_invalid", field="code")
    user.totp_secret_cipher = pending
    user.totp_pending_cipher = None
    user.totp_enabled = True
    await user.save(update_fields=["totp_secret_cipher", "totp_pending_cipher", "totp_enabled"])
    await audit.record(actor=actor, action="auth.totp_reset" if replacing else "auth.totp_enabled",
                       target_kind="staff", target_id=user.id, community_id=user.community_id)  # type: ignore[attr-defined]


async def totp_disable(
    *, user_id: int, password: str, totp_code: str, cipher: FieldCipher, cache: Cache, settings: Settings,
    actor: Actor,
) -> None:
    """Turn TOTP off for one's own account: needs the password and a current code."""
    user = await StaffUser.get(id=user_id)
    if not user.totp_enabled:
        raise Conflict("尚未启用动态验证码", code="auth.totp_not_enabled")
    await _reauthenticate(user, password=password, totp_code=totp_code, cipher=cipher, cache=cache,
                          settings=settings, actor=actor)
    await _clear_totp(user)
    await audit.record(actor=actor, action="auth.totp_disabled", target_kind="staff", target_id=user.id,
                       community_id=user.community_id)  # type: ignore[attr-defined]


async def _clear_totp(user: StaffUser) -> None:
    user.totp_enabled = False
    user.totp_secret_cipher = None
    user.totp_pending_cipher = None
    await user.save(update_fields=["totp_enabled", "totp_secret_cipher", "totp_pending_cipher"])


async def admin_reset_totp(
    *, admin: Principal, target_id: int, password: str, totp_code: str | None, reason: str, cipher: FieldCipher,
    cache: Cache, settings: Settings, actor: Actor,
) -> StaffUser:
    """A colleague lost their authenticator: an admin (re-proving their own sign-in) removes it, with a reason.

    The colleague's sessions end; they sign in with the password and enrol a new authenticator.
    """
    target = await _colleague_or_raise(admin, target_id)
    admin_user = await StaffUser.get(id=admin.user_id)
    await _reauthenticate(admin_user, password=password, totp_code=totp_code, cipher=cipher, cache=cache,
                          settings=settings, actor=actor)
    was_enabled = target.totp_enabled
    await _clear_totp(target)
    revoked = await sessions.revoke_subject("staff", target.id, cache=cache, ttl_s=settings.access_token_ttl_s)
    await audit.record(actor=actor, action="auth.totp_reset_by_admin", target_kind="staff", target_id=target.id,
                       community_id=target.community_id,  # type: ignore[attr-defined]
                       details={"reason": reason, "was_enabled": was_enabled, "sessions_revoked": revoked})
    return target


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
    return await _issue(settings=settings, kind="app", user_id=user.id, claims={"role": "app"}), user
