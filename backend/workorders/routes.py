"""HTTP of the work-order engine: the staff console's board and case page, the phone app's 随手拍.

Each handler parses, calls one service function and answers; who may do what on a case is decided
by the service (the move table), the route only checks the kind of account. Times come from the
app's clock (`app.ctx.clock`), so tests can freeze it.
"""

from __future__ import annotations

from datetime import date

from sanic import Blueprint, Request, json, raw
from sanic.response import HTTPResponse
from sanic_ext import openapi

from backend.auth.guards import RESIDENT_ADMINS, RESIDENT_MANAGERS, actor_of, authenticated
from backend.auth.scope import target_community_id, visible_community_ids
from backend.errors import ApiError
from backend.http import validated_body, validated_query
from backend.idempotency.http import idempotent
from backend.workorders import catalog, figures, points, queries, schemas, service
from backend.workorders.service import Caller

bp = Blueprint("workorders")

STAFF_BASE = "/api/workorders"
APP_BASE = "/api/app/workorders"
_NO_STORE = {"Cache-Control": "no-store"}
_PHOTO_FORM = {"multipart/form-data": {"photo": {"type": "string", "format": "binary"},
                                       "kind": {"type": "string", "enum": ["before", "after", "progress"]}}}


async def _staff(request: Request) -> Caller:
    principal = request.ctx.principal
    return Caller("staff", principal.user_id, principal.role, await visible_community_ids(principal),
                  actor_of(request))


def _app(request: Request) -> Caller:
    return Caller("app", request.ctx.principal.user_id, "app", [], actor_of(request))


def _now(request: Request):
    return request.app.ctx.clock()


def _public_url(request: Request) -> str:
    return request.app.ctx.settings.effective_public_url


async def _community(request: Request, requested: int | None) -> int:
    return await target_community_id(request.ctx.principal, requested)


def _upload(request: Request) -> tuple[bytes, str]:
    photo = request.files.get("photo") if request.files else None
    if photo is None:
        raise ApiError("请选择照片", code="workorder.photo_missing", status=400, field="photo")
    kind = (request.form.get("kind") if request.form else None) or "before"
    return photo.body, kind


# ---- catalog: categories and teams ----

@bp.get("/api/workorders/categories")
@authenticated(roles=RESIDENT_MANAGERS)
@validated_query(schemas.CommunityQuery)
async def categories(request: Request, query: schemas.CommunityQuery):
    """The community's category tree (codes, default teams, deadlines, privacy, extra fields)."""
    items = await catalog.categories(community_id=await _community(request, query.community_id))
    return json({"items": [catalog.category_view(c) for c in items]})


@bp.post("/api/workorders/categories")
@authenticated(roles=RESIDENT_ADMINS)
@idempotent
@validated_body(schemas.CategoryCreate)
async def create_category(request: Request, body: schemas.CategoryCreate):
    community_id = await _community(request, body.community_id)
    values = body.model_dump(exclude={"community_id"})
    category = await catalog.create_category(community_id=community_id, values=values)
    return json(catalog.category_view(category), status=201)


@bp.patch("/api/workorders/categories/<cid:int>")
@authenticated(roles=RESIDENT_ADMINS)
@validated_body(schemas.CategoryUpdate)
@validated_query(schemas.CommunityQuery)
async def update_category(request: Request, cid: int, body: schemas.CategoryUpdate, query: schemas.CommunityQuery):
    category = await catalog.update_category(category_id=cid, community_id=await _community(request, query.community_id),
                                             changes=body.model_dump(exclude_unset=True))
    return json(catalog.category_view(category))


@bp.get("/api/workorders/teams")
@authenticated(roles=RESIDENT_MANAGERS)
@validated_query(schemas.CommunityQuery)
async def teams(request: Request, query: schemas.CommunityQuery):
    """Handler teams (物业, 网格员, 社区 …) and their members."""
    items = await catalog.teams(community_id=await _community(request, query.community_id))
    return json({"items": [catalog.team_view(t) for t in items]})


@bp.post("/api/workorders/teams")
@authenticated(roles=RESIDENT_ADMINS)
@idempotent
@validated_body(schemas.TeamCreate)
async def create_team(request: Request, body: schemas.TeamCreate):
    team = await catalog.create_team(community_id=await _community(request, body.community_id), name=body.name,
                                     kind=body.kind, phone=body.phone)
    return json({"id": team.id, "name": team.name, "kind": str(team.kind), "phone": team.phone, "members": []},
                status=201)


