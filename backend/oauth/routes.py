"""HTTP of the OAuth provider: the protocol endpoints, the consent pages, and its JSON API.

Protocol endpoints answer in OAuth's own formats (RFC 6749 §5.2 errors, redirects per §4.1.2.1,
RFC 6750 for protected resources); the JSON API under /api uses the shared error shape.
Rules live in `service`, protocol logic in Authlib behind `server.OAuthServer`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2.base import OAuth2Error
from authlib.oauth2.rfc6749 import ResourceProtector
from authlib.oauth2.rfc6750.errors import InvalidTokenError
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
from sanic import Blueprint, Request, Sanic, html, json, redirect
from sanic.response import HTTPResponse, empty

from backend import ratelimit
from backend.audit.service import Actor
from backend.auth import service as auth_service
from backend.auth.guards import actor_of, authenticated
from backend.auth.models import Role
from backend.errors import ApiError
from backend.http import client_ip, validated_body
from backend.idempotency.http import idempotent
from backend.oauth import pages, schemas, service
from backend.oauth import session as browser
from backend.oauth.keys import load_id_token_keys, load_signing_key
from backend.oauth.server import EndUser, OAuthResponse, OAuthServer, RequestSnapshot

bp = Blueprint("oauth")

LOGIN_FRESH_S = 60
TOKEN_REQUESTS_PER_MINUTE = 120  # a busy portal refreshes often: generous, yet useless for guessing secrets

_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
}
_ERROR_MESSAGES = {
    "invalid_client": "这个网站没有在智链登记，无法授权。",
    "invalid_request": "授权请求无效：回调地址与登记的不一致，或缺少必要的参数。",
    "unsupported_response_type": "授权请求的方式不受支持。",
}


@bp.before_server_start
async def _start_provider(app: Sanic) -> None:
    settings = app.ctx.settings
    signing_key = load_signing_key(settings)
    provider = OAuthServer(settings=settings, signing_key=signing_key, loop=asyncio.get_running_loop(),
                           id_token_keys=load_id_token_keys(settings, signing_key))
    protector = ResourceProtector()
    protector.register_token_validator(provider.access_token_validator)
    app.ctx.oauth = provider
    app.ctx.oauth_resources = protector


@bp.after_server_stop
async def _stop_provider(app: Sanic) -> None:
    provider = getattr(app.ctx, "oauth", None)
    if provider is not None:
        provider.close()


# ---- adapter helpers ----

def _provider(request: Request) -> OAuthServer:
    return request.app.ctx.oauth


def _snapshot(request: Request, *, with_form: bool) -> RequestSnapshot:
    """Copy what Authlib may read; the URI is rebuilt on the issuer so proxies do not matter."""
    query = request.query_string
    uri = f"{_provider(request).issuer}{request.path}" + (f"?{query}" if query else "")
    args = {key: list(values) for key, values in request.get_args(keep_blank_values=True).items()}
    form: dict[str, list[str]] = {}
    if with_form and request.content_type.startswith("application/x-www-form-urlencoded") and request.form:
        form = {key: list(values) for key, values in request.form.items()}
    return RequestSnapshot(
        method=request.method, uri=uri, headers={k.lower(): v for k, v in request.headers.items()},
        args=args, form=form, ip=client_ip(request), request_id=getattr(request.ctx, "request_id", ""),
    )


def _to_sanic(response: OAuthResponse, *, after_post: bool = False) -> HTTPResponse:
    status = response.status
    if after_post and status == 302:
        status = 303  # RFC 9700 §4.12: never let a browser re-POST the consent form to the client
    if isinstance(response.body, dict):
        out: HTTPResponse = json(response.body, status=status)
    elif response.body:
        out = HTTPResponse(str(response.body), status=status)
    else:
        out = empty(status=status)
    for name, value in response.headers:
        if isinstance(response.body, dict) and name.lower() == "content-type":
            continue
        out.headers[name] = value
    return out


def _page(body: str, *, status: int = 200) -> HTTPResponse:
    return html(body, status=status, headers=_PAGE_HEADERS)


def _read_session(request: Request) -> browser.BrowserSession | None:
    return browser.decode(request.cookies.get(browser.COOKIE_NAME), settings=request.app.ctx.settings)


def _set_session(response: HTTPResponse, session: browser.BrowserSession, settings: Any) -> HTTPResponse:
    response.add_cookie(
        browser.COOKIE_NAME, browser.encode(session, settings=settings), path=browser.COOKIE_PATH,
        httponly=True, samesite="Lax", secure=browser.cookie_is_secure(settings), max_age=settings.oauth_session_ttl_s,
    )
    return response


async def _end_user(session: browser.BrowserSession | None) -> EndUser | None:
    if session is None or session.app_user_id is None:
        return None
    if not await service.app_user_active(app_user_id=session.app_user_id):
        return None
    return EndUser(session.app_user_id, int(session.auth_time or time.time()))


def _authorization_error(provider: OAuthServer, error: OAuth2Error, *, after_post: bool = False) -> HTTPResponse:
    """Redirect only to a redirect URI Authlib validated for the client; otherwise show a page."""
    if error.redirect_uri:
        return _to_sanic(provider.error_redirect(error), after_post=after_post)
    message = _ERROR_MESSAGES.get(error.error or "", "授权请求无效。")
    return _page(pages.error_page(message, error.error or ""), status=400)


def _action(request: Request, path: str) -> str:
    """A form target on our own authorize path carrying the original request's query unchanged."""
    query = request.query_string
    return path + (f"?{query}" if query else "")


