"""Rules of the OAuth provider: clients, pairwise subjects, consent, grants, codes and tokens.

No HTTP here, and no Authlib: `server.py` adapts Authlib's grant classes to these functions.
Single use is enforced in the database with conditional updates (`... WHERE used_at IS NULL`),
so two workers racing on one code or refresh token cannot both win; the loser's attempt is
treated as reuse and revokes the whole grant (RFC 9700 §4.13, §4.14; RFC 6749 §4.1.2).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from backend.audit import service as audit
from backend.audit.service import Actor
from backend.auth.models import AppUser
from backend.errors import NotFoundError, ValidationFailed
from backend.notify.service import PHONE_PURPOSE
from backend.oauth import claims
from backend.oauth.models import OAuthAuthorizationCode, OAuthClient, OAuthConsent, OAuthGrant, OAuthToken
from backend.residents.models import Resident
from backend.security.fieldcrypt import FieldCipher
from backend.security.masking import mask_phone
from backend.settings import Settings

CODE_TTL_S = 60
ID_TOKEN_TTL_S = 600

# Every scope the provider knows, with the words the consent screen shows the resident.
SCOPES: dict[str, str] = {
    "openid": "确认是您本人（不含姓名、电话）",
    "profile": "您的姓名和部分隐藏的手机号（如 138****5678）",
    "certification:read": "您本月和以往每月的认证情况及认证凭证",
    "certification:start": "从该网站直接打开智链的认证页面，为您开始认证",
}
GRANT_TYPES = ("authorization_code", "refresh_token")
ID_TOKEN_ALGS = ("ES256", "RS256")


def hash_secret(value: str) -> str:
    """SHA-256 of a high-entropy secret (client secret, code, refresh token): enough, and fast."""
    return hashlib.sha256(value.encode()).hexdigest()


def scope_list(scope: str | None) -> list[str]:
    return sorted(set((scope or "").split()))


def scope_text(scopes: list[str] | set[str]) -> str:
    return " ".join(sorted(set(scopes)))


def now_utc() -> datetime:
    return datetime.now(UTC)


# ---- clients ----

def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_redirect_uri(uri: str) -> str:
    """Absolute https URI (http only on loopback, RFC 8252 §7.3), no fragment, no wildcard."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host or parts.fragment or "*" in uri:
        raise ValidationFailed(f"回调地址无效：{uri}", code="oauth.redirect_uri_invalid", field="redirect_uris")
    if parts.scheme == "http" and not _is_loopback(host):
        raise ValidationFailed(
            f"回调地址必须使用 https：{uri}", code="oauth.redirect_uri_insecure", field="redirect_uris"
        )
    return uri


async def create_client(
    *, name: str, redirect_uris: list[str], scopes: list[str], confidential: bool, actor: Actor,
    sector_identifier: str | None = None, id_token_alg: str | None = None, id_token_algs: list[str] | None = None,
) -> tuple[OAuthClient, str | None]:
    """Register a portal; returns the client and, for confidential clients, its secret (shown once).

    `id_token_alg` is the client's ``id_token_signed_response_alg``; `id_token_algs` what the provider signs with.
    """
    if id_token_alg and id_token_alg not in (id_token_algs or ID_TOKEN_ALGS):
        raise ValidationFailed(f"不支持的 ID 令牌签名算法：{id_token_alg}", code="oauth.id_token_alg_invalid",
                               field="id_token_signed_response_alg")
    if not redirect_uris:
        raise ValidationFailed("至少需要一个回调地址", code="oauth.redirect_uri_missing", field="redirect_uris")
    uris = [validate_redirect_uri(uri.strip()) for uri in redirect_uris]
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValidationFailed(
            f"不支持的权限范围：{' '.join(unknown) or '（空）'}", code="oauth.scope_invalid", field="scopes"
        )
    hosts = {urlsplit(uri).hostname for uri in uris}
    if sector_identifier is None:
        if len(hosts) != 1:
            raise ValidationFailed(
                "回调地址分属多个域名时须指定 sector_identifier", code="oauth.sector_required",
                field="sector_identifier",
            )
        sector_identifier = hosts.pop() or ""
    secret = secrets.token_urlsafe(32) if confidential else None
    client = await OAuthClient.create(
        client_id="zl_" + secrets.token_urlsafe(16), name=name, secret_hash=hash_secret(secret) if secret else None,
        is_confidential=confidential, redirect_uris=uris, scopes=sorted(set(scopes)),
        sector_identifier=sector_identifier, created_by=f"{actor.kind}:{actor.id}",
        id_token_signed_response_alg=id_token_alg or "",
    )
    await audit.record(
        actor=actor, action="oauth.client_created", target_kind="oauth_client", target_id=client.client_id,
        details={"name": name, "redirect_uris": uris, "scopes": client.scopes, "confidential": confidential},
    )
    return client, secret


