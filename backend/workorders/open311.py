"""Open311 GeoReport v2: the public face of the work-order engine for any Open311 client or city platform.

The specification's data model is small (services, service definitions, requests, tokens; status
open or closed plus notes) and sits on top of the richer internal workflow:
- a *jurisdiction* is a community (`jurisdiction_id` = the community's code; required when the
  server holds more than one community);
- a *service* is a leaf category residents may report that is not private; its attributes are the
  category's report-stage fields; `type` is realtime, or batch where staff screen first (the token
  then yields the request id once the case is accepted);
- a *request* is a case of such a category. Its status is `open` or `closed` (states.py), its
  `status_notes` the note of the last public step (internal hand-offs stay inside), `agency_responsible` the team (or, when ruled
  out of scope, who is responsible), `expected_datetime` the deadline, `address_id` the QR point code.
- Private categories, system sources' private cases and every trace of the reporter (name, phone,
  email, device, account) never leave through this API; photos are not published either
  (`media_url` stays empty): they may show faces and door numbers.
Queries default to the most recent 90 days, may not span more, and return at most 1000 requests.
XML is the required format (schemaless, no namespace); JSON mirrors it. Errors use the spec's own
shape (`errors/error/{code, description}`) with 404 for unknown resources, 403 for a missing or
wrong api_key and 400 for everything else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.etree import ElementTree

from backend.audit.service import Actor
from backend.errors import ApiError
from backend.residents.models import Community
from backend.workorders import catalog, service
from backend.workorders.models import Category, HandlerTeam, Open311Key, QrPoint, WorkOrder, WorkOrderEvent
from backend.workorders.service import Caller, Place
from backend.workorders.states import CLOSED_STATES, PUBLIC_ACTIONS, State, open311_status

WINDOW = timedelta(days=90)
MAX_REQUESTS = 1000
ITEM_TAGS = {"services": "service", "service_requests": "request", "attributes": "attribute", "values": "value",
             "errors": "error"}
_ATTRIBUTE = re.compile(r"^attribute\[([^\]]+)\](\[\])?$")


class Open311Error(ApiError):
    """An error rendered in the GeoReport shape; status per the spec (404, 403 or 400)."""


def not_found(what: str) -> Open311Error:
    return Open311Error(f"{what} not found", code="404", status=404)


def bad_request(what: str) -> Open311Error:
    return Open311Error(what, code="400", status=400)


# ---- rendering (XML and JSON from one structure) ----

def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _element(parent: ElementTree.Element, tag: str, value: Any) -> None:
    node = ElementTree.SubElement(parent, tag)
    if isinstance(value, dict):
        for key, inner in value.items():
            _element(node, key, inner)
    elif isinstance(value, list):
        for inner in value:
            _element(node, ITEM_TAGS.get(tag, "item"), inner)
    else:
        node.text = _text(value)


def to_xml(root: str, payload: list[dict[str, Any]] | dict[str, Any]) -> bytes:
    """`payload` as the spec's XML: a list becomes <root><item>…</item></root>, a dict <root>…</root>."""
    top = ElementTree.Element(root)
    if isinstance(payload, list):
        for item in payload:
            _element(top, ITEM_TAGS[root], item)
    else:
        for key, value in payload.items():
            _element(top, key, value)
    body = ElementTree.tostring(top, encoding="unicode")
    return ('<?xml version="1.0" encoding="utf-8"?>\n' + body).encode("utf-8")


