"""OAuth 2.1 / OIDC provider, end to end over loopback HTTP.

A real OAuth client (Authlib's `AsyncOAuth2Client`, not our code) runs authorization code +
PKCE against the running server while the test plays the resident's browser with httpx:
authorize -> phone + code sign-in -> consent -> redirect back with `code`, `state`, `iss`.
"""

from __future__ import annotations

import json
import random
import re
import secrets
import time
from dataclasses import dataclass
from datetime import date
from html import unescape
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from backend.auth.models import Role
from backend.certification import periods
from backend.certification.models import Method
from backend.certification.records import record_certification
from backend.notify.models import OutboundMessage
from backend.residents import service as residents
from backend.residents.models import Resident as ResidentModel
from backend.residents.national_id import synthetic_national_id
from tests.integration.conftest import create_staff_login
from tests.integration.test_errors_and_ops import assert_error

ALL_SCOPES = "openid profile certification:read certification:start"
CALLBACK = "http://127.0.0.1:9/portal/callback"


@dataclass
class Portal:
    client_id: str
    client_secret: str | None
    redirect_uri: str


@dataclass
class Resident:
    phone: str
    public_id: str
    name: str


@pytest.fixture
async def platform_admin(client):
    return await create_staff_login(client, role=Role.PLATFORM_ADMIN)


async def register(client, admin, *, confidential: bool = True, scopes: str = ALL_SCOPES,
                   redirect_uri: str = CALLBACK, sector: str | None = None, id_token_alg: str | None = None) -> Portal:
    body = {"name": "市民云", "redirect_uris": [redirect_uri], "scopes": scopes.split(), "confidential": confidential}
    if sector:
        body["sector_identifier"] = sector
    if id_token_alg:
        body["id_token_signed_response_alg"] = id_token_alg
    response = await client.post("/api/oauth/clients", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    data = response.json()
    return Portal(data["client_id"], data.get("client_secret"), redirect_uri)


_seed = random.Random(20261122)


async def a_resident(server) -> Resident:
    """A resident with their own phone number (the app user signing in links to them)."""
    tag = secrets.token_hex(3)
    community = await residents.ensure_community(code=f"O{tag}", name=f"授权社区{tag}", district="测试区")
    phone = f"139{_seed.randrange(10**8):08d}"
    national_id = synthetic_national_id(_seed, birth_date=date(date.today().year - 85, 5, 1), sex="F")
    row = await residents.create_resident(
        community=community, name="李秀兰", national_id=national_id, phone=phone, address="南桥镇 1号",
        living_address=None, cipher=server.app.ctx.cipher,
    )
    return Resident(phone, str(row.public_id), row.name)


def oauth_client(server, portal: Portal, *, scope: str = ALL_SCOPES) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=portal.client_id, client_secret=portal.client_secret, scope=scope,
        redirect_uri=portal.redirect_uri, code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic" if portal.client_secret else "none",
        base_url=server.url, timeout=30,
    )


def _form(page: str) -> tuple[str, str]:
    action = re.search(r'<form method="post" action="([^"]+)"', page).group(1)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    return unescape(action), csrf


async def _last_code(server, phone: str) -> str:
    index = server.app.ctx.cipher.blind_index(phone, purpose="phone")
    message = await OutboundMessage.filter(recipient_index=index, template="login_code").order_by("-id").first()
    return re.search(r"\d{6}", message.body).group(0)


class Browser:
    """The resident's browser: cookies kept, redirects looked at rather than followed."""

    def __init__(self, server) -> None:
        self.server = server
        self.http = httpx.AsyncClient(base_url=server.url, timeout=30, follow_redirects=False)

    async def close(self) -> None:
        await self.http.aclose()

    async def sign_in(self, response: httpx.Response, phone: str) -> httpx.Response:
        """On the phone page: ask for a code, read it from the outbox, log in; returns the next page."""
        assert response.status_code == 200 and "获取验证码" in response.text, response.text
        action, csrf = _form(response.text)
        sent = await self.http.post(action, data={"phone": phone, "csrf": csrf})
        assert sent.status_code == 200 and "输入验证码" in sent.text, sent.text
        action, csrf = _form(sent.text)
        code = await _last_code(self.server, phone)
        login = await self.http.post(action, data={"phone": phone, "code": code, "csrf": csrf})
        assert login.status_code == 303, login.text
        assert login.headers["location"].startswith("/oauth/authorize?")
        return await self.http.get(login.headers["location"])

    async def authorize(self, url: str, phone: str, *, decision: str = "allow") -> dict[str, str]:
        """Run the whole browser side; returns the parameters delivered to the client's redirect URI."""
        response = await self.http.get(url)
        if response.status_code == 200 and "获取验证码" in response.text:
            response = await self.sign_in(response, phone)
        if response.status_code == 200:
            assert "是否同意授权" in response.text, response.text
            action, csrf = _form(response.text)
            response = await self.http.post(action, data={"csrf": csrf, "decision": decision})
            assert response.status_code == 303, response.text
        assert response.status_code in (302, 303), response.text
        return redirect_params(response)


