"""Authlib's framework-neutral OAuth 2.1 / OIDC server, adapted to Sanic and an async ORM.

Adapter design (why a worker thread):
Authlib's grants, extensions and endpoints are synchronous and call their storage hooks
(`query_client`, `save_authorization_code`, `authenticate_refresh_token`, ...) in the middle of
their own validation. Pre-loading "everything a grant may need" would copy Authlib's control
flow into ours and break the atomic single-use checks, which must run exactly where Authlib
asks. So every Authlib call runs in a small dedicated thread pool (`OAuthServer.run`), and each
storage hook hands an ORM coroutine back to the event loop with
`asyncio.run_coroutine_threadsafe` and waits for it there (`OAuthServer.call`). The event loop
never blocks: it only schedules the coroutines; the worker thread is the one that waits. All
database work stays on the loop that owns the connections (aiosqlite/asyncpg are loop-bound),
and JWT signing (CPU) happens in the worker. `call` refuses to run on the loop's own thread,
which would deadlock. Requests reach Authlib as immutable snapshots taken on the loop, so no
Sanic object is touched from another thread.

Authlib pieces used: `AuthorizationServer`, `AuthorizationCodeGrant` with `CodeChallenge`
(RFC 7636, S256 only and always required) and `OpenIDCode` (ID tokens with nonce, at_hash,
auth_time), `RefreshTokenGrant` (rotation), `RevocationEndpoint` (RFC 7009),
`IntrospectionEndpoint` (RFC 7662), `JWTBearerTokenGenerator` / `JWTBearerTokenValidator`
(RFC 9068 access tokens) and `IssuerParameter` (RFC 9207). No implicit, hybrid or password
grant is registered, so Authlib itself answers `unsupported_response_type` / `unsupported_grant_type`.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import hmac
import json
import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from authlib.common.security import is_secure_transport
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientMixin,
    OAuth2Payload,
    OAuth2Request,
    TokenMixin,
    grants,
)
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError
from authlib.oauth2.rfc6750.errors import InvalidTokenError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7636.challenge import compare_s256_code_challenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator, JWTBearerTokenValidator
from authlib.oauth2.rfc9207 import IssuerParameter
from authlib.oidc.core import AuthorizationCodeMixin
from authlib.oidc.core.grants import OpenIDCode
from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError

from backend.audit.service import Actor
from backend.oauth import service
from backend.oauth.keys import SigningKey, public_jwks
from backend.oauth.models import OAuthAuthorizationCode, OAuthClient, OAuthToken
from backend.settings import Settings

T = TypeVar("T")
log = logging.getLogger("zhilian.oauth")

BRIDGE_TIMEOUT_S = 30
WORKER_THREADS = 4


# ---- requests and responses crossing the adapter ----

@dataclass(frozen=True)
class RequestSnapshot:
    """What Authlib may read of one HTTP request, copied on the event loop."""

    method: str
    uri: str
    headers: dict[str, str]
    args: dict[str, list[str]]
    form: dict[str, list[str]]
    ip: str = ""
    request_id: str = ""


class _Headers(dict):
    """Case-insensitive read access, as Authlib looks up `Authorization`."""

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> Any:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return super().__contains__(str(key).lower())


class _Payload(OAuth2Payload):
    def __init__(self, args: dict[str, list[str]], form: dict[str, list[str]]) -> None:
        merged: defaultdict[str, list[str]] = defaultdict(list)
        for source in (args, form):
            for key, values in source.items():
                merged[key].extend(values)
        self._datalist = merged
        self._data = {key: values[0] for key, values in merged.items() if values}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class SnapshotRequest(OAuth2Request):
    """Authlib's request over a `RequestSnapshot`."""

    def __init__(self, snapshot: RequestSnapshot) -> None:
        super().__init__(method=snapshot.method, uri=snapshot.uri, headers=_Headers(snapshot.headers))
        self.snapshot = snapshot
        self.payload = _Payload(snapshot.args, snapshot.form)

    @property
    def args(self) -> dict[str, str]:
        return {key: values[0] for key, values in self.snapshot.args.items() if values}

    @property
    def form(self) -> dict[str, str]:
        return {key: values[0] for key, values in self.snapshot.form.items() if values}