def render(fmt: str, root: str, payload: list[dict[str, Any]] | dict[str, Any]) -> tuple[bytes, str]:
    import json as jsonlib

    if fmt == "xml":
        return to_xml(root, payload), "text/xml; charset=utf-8"
    return jsonlib.dumps(payload, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8"


def render_error(fmt: str, status: int, description: str) -> tuple[bytes, str]:
    return render(fmt, "errors", [{"code": status, "description": description}])


def w3(at: datetime | None) -> str | None:
    """The W3C profile of ISO 8601 with the zone, as the spec requires."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if at else None


def parse_w3(text: str, field: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"{field} must be a W3C date-time, e.g. 2010-01-01T00:00:00Z") from None
    if value.tzinfo is None:
        raise bad_request(f"{field} needs a time zone (Z or +08:00)")
    return value


# ---- jurisdictions and services ----

async def jurisdiction(jurisdiction_id: str | None) -> Community:
    """The community named by jurisdiction_id; optional only while the server holds one community."""
    if jurisdiction_id:
        found = await Community.get_or_none(code=jurisdiction_id.strip())
        if found is None:
            raise not_found("jurisdiction_id")
        return found
    only = await Community.all().limit(2)
    if len(only) != 1:
        raise bad_request("jurisdiction_id was not provided (this endpoint serves several communities)")
    return only[0]


async def _services(community: Community) -> list[Category]:
    cats = await catalog.categories(community_id=community.id, residents_only=True)
    parents = {c.parent_id for c in cats}  # type: ignore[attr-defined]
    return [c for c in cats if c.id not in parents and not c.private]


def _group(category: Category, by_id: dict[int, Category]) -> str:
    parent = by_id.get(category.parent_id) if category.parent_id else None  # type: ignore[attr-defined]
    return parent.name if parent else ""


async def services(*, jurisdiction_id: str | None) -> list[dict[str, Any]]:
    community = await jurisdiction(jurisdiction_id)
    all_cats = {c.id: c for c in await Category.filter(community_id=community.id)}
    return [{
        "service_code": c.code, "service_name": c.name, "description": c.description or c.name,
        "metadata": any(f.get("stage", "report") == "report" for f in c.fields_spec or []),
        "type": c.open311_type, "keywords": c.keywords, "group": _group(c, all_cats),
    } for c in await _services(community)]


async def _service(community: Community, code: str) -> Category:
    for category in await _services(community):
        if category.code == code:
            return category
    raise not_found("service_code")


async def definition(*, jurisdiction_id: str | None, service_code: str) -> dict[str, Any]:
    category = await _service(await jurisdiction(jurisdiction_id), service_code)
    fields = [f for f in category.fields_spec or [] if f.get("stage", "report") == "report"]
    return {"service_code": category.code, "attributes": [{
        "variable": True, "code": f["code"], "datatype": f["datatype"], "required": bool(f.get("required")),
        "datatype_description": "", "order": order, "description": f.get("label", f["code"]),
        "values": [{"key": v["key"], "name": v["name"]} for v in f.get("values", [])],
    } for order, f in enumerate(fields, start=1)]}


# ---- requests ----

async def request_views(rows: list[WorkOrder]) -> list[dict[str, Any]]:
    """The spec's request records for these cases (teams, points and last public notes in three queries)."""
    ids = [wo.id for wo in rows]
    teams = dict(await HandlerTeam.filter(id__in={wo.team_id for wo in rows if wo.team_id}).values_list(  # type: ignore[attr-defined]
        "id", "name"))
    points = dict(await QrPoint.filter(id__in={wo.point_id for wo in rows if wo.point_id}).values_list(  # type: ignore[attr-defined]
        "id", "code"))
    notes: dict[int, str] = {}
    for work_order_id, note in await WorkOrderEvent.filter(work_order_id__in=ids, action__in=list(PUBLIC_ACTIONS)) \
            .order_by("id").values_list("work_order_id", "note"):
        notes[work_order_id] = note  # the last public step wins
    views = []
    for wo in rows:
        category: Category = wo.category
        closed = State(wo.state) in CLOSED_STATES
        agency = wo.responsible if wo.state == State.OUT_OF_SCOPE else teams.get(wo.team_id, "")  # type: ignore[attr-defined]
        views.append({
            "service_request_id": wo.id, "status": open311_status(wo.state), "status_notes": notes.get(wo.id, ""),
            "service_name": category.name, "service_code": category.code, "description": wo.description,
            "agency_responsible": agency,
            "service_notice": "" if closed else f"社区承诺在 {category.deadline_hours} 小时内办结",
            "requested_datetime": w3(wo.created_at), "updated_datetime": w3(wo.updated_at),
            "expected_datetime": w3(wo.due_at), "address": wo.address,
            "address_id": points.get(wo.point_id, ""),  # type: ignore[attr-defined]
            "zipcode": "", "lat": wo.lat, "long": wo.long, "media_url": "",
        })
    return views


def _public(query):
    return query.filter(category__private=False, category__resident_reportable=True)


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


@dataclass
class RequestQuery:
    jurisdiction_id: str | None = None
    service_request_id: str | None = None
    service_code: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    status: str | None = None


async def requests(*, query: RequestQuery, now: datetime) -> list[dict[str, Any]]:
    """GET requests: by ids (which override everything else), or by service, status and a ≤ 90-day window."""
    community = await jurisdiction(query.jurisdiction_id)
    found = _public(WorkOrder.filter(community_id=community.id))
    ids = _split(query.service_request_id)
    if ids:
        if not all(i.isdigit() for i in ids):
            raise bad_request("service_request_id must be numbers, comma delimited")
        return await request_views(await found.filter(id__in=[int(i) for i in ids]).order_by("id")
                                   .prefetch_related("category"))
    start = parse_w3(query.start_date, "start_date") if query.start_date else None
    end = parse_w3(query.end_date, "end_date") if query.end_date else None
    if start and end and end - start > WINDOW:
        raise bad_request("start_date and end_date may not span more than 90 days")
    if start and end and end < start:
        raise bad_request("end_date is before start_date")
    if start is None and end is None:
        end = now
    start = start or (end - WINDOW)  # type: ignore[operator]
    end = end or (start + WINDOW)
    found = found.filter(created_at__gte=start, created_at__lte=end)
    codes = _split(query.service_code)
    if codes:
        found = found.filter(category__code__in=codes)
    statuses = set(_split(query.status))
    if statuses - {"open", "closed"}:
        raise bad_request("status must be open or closed (comma delimited)")
    if statuses == {"open"}:
        found = found.exclude(state__in=list(CLOSED_STATES))
    elif statuses == {"closed"}:
        found = found.filter(state__in=list(CLOSED_STATES))
    return await request_views(await found.order_by("-created_at", "-id").limit(MAX_REQUESTS)
                               .prefetch_related("category"))


async def one_request(*, jurisdiction_id: str | None, request_id: str) -> list[dict[str, Any]]:
    community = await jurisdiction(jurisdiction_id)
    wo = await _public(WorkOrder.filter(community_id=community.id)).get_or_none(
        id=int(request_id)).prefetch_related("category") if request_id.isdigit() else None
    if wo is None:
        raise not_found("service_request_id")
    return await request_views([wo])


async def token(*, jurisdiction_id: str | None, token_id: str) -> list[dict[str, Any]]:
    """A batch request's id, once the community has accepted it (until then only the token)."""
    community = await jurisdiction(jurisdiction_id)
    wo = await WorkOrder.get_or_none(open311_token=token_id.strip(), community_id=community.id)
    if wo is None:
        raise not_found("token")
    accepted = wo.state != State.SUBMITTED
    return [{"service_request_id": wo.id if accepted else None, "token": wo.open311_token}]


# ---- POST a request ----

def _attributes(form: Iterable[tuple[str, list[str]]]) -> dict[str, Any]:
    """attribute[code]=value, and attribute[code][]=v1&attribute[code][]=v2 for a multivaluelist."""
    out: dict[str, Any] = {}
    for key, values in form:
        match = _ATTRIBUTE.match(key)
        if match:
            out[match.group(1)] = list(values) if match.group(2) else values[-1]
    return out


async def _key(api_key: str | None) -> Open311Key:
    if not api_key:
        raise Open311Error("api_key is missing -- can't proceed with create_request", code="403", status=403)
    key = await Open311Key.get_or_none(key_hash=service.key_hash(api_key.strip()), active=True)
    if key is None:
        raise Open311Error("Invalid api_key received -- can't proceed with create_request", code="403", status=403)
    return key


async def create_request(*, form: dict[str, list[str]], now: datetime, ip: str, request_id: str,
                         cipher, cache=None) -> list[dict[str, Any]]:
    """POST requests (application/x-www-form-urlencoded); the reporter's details are sealed, never returned."""
    def one(name: str) -> str:
        values = form.get(name) or [""]
        return (values[-1] or "").strip()

    key = await _key(one("api_key"))
    community = await Community.get(id=key.community_id)  # type: ignore[attr-defined]
    if one("jurisdiction_id") and one("jurisdiction_id") != community.code:
        raise Open311Error("this api_key is not valid for that jurisdiction_id", code="403", status=403)
    code = one("service_code")
    if not code:
        raise bad_request("service_code was not provided")
    category = await _service(community, code)
    lat_text, long_text, address, address_id = one("lat"), one("long"), one("address_string"), one("address_id")
    point = None
    if address_id:
        point = await QrPoint.get_or_none(community_id=community.id, code=address_id, active=True)
        if point is None:
            raise not_found("address_id")
    lat = long = None
    if lat_text or long_text:
        try:
            lat, long = float(lat_text), float(long_text)
        except ValueError:
            raise bad_request("lat and long must both be sent, as WGS84 decimal degrees") from None
    if point is None and lat is None and not address:
        raise bad_request("a location is required: lat & long, address_string or address_id")
    description = one("description")
    if len(description) > 4000:
        raise bad_request("description is limited to 4,000 characters")
    contact = {k: v for k, v in (("name", f"{one('last_name')}{one('first_name')}"), ("phone", one("phone")),
                                 ("email", one("email"))) if v}
    caller = Caller("partner", key.id, label=key.name, actor=Actor("partner", str(key.id), ip, request_id))
    try:
        wo = await service.partner_report(
            caller=caller, community_id=community.id, category=category, description=description,
            place=Place(point=point, address=address, lat=lat, long=long), attributes=_attributes(form.items()),
            contact=contact, partner=key.name, now=now, cipher=cipher, cache=cache)
    except Open311Error:
        raise
    except ApiError as exc:  # a field the service definition requires, a bad location …
        raise bad_request(exc.message) from None
    notice = f"社区承诺在 {category.deadline_hours} 小时内办结"
    if wo.open311_token:
        return [{"token": wo.open311_token, "service_notice": notice, "account_id": None}]
    return [{"service_request_id": wo.id, "service_notice": notice, "account_id": None}]


__all__ = ["Open311Error", "RequestQuery", "create_request", "definition", "one_request", "render", "render_error",
           "requests", "services", "token"]