async def _validated_grant(request: Request, end_user: EndUser | None) -> Any:
    provider = _provider(request)
    return await provider.run(provider.get_consent_grant, _snapshot(request, with_form=False), end_user)


def _prompts(grant: Any) -> set[str]:
    return set((grant.request.payload.data.get("prompt") or "").split())


def _sign_in_fresh_enough(end_user: EndUser, grant: Any) -> bool:
    """`prompt=login` and `max_age` (OIDC Core §3.1.2.1) ask for a recent sign-in.

    A sign-in within the last LOGIN_FRESH_S seconds always counts, so the redirect back from
    the sign-in step cannot loop (a `max_age` below that is treated as LOGIN_FRESH_S).
    """
    data = grant.request.payload.data
    limits = [LOGIN_FRESH_S] if "login" in _prompts(grant) else []
    raw_max_age = str(data.get("max_age") or "")
    if raw_max_age.isdigit():
        limits.append(max(int(raw_max_age), LOGIN_FRESH_S))
    return not limits or time.time() - end_user.auth_time <= min(limits)


# ---- discovery and keys ----

@bp.get("/.well-known/openid-configuration")
async def openid_configuration(request: Request) -> HTTPResponse:
    """OpenID Provider metadata (OIDC Discovery 1.0)."""
    return json(_provider(request).metadata(), headers={"Cache-Control": "public, max-age=300"})


@bp.get("/.well-known/oauth-authorization-server")
async def oauth_metadata(request: Request) -> HTTPResponse:
    """Authorization server metadata (RFC 8414); the same document."""
    return json(_provider(request).metadata(), headers={"Cache-Control": "public, max-age=300"})


@bp.get("/oauth/jwks")
async def jwks(request: Request) -> HTTPResponse:
    """The public keys that sign access and ID tokens."""
    return json(_provider(request).public_jwks(), headers={"Cache-Control": "public, max-age=300"})


# ---- authorization endpoint: sign-in, consent, decision ----

@bp.get("/oauth/authorize")
async def authorize(request: Request) -> HTTPResponse:
    """Validate the request, then sign the resident in, ask for consent, or issue the code."""
    settings = request.app.ctx.settings
    provider = _provider(request)
    session = _read_session(request)
    end_user = await _end_user(session)
    try:
        grant = await _validated_grant(request, end_user)
    except OAuth2Error as error:
        return _authorization_error(provider, error)
    client = grant.request.client.row
    prompts = _prompts(grant)
    if end_user is not None and not _sign_in_fresh_enough(end_user, grant):
        if "none" in prompts:
            return _authorization_error(
                provider, LoginRequiredError(redirect_uri=grant.redirect_uri, state=grant.request.payload.state)
            )
        end_user = None
    if end_user is None:
        session = session if session and not session.signed_in else browser.new_session()
        page = pages.phone_page(client_name=client.name, action=_action(request, "/oauth/authorize/otp"),
                                csrf=browser.csrf_token(session, settings=settings))
        return _set_session(_page(page), session, settings)
    assert session is not None
    if "consent" not in prompts and await service.consent_covers(
        app_user_id=end_user.app_user_id, client=client, scope=grant.request.scope
    ):
        response = await provider.run(provider.create_authorization_response, grant.request, end_user, grant)
        return _to_sanic(response)
    if "none" in prompts:
        return _authorization_error(
            provider, ConsentRequiredError(redirect_uri=grant.redirect_uri, state=grant.request.payload.state)
        )
    scopes = [(s, service.SCOPES[s]) for s in service.scope_list(grant.request.scope)]
    page = pages.consent_page(
        client_name=client.name, client_host=urlsplit(grant.redirect_uri).hostname or "", scopes=scopes,
        action=_action(request, "/oauth/authorize"), csrf=browser.csrf_token(session, settings=settings),
    )
    return _page(page)