@bp.post("/api/workorders/teams/<tid:int>/members")
@authenticated(roles=RESIDENT_ADMINS)
@idempotent
@validated_body(schemas.MemberAdd)
@validated_query(schemas.CommunityQuery)
async def add_member(request: Request, tid: int, body: schemas.MemberAdd, query: schemas.CommunityQuery):
    member = await catalog.add_member(team_id=tid, community_id=await _community(request, query.community_id),
                                      staff_id=body.staff_id)
    return json({"team_id": tid, "staff_id": member.staff_id}, status=201)  # type: ignore[attr-defined]


@bp.delete("/api/workorders/teams/<tid:int>/members/<sid:int>")
@authenticated(roles=RESIDENT_ADMINS)
@validated_query(schemas.CommunityQuery)
async def remove_member(request: Request, tid: int, sid: int, query: schemas.CommunityQuery):
    removed = await catalog.remove_member(team_id=tid, community_id=await _community(request, query.community_id),
                                          staff_id=sid)
    return json({"removed": removed})


# ---- fixed QR points and their signs ----

@bp.get("/api/workorders/points")
@authenticated(roles=RESIDENT_MANAGERS)
@validated_query(schemas.CommunityQuery)
async def list_points(request: Request, query: schemas.CommunityQuery):
    scope = [await _community(request, query.community_id)] if query.community_id else \
        await visible_community_ids(request.ctx.principal)
    items = await points.list_points(community_ids=scope)
    return json({"items": [points.point_view(p, _public_url(request)) for p in items]})


@bp.post("/api/workorders/points")
@authenticated(roles=RESIDENT_MANAGERS)
@idempotent
@validated_body(schemas.PointCreate)
async def create_point(request: Request, body: schemas.PointCreate):
    point = await points.create_point(community_id=await _community(request, body.community_id), name=body.name,
                                      kind=body.kind, address=body.address, grid=body.grid, lat=body.lat,
                                      long=body.long, code=body.code)
    return json(points.point_view(point, _public_url(request)), status=201)


def _pdf(data: bytes, name: str) -> HTTPResponse:
    return raw(data, content_type="application/pdf",
               headers={"Content-Disposition": f'attachment; filename="{name}"', **_NO_STORE})


@bp.post("/api/workorders/points/signs")
@authenticated(roles=RESIDENT_MANAGERS)
@validated_body(schemas.SignsBody)
async def signs(request: Request, body: schemas.SignsBody):
    """Printable signs (A5 PDF, large type), one page per point, in the order given."""
    pdf = await points.signs(point_ids=body.point_ids, community_ids=await visible_community_ids(request.ctx.principal),
                             public_url=_public_url(request))
    return _pdf(pdf, f"points-{date.today().isoformat()}.pdf")


@bp.get("/api/workorders/points/<pid:int>/sign.pdf")
@authenticated(roles=RESIDENT_MANAGERS)
async def sign(request: Request, pid: int):
    pdf = await points.signs(point_ids=[pid], community_ids=await visible_community_ids(request.ctx.principal),
                             public_url=_public_url(request))
    return _pdf(pdf, f"point-{pid}.pdf")


# ---- the staff console: board, case page, moves, photos ----

@bp.get("/api/workorders")
@authenticated(roles=RESIDENT_MANAGERS)
@validated_query(schemas.BoardQuery)
async def board(request: Request, query: schemas.BoardQuery):
    """The dispatch board: counts (new, due soon, overdue, escalated, by state and team) and a page of cases."""
    result = await queries.board(caller=await _staff(request), filters=queries.BoardFilter(**query.model_dump()),
                                 now=_now(request), base=STAFF_BASE)
    return json(result, headers=_NO_STORE)


@bp.post("/api/workorders")
@authenticated(roles=RESIDENT_MANAGERS)
@idempotent
@validated_body(schemas.StaffReport)
async def staff_report(request: Request, body: schemas.StaffReport):
    """A case entered by staff (phone call, walk-in, or 代报 for an offline resident)."""
    caller = await _staff(request)
    wo = await service.staff_report(
        caller=caller, community_id=await _community(request, body.community_id), category_id=body.category_id,
        description=body.description, point_id=body.point_id, address=body.address, grid=body.grid, lat=body.lat,
        long=body.long, on_behalf_resident_id=body.on_behalf_resident_id, contact_name=body.contact_name,
        contact_phone=body.contact_phone, attributes=body.attributes, now=_now(request), cipher=request.app.ctx.cipher)
    return json({"id": wo.id, "number": service.number(wo), "state": str(wo.state)}, status=201)


@bp.get("/api/workorders/duplicates")
@authenticated(roles=RESIDENT_MANAGERS)
@validated_query(schemas.DuplicatesQuery)
async def staff_duplicates(request: Request, query: schemas.DuplicatesQuery):
    """Open (or recently closed) cases of a category at the same point or within ~50 m: merge candidates."""
    items = await queries.duplicates(caller=await _staff(request), community_id=query.community_id,
                                     category_id=query.category_id, point_token=query.point, point_id=query.point_id,
                                     lat=query.lat, long=query.long, now=_now(request), public_url_base=STAFF_BASE)
    return json({"items": items})