async def list_clients() -> list[OAuthClient]:
    return await OAuthClient.all().order_by("id")


async def get_client(*, client_id: str) -> OAuthClient | None:
    """The active client with this id, or None."""
    if not client_id or len(client_id) > 64:
        return None
    return await OAuthClient.get_or_none(client_id=client_id, is_active=True)


def client_view(client: OAuthClient) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "confidential": client.is_confidential,
        "redirect_uris": client.redirect_uris,
        "scopes": client.scopes,
        "sector_identifier": client.sector_identifier,
        "id_token_signed_response_alg": client.id_token_signed_response_alg or None,
        "token_endpoint_auth_method": "client_secret_basic" if client.is_confidential else "none",
        "created_at": client.created_at.isoformat(),
    }


# ---- pairwise subjects (OIDC Core §8.1) ----

def _pairwise_key(settings: Settings) -> bytes:
    if settings.oauth_pairwise_key:
        return settings.oauth_pairwise_key.encode()
    return hmac.new(settings.secret_key.encode(), b"zhilian/oauth/pairwise-subject/v1", "sha256").digest()


def pairwise_subject(*, settings: Settings, sector_identifier: str, app_user_id: int) -> str:
    """HMAC of the sector and the app user id: stable per portal, unlinkable across portals."""
    mac = hmac.new(_pairwise_key(settings), f"{sector_identifier}\x00{app_user_id}".encode(), "sha256").digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


# ---- consent ----

async def consent_covers(*, app_user_id: int, client: OAuthClient, scope: str) -> bool:
    """True when the user already agreed to every scope asked for."""
    consent = await OAuthConsent.get_or_none(app_user_id=app_user_id, client_id=client.id)
    return consent is not None and set(scope_list(scope)) <= set(scope_list(consent.scope))


async def grant_consent(*, app_user_id: int, client: OAuthClient, scope: str, actor: Actor) -> OAuthConsent:
    """Remember the user's agreement (adding to what they agreed before)."""
    consent = await OAuthConsent.get_or_none(app_user_id=app_user_id, client_id=client.id)
    if consent is None:
        consent = await OAuthConsent.create(
            app_user_id=app_user_id, client_id=client.id, scope=scope_text(scope_list(scope)), granted_at=now_utc()
        )
    else:
        consent.scope = scope_text(set(scope_list(consent.scope)) | set(scope_list(scope)))
        consent.granted_at = now_utc()
        await consent.save(update_fields=["scope", "granted_at"])
    await audit.record(
        actor=actor, action="oauth.consent_granted", target_kind="oauth_client", target_id=client.client_id,
        details={"app_user_id": app_user_id, "scope": consent.scope},
    )
    return consent


async def list_consents(*, app_user_id: int) -> list[OAuthConsent]:
    return await OAuthConsent.filter(app_user_id=app_user_id).select_related("client").order_by("-granted_at")


def consent_view(consent: OAuthConsent) -> dict[str, Any]:
    scopes = scope_list(consent.scope)
    return {
        "client_id": consent.client.client_id,
        "client_name": consent.client.name,
        "scopes": scopes,
        "scope_descriptions": [SCOPES.get(s, s) for s in scopes],
        "granted_at": consent.granted_at.isoformat(),
    }