@bp.post("/oauth/authorize")
async def authorize_decision(request: Request) -> HTTPResponse:
    """The resident's answer on the consent page (CSRF-checked)."""
    settings = request.app.ctx.settings
    provider = _provider(request)
    session = _read_session(request)
    if not browser.csrf_ok(session, request.form.get("csrf") if request.form else None, settings=settings):
        return _page(pages.error_page("页面已过期，请回到原来的网站重新操作。", "csrf"), status=403)
    end_user = await _end_user(session)
    if end_user is None:
        return redirect(_action(request, "/oauth/authorize"), status=303)
    try:
        grant = await _validated_grant(request, end_user)
    except OAuth2Error as error:
        return _authorization_error(provider, error, after_post=True)
    allowed = request.form.get("decision") == "allow"
    if allowed:
        await service.grant_consent(
            app_user_id=end_user.app_user_id, client=grant.request.client.row, scope=grant.request.scope,
            actor=Actor("app", str(end_user.app_user_id), client_ip(request), getattr(request.ctx, "request_id", "")),
        )
    response = await provider.run(
        provider.create_authorization_response, grant.request, end_user if allowed else None, grant
    )
    return _to_sanic(response, after_post=True)


@bp.post("/oauth/authorize/otp")
async def authorize_send_code(request: Request) -> HTTPResponse:
    """Sign-in step 1 on the consent page: send a one-time code to the phone."""
    ctx = request.app.ctx
    provider = _provider(request)
    session = _read_session(request)
    form = request.form or {}
    if not browser.csrf_ok(session, form.get("csrf"), settings=ctx.settings):
        return _page(pages.error_page("页面已过期，请回到原来的网站重新操作。", "csrf"), status=403)
    assert session is not None
    try:
        grant = await _validated_grant(request, None)
    except OAuth2Error as error:
        return _authorization_error(provider, error, after_post=True)
    client_name = grant.request.client.row.name
    csrf = browser.csrf_token(session, settings=ctx.settings)
    phone = (form.get("phone") or "").strip()
    try:
        ttl = await auth_service.request_otp(
            phone=phone, actor=actor_of(request), settings=ctx.settings, cache=ctx.cache, cipher=ctx.cipher,
            sender=ctx.sender,
        )
    except ApiError as exc:
        page = pages.phone_page(client_name=client_name, action=_action(request, "/oauth/authorize/otp"), csrf=csrf,
                                phone=phone, error=exc.message)
        return _page(page, status=exc.status)
    page = pages.code_page(client_name=client_name, action=_action(request, "/oauth/authorize/login"), csrf=csrf,
                           phone=phone, minutes=max(1, ttl // 60))
    return _page(page)


@bp.post("/oauth/authorize/login")
async def authorize_login(request: Request) -> HTTPResponse:
    """Sign-in step 2: check the code, start a fresh browser session, return to the request."""
    ctx = request.app.ctx
    provider = _provider(request)
    session = _read_session(request)
    form = request.form or {}
    if not browser.csrf_ok(session, form.get("csrf"), settings=ctx.settings):
        return _page(pages.error_page("页面已过期，请回到原来的网站重新操作。", "csrf"), status=403)
    assert session is not None
    try:
        grant = await _validated_grant(request, None)
    except OAuth2Error as error:
        return _authorization_error(provider, error, after_post=True)
    phone = (form.get("phone") or "").strip()
    try:
        pair, user = await auth_service.login_with_otp(
            phone=phone, code=(form.get("code") or "").strip(), actor=actor_of(request), settings=ctx.settings,
            cache=ctx.cache, cipher=ctx.cipher,
        )
    except ApiError as exc:
        page = pages.code_page(
            client_name=grant.request.client.row.name, action=_action(request, "/oauth/authorize/login"),
            csrf=browser.csrf_token(session, settings=ctx.settings), phone=phone,
            minutes=max(1, ctx.settings.otp_ttl_s // 60), error=exc.message,
        )
        return _page(page, status=exc.status)
    # The consent page needs only the browser session: the app tokens login issued are dropped at once.
    await auth_service.logout(principal=pair.principal, refresh_token=pair.refresh_token, cache=ctx.cache,
                              settings=ctx.settings)
    signed_in = browser.new_session(app_user_id=user.id)
    return _set_session(redirect(_action(request, "/oauth/authorize"), status=303), signed_in, ctx.settings)


# ---- token, revocation, introspection ----

@bp.post("/oauth/token")
async def token(request: Request) -> HTTPResponse:
    """RFC 6749 §3.2: authorization_code (with PKCE) and refresh_token grants.

    Rate-limited per address: the endpoint checks client secrets, so it must not be a guessing oracle.
    """
    await ratelimit.hit(request.app.ctx.cache, f"oauth-token:{client_ip(request)}", limit=TOKEN_REQUESTS_PER_MINUTE,
                        window_s=60, message="令牌请求过于频繁，请一分钟后再试")
    provider = _provider(request)
    return _to_sanic(await provider.run(provider.create_token_response, _snapshot(request, with_form=True)))


@bp.post("/oauth/revoke")
async def revoke(request: Request) -> HTTPResponse:
    """RFC 7009 token revocation."""
    provider = _provider(request)
    snapshot = _snapshot(request, with_form=True)
    return _to_sanic(await provider.run(provider.create_endpoint_response, "revocation", snapshot))


@bp.post("/oauth/introspect")
async def introspect(request: Request) -> HTTPResponse:
    """RFC 7662 token introspection, for confidential clients and their own tokens."""
    provider = _provider(request)
    snapshot = _snapshot(request, with_form=True)
    return _to_sanic(await provider.run(provider.create_endpoint_response, "introspection", snapshot))


# ---- protected resources ----

class _HeaderView:
    def __init__(self, request: Request) -> None:
        self.headers = request.headers


async def _portal_access(request: Request, scope: str) -> service.PortalAccess | HTTPResponse:
    """Verify the bearer JWT (signature, typ, iss, aud, exp, scope), then that it is not revoked."""
    provider = _provider(request)
    try:
        claims = request.app.ctx.oauth_resources.validate_request([scope], _HeaderView(request))
    except OAuth2Error as error:
        return _to_sanic(provider.handle_error_response(None, error))
    access = await service.live_access(
        jti=str(claims["jti"]), client_id=str(claims["client_id"]), settings=request.app.ctx.settings
    )
    if access is None:
        return _to_sanic(provider.handle_error_response(None, InvalidTokenError("The access token was revoked.")))
    return access


@bp.route("/oauth/userinfo", methods=["GET", "POST"])
async def userinfo(request: Request) -> HTTPResponse:
    """OIDC UserInfo: claims allowed by the token's scopes."""
    access = await _portal_access(request, "openid")
    if isinstance(access, HTTPResponse):
        return access
    ctx = request.app.ctx
    body = await service.userinfo(access=access, settings=ctx.settings, cipher=ctx.cipher)
    return json(body, headers={"Cache-Control": "no-store"})


@bp.get("/api/portal/certification")
async def portal_certification(request: Request) -> HTTPResponse:
    """This and past months' certification status of the resident (scope certification:read)."""
    access = await _portal_access(request, "certification:read")
    if isinstance(access, HTTPResponse):
        return access
    return json(await service.certification_status(access=access), headers={"Cache-Control": "no-store"})


@bp.get("/api/portal/certification/start")
async def portal_certification_start(request: Request) -> HTTPResponse:
    """A deep link into the app's certify screen for this resident (scope certification:start)."""
    access = await _portal_access(request, "certification:start")
    if isinstance(access, HTTPResponse):
        return access
    body = await service.certification_start(access=access, settings=request.app.ctx.settings)
    return json(body, headers={"Cache-Control": "no-store"})


# ---- our JSON API: clients (platform admins) and consents (app users) ----

@bp.post("/api/oauth/clients")
@authenticated(roles=(Role.PLATFORM_ADMIN,))
@idempotent
@validated_body(schemas.ClientCreate)
async def create_client(request: Request, body: schemas.ClientCreate) -> HTTPResponse:
    client, secret = await service.create_client(
        name=body.name, redirect_uris=body.redirect_uris, scopes=body.scopes, confidential=body.confidential,
        sector_identifier=body.sector_identifier, actor=actor_of(request),
        id_token_alg=body.id_token_signed_response_alg, id_token_algs=list(_provider(request).id_token_keys),
    )
    view = service.client_view(client)
    if secret:
        view["client_secret"] = secret  # shown once; only its hash is stored
    return json(view, status=201)


@bp.get("/api/oauth/clients")
@authenticated(roles=(Role.PLATFORM_ADMIN,))
async def list_clients(request: Request) -> HTTPResponse:
    return json({"items": [service.client_view(c) for c in await service.list_clients()]})


@bp.get("/api/app/oauth/consents")
@authenticated(kinds=("app",))
async def list_consents(request: Request) -> HTTPResponse:
    consents = await service.list_consents(app_user_id=request.ctx.principal.user_id)
    return json({"items": [service.consent_view(c) for c in consents]})


@bp.delete("/api/app/oauth/consents/<client_id:str>")
@authenticated(kinds=("app",))
async def revoke_consent(request: Request, client_id: str) -> HTTPResponse:
    revoked = await service.revoke_consent(
        app_user_id=request.ctx.principal.user_id, client_id=client_id, actor=actor_of(request)
    )
    return json({"revoked": True, "grants_revoked": revoked})