def redirect_params(response: httpx.Response) -> dict[str, str]:
    location = response.headers["location"]
    assert location.startswith(CALLBACK.rsplit("/", 1)[0]) or location.startswith("http://127.0.0.1:9/"), location
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


@pytest.fixture
async def browser(server):
    b = Browser(server)
    yield b
    await b.close()


async def code_flow(server, browser, portal, resident, *, scope: str = ALL_SCOPES):
    """Authorize with a fresh PKCE verifier and nonce; returns (client, params, verifier, nonce)."""
    oauth = oauth_client(server, portal, scope=scope)
    verifier, nonce = generate_token(48), generate_token(20)
    url, state = oauth.create_authorization_url(f"{server.url}/oauth/authorize", code_verifier=verifier, nonce=nonce)
    params = await browser.authorize(url, resident.phone)
    assert params.get("state") == state, params
    return oauth, params, verifier, nonce


def authorize_url(server, portal: Portal, **overrides: str) -> str:
    query = {
        "response_type": "code", "client_id": portal.client_id, "redirect_uri": portal.redirect_uri,
        "scope": "openid profile", "state": "st-123", "code_challenge": create_s256_code_challenge("v" * 50),
        "code_challenge_method": "S256",
    }
    query.update(overrides)
    return f"{server.url}/oauth/authorize?" + urlencode({k: v for k, v in query.items() if v is not None})


# ---- the happy path, with a real client ----