async def revoke_consent(*, app_user_id: int, client_id: str, actor: Actor) -> int:
    """Withdraw consent and revoke every token the client holds for this user; returns grants revoked."""
    client = await OAuthClient.get_or_none(client_id=client_id)
    consent = await OAuthConsent.get_or_none(app_user_id=app_user_id, client_id=client.id) if client else None
    if client is None or consent is None:
        raise NotFoundError("没有找到对该网站的授权", code="oauth.consent_not_found")
    await consent.delete()
    revoked = await OAuthGrant.filter(app_user_id=app_user_id, client_id=client.id, revoked_at=None).update(
        revoked_at=now_utc(), revoked_reason="consent_revoked"
    )
    await audit.record(
        actor=actor, action="oauth.consent_revoked", target_kind="oauth_client", target_id=client.client_id,
        details={"app_user_id": app_user_id, "grants_revoked": revoked},
    )
    return revoked


# ---- grants, codes, tokens ----

async def revoke_grant(*, grant_id: uuid.UUID, reason: str, actor: Actor | None = None) -> None:
    """Revoke a whole family: its code and every access and refresh token issued from it."""
    changed = await OAuthGrant.filter(id=grant_id, revoked_at=None).update(revoked_at=now_utc(), revoked_reason=reason)
    if changed and actor is not None:
        await audit.record(actor=actor, action=f"oauth.{reason}", target_kind="oauth_grant", target_id=str(grant_id))


async def create_code(
    *, code: str, client: OAuthClient, app_user_id: int, auth_time: int, redirect_uri: str, scope: str,
    nonce: str | None, code_challenge: str, code_challenge_method: str,
) -> OAuthAuthorizationCode:
    """Start a grant with its authorization code (valid CODE_TTL_S seconds, once)."""
    grant = await OAuthGrant.create(
        id=uuid.uuid4(), client_id=client.id, app_user_id=app_user_id, scope=scope, auth_time=auth_time
    )
    return await OAuthAuthorizationCode.create(
        code_hash=hash_secret(code), grant=grant, client_id=client.id, redirect_uri=redirect_uri, scope=scope,
        nonce=nonce or None, code_challenge=code_challenge, code_challenge_method=code_challenge_method,
        expires_at=now_utc() + timedelta(seconds=CODE_TTL_S),
    )


async def find_code(*, code: str, client: OAuthClient, actor: Actor) -> OAuthAuthorizationCode | None:
    """The live code issued to `client`; a code presented again revokes its grant (RFC 6749 §4.1.2)."""
    row = await OAuthAuthorizationCode.get_or_none(code_hash=hash_secret(code)).select_related("grant")
    if row is None or row.client_id != client.id:  # type: ignore[attr-defined]
        return None
    if row.used_at is not None:
        await revoke_grant(grant_id=row.grant.id, reason="code_reused", actor=actor)
        return None
    if row.expires_at <= now_utc() or row.grant.revoked_at is not None:
        return None
    return row


async def claim_code(*, code_row: OAuthAuthorizationCode, actor: Actor) -> bool:
    """Spend the code; False (and the grant revoked) when another request spent it first."""
    claimed = await OAuthAuthorizationCode.filter(id=code_row.id, used_at=None).update(used_at=now_utc())
    if not claimed:
        await revoke_grant(grant_id=code_row.grant.id, reason="code_reused", actor=actor)
    return bool(claimed)


async def nonce_used(*, client: OAuthClient, nonce: str) -> bool:
    return await OAuthAuthorizationCode.filter(client_id=client.id, nonce=nonce).exists()


async def save_token(
    *, grant_id: uuid.UUID, client: OAuthClient, access_jti: str, access_expires_at: datetime,
    refresh_token: str | None, scope: str, settings: Settings,
) -> OAuthToken:
    return await OAuthToken.create(
        id=uuid.uuid4(), grant_id=grant_id, client_id=client.id, access_jti=access_jti,
        access_expires_at=access_expires_at, refresh_hash=hash_secret(refresh_token) if refresh_token else None,
        refresh_expires_at=now_utc() + timedelta(seconds=settings.oauth_refresh_token_ttl_s) if refresh_token else None,
        scope=scope,
    )