@dataclass
class OAuthResponse:
    """Authlib's (status, body, headers), turned into a Sanic response by the routes."""

    status: int
    body: Any
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def location(self) -> str | None:
        return next((value for name, value in self.headers if name.lower() == "location"), None)

    @location.setter
    def location(self, value: str) -> None:
        self.headers = [(n, v) for n, v in self.headers if n.lower() != "location"] + [("Location", value)]


# ---- the model views Authlib expects (pure data: no I/O) ----

class Client(ClientMixin):
    def __init__(self, row: OAuthClient) -> None:
        self.row = row
        self.client_id = row.client_id
        self.client_metadata: dict[str, Any] = {}

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> None:
        return None  # redirect_uri is always required and matched exactly

    def get_allowed_scope(self, scope: str | None) -> str | None:
        requested = service.scope_list(scope)
        if not requested or not set(requested) <= set(self.row.scopes):
            return None  # Authlib answers invalid_scope
        return service.scope_text(requested)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.row.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        stored = self.row.secret_hash
        return bool(stored) and hmac.compare_digest(service.hash_secret(client_secret), stored or "")

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.row.is_confidential:
            return method in ("client_secret_basic", "client_secret_post")
        return method == "none"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in service.GRANT_TYPES


class AuthorizationCode(AuthorizationCodeMixin):
    def __init__(self, row: OAuthAuthorizationCode) -> None:
        self.row = row
        self.code_challenge = row.code_challenge
        self.code_challenge_method = row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope

    def get_nonce(self) -> str | None:
        return self.row.nonce

    def get_auth_time(self) -> int:
        return int(self.row.grant.auth_time)

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> list[str]:
        return ["sms"]  # RFC 8176: confirmed by a one-time code sent by text message


@dataclass(frozen=True)
class EndUser:
    """The signed-in app user deciding on the consent page."""

    app_user_id: int
    auth_time: int


@dataclass(frozen=True)
class Subject:
    """The resource owner of a grant, as seen by one client (pairwise `sub`)."""

    app_user_id: int
    auth_time: int
    grant_id: uuid.UUID
    sub: str

    def get_user_id(self) -> str:
        return self.sub


class Token(TokenMixin):
    def __init__(self, row: OAuthToken, kind: str) -> None:
        self.row = row
        self.kind = kind  # access_token | refresh_token

    def check_client(self, client: Client) -> bool:
        return self.row.client.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.row.scope

    def _expires_at(self) -> datetime:
        if self.kind == "access_token":
            return self.row.access_expires_at
        return self.row.refresh_expires_at or self.row.created_at

    def get_expires_in(self) -> int:
        return max(0, int((self._expires_at() - self.row.created_at).total_seconds()))

    def is_expired(self) -> bool:
        return self._expires_at() <= datetime.now(UTC)

    def is_revoked(self) -> bool:
        spent = self.kind == "refresh_token" and self.row.refresh_used_at is not None
        return self.row.revoked_at is not None or self.row.grant.revoked_at is not None or spent

    def get_user(self) -> int:
        return self.row.grant.app_user_id  # type: ignore[attr-defined]

    def get_client(self) -> Client:
        return Client(self.row.client)


# ---- grants and extensions ----

TOKEN_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]


