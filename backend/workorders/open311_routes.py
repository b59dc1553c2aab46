"""HTTP of Open311 GeoReport v2 at /open311/v2/ (rules and shapes in open311.py).

The format is the resource's extension (.xml, the spec's required format, or .json); errors answer
in the spec's shape and the same format. No sign-in: reading is public, filing needs an api_key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sanic import Blueprint, Request, raw
from sanic.response import HTTPResponse
from sanic_ext import openapi

from backend.errors import ApiError
from backend.http import client_ip
from backend.workorders import open311

bp = Blueprint("open311", url_prefix="/open311/v2")
FORMATS = "xml|json"
_TAG = "Open311 GeoReport v2"


async def _answer(fmt: str, root: str, work: Callable[[], Awaitable[Any]]) -> HTTPResponse:
    try:
        payload = await work()
    except ApiError as exc:
        status = exc.status if exc.status in (403, 404) else 400
        body, content_type = open311.render_error(fmt, status, exc.message)
        return raw(body, status=status, content_type=content_type)
    body, content_type = open311.render(fmt, root, payload)
    return raw(body, content_type=content_type)


def _jurisdiction(request: Request) -> str | None:
    return request.args.get("jurisdiction_id") or None


@bp.get(f"/<name:ext={FORMATS}>")
@openapi.tag(_TAG)
@openapi.parameter("jurisdiction_id", str, location="query")
async def listing(request: Request, name: str, ext: str):
    """GET services.{xml,json} (the service list) or requests.{xml,json} (start_date, end_date, status,
    service_code, service_request_id; at most 90 days and 1000 requests)."""
    if name == "services":
        return await _answer(ext, "services", lambda: open311.services(jurisdiction_id=_jurisdiction(request)))
    if name == "requests":
        query = open311.RequestQuery(**{key: request.args.get(key) for key in (
            "jurisdiction_id", "service_request_id", "service_code", "start_date", "end_date", "status")})
        return await _answer(ext, "service_requests",
                             lambda: open311.requests(query=query, now=request.app.ctx.clock()))
    return await _answer(ext, "errors", _missing("resource"))


def _missing(what: str) -> Callable[[], Awaitable[Any]]:
    async def fail() -> Any:
        raise open311.not_found(what)

    return fail


@bp.post(f"/<name:ext={FORMATS}>")
@openapi.tag(_TAG)
@openapi.body({"application/x-www-form-urlencoded": {
    "api_key": {"type": "string"}, "jurisdiction_id": {"type": "string"}, "service_code": {"type": "string"},
    "lat": {"type": "number"}, "long": {"type": "number"}, "address_string": {"type": "string"},
    "address_id": {"type": "string"}, "description": {"type": "string"}}})
async def create(request: Request, name: str, ext: str):
    """POST requests.{xml,json}: file a service request (api_key required; reporter details never leave)."""
    if name != "requests":
        return await _answer(ext, "errors", _missing("resource"))
    form = {key: list(values) for key, values in (request.form or {}).items()}
    return await _answer(ext, "service_requests", lambda: open311.create_request(
        form=form, now=request.app.ctx.clock(), ip=client_ip(request), request_id=request.ctx.request_id,
        cipher=request.app.ctx.cipher, cache=request.app.ctx.cache))


@bp.get(f"/services/<code:ext={FORMATS}>")
@openapi.tag(_TAG)
async def definition(request: Request, code: str, ext: str):
    """GET services/{service_code}.{xml,json}: the service's attributes (the category's report fields)."""
    return await _answer(ext, "service_definition", lambda: open311.definition(
        jurisdiction_id=_jurisdiction(request), service_code=code))


@bp.get(f"/requests/<rid:ext={FORMATS}>")
@openapi.tag(_TAG)
async def one(request: Request, rid: str, ext: str):
    """GET requests/{service_request_id}.{xml,json}."""
    return await _answer(ext, "service_requests", lambda: open311.one_request(
        jurisdiction_id=_jurisdiction(request), request_id=rid))


@bp.get(f"/tokens/<token:ext={FORMATS}>")
@openapi.tag(_TAG)
async def token(request: Request, token: str, ext: str):
    """GET tokens/{token}.{xml,json}: the request id of a batch request, once accepted."""
    return await _answer(ext, "service_requests", lambda: open311.token(
        jurisdiction_id=_jurisdiction(request), token_id=token))
