"""The read side of the work-order engine: list rows, the case page, the board, the app's lists,
duplicate suggestions and the report screen behind a scanned point.

What each viewer may see is decided here and in `service.case_or_404`: staff see their communities'
cases with the reporter (the read is audited); residents see public cases (and their own), never a
reporter's identity unless they chose to show it, and only the public steps of a history.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.expressions import Q
from tortoise.functions import Count

from backend.audit import service as audit
from backend.auth.models import AppUser, StaffUser
from backend.errors import NotFoundError, ValidationFailed
from backend.residents.models import Resident
from backend.security.fieldcrypt import FieldCipher
from backend.security.masking import mask_name, mask_phone
from backend.workorders import catalog, clock, geo
from backend.workorders.models import (
    Category,
    Follower,
    HandlerTeam,
    PhotoKind,
    QrPoint,
    Source,
    WorkOrder,
    WorkOrderEvent,
    WorkOrderPhoto,
)
from backend.workorders.service import (
    CONTACT_PURPOSE,
    NAME_PURPOSE,
    PHONE_PURPOSE,
    RECENT_DAYS,
    Caller,
    app_community,
    case_or_404,
    number,
    parties_of,
    scoped,
    user_communities,
)
from backend.workorders.states import (
    CLOCK_STATES,
    CLOSED_STATES,
    PUBLIC_ACTIONS,
    STATE_LABELS,
    State,
    allowed_actions,
    clock_holder,
    open311_status,
)


async def duplicates(*, caller: Caller, community_id: int | None, category_id: int, point_token: str | None,
                     point_id: int | None, lat: float | None, long: float | None, now: datetime,
                     public_url_base: str) -> list[dict[str, Any]]:
    """Open (or closed in the last 30 days) cases of the category at the same point or within ~50 m."""
    from backend.workorders import points

    point = None
    if point_token:
        point = await points.point_by_scan(point_token)
    elif point_id is not None:
        point = await points.point_or_raise(point_id=point_id, community_ids=caller.community_ids
                                            if caller.kind == "staff" else None)
    if point is not None:
        community_id = point.community_id  # type: ignore[attr-defined]
        if lat is None and point.lat is not None:
            lat, long = point.lat, point.long
    if community_id is None and caller.kind == "app":
        community_id = await app_community(caller, None)  # the resident's own community
    if community_id is None:
        raise ValidationFailed("请给出点位或社区", code="workorder.community_required", field="community_id")
    if caller.kind == "staff" and caller.community_ids is not None and community_id not in caller.community_ids:
        raise NotFoundError("没有找到这个社区", code="community.not_found")
    category = await catalog.category_or_raise(category_id=category_id, community_id=community_id)
    if category.private and caller.kind != "staff":
        return []  # private matters are never shown to other residents
    if lat is not None and not geo.valid(lat, long):
        raise ValidationFailed("位置的经纬度不正确", code="workorder.bad_location", field="lat")
    recent = now - timedelta(days=RECENT_DAYS)
    query = WorkOrder.filter(community_id=community_id, category_id=category.id).exclude(
        state__in=[State.DUPLICATE, State.OUT_OF_SCOPE]).filter(Q(closed_at__isnull=True) | Q(closed_at__gte=recent))
    near: list[tuple[WorkOrder, float | None, str]] = []
    if point is not None:
        for wo in await query.filter(point_id=point.id):
            near.append((wo, 0.0, "point"))
    if lat is not None and long is not None:
        lo_lat, hi_lat, lo_long, hi_long = geo.box(lat, long, geo.NEARBY_M)
        seen = {wo.id for wo, _, _ in near}
        for wo in await query.filter(lat__gte=lo_lat, lat__lte=hi_lat, long__gte=lo_long, long__lte=hi_long):
            if wo.id in seen:
                continue
            metres = geo.distance_m(lat, long, wo.lat, wo.long)
            if metres <= geo.NEARBY_M:
                near.append((wo, metres, "distance"))
    near.sort(key=lambda item: (item[1] if item[1] is not None else 0, -item[0].id))
    shown = near[:10]
    views = await summaries([wo for wo, _, _ in shown], caller=caller, now=now, base=public_url_base)
    for view, (_, metres, why) in zip(views, shown, strict=True):
        view.update(distance_m=round(metres, 1) if metres is not None else None, matched_by=why)
    return views


# ---- views ----

def _photo_url(base: str, wo: WorkOrder, photo_id: int) -> str:
    return f"{base}/{wo.id}/photos/{photo_id}"


def _public_actor(event: WorkOrderEvent) -> str:
    """Who made a step, as residents read it: a role, never a staff member's or resident's name."""
    return {"app": "居民", "staff": "社区工作人员", "system": "系统"}.get(event.actor_kind, event.actor_label)


def clock_view(wo: WorkOrder, now: datetime) -> dict[str, Any]:
    running = wo.state in CLOCK_STATES
    return {
        "status": clock.status(running=running, warn=wo.warn_at, due=wo.due_at, now=now),
        "holder": clock_holder(wo.state), "round": wo.round, "started_at": wo.round_started_at.isoformat(),
        "warn_at": wo.warn_at.isoformat(), "due_at": wo.due_at.isoformat(),
        "response_due_at": wo.response_due_at.isoformat(),
        "warned": wo.warned_at is not None, "escalated": wo.escalated_at is not None and running,
        "remaining_s": int((wo.due_at - now).total_seconds()) if running else None,
    }


async def summaries(rows: list[WorkOrder], *, caller: Caller, now: datetime, base: str) -> list[dict[str, Any]]:
    """Cases as list rows (no reporter identity for anyone), with what they refer to loaded in bulk."""
    ids = [wo.id for wo in rows]
    categories = {c.id: c for c in await Category.filter(id__in={wo.category_id for wo in rows})}  # type: ignore[attr-defined]
    teams = {t.id: t for t in await HandlerTeam.filter(id__in={wo.team_id for wo in rows if wo.team_id})}  # type: ignore[attr-defined]
    points_ = {p.id: p for p in await QrPoint.filter(id__in={wo.point_id for wo in rows if wo.point_id})}  # type: ignore[attr-defined]
    first_photo: dict[int, int] = {}
    for work_order_id, photo_id in await WorkOrderPhoto.filter(work_order_id__in=ids, kind=PhotoKind.BEFORE).order_by(
            "-id").values_list("work_order_id", "id"):
        first_photo[work_order_id] = photo_id  # ordered newest first: the oldest wins
    followers: dict[int, int] = dict(await Follower.filter(work_order_id__in=ids).annotate(n=Count("id")).group_by(
        "work_order_id").values_list("work_order_id", "n"))
    following = set(await Follower.filter(work_order_id__in=ids, app_user_id=caller.id).values_list(
        "work_order_id", flat=True)) if caller.kind == "app" else set()
    views = []
    for wo in rows:
        category = categories[wo.category_id]  # type: ignore[attr-defined]
        team = teams.get(wo.team_id)  # type: ignore[attr-defined]
        point = points_.get(wo.point_id)  # type: ignore[attr-defined]
        photo_id = first_photo.get(wo.id)
        view = {
            "id": wo.id, "number": number(wo), "community_id": wo.community_id,  # type: ignore[attr-defined]
            "category": {"id": category.id, "code": category.code, "name": category.name, "icon": category.icon,
                         "private": category.private},
            "source": str(wo.source), "state": str(wo.state), "state_label": STATE_LABELS[State(wo.state)],
            "open311_status": open311_status(wo.state), "description": wo.description,
            "place": {"point": {"id": point.id, "code": point.code, "name": point.name} if point else None,
                      "address": wo.address, "grid": wo.grid, "lat": wo.lat, "long": wo.long},
            "team": {"id": team.id, "name": team.name} if team else None,
            "created_at": wo.created_at.isoformat(), "updated_at": wo.updated_at.isoformat(),
            "clock": clock_view(wo, now), "photo_url": _photo_url(base, wo, photo_id) if photo_id else None,
            "followers": followers.get(wo.id, 0),
            "merged_into": wo.merged_into_id, "reopen_count": wo.reopen_count,  # type: ignore[attr-defined]
        }
        if caller.kind == "app":
            view["mine"] = wo.reporter_user_id == caller.id  # type: ignore[attr-defined]
            view["following"] = wo.id in following
        views.append(view)
    return views


async def summary(wo: WorkOrder, *, caller: Caller, now: datetime, base: str) -> dict[str, Any]:
    """One case as a list row."""
    return (await summaries([wo], caller=caller, now=now, base=base))[0]


async def _reporter_for_staff(wo: WorkOrder, cipher: FieldCipher) -> dict[str, Any] | None:
    name = cipher.decrypt_text(wo.reporter_name_cipher, purpose=NAME_PURPOSE) if wo.reporter_name_cipher else ""
    if wo.reporter_user_id is not None:  # type: ignore[attr-defined]
        user = await AppUser.get_or_none(id=wo.reporter_user_id)  # type: ignore[attr-defined]
        phone = cipher.decrypt_text(user.phone_cipher, purpose=PHONE_PURPOSE) if user else ""
        kind = "app"
    elif wo.reporter_contact_cipher:
        contact = json.loads(cipher.decrypt_text(wo.reporter_contact_cipher, purpose=CONTACT_PURPOSE))
        name, phone = contact.get("name", name), contact.get("phone", "")
        kind = "partner" if wo.source == Source.PARTNER else "staff_contact"
    elif wo.reporter_staff_id is not None:
        staff = await StaffUser.get_or_none(id=wo.reporter_staff_id)
        name, phone, kind = (staff.display_name if staff else ""), "", "staff"
    else:
        return None
    return {"kind": kind, "name": name, "phone": phone, "phone_masked": mask_phone(phone),
            "shown_to_residents": wo.show_reporter}


async def detail(*, caller: Caller, work_order_id: int, now: datetime, cipher: FieldCipher,
                 base: str) -> dict[str, Any]:
    """The case page: everything the caller may see, its history, photos, links and their next moves."""
    wo = await case_or_404(caller, work_order_id)
    view = await summary(wo, caller=caller, now=now, base=base)
    category: Category = wo.category
    events = await WorkOrderEvent.filter(work_order_id=wo.id).order_by("id")
    if caller.kind != "staff":
        events = [e for e in events if e.action in PUBLIC_ACTIONS]
    photos_ = await WorkOrderPhoto.filter(work_order_id=wo.id).order_by("id")
    view.update(
        attributes=wo.attributes, fields=category.fields_spec, responsible=wo.responsible, outcome=wo.outcome,
        satisfied=wo.satisfied, on_behalf=wo.on_behalf,
        duplicates=list(await WorkOrder.filter(merged_into_id=wo.id).values_list("id", flat=True)),
        photos=[{"id": p.id, "kind": str(p.kind), "round": p.round, "url": _photo_url(base, wo, p.id),
                 "width": p.width, "height": p.height, "at": p.created_at.isoformat()} for p in photos_],
        history=[{"at": e.at.isoformat(), "action": e.action, "from": e.from_state, "to": e.to_state,
                  "from_label": STATE_LABELS.get(State(e.from_state)) if e.from_state else None,
                  "to_label": STATE_LABELS[State(e.to_state)], "note": e.note, "round": e.round,
                  "by": e.actor_label if caller.kind == "staff" else _public_actor(e),
                  "photo_ids": (e.details or {}).get("photo_ids", [])} for e in events],
        actions=allowed_actions(wo.state, await parties_of(caller, wo)),
    )
    if caller.kind == "staff":
        reporter = await _reporter_for_staff(wo, cipher)
        view["reporter"] = reporter
        view["extension_hours_requested"] = wo.extension_hours_requested
        assignee = await StaffUser.get_or_none(id=wo.assignee_id) if wo.assignee_id else None  # type: ignore[attr-defined]
        view["assignee"] = {"id": assignee.id, "name": assignee.display_name} if assignee else None
        if wo.subject_resident_id is not None or wo.on_behalf_resident_id is not None:  # type: ignore[attr-defined]
            for key, rid in (("subject_resident", wo.subject_resident_id),  # type: ignore[attr-defined]
                             ("on_behalf_resident", wo.on_behalf_resident_id)):  # type: ignore[attr-defined]
                resident = await Resident.get_or_none(id=rid) if rid else None
                view[key] = {"id": resident.id, "name": resident.name,
                             "address": resident.living_address or resident.address} if resident else None
        if reporter is not None or wo.subject_resident_id is not None:  # type: ignore[attr-defined]
            await audit.record(actor=caller.actor, action="workorder.read", target_kind="work_order",
                               target_id=wo.id, community_id=wo.community_id,  # type: ignore[attr-defined]
                               details={"fields": ["reporter"] + (["subject_resident"]
                                                                  if wo.subject_resident_id else [])})  # type: ignore[attr-defined]
    else:
        name = ""
        if wo.show_reporter and wo.reporter_name_cipher:
            name = cipher.decrypt_text(wo.reporter_name_cipher, purpose=NAME_PURPOSE)
        view["reporter"] = {"name": mask_name(name) if name else None, "label": mask_name(name) if name else "匿名居民"}
    return view


# ---- lists ----

@dataclass
class BoardFilter:
    community_id: int | None = None
    state: str | None = None  # a state, or "open" / "closed"
    category_id: int | None = None
    team_id: int | None = None
    source: str | None = None
    clock: str | None = None  # on_time | due_soon | overdue
    q: str | None = None
    page: int = 1
    size: int = 20


async def board(*, caller: Caller, filters: BoardFilter, now: datetime, base: str) -> dict[str, Any]:
    """The dispatch board: counts (new, due soon, overdue, by state and team) and one page of cases."""
    query = scoped(caller)
    if filters.community_id is not None:
        if caller.community_ids is not None and filters.community_id not in caller.community_ids:
            raise NotFoundError("没有找到这个社区", code="community.not_found")
        query = query.filter(community_id=filters.community_id)
    open_query = query.filter(state__in=list(CLOCK_STATES))
    counts: dict[str, Any] = {"by_state": {s.value: 0 for s in State}, "new": 0, "due_soon": 0, "overdue": 0,
                              "escalated": 0, "by_team": {}}
    for state, n in await query.annotate(n=Count("id")).group_by("state").values_list("state", "n"):
        counts["by_state"][str(state)] = n
    counts["new"] = counts["by_state"][State.SUBMITTED.value]
    counts["overdue"] = await open_query.filter(due_at__lte=now).count()
    counts["due_soon"] = await open_query.filter(warn_at__lte=now, due_at__gt=now).count()
    counts["escalated"] = await open_query.filter(escalated_at__isnull=False).count()
    for team_id, n in await open_query.filter(team_id__isnull=False).annotate(n=Count("id")).group_by(
            "team_id").values_list("team_id", "n"):
        team = await HandlerTeam.get_or_none(id=team_id)
        counts["by_team"][str(team_id)] = {"name": team.name if team else "", "open": n}
    if filters.state == "open":
        query = query.filter(state__in=list(State(s) for s in State if s not in CLOSED_STATES))
    elif filters.state == "closed":
        query = query.filter(state__in=list(CLOSED_STATES))
    elif filters.state:
        query = query.filter(state=State(filters.state))
    if filters.category_id is not None:
        query = query.filter(Q(category_id=filters.category_id) | Q(category__parent_id=filters.category_id))
    if filters.team_id is not None:
        query = query.filter(team_id=filters.team_id)
    if filters.source:
        query = query.filter(source=Source(filters.source))
    if filters.clock == "overdue":
        query = query.filter(state__in=list(CLOCK_STATES), due_at__lte=now)
    elif filters.clock == "due_soon":
        query = query.filter(state__in=list(CLOCK_STATES), warn_at__lte=now, due_at__gt=now)
    elif filters.clock == "on_time":
        query = query.filter(state__in=list(CLOCK_STATES), warn_at__gt=now)
    if filters.q:
        text = filters.q.strip().upper().removeprefix("GD")
        query = query.filter(Q(id=int(text)) if text.isdigit() else Q(description__icontains=filters.q.strip()))
    total = await query.count()
    order = ("due_at", "id") if filters.clock or filters.state == "open" else ("-id",)
    rows = await query.order_by(*order).offset((filters.page - 1) * filters.size).limit(filters.size).prefetch_related(
        "category")
    return {"total": total, "page": filters.page, "size": filters.size, "counts": counts,
            "items": await summaries(list(rows), caller=caller, now=now, base=base)}


async def app_list(*, caller: Caller, scope: str, community_id: int | None, page: int, size: int, now: datetime,
                   base: str) -> dict[str, Any]:
    """The app's lists: my reports, the ones I follow, or a community's public cases."""
    if scope == "mine":
        query = WorkOrder.filter(reporter_user_id=caller.id)
    elif scope == "following":
        query = WorkOrder.filter(followers__app_user_id=caller.id)
    else:
        user = await AppUser.get(id=caller.id)
        mine = await user_communities(user)
        target = community_id if community_id is not None else (next(iter(mine)) if len(mine) == 1 else None)
        if target is None:
            raise ValidationFailed("请选择社区", code="workorder.community_required", field="community_id")
        query = WorkOrder.filter(community_id=target, category__private=False).exclude(state=State.DUPLICATE)
    total = await query.count()
    rows = await query.order_by("-id").offset((page - 1) * size).limit(size).prefetch_related("category")
    return {"total": total, "page": page, "size": size,
            "items": await summaries(list(rows), caller=caller, now=now, base=base)}


async def app_categories(*, caller: Caller, community_id: int | None, point_token: str | None) -> list[Category]:
    """What a resident may report, in the community of the scanned point (or their own)."""
    from backend.workorders import points

    if point_token:
        target = (await points.point_by_scan(point_token)).community_id  # type: ignore[attr-defined]
    else:
        target = await app_community(caller, community_id)
    return await catalog.categories(community_id=target, residents_only=True)


async def scan_point(*, token: str, public_url: str, now: datetime) -> dict[str, Any]:
    """A scanned sign: the place (prefilled in the report) and what can be reported there."""
    from backend.workorders import points

    point = await points.point_by_scan(token)
    cats = await catalog.categories(community_id=point.community_id, residents_only=True)  # type: ignore[attr-defined]
    open_here = await WorkOrder.filter(point_id=point.id, state__in=list(CLOCK_STATES),
                                       category__private=False).count()
    return {"point": points.point_view(point, public_url), "open_cases_here": open_here,
            "categories": [catalog.category_view(c) | {"leaf": c.id not in {x.parent_id for x in cats}}  # type: ignore[attr-defined]
                           for c in cats]}