class S256CodeChallenge(CodeChallenge):
    """PKCE for every client, confidential ones included (RFC 9700 §2.1.1), and only S256."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    CODE_CHALLENGE_METHODS = {"S256": compare_s256_code_challenge}

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: missing 'code_challenge'.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256.")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidGrantError("Missing 'code_verifier'.")
        try:
            super().validate_code_verifier(grant, result)
        except InvalidRequestError as exc:  # a malformed verifier is a wrong verifier
            raise InvalidGrantError(exc.description) from None


class CodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS
    server: OAuthServer

    def save_authorization_code(self, code: str, request: SnapshotRequest) -> None:
        user: EndUser = request.user
        data = request.payload.data
        self.server.call(service.create_code(
            code=code, client=request.client.row, app_user_id=user.app_user_id, auth_time=user.auth_time,
            redirect_uri=request.payload.redirect_uri, scope=request.scope, nonce=data.get("nonce"),
            code_challenge=data["code_challenge"], code_challenge_method=data["code_challenge_method"],
        ))

    def query_authorization_code(self, code: str, client: Client) -> AuthorizationCode | None:
        row = self.server.call(service.find_code(code=code, client=client.row, actor=self.server.actor(self.request)))
        return AuthorizationCode(row) if row else None

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Nothing to do: `authenticate_user` spent the code; its row stays to detect reuse."""

    def authenticate_user(self, authorization_code: AuthorizationCode) -> Subject | None:
        row = authorization_code.row
        actor = self.server.actor(self.request)
        if not self.server.call(service.claim_code(code_row=row, actor=actor)):
            raise InvalidGrantError("The authorization code was already used.")
        return self.server.subject(row.grant, self.request.client)


class RefreshGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation (RFC 9700 §4.14.2)
    server: OAuthServer

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        row = self.server.call(service.find_refresh(refresh_token=refresh_token, actor=self.server.actor(self.request)))
        return Token(row, "refresh_token") if row else None

    def authenticate_user(self, refresh_token: Token) -> Subject | None:
        row = refresh_token.row
        if not self.server.call(service.claim_refresh(token_row=row, actor=self.server.actor(self.request))):
            raise InvalidGrantError("The refresh token was already used.")
        return self.server.subject(row.grant, self.request.client)

    def revoke_old_credential(self, refresh_token: Token) -> None:
        """Nothing to do: `authenticate_user` spent the old refresh token atomically."""


class OpenIDCodeExtension(OpenIDCode):
    def __init__(self, server: OAuthServer) -> None:
        super().__init__(require_nonce=False)
        self.server = server

    def exists_nonce(self, nonce: str, request: SnapshotRequest) -> bool:
        return self.server.call(service.nonce_used(client=request.client.row, nonce=nonce))

    def generate_user_info(self, user: Subject, scope: str) -> dict[str, Any]:
        return {"sub": user.sub}  # profile claims are served by the UserInfo endpoint

    def resolve_client_private_key(self, client: Client) -> Any:
        return self.server.id_token_key(client).key_set

    def get_client_algorithm(self, client: Client) -> str:
        return self.server.id_token_key(client).alg

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        return {"iss": self.server.issuer, "aud": client.get_client_id(), "exp": int(time.time()) + service.ID_TOKEN_TTL_S}

    def get_encode_header(self, client: Client) -> dict[str, str]:
        key = self.server.id_token_key(client)
        return {"alg": key.alg, "kid": key.kid, "typ": "JWT"}


class AccessTokenGenerator(JWTBearerTokenGenerator):
    """RFC 9068 access tokens: `typ: at+jwt`, audience = this API, `sub` = the pairwise subject."""

    def __init__(self, server: OAuthServer) -> None:
        super().__init__(
            issuer=server.issuer, alg=server.signing_key.alg,
            refresh_token_generator=lambda **_: service.new_refresh_token(),
            expires_generator=lambda client, grant_type: server.settings.oauth_access_token_ttl_s,
        )
        self.server = server

    def get_jwks(self) -> Any:
        return self.server.signing_key.key_set

    def get_audiences(self, client: Client, user: Subject, scope: str) -> str:
        return self.server.resource_audience

    def get_auth_time(self, user: Subject) -> int | None:
        return user.auth_time if user else None

    def get_jti(self, client: Client, grant_type: str, user: Subject, scope: str) -> str:
        return uuid.uuid4().hex


