"""Route guards: who may call a route is declared on the route and enforced here."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, TypeVar

from sanic import Request
from sanic_ext import openapi

from backend.audit.service import Actor
from backend.auth import sessions
from backend.auth.models import Role
from backend.auth.tokens import Principal, TokenInvalid, decode_access_token
from backend.errors import Forbidden, Unauthorized
from backend.http import client_ip

F = TypeVar("F", bound=Callable[..., Any])

RESIDENT_MANAGERS = (Role.COMMUNITY_STAFF, Role.COMMUNITY_ADMIN, Role.DISTRICT_ADMIN, Role.PLATFORM_ADMIN)
# decisions beyond the daily work (delete a resident, exempt one from a month, register a device) need an admin
RESIDENT_ADMINS = (Role.COMMUNITY_ADMIN, Role.DISTRICT_ADMIN, Role.PLATFORM_ADMIN)
ALL_STAFF = tuple(Role)


async def principal_from_request(request: Request) -> Principal:
    """The caller of a valid access token whose session is still live (signed out or disabled: 401)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("请先登录", code="auth.missing_token")
    settings = request.app.ctx.settings
    try:
        principal = decode_access_token(token.strip(), secret=settings.secret_key)
    except TokenInvalid:
        raise Unauthorized("登录已过期，请重新登录", code="auth.invalid_token") from None
    await sessions.require_live(principal, cache=request.app.ctx.cache, cache_s=settings.session_cache_s)
    return principal


def authenticated(*, kinds: Iterable[str] = ("staff",), roles: Iterable[str] | None = None) -> Callable[[F], F]:
    """Require a valid access token of one of `kinds` (and, for staff, one of `roles`)."""
    allowed_kinds = frozenset(kinds)
    allowed_roles = frozenset(str(r) for r in roles) if roles is not None else None

    def decorator(handler: F) -> F:
        @wraps(handler)
        async def wrapper(request: Request, *args: Any, **kwargs: Any) -> Any:
            principal = await principal_from_request(request)
            if principal.kind not in allowed_kinds:
                raise Forbidden("无权访问", code="auth.wrong_account_kind")
            if allowed_roles is not None and principal.kind == "staff" and principal.role not in allowed_roles:
                raise Forbidden("您的角色无权执行此操作", code="auth.role_forbidden")
            request.ctx.principal = principal
            return await handler(request, *args, **kwargs)

        return openapi.secured("bearer")(wrapper)  # type: ignore[return-value]

    return decorator


def actor_of(request: Request) -> Actor:
    """The audit actor for this request (anonymous callers are recorded by address)."""
    principal: Principal | None = getattr(request.ctx, "principal", None)
    ident_kind, ident = ("anonymous", "-") if principal is None else (principal.kind, str(principal.user_id))
    return Actor(ident_kind, ident, client_ip(request), getattr(request.ctx, "request_id", ""))
