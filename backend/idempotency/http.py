"""`@idempotent`: the one place a create route gets `Idempotency-Key` support.

Put it under `@authenticated` (keys are scoped per caller). Without the header the route runs as
before. With it, a retry of the same request by the same caller gets the first answer again,
marked `Idempotent-Replayed: true`, and the work is never done twice (see `service`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, TypeVar

from sanic import Request
from sanic.response import HTTPResponse
from sanic_ext import openapi

from backend.idempotency import service

F = TypeVar("F", bound=Callable[..., Any])
HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"


def idempotent(handler: F) -> F:
    """Run the create once per (caller, Idempotency-Key); replay its answer to retries."""

    @wraps(handler)
    async def wrapper(request: Request, *args: Any, **kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
        if key is None:
            return await handler(request, *args, **kwargs)
        service.check_key(key)
        outcome = await service.run_once(
            scope=_scope(request), key=key,
            fingerprint=service.fingerprint(method=request.method, path=request.path,
                                            query=request.query_string, parts=_body_parts(request)),
            work=lambda: handler(request, *args, **kwargs), answer_of=_answer_of,
            cipher=request.app.ctx.cipher, ttl_s=request.app.ctx.settings.idempotency_ttl_s,
        )
        if isinstance(outcome, service.Answer):
            return HTTPResponse(outcome.body, status=outcome.status, content_type=outcome.content_type,
                                headers={REPLAYED_HEADER: "true"})
        return outcome

    wrapper.__idempotent__ = True  # type: ignore[attr-defined]  # read by the test listing every create
    documented = openapi.parameter(HEADER, str, location="header", required=False)(wrapper)
    return documented  # type: ignore[return-value]


def _scope(request: Request) -> str:
    principal = getattr(request.ctx, "principal", None)
    if principal is None:  # routes put @idempotent under @authenticated; an anonymous caller has no scope
        raise RuntimeError("@idempotent needs an authenticated caller (put it under @authenticated)")
    return f"{principal.kind}:{principal.user_id}"


def _body_parts(request: Request) -> Iterable[bytes]:
    """The body in a form that does not change between retries (multipart boundaries do)."""
    content_type = (request.content_type or "").split(";")[0].strip().lower()
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = request.form or {}
        for name in sorted(form):
            yield f"field:{name}".encode()
            yield from (value.encode() for value in form.getlist(name))
        files = request.files or {}
        for name in sorted(files):
            yield f"file:{name}".encode()
            yield from (hashlib.sha256(f.body).digest() for f in files.getlist(name))
        return
    if content_type == "application/json" and request.body:
        try:
            yield json.dumps(json.loads(request.body), sort_keys=True, separators=(",", ":")).encode()
            return
        except ValueError:
            pass  # malformed: the route refuses it; fingerprint the bytes
    yield request.body or b""


def _answer_of(response: Any) -> service.Answer | None:
    """A 2xx answer with a body to replay; None leaves the key unused."""
    if not isinstance(response, HTTPResponse) or not 200 <= response.status < 300 or response.body is None:
        return None
    return service.Answer(response.status, response.content_type or "application/json", bytes(response.body))