class Issuer(IssuerParameter):
    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def get_issuer(self) -> str:
        return self.issuer


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = TOKEN_AUTH_METHODS
    server: OAuthServer

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        return self.server.lookup_token(token_string)

    def revoke_token(self, token: Token, request: SnapshotRequest) -> None:
        self.server.call(service.revoke_token(token_row=token.row, refresh=token.kind == "refresh_token"))


class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]  # confidential clients only
    server: OAuthServer

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        return self.server.lookup_token(token_string)

    def check_permission(self, token: Token, client: Client, request: SnapshotRequest) -> bool:
        return client.row.is_confidential and token.check_client(client)

    def introspect_token(self, token: Token) -> dict[str, Any]:
        row = token.row
        payload: dict[str, Any] = {
            "active": True,
            "client_id": row.client.client_id,
            "scope": row.scope,
            "sub": service.pairwise_subject(
                settings=self.server.settings, sector_identifier=row.client.sector_identifier,
                app_user_id=row.grant.app_user_id,  # type: ignore[attr-defined]
            ),
            "iss": self.server.issuer,
            "iat": int(row.created_at.timestamp()),
            "exp": int(token._expires_at().timestamp()),
        }
        if token.kind == "access_token":
            payload.update(token_type="Bearer", jti=row.access_jti, aud=self.server.resource_audience)
        else:
            payload["token_type"] = "refresh_token"
        return payload


class AccessTokenValidator(JWTBearerTokenValidator):
    """Checks an RFC 9068 access token's signature and claims (the database check follows in routes)."""

    def __init__(self, server: OAuthServer) -> None:
        super().__init__(issuer=server.issuer, resource_server=server.resource_audience)
        self.server = server

    def get_jwks(self) -> Any:
        return self.server.signing_key.key_set

    def authenticate_token(self, token_string: str) -> Any:
        claims = super().authenticate_token(token_string)
        if (claims.header.get("typ") or "").lower() not in ("at+jwt", "application/at+jwt"):
            raise InvalidTokenError("The token is not an access token.")
        return claims


# ---- the server ----