async def test_discovery_and_jwks(client, server):
    meta = (await client.get("/.well-known/openid-configuration")).json()
    assert meta["issuer"] == server.url
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["response_types_supported"] == ["code"]
    assert "password" not in meta["grant_types_supported"] and "implicit" not in meta["grant_types_supported"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert meta["subject_types_supported"] == ["pairwise"]
    keys = (await client.get("/oauth/jwks")).json()["keys"]
    assert {k["alg"] for k in keys} == {"ES256", "RS256"} and all(k["kid"] and "d" not in k for k in keys)
    # OIDC Discovery 1.0 §3: RS256 MUST be listed; the default (first) stays ES256
    assert meta["id_token_signing_alg_values_supported"] == ["ES256", "RS256"]
    assert "resident_public_id" not in meta["claims_supported"]


async def test_real_client_completes_code_flow_refreshes_and_is_refused_after_revocation(
    client, server, browser, platform_admin
):
    portal = await register(client, platform_admin)
    resident = await a_resident(server)
    oauth, params, verifier, nonce = await code_flow(server, browser, portal, resident)
    assert params["iss"] == server.url  # RFC 9207
    async with oauth:
        token = await oauth.fetch_token(f"{server.url}/oauth/token", code=params["code"], code_verifier=verifier)
        assert token["token_type"].lower() == "bearer" and token["refresh_token"] and token["id_token"]
        assert set(token["scope"].split()) == set(ALL_SCOPES.split())

        # The access token is an RFC 9068 JWT; the ID token verifies against the published JWKS.
        assert jwt.get_unverified_header(token["access_token"])["typ"] == "at+jwt"
        jwks = jwt.PyJWKSet.from_dict((await client.get("/oauth/jwks")).json())
        header = jwt.get_unverified_header(token["id_token"])
        key = next(k for k in jwks.keys if k.key_id == header["kid"])
        id_claims = jwt.decode(token["id_token"], key.key, algorithms=[header["alg"]], audience=portal.client_id,
                               issuer=server.url)
        assert id_claims["nonce"] == nonce and id_claims["auth_time"] <= time.time() and id_claims["at_hash"]
        with pytest.raises(jwt.InvalidAudienceError):
            jwt.decode(token["id_token"], key.key, algorithms=[header["alg"]], audience="someone-else", issuer=server.url)
        access_claims = jwt.decode(token["access_token"], key.key, algorithms=[header["alg"]], audience=server.url,
                                   issuer=server.url)
        assert access_claims["client_id"] == portal.client_id and access_claims["sub"] == id_claims["sub"]

        info = (await oauth.get("/oauth/userinfo")).json()
        assert info["sub"] == id_claims["sub"]
        assert info["name"] == resident.name
        assert info["phone_number_masked"] == resident.phone[:3] + "****" + resident.phone[-4:]
        assert info["certify_url"].endswith("/m/#/certify")
        status = (await oauth.get("/api/portal/certification")).json()
        this_month = periods.month_of(date.today())
        assert "resident_public_id" not in status and resident.public_id not in str(status)
        assert status["months"][0] == {"period": this_month, "status": "pending", "certified_on": None,
                                       "method": None, "late": False}
        # once certified (here: a home visit attested by staff), the portal reads it
        row = await ResidentModel.get(public_id=resident.public_id)
        period = await periods.current_period(community_id=row.community_id)
        await record_certification(resident=row, period=period, method=Method.HOME_VISIT, attempt=None,
                                   assisted_by="staff:1")
        status = (await oauth.get("/api/portal/certification")).json()
        assert status["months"][0]["status"] == "certified" and status["months"][0]["method"] == "home_visit"
        start = (await oauth.get("/api/portal/certification/start")).json()
        assert start["certify_url"] == info["certify_url"]

        # Introspection (confidential clients): active now.
        intro = (await oauth.introspect_token(f"{server.url}/oauth/introspect", token=token["access_token"])).json()
        assert intro["active"] is True and intro["client_id"] == portal.client_id and intro["sub"] == info["sub"]

        refreshed = await oauth.refresh_token(f"{server.url}/oauth/token", refresh_token=token["refresh_token"])
        assert refreshed["refresh_token"] != token["refresh_token"]
        assert (await oauth.get("/oauth/userinfo")).status_code == 200

        revoked = await oauth.revoke_token(f"{server.url}/oauth/revoke", token=refreshed["refresh_token"],
                                           token_type_hint="refresh_token")
        assert revoked.status_code == 200
        refused = await oauth.get("/oauth/userinfo")
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_token"
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]
        with pytest.raises(OAuthError) as info_error:
            await oauth.refresh_token(f"{server.url}/oauth/token", refresh_token=refreshed["refresh_token"])
        assert info_error.value.error == "invalid_grant"
        intro = (await oauth.introspect_token(f"{server.url}/oauth/introspect", token=token["access_token"])).json()
        assert intro == {"active": False}


async def test_public_client_and_remembered_consent(client, server, browser, platform_admin):
    portal = await register(client, platform_admin, confidential=False)
    assert portal.client_secret is None
    resident = await a_resident(server)
    oauth, params, verifier, _ = await code_flow(server, browser, portal, resident, scope="openid profile")
    async with oauth:
        token = await oauth.fetch_token(f"{server.url}/oauth/token", code=params["code"], code_verifier=verifier)
        assert token["access_token"]
        # Public clients may not introspect.
        denied = await client.post("/oauth/introspect", data={"token": token["access_token"],
                                                              "client_id": portal.client_id})
        assert denied.status_code in (400, 401) and denied.json()["error"] == "invalid_client"
    # Same scopes again: consent remembered, the browser goes straight back to the client.
    second = await browser.http.get(authorize_url(server, portal))
    assert second.status_code == 302
    assert redirect_params(second)["code"]
    # A new scope asks again.
    third = await browser.http.get(authorize_url(server, portal, scope="openid certification:read"))
    assert third.status_code == 200 and "是否同意授权" in third.text


async def test_denied_consent_returns_access_denied(client, server, browser, platform_admin):
    portal = await register(client, platform_admin)
    resident = await a_resident(server)
    params = await browser.authorize(authorize_url(server, portal), resident.phone, decision="deny")
    assert params["error"] == "access_denied" and params["state"] == "st-123" and params["iss"] == server.url


async def test_consent_post_needs_the_csrf_token(client, server, browser, platform_admin):
    portal = await register(client, platform_admin)
    resident = await a_resident(server)
    first = await browser.http.get(authorize_url(server, portal))
    cookie = first.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/oauth" in cookie
    assert "secure" not in cookie  # plain http on loopback; https public URLs get Secure
    page = await browser.sign_in(first, resident.phone)
    action, _ = _form(page.text)
    forged = await browser.http.post(action, data={"csrf": "0" * 64, "decision": "allow"})
    assert forged.status_code == 403 and "location" not in forged.headers