async def find_refresh(*, refresh_token: str, actor: Actor) -> OAuthToken | None:
    """The live token row of this refresh token; a rotated one presented again revokes its family."""
    row = await OAuthToken.get_or_none(refresh_hash=hash_secret(refresh_token)).select_related("grant", "client")
    if row is None:
        return None
    if row.refresh_used_at is not None:
        await revoke_grant(grant_id=row.grant.id, reason="refresh_reused", actor=actor)
        return None
    if row.revoked_at is not None or row.grant.revoked_at is not None:
        return None
    if row.refresh_expires_at is None or row.refresh_expires_at <= now_utc():
        return None
    return row


async def claim_refresh(*, token_row: OAuthToken, actor: Actor) -> bool:
    """Rotate: spend the refresh token; False (and the family revoked) if it was already spent."""
    claimed = await OAuthToken.filter(id=token_row.id, refresh_used_at=None, revoked_at=None).update(
        refresh_used_at=now_utc()
    )
    if not claimed:
        await revoke_grant(grant_id=token_row.grant.id, reason="refresh_reused", actor=actor)
    return bool(claimed)


async def find_token(*, access_jti: str | None = None, refresh_token: str | None = None) -> OAuthToken | None:
    """A token row by access `jti` or by refresh token, whatever its state (for revocation, introspection)."""
    query = (OAuthToken.filter(access_jti=access_jti) if access_jti is not None
             else OAuthToken.filter(refresh_hash=hash_secret(refresh_token or "")))
    return await query.select_related("grant", "client").first()


async def revoke_token(*, token_row: OAuthToken, refresh: bool) -> None:
    """RFC 7009: revoking a refresh token ends its grant; revoking an access token ends that token."""
    if refresh:
        await revoke_grant(grant_id=token_row.grant.id, reason="revoked_by_client")
    await OAuthToken.filter(id=token_row.id, revoked_at=None).update(revoked_at=now_utc())


async def app_user_active(*, app_user_id: int) -> bool:
    return await AppUser.filter(id=app_user_id, is_active=True).exists()


# ---- resource side ----

@dataclass(frozen=True)
class PortalAccess:
    """A verified access token: who, for which client, with which scopes."""

    token: OAuthToken
    app_user: AppUser
    client: OAuthClient
    scopes: frozenset[str]
    subject: str


async def live_access(*, jti: str, client_id: str, settings: Settings) -> PortalAccess | None:
    """The token behind a verified JWT if it, its grant and its user are still valid."""
    row = await OAuthToken.get_or_none(access_jti=jti).select_related("grant", "client")
    if row is None or row.revoked_at is not None or row.grant.revoked_at is not None:
        return None
    if row.client.client_id != client_id or not row.client.is_active:
        return None
    user = await AppUser.get_or_none(id=row.grant.app_user_id, is_active=True)  # type: ignore[attr-defined]
    if user is None:
        return None
    subject = pairwise_subject(settings=settings, sector_identifier=row.client.sector_identifier, app_user_id=user.id)
    return PortalAccess(row, user, row.client, frozenset(scope_list(row.scope)), subject)


async def _resident_of(user: AppUser) -> Resident | None:
    rid = user.resident_id  # type: ignore[attr-defined]
    return await Resident.get_or_none(id=rid) if rid else None


async def userinfo(*, access: PortalAccess, settings: Settings, cipher: FieldCipher) -> dict[str, Any]:
    """OIDC UserInfo claims allowed by the token's scopes."""
    info: dict[str, Any] = {"sub": access.subject}
    resident = await _resident_of(access.app_user)
    if "profile" in access.scopes:
        phone = cipher.decrypt_text(access.app_user.phone_cipher, purpose=PHONE_PURPOSE)
        info["name"] = resident.name if resident else "智链用户"
        info["phone_number_masked"] = mask_phone(phone)
    if "certification:start" in access.scopes:
        info["certify_url"] = claims.certify_link(public_url=settings.effective_public_url, resident=resident)
    return info


async def certification_status(*, access: PortalAccess) -> dict[str, Any]:
    return await claims.certification_status(resident=await _resident_of(access.app_user))


async def certification_start(*, access: PortalAccess, settings: Settings) -> dict[str, Any]:
    resident = await _resident_of(access.app_user)
    return {"certify_url": claims.certify_link(public_url=settings.effective_public_url, resident=resident)}


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)