class OAuthServer(AuthorizationServer):
    """One per worker process; built when the server starts, on its event loop."""

    def __init__(self, *, settings: Settings, signing_key: SigningKey, loop: asyncio.AbstractEventLoop,
                 id_token_keys: dict[str, SigningKey] | None = None) -> None:
        super().__init__(scopes_supported=list(service.SCOPES))
        self.settings = settings
        self.signing_key = signing_key  # access tokens, and ID tokens of clients that ask for nothing else
        self.id_token_keys = {signing_key.alg: signing_key, **(id_token_keys or {})}
        self.issuer = settings.effective_public_url.rstrip("/")
        self.resource_audience = self.issuer
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._executor = ThreadPoolExecutor(max_workers=WORKER_THREADS, thread_name_prefix="oauth")
        self.register_token_generator("default", AccessTokenGenerator(self))
        self.register_grant(CodeGrant, [S256CodeChallenge(required=True), OpenIDCodeExtension(self)])
        self.register_grant(RefreshGrant)
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)
        self.issuer_parameter = Issuer(self.issuer)
        self.register_extension(self.issuer_parameter)
        self.access_token_validator = AccessTokenValidator(self)
        if not is_secure_transport(self.issuer):
            log.warning("OAuth issuer %s is neither https nor loopback: set PUBLIC_URL to an https address; "
                        "the OAuth endpoints refuse plain http (insecure_transport)", self.issuer)

    def id_token_key(self, client: Client) -> SigningKey:
        """The key of the algorithm the client registered (OIDC Registration §2), else the signing key."""
        return self.id_token_keys.get(client.row.id_token_signed_response_alg) or self.signing_key

    def public_jwks(self) -> dict[str, Any]:
        return public_jwks([self.signing_key, *self.id_token_keys.values()])

    # -- the bridge between Authlib's threads and the event loop --

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a synchronous Authlib call in a worker thread; the event loop stays free meanwhile."""
        ctx = contextvars.copy_context()
        return await self._loop.run_in_executor(self._executor, lambda: ctx.run(fn, *args))

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """From a worker thread: run `coro` on the event loop and wait for its result."""
        if threading.get_ident() == self._loop_thread:
            coro.close()
            raise RuntimeError("OAuthServer.call() from the event loop thread would deadlock; use run()")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout=BRIDGE_TIMEOUT_S)
        except TimeoutError:
            future.cancel()
            raise

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- what AuthorizationServer asks of a framework --

    def query_client(self, client_id: str) -> Client | None:
        row = self.call(service.get_client(client_id=client_id))
        return Client(row) if row else None

    def save_token(self, token: dict[str, Any], request: SnapshotRequest) -> None:
        claims = _unverified_claims(token["access_token"])
        self.call(service.save_token(
            grant_id=request.user.grant_id, client=request.client.row, access_jti=claims["jti"],
            access_expires_at=datetime.fromtimestamp(claims["exp"], UTC), refresh_token=token.get("refresh_token"),
            scope=token.get("scope", ""), settings=self.settings,
        ))

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return SnapshotRequest(request)

    def create_json_request(self, request: Any) -> Any:
        raise NotImplementedError("no JSON endpoints")

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> OAuthResponse:
        return OAuthResponse(status, body, list(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    # -- helpers for the grants --

    def actor(self, request: SnapshotRequest) -> Actor:
        client_id = request.payload.client_id or (request.client.get_client_id() if request.client else "-")
        return Actor("oauth_client", str(client_id)[:64], request.snapshot.ip, request.snapshot.request_id)

    def subject(self, grant_row: Any, client: Client) -> Subject | None:
        app_user_id = grant_row.app_user_id
        if not self.call(service.app_user_active(app_user_id=app_user_id)):
            return None
        sub = service.pairwise_subject(
            settings=self.settings, sector_identifier=client.row.sector_identifier, app_user_id=app_user_id
        )
        return Subject(app_user_id, int(grant_row.auth_time), grant_row.id, sub)

    def lookup_token(self, token_string: str) -> Token | None:
        """A token of ours by its string: a JWT access token (signature checked) or a refresh token."""
        if token_string.count(".") == 2:
            try:
                decoded = jose_jwt.decode(token_string, self.signing_key.key_set)
            except (JoseError, ValueError):
                return None
            jti = decoded.claims.get("jti")
            row = self.call(service.find_token(access_jti=str(jti))) if jti else None
            return Token(row, "access_token") if row else None
        row = self.call(service.find_token(refresh_token=token_string))
        return Token(row, "refresh_token") if row else None

    def error_redirect(self, error: Any) -> OAuthResponse:
        """An authorization error sent back to the (already validated) redirect URI, with `iss`."""
        response = self.handle_error_response(None, error)
        self.issuer_parameter.add_issuer_parameter(self, response)
        return response

    def metadata(self) -> dict[str, Any]:
        """OpenID Provider / RFC 8414 metadata."""
        base = self.issuer
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/oauth/authorize",
            "token_endpoint": f"{base}/oauth/token",
            "userinfo_endpoint": f"{base}/oauth/userinfo",
            "jwks_uri": f"{base}/oauth/jwks",
            "revocation_endpoint": f"{base}/oauth/revoke",
            "introspection_endpoint": f"{base}/oauth/introspect",
            "scopes_supported": list(service.SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": list(service.GRANT_TYPES),
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": TOKEN_AUTH_METHODS,
            "revocation_endpoint_auth_methods_supported": TOKEN_AUTH_METHODS,
            "introspection_endpoint_auth_methods_supported": Introspection.CLIENT_AUTH_METHODS,
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": list(self.id_token_keys),  # the default first; RS256 always
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "amr",
                                 "name", "phone_number_masked", "certify_url"],
            "authorization_response_iss_parameter_supported": True,
            "ui_locales_supported": ["zh-CN"],
        }


def _unverified_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT this process just signed (no verification needed: it is our own output)."""
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