# ---- negative paths: each refused with the standard error ----

async def test_bad_redirect_uri_or_client_shows_a_page_and_never_redirects(client, server, platform_admin):
    portal = await register(client, platform_admin)
    for url in (
        authorize_url(server, portal, redirect_uri="https://evil.example/cb"),
        authorize_url(server, portal, redirect_uri=CALLBACK + "/extra"),
        authorize_url(server, portal, redirect_uri=None),
        authorize_url(server, portal, client_id="zl_unknown"),
        authorize_url(server, portal, client_id="zl_unknown", response_type="token"),
    ):
        response = await client.get(url)
        assert response.status_code == 400, (url, response.status_code)
        assert "location" not in response.headers
        assert "无法完成授权" in response.text


async def test_pkce_is_required_and_plain_is_refused(client, server, platform_admin):
    portal = await register(client, platform_admin)
    for overrides in ({"code_challenge": None, "code_challenge_method": None},
                      {"code_challenge_method": "plain"},
                      {"code_challenge_method": None}):
        response = await client.get(authorize_url(server, portal, **overrides))
        assert response.status_code == 302, overrides
        params = redirect_params(response)
        assert params["error"] == "invalid_request" and params["state"] == "st-123" and params["iss"] == server.url


async def test_missing_or_wrong_verifier_is_invalid_grant(client, server, browser, platform_admin):
    portal = await register(client, platform_admin)
    resident = await a_resident(server)
    oauth, params, verifier, _ = await code_flow(server, browser, portal, resident)
    auth = (portal.client_id, portal.client_secret)
    base = {"grant_type": "authorization_code", "code": params["code"], "redirect_uri": portal.redirect_uri}
    missing = await client.post("/oauth/token", data=base, auth=auth)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_grant"
    wrong = await client.post("/oauth/token", data={**base, "code_verifier": generate_token(48)}, auth=auth)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    # The right verifier still works: failed attempts did not burn the code.
    ok = await client.post("/oauth/token", data={**base, "code_verifier": verifier}, auth=auth)
    assert ok.status_code == 200, ok.text
    await oauth.aclose()


async def test_reused_code_is_refused_and_revokes_the_first_tokens(client, server, browser, platform_admin):
    portal = await register(client, platform_admin)
    resident = await a_resident(server)
    oauth, params, verifier, _ = await code_flow(server, browser, portal, resident)
    async with oauth:
        token = await oauth.fetch_token(f"{server.url}/oauth/token", code=params["code"], code_verifier=verifier)
        assert (await oauth.get("/oauth/userinfo")).status_code == 200
        again = await client.post("/oauth/token", auth=(portal.client_id, portal.client_secret), data={
            "grant_type": "authorization_code", "code": params["code"], "redirect_uri": portal.redirect_uri,
            "code_verifier": verifier})
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
        assert (await oauth.get("/oauth/userinfo")).status_code == 401
        with pytest.raises(OAuthError) as error:
            await oauth.refresh_token(f"{server.url}/oauth/token", refresh_token=token["refresh_token"])
        assert error.value.error == "invalid_grant"