@bp.get("/api/workorders/figures")
@authenticated(roles=RESIDENT_MANAGERS)
@validated_query(schemas.FiguresQuery)
async def monthly_figures(request: Request, query: schemas.FiguresQuery):
    """响应率, 按时办结率, 满意率, 重办率 per category and team for a month (json, or csv / xlsx to download)."""
    result = await figures.monthly(community_id=await _community(request, query.community_id), month=query.month,
                                   now=_now(request))
    if query.format == "json":
        return json(result)
    name = f"workorders-{query.month}.{query.format}"
    if query.format == "csv":
        return raw(figures.to_csv(result), content_type="text/csv; charset=utf-8",
                   headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return raw(figures.to_xlsx(result),
               content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
               headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.post("/api/workorders/open311-keys")
@authenticated(roles=RESIDENT_ADMINS)
@idempotent
@validated_body(schemas.Open311KeyCreate)
async def open311_key(request: Request, body: schemas.Open311KeyCreate):
    """An API key for a city platform to file requests through Open311 (shown once)."""
    row, key = await service.create_open311_key(caller=await _staff(request), name=body.name,
                                                community_id=await _community(request, body.community_id))
    return json({"id": row.id, "name": row.name, "community_id": row.community_id, "api_key": key},  # type: ignore[attr-defined]
                status=201, headers=_NO_STORE)


@bp.get("/api/workorders/<wid:int>")
@authenticated(roles=RESIDENT_MANAGERS)
async def staff_detail(request: Request, wid: int):
    """The case page: place, reporter (audited), clock, history with notes, photo URLs, next moves."""
    view = await queries.detail(caller=await _staff(request), work_order_id=wid, now=_now(request),
                                cipher=request.app.ctx.cipher, base=STAFF_BASE)
    return json(view, headers=_NO_STORE)


def _move_params(body: schemas.MoveBody) -> service.MoveParams:
    return service.MoveParams(team_id=body.team_id, assignee_id=body.assignee_id, into_id=body.into_id,
                              responsible=body.responsible, extension_hours=body.extension_hours,
                              satisfied=body.satisfied, attributes=body.attributes, photo_ids=body.photo_ids)


@bp.post("/api/workorders/<wid:int>/moves")
@authenticated(roles=RESIDENT_MANAGERS)
@idempotent
@validated_body(schemas.MoveBody)
async def move(request: Request, wid: int, body: schemas.MoveBody):
    """One move of the state machine (accept, dispatch, start, return, reassign, … see the domain README)."""
    wo = await service.transition(caller=await _staff(request), work_order_id=wid, action=body.action, note=body.note,
                                  params=_move_params(body), now=_now(request), cipher=request.app.ctx.cipher)
    return json({"id": wo.id, "state": str(wo.state), "round": wo.round, "due_at": wo.due_at.isoformat()})


@bp.post("/api/workorders/<wid:int>/photos")
@authenticated(roles=RESIDENT_MANAGERS)
@idempotent
@openapi.body(_PHOTO_FORM)
async def staff_photo(request: Request, wid: int):
    data, kind = _upload(request)
    photo = await service.add_photo(caller=await _staff(request), work_order_id=wid, data=data, kind=kind,
                                    now=_now(request), cipher=request.app.ctx.cipher)
    return json({"id": photo.id, "kind": str(photo.kind), "url": f"{STAFF_BASE}/{wid}/photos/{photo.id}"}, status=201)


@bp.get("/api/workorders/<wid:int>/photos/<pid:int>")
@authenticated(roles=RESIDENT_MANAGERS)
async def staff_photo_get(request: Request, wid: int, pid: int):
    data = await service.photo_bytes(caller=await _staff(request), work_order_id=wid, photo_id=pid,
                                     cipher=request.app.ctx.cipher)
    return raw(data, content_type="image/jpeg", headers={"Cache-Control": "private, no-store"})


# ---- the phone app: 随手拍 ----

@bp.get("/api/app/workorders/categories")
@authenticated(kinds=("app",))
@validated_query(schemas.AppCategoriesQuery)
async def app_categories(request: Request, query: schemas.AppCategoriesQuery):
    items = await queries.app_categories(caller=_app(request), community_id=query.community_id,
                                         point_token=query.point)
    parents = {c.parent_id for c in items}  # type: ignore[attr-defined]
    return json({"items": [catalog.category_view(c) | {"leaf": c.id not in parents} for c in items]})


@bp.get("/api/app/workorders/points/scan")
@authenticated(kinds=("app",))
@validated_query(schemas.ScanQuery)
async def app_scan(request: Request, query: schemas.ScanQuery):
    """A scanned sign: the exact place to prefill and the categories to pick from (no GPS needed)."""
    return json(await queries.scan_point(token=query.t, public_url=_public_url(request), now=_now(request)))


@bp.get("/api/app/workorders/duplicates")
@authenticated(kinds=("app",))
@validated_query(schemas.DuplicatesQuery)
async def app_duplicates(request: Request, query: schemas.DuplicatesQuery):
    """Shown before a report is sent: the same problem here already? Then 我也遇到 instead."""
    items = await queries.duplicates(caller=_app(request), community_id=query.community_id,
                                     category_id=query.category_id, point_token=query.point, point_id=None,
                                     lat=query.lat, long=query.long, now=_now(request), public_url_base=APP_BASE)
    return json({"items": items})


@bp.post("/api/app/workorders")
@authenticated(kinds=("app",))
@idempotent
@validated_body(schemas.AppReport)
async def app_report(request: Request, body: schemas.AppReport):
    """随手拍: report at a scanned point, or at an address / position in one's community."""
    hint = (body.hint_lat, body.hint_long) if body.hint_lat is not None and body.hint_long is not None else None
    wo = await service.report(
        caller=_app(request), category_id=body.category_id, description=body.description, point_token=body.point,
        community_id=body.community_id, address=body.address, lat=body.lat, long=body.long, hint=hint,
        show_reporter=body.show_reporter, reporter_name=body.reporter_name,
        on_behalf_resident_id=body.on_behalf_resident_id, attributes=body.attributes, now=_now(request),
        cipher=request.app.ctx.cipher, cache=request.app.ctx.cache)
    return json({"id": wo.id, "number": service.number(wo), "state": str(wo.state)}, status=201)


@bp.get("/api/app/workorders")
@authenticated(kinds=("app",))
@validated_query(schemas.AppListQuery)
async def app_list(request: Request, query: schemas.AppListQuery):
    """My reports, the ones I follow, or my community's public cases (reporters never named)."""
    result = await queries.app_list(caller=_app(request), scope=query.scope, community_id=query.community_id,
                                    page=query.page, size=query.size, now=_now(request), base=APP_BASE)
    return json(result, headers=_NO_STORE)


@bp.get("/api/app/workorders/<wid:int>")
@authenticated(kinds=("app",))
async def app_detail(request: Request, wid: int):
    view = await queries.detail(caller=_app(request), work_order_id=wid, now=_now(request),
                                cipher=request.app.ctx.cipher, base=APP_BASE)
    return json(view, headers=_NO_STORE)


@bp.post("/api/app/workorders/<wid:int>/follow")
@authenticated(kinds=("app",))
async def app_follow(request: Request, wid: int):
    """我也遇到: follow this case (and hear of each step) instead of filing a new one."""
    return json(await service.follow(caller=_app(request), work_order_id=wid, on=True, now=_now(request)))


@bp.delete("/api/app/workorders/<wid:int>/follow")
@authenticated(kinds=("app",))
async def app_unfollow(request: Request, wid: int):
    return json(await service.follow(caller=_app(request), work_order_id=wid, on=False, now=_now(request)))


@bp.post("/api/app/workorders/<wid:int>/callback")
@authenticated(kinds=("app",))
@idempotent
@validated_body(schemas.CallbackBody)
async def app_callback(request: Request, wid: int, body: schemas.CallbackBody):
    """The call-back: 解决了吗？满意吗？ "没解决" reopens the case."""
    wo = await service.answer_callback(caller=_app(request), work_order_id=wid, resolved=body.resolved,
                                       satisfied=body.satisfied, note=body.note, now=_now(request))
    return json({"id": wo.id, "state": str(wo.state), "round": wo.round})


@bp.post("/api/app/workorders/<wid:int>/photos")
@authenticated(kinds=("app",))
@idempotent
@openapi.body(_PHOTO_FORM)
async def app_photo(request: Request, wid: int):
    data, kind = _upload(request)
    photo = await service.add_photo(caller=_app(request), work_order_id=wid, data=data, kind=kind,
                                    now=_now(request), cipher=request.app.ctx.cipher)
    return json({"id": photo.id, "kind": str(photo.kind), "url": f"{APP_BASE}/{wid}/photos/{photo.id}"}, status=201)


@bp.get("/api/app/workorders/<wid:int>/photos/<pid:int>")
@authenticated(kinds=("app",))
async def app_photo_get(request: Request, wid: int, pid: int):
    data = await service.photo_bytes(caller=_app(request), work_order_id=wid, photo_id=pid,
                                     cipher=request.app.ctx.cipher)
    return raw(data, content_type="image/jpeg", headers={"Cache-Control": "private, no-store"})