async def test_reused_refresh_token_revokes_the_whole_family(client, server, browser, platform_admin):
    portal = await register(client, platform_admin)
    resident = await a_resident(server)
    oauth, params, verifier, _ = await code_flow(server, browser, portal, resident)
    auth = (portal.client_id, portal.client_secret)
    async with oauth:
        first = await oauth.fetch_token(f"{server.url}/oauth/token", code=params["code"], code_verifier=verifier)
    rotated = await client.post("/oauth/token", auth=auth, data={
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    # The spent token comes back (a stolen copy): refused, and everything of the family dies.
    reuse = await client.post("/oauth/token", auth=auth, data={
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    latest = await client.post("/oauth/token", auth=auth, data={
        "grant_type": "refresh_token", "refresh_token": second["refresh_token"]})
    assert latest.status_code == 400 and latest.json()["error"] == "invalid_grant"
    for access in (first["access_token"], second["access_token"]):
        response = await client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {access}"})
        assert response.status_code == 401 and response.json()["error"] == "invalid_token"


async def test_refresh_token_is_bound_to_its_client(client, server, browser, platform_admin):
    portal = await register(client, platform_admin)
    other = await register(client, platform_admin)
    resident = await a_resident(server)
    oauth, params, verifier, _ = await code_flow(server, browser, portal, resident)
    async with oauth:
        token = await oauth.fetch_token(f"{server.url}/oauth/token", code=params["code"], code_verifier=verifier)
    stolen = await client.post("/oauth/token", auth=(other.client_id, other.client_secret), data={
        "grant_type": "refresh_token", "refresh_token": token["refresh_token"]})
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    peek = await client.post("/oauth/introspect", auth=(other.client_id, other.client_secret),
                             data={"token": token["access_token"]})
    assert peek.status_code == 200 and peek.json() == {"active": False}  # not its token
    wrong_secret = await client.post("/oauth/token", auth=(portal.client_id, "not-the-secret"), data={
        "grant_type": "refresh_token", "refresh_token": token["refresh_token"]})
    assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "invalid_client"


async def test_scope_escalation_on_authorize_and_on_refresh(client, server, browser, platform_admin):
    portal = await register(client, platform_admin, scopes="openid profile")
    response = await client.get(authorize_url(server, portal, scope="openid certification:read"))
    assert response.status_code == 302
    params = redirect_params(response)
    assert params["error"] == "invalid_scope" and params["iss"] == server.url
    unknown = redirect_params(await client.get(authorize_url(server, portal, scope="openid admin")))
    assert unknown["error"] == "invalid_scope"

    wide = await register(client, platform_admin)
    resident = await a_resident(server)
    oauth, params, verifier, _ = await code_flow(server, browser, wide, resident, scope="openid profile")
    async with oauth:
        token = await oauth.fetch_token(f"{server.url}/oauth/token", code=params["code"], code_verifier=verifier)
    escalate = await client.post("/oauth/token", auth=(wide.client_id, wide.client_secret), data={
        "grant_type": "refresh_token", "refresh_token": token["refresh_token"],
        "scope": "openid profile certification:read"})
    assert escalate.status_code == 400 and escalate.json()["error"] == "invalid_scope"
    # Narrowing is allowed, and the narrower token cannot read certification status.
    narrow = await client.post("/oauth/token", auth=(wide.client_id, wide.client_secret), data={
        "grant_type": "refresh_token", "refresh_token": token["refresh_token"], "scope": "openid"})
    assert narrow.status_code == 200, narrow.text
    forbidden = await client.get("/api/portal/certification",
                                 headers={"Authorization": f"Bearer {narrow.json()['access_token']}"})
    assert forbidden.status_code == 403 and forbidden.json()["error"] == "insufficient_scope"


async def test_expired_or_foreign_access_token_is_invalid_token(client, server, browser, platform_admin):
    portal = await register(client, platform_admin)
    resident = await a_resident(server)
    oauth, params, verifier, _ = await code_flow(server, browser, portal, resident)
    async with oauth:
        token = await oauth.fetch_token(f"{server.url}/oauth/token", code=params["code"], code_verifier=verifier)
    claims = jwt.decode(token["access_token"], options={"verify_signature": False})
    from joserfc import jwt as jose_jwt

    key_set = server.app.ctx.oauth.signing_key.key_set
    alg = server.app.ctx.oauth.signing_key.alg
    expired = jose_jwt.encode({"alg": alg, "typ": "at+jwt"}, {**claims, "exp": int(time.time()) - 5}, key_set)
    response = await client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401 and response.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    # The ID token is not an access token (typ and audience differ).
    response = await client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {token['id_token']}"})
    assert response.status_code == 401 and response.json()["error"] == "invalid_token"
    # Signed by someone else.
    from joserfc.jwk import ECKey

    forged = jose_jwt.encode({"alg": "ES256", "typ": "at+jwt"}, claims, ECKey.generate_key("P-256"))
    response = await client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    missing = await client.get("/oauth/userinfo")
    assert missing.status_code == 401 and "www-authenticate" in missing.headers


async def test_implicit_and_password_grants_are_unsupported(client, server, platform_admin):
    portal = await register(client, platform_admin)
    implicit = await client.get(authorize_url(server, portal, response_type="token"))
    assert implicit.status_code == 302
    params = redirect_params(implicit)
    assert params["error"] == "unsupported_response_type" and params["iss"] == server.url
    password = await client.post("/oauth/token", auth=(portal.client_id, portal.client_secret), data={
        "grant_type": "password", "username": "13900000000", "password": "x"})
    assert password.status_code == 400 and password.json()["error"] == "unsupported_grant_type"
    credentials = await client.post("/oauth/token", auth=(portal.client_id, portal.client_secret), data={
        "grant_type": "client_credentials"})
    assert credentials.status_code == 400 and credentials.json()["error"] == "unsupported_grant_type"


async def test_pairwise_subjects_differ_between_sectors(client, server, browser, platform_admin):
    a = await register(client, platform_admin, sector="portal-a.example")
    b = await register(client, platform_admin, sector="portal-b.example")
    resident = await a_resident(server)
    subs = []
    for portal in (a, b):
        oauth, params, verifier, _ = await code_flow(server, browser, portal, resident, scope="openid")
        async with oauth:
            await oauth.fetch_token(f"{server.url}/oauth/token", code=params["code"], code_verifier=verifier)
            subs.append((await oauth.get("/oauth/userinfo")).json()["sub"])
    assert subs[0] != subs[1] and all(len(s) >= 32 for s in subs)


async def test_two_portals_get_only_pairwise_identifiers(client, server, browser, platform_admin):
    """Issue 13 item 13: two portals got different `sub`s but the same global `resident_public_id` under
    certification:read (the credential subject too). Everything both portals read for one resident, every
    scope granted, shares no identifier."""
    a = await register(client, platform_admin, sector="portal-a.example")
    b = await register(client, platform_admin, sector="portal-b.example")
    resident = await a_resident(server)
    row = await ResidentModel.get(public_id=resident.public_id)
    period = await periods.current_period(community_id=row.community_id)
    await record_certification(resident=row, period=period, method=Method.HOME_VISIT, attempt=None,
                               assisted_by="staff:1")
    seen = []
    for portal in (a, b):
        oauth, params, verifier, _ = await code_flow(server, browser, portal, resident)
        async with oauth:
            token = await oauth.fetch_token(f"{server.url}/oauth/token", code=params["code"], code_verifier=verifier)
            answers = {"id_token": jwt.decode(token["id_token"], options={"verify_signature": False}),
                       "access_token": jwt.decode(token["access_token"], options={"verify_signature": False})}
            for path in ("/oauth/userinfo", "/api/portal/certification", "/api/portal/certification/start"):
                response = await oauth.get(path)
                assert response.status_code == 200, response.text
                answers[path] = response.json()
        seen.append(answers)
    text = [json.dumps(answers, ensure_ascii=False) for answers in seen]
    assert all(resident.public_id not in t for t in text)

    def values(value):
        if isinstance(value, dict):
            return {x for v in value.values() for x in values(v)}
        if isinstance(value, list):
            return {x for v in value for x in values(v)}
        return {value} if isinstance(value, str) and len(value) >= 16 else set()

    per_resident = {server.url, f"{server.url}/m/#/certify", resident.name, " ".join(sorted(ALL_SCOPES.split()))}
    shared = {v for v in values(seen[0]) & values(seen[1]) if v not in per_resident}
    assert not shared, shared  # only the issuer, the generic deep link, the scope and the name (profile)
    months = seen[0]["/api/portal/certification"]["months"]
    assert months[0]["status"] == "certified" and len(months[0]["certified_on"]) == 10  # a day, not an instant
    assert seen[0]["/oauth/userinfo"]["sub"] != seen[1]["/oauth/userinfo"]["sub"]


async def test_a_client_registered_for_rs256_gets_rs256_id_tokens(client, server, browser, platform_admin):
    """Issue 13 item 14: OIDC Discovery requires RS256 for ID tokens; a client asking for it gets it, the
    others keep the provider's default (ES256)."""
    rs = await register(client, platform_admin, id_token_alg="RS256")
    default = await register(client, platform_admin)
    listed = {c["client_id"]: c for c in (await client.get("/api/oauth/clients", headers=platform_admin.headers)).json()["items"]}
    assert listed[rs.client_id]["id_token_signed_response_alg"] == "RS256"
    assert listed[default.client_id]["id_token_signed_response_alg"] is None
    bad = await client.post("/api/oauth/clients", headers=platform_admin.headers, json={
        "name": "x", "redirect_uris": [CALLBACK], "scopes": ["openid"], "id_token_signed_response_alg": "HS256"})
    assert bad.status_code == 422
    resident = await a_resident(server)
    jwks = jwt.PyJWKSet.from_dict((await client.get("/oauth/jwks")).json())
    for portal, alg in ((rs, "RS256"), (default, "ES256")):
        oauth, params, verifier, nonce = await code_flow(server, browser, portal, resident, scope="openid")
        async with oauth:
            token = await oauth.fetch_token(f"{server.url}/oauth/token", code=params["code"], code_verifier=verifier)
            header = jwt.get_unverified_header(token["id_token"])
            assert header["alg"] == alg
            key = next(k for k in jwks.keys if k.key_id == header["kid"])
            claims = jwt.decode(token["id_token"], key.key, algorithms=[alg], audience=portal.client_id,
                                issuer=server.url)
            assert claims["nonce"] == nonce and claims["at_hash"]
            # the access token keeps the provider's signing key whatever the client asked for ID tokens
            assert jwt.get_unverified_header(token["access_token"])["alg"] == "ES256"
            assert (await oauth.get("/oauth/userinfo")).status_code == 200


# ---- our JSON API: clients and consents ----

async def _app_login(client, server, phone: str) -> dict[str, str]:
    assert (await client.post("/api/auth/app/otp", json={"phone": phone})).status_code == 200
    login = await client.post("/api/auth/app/login", json={"phone": phone, "code": await _last_code(server, phone)})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def test_resident_lists_and_revokes_consent_which_revokes_tokens(client, server, browser, platform_admin):
    portal = await register(client, platform_admin)
    resident = await a_resident(server)
    oauth, params, verifier, _ = await code_flow(server, browser, portal, resident)
    async with oauth:
        await oauth.fetch_token(f"{server.url}/oauth/token", code=params["code"], code_verifier=verifier)
        headers = await _app_login(client, server, resident.phone)
        listed = (await client.get("/api/app/oauth/consents", headers=headers)).json()["items"]
        assert [c["client_id"] for c in listed] == [portal.client_id]
        assert set(listed[0]["scopes"]) == set(ALL_SCOPES.split())
        assert (await client.delete(f"/api/app/oauth/consents/{portal.client_id}", headers=headers)).status_code == 200
        assert (await oauth.get("/oauth/userinfo")).status_code == 401
        assert (await client.get("/api/app/oauth/consents", headers=headers)).json()["items"] == []
        assert_error(await client.delete(f"/api/app/oauth/consents/{portal.client_id}", headers=headers), 404)
    # Consent is asked again next time.
    again = await browser.http.get(authorize_url(server, portal))
    assert again.status_code == 200 and "是否同意授权" in again.text


async def test_client_registration_is_for_platform_admins_and_audited(client, server, make_world, platform_admin):
    world = await make_world()
    body = {"name": "x", "redirect_uris": [CALLBACK], "scopes": ["openid"]}
    assert_error(await client.post("/api/oauth/clients", json=body, headers=world.admin.headers), 403)
    assert_error(await client.post("/api/oauth/clients", json=body), 401)
    assert_error(await client.post("/api/oauth/clients", json={**body, "redirect_uris": ["http://evil.example/cb"]},
                                   headers=platform_admin.headers), 422, "oauth.redirect_uri_insecure")
    assert_error(await client.post("/api/oauth/clients", json={**body, "scopes": ["openid", "admin"]},
                                   headers=platform_admin.headers), 422, "oauth.scope_invalid")
    portal = await register(client, platform_admin)
    listed = (await client.get("/api/oauth/clients", headers=platform_admin.headers)).json()["items"]
    mine = next(c for c in listed if c["client_id"] == portal.client_id)
    assert "client_secret" not in mine and mine["confidential"] is True
    from backend.audit.models import AuditEvent
    from backend.oauth.models import OAuthClient

    assert await AuditEvent.exists(action="oauth.client_created", target_id=portal.client_id)
    row = await OAuthClient.get(client_id=portal.client_id)
    assert row.secret_hash and portal.client_secret not in row.secret_hash


async def test_prompt_none_and_prompt_login(client, server, browser, platform_admin):
    portal = await register(client, platform_admin)
    resident = await a_resident(server)
    # Not signed in and no UI allowed: login_required, sent back to the client.
    params = redirect_params(await browser.http.get(authorize_url(server, portal, prompt="none")))
    assert params["error"] == "login_required" and params["iss"] == server.url
    # Signed in but never consented: consent_required.
    page = await browser.sign_in(await browser.http.get(authorize_url(server, portal)), resident.phone)
    assert "是否同意授权" in page.text
    params = redirect_params(await browser.http.get(authorize_url(server, portal, prompt="none")))
    assert params["error"] == "consent_required"
    # After consenting, prompt=none answers with a code silently.
    await browser.authorize(authorize_url(server, portal), resident.phone)
    assert "code" in redirect_params(await browser.http.get(authorize_url(server, portal, prompt="none")))
    # prompt=login asks to sign in again once the sign-in is no longer fresh.
    from backend.oauth import routes as oauth_routes

    fresh = oauth_routes.LOGIN_FRESH_S
    oauth_routes.LOGIN_FRESH_S = -1
    try:
        again = await browser.http.get(authorize_url(server, portal, prompt="login"))
        assert again.status_code == 200 and "获取验证码" in again.text
    finally:
        oauth_routes.LOGIN_FRESH_S = fresh


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


async def test_pages_follow_the_elder_friendly_rules(client, server, platform_admin):
    """DESIGN §5a: body ≥ 18 px, main buttons ≥ 60 px, contrast ≥ 4.5:1, no script or pop-ups, no framing."""
    portal = await register(client, platform_admin)
    response = await client.get(authorize_url(server, portal))
    page = response.text
    assert response.headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in response.headers[
        "content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert "<script" not in page and "alert(" not in page and 'lang="zh-CN"' in page
    css = re.search(r"<style>(.*?)</style>", page, re.S).group(1)
    body = re.search(r"body\{([^}]*)\}", css).group(1)
    assert int(re.search(r"font-size:(\d+)px", body).group(1)) >= 18
    button = re.search(r"(?<![.\w])button\{([^}]*)\}", css).group(1)
    assert int(re.search(r"min-height:(\d+)px", button).group(1)) >= 60
    for rule in re.findall(r"\{([^}]*)\}", css):
        fg = re.search(r"(?<!-)color:(#[0-9a-fA-F]{6})", rule)
        bg = re.search(r"background:(#[0-9a-fA-F]{6})", rule)
        if fg:
            assert _contrast(fg.group(1), bg.group(1) if bg else "#ffffff") >= 4.5, rule


async def test_codes_expire_after_sixty_seconds(client, server, browser, platform_admin):
    from datetime import UTC, datetime, timedelta

    from backend.oauth import service
    from backend.oauth.models import OAuthAuthorizationCode

    assert service.CODE_TTL_S == 60
    portal = await register(client, platform_admin)
    resident = await a_resident(server)
    oauth, params, verifier, _ = await code_flow(server, browser, portal, resident)
    row = await OAuthAuthorizationCode.get(code_hash=service.hash_secret(params["code"]))
    assert timedelta(seconds=55) < row.expires_at - row.created_at <= timedelta(seconds=61)
    row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    await row.save(update_fields=["expires_at"])
    late = await client.post("/oauth/token", auth=(portal.client_id, portal.client_secret), data={
        "grant_type": "authorization_code", "code": params["code"], "redirect_uri": portal.redirect_uri,
        "code_verifier": verifier})
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"
    await oauth.aclose()


async def test_token_endpoint_is_rate_limited_per_address(client, server, monkeypatch):
    """Guessing client secrets at /oauth/token stops at the limit with a 429 and a Retry-After."""
    from backend import ratelimit
    from backend.oauth import routes as oauth_routes

    monkeypatch.setattr(oauth_routes, "TOKEN_REQUESTS_PER_MINUTE", 3)
    await ratelimit.reset(server.app.ctx.cache, "oauth-token:127.0.0.1")  # earlier tests used this minute's window
    form = {"grant_type": "authorization_code", "code": "guess", "client_id": "nobody", "client_secret": "guess"}
    try:
        answers = [await client.post("/oauth/token", data=form) for _ in range(4)]
        assert [a.status_code for a in answers[:3]] == [400, 400, 400]  # an RFC 6749 error, not yet limited
        assert all(isinstance(a.json()["error"], str) for a in answers[:3])
        assert answers[3].status_code == 429
        assert answers[3].json()["error"]["code"] == "rate_limited" and int(answers[3].headers["retry-after"]) > 0
    finally:
        await ratelimit.reset(server.app.ctx.cache, "oauth-token:127.0.0.1")
