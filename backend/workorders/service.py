"""The work-order engine's rules: reporting, moving a case through its states, photos, followers,
who may see a case at all, and the entry other domains use (the read side is in `queries.py`).

Who may do what is the table in `states.py`; this module works out the caller's parties on one
case (dispatcher, handler, approver, reporter, system), applies the move's effects, appends the
history row and tells the reporter and followers. Times come from the caller's clock (`now`), so
the deadline rules run the same under a frozen clock in tests. Privacy: a reporter is never named
to other residents unless they chose so; private categories are seen by staff (and the reporter)
only; the reporter's contact is decrypted only for staff of the case's community, and audited.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.exceptions import IntegrityError

from backend import ratelimit
from backend.audit import service as audit
from backend.audit.service import SYSTEM as SYSTEM_ACTOR
from backend.audit.service import Actor
from backend.auth.models import AppUser, Role, StaffUser
from backend.cache import Cache
from backend.errors import ApiError, Conflict, Forbidden, NotFoundError, ValidationFailed
from backend.notify import notices
from backend.residents import bindings
from backend.residents.models import BindingStatus, HelperBinding, Resident
from backend.security.fieldcrypt import FieldCipher
from backend.workorders import catalog, clock, geo, photos, wording
from backend.workorders.models import (
    Category,
    Follower,
    HandlerTeam,
    Open311Key,
    PhotoKind,
    QrPoint,
    Source,
    TeamMember,
    WorkOrder,
    WorkOrderEvent,
    WorkOrderPhoto,
)
from backend.workorders.states import (
    FINAL_STATES,
    MoveRefused,
    Need,
    Party,
    State,
    check_move,
)

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
PHONE_PURPOSE = "phone"
NAME_PURPOSE = "workorder.reporter_name"
CONTACT_PURPOSE = "workorder.reporter_contact"
MAX_PHOTOS = 9
RECENT_DAYS = 30  # closed cases still offered as duplicates
MAX_EXTENSION_HOURS = 30 * 24
REPORTS_PER_HOUR = 20  # per app user: plenty for a person, a brake on floods
PARTNER_REPORTS_PER_HOUR = 600  # per Open311 key
DISPATCH_ROLES = frozenset({Role.COMMUNITY_STAFF, Role.COMMUNITY_ADMIN, Role.DISTRICT_ADMIN, Role.PLATFORM_ADMIN})
APPROVER_ROLES = frozenset({Role.COMMUNITY_ADMIN, Role.DISTRICT_ADMIN, Role.PLATFORM_ADMIN})
SOURCE_LABELS = {Source.RESIDENT: "居民随手拍", Source.STAFF: "工作人员登记", Source.DEVICE: "设备告警",
                 Source.HEALTH: "健康异常", Source.OUTREACH: "认证外联", Source.PARTNER: "城市平台（Open311）"}


@dataclass(frozen=True)
class Caller:
    """Who acts: a staff member (with the communities they see), an app user, the system, a partner."""

    kind: str  # staff | app | system | partner
    id: int | None = None
    role: str = ""
    community_ids: list[int] | None = field(default=None)
    actor: Actor = SYSTEM_ACTOR
    label: str = ""

    @property
    def ref(self) -> str:
        return f"{self.kind}:{self.id}" if self.id is not None else self.kind


SYSTEM = Caller("system", label="系统")


@dataclass
class MoveParams:
    """What a move may carry besides its note (which ones it needs is in the table)."""

    team_id: int | None = None
    assignee_id: int | None = None
    into_id: int | None = None
    responsible: str | None = None
    extension_hours: int | None = None
    satisfied: bool | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    photo_ids: list[int] = field(default_factory=list)


def number(wo: WorkOrder) -> str:
    """The case number people read out on the phone."""
    return f"GD{wo.id:06d}"


def local_text(at: datetime) -> str:
    local = at.astimezone(LOCAL_TZ)
    return f"{local.month}月{local.day}日 {local:%H:%M}"


# ---- reading cases with the caller's rights ----

def scoped(caller: Caller):
    query = WorkOrder.all()
    if caller.kind == "staff" and caller.community_ids is not None:
        query = query.filter(community_id__in=caller.community_ids)
    return query


async def case_or_404(caller: Caller, work_order_id: int) -> WorkOrder:
    """The case if the caller may see it at all (staff: their communities; app: public or theirs)."""
    wo = await scoped(caller).get_or_none(id=work_order_id).prefetch_related("category")
    if wo is None or not await _may_see(caller, wo):
        raise NotFoundError("没有找到这张工单", code="workorder.not_found")
    return wo


async def _may_see(caller: Caller, wo: WorkOrder) -> bool:
    if caller.kind in ("staff", "system"):
        return True
    if caller.kind != "app":
        return False
    if wo.reporter_user_id == caller.id:  # type: ignore[attr-defined]
        return True
    return not wo.category.private  # public cases are public (as on Open311), with the reporter hidden


async def parties_of(caller: Caller, wo: WorkOrder) -> set[Party]:
    """How the caller stands to this case."""
    if caller.kind == "system":
        return {Party.SYSTEM}
    parties: set[Party] = set()
    if caller.kind == "staff":
        in_scope = caller.community_ids is None or wo.community_id in caller.community_ids  # type: ignore[attr-defined]
        if in_scope and caller.role in DISPATCH_ROLES:
            parties.add(Party.DISPATCHER)
        if in_scope and caller.role in APPROVER_ROLES:
            parties.add(Party.APPROVER)
        if wo.team_id and await TeamMember.exists(team_id=wo.team_id, staff_id=caller.id):  # type: ignore[attr-defined]
            parties.add(Party.HANDLER)
    elif caller.kind == "app" and wo.reporter_user_id == caller.id:  # type: ignore[attr-defined]
        parties.add(Party.REPORTER)
    return parties


# ---- attributes (the category's extra fields) ----

def check_attributes(spec: list[dict[str, Any]], given: dict[str, Any], *, stage: str) -> dict[str, Any]:
    """The given values of this stage's fields, typed and checked; required ones must be there."""
    clean: dict[str, Any] = {}
    for item in spec:
        if item.get("stage", "report") != stage:
            continue
        code, label, datatype = item["code"], item.get("label", item["code"]), item["datatype"]
        value = given.get(code)
        if value in (None, "", []):
            if item.get("required"):
                raise ValidationFailed(f"请填写“{label}”", code="workorder.field_required", field=f"attributes.{code}")
            continue
        keys = {v["key"] for v in item.get("values", [])}
        if datatype == "singlevaluelist":
            value = str(value)
            ok = value in keys
        elif datatype == "multivaluelist":
            value = [str(v) for v in (value if isinstance(value, list) else [value])]
            ok = set(value) <= keys
        elif datatype == "number":
            try:
                value = float(value)
                ok = True
            except (TypeError, ValueError):
                ok = False
        elif datatype == "datetime":
            try:
                datetime.fromisoformat(str(value).replace("Z", "+00:00"))
                value, ok = str(value), True
            except ValueError:
                ok = False
        else:
            value = wording.attribute(value, code=code, label=label, multiline=datatype == "text")
            ok = True
        if not ok:
            raise ValidationFailed(f"“{label}”填写不正确", code="workorder.field_invalid", field=f"attributes.{code}")
        clean[code] = value
    return clean


# ---- creating ----

@dataclass
class Place:
    point: QrPoint | None = None
    address: str = ""
    grid: str = ""
    lat: float | None = None
    long: float | None = None

    def check(self) -> None:
        if (self.lat is None) != (self.long is None) or (self.lat is not None and not geo.valid(self.lat, self.long)):
            raise ValidationFailed("位置的经纬度不正确", code="workorder.bad_location", field="lat")
        if self.point is None and not self.address.strip() and self.lat is None:
            raise ValidationFailed("请扫描点位二维码，或说明问题在哪里", code="workorder.no_location",
                                   field="address")


async def _leaf(category: Category) -> Category:
    if await Category.exists(parent_id=category.id, active=True):
        raise ValidationFailed(f"“{category.name}”是大类，请选择具体的问题类别", code="workorder.category_not_leaf",
                               field="category_id")
    return category


async def _create(*, caller: Caller, community_id: int, category: Category, source: Source, description: str,
                  place: Place, attributes: dict[str, Any], now: datetime, note: str,
                  source_ref: str | None = None, reporter_user_id: int | None = None,
                  reporter_staff_id: int | None = None, reporter_name_cipher: str | None = None,
                  reporter_contact_cipher: str | None = None, show_reporter: bool = False,
                  on_behalf_resident_id: int | None = None, subject_resident_id: int | None = None,
                  partner: str = "", hint: tuple[float, float] | None = None) -> WorkOrder:
    await _leaf(category)
    place.check()
    clean = check_attributes(category.fields_spec or [], attributes, stage="report")
    due = clock.due_at(now, category.deadline_hours)
    point = place.point
    wo = await WorkOrder.create(
        community_id=community_id, category_id=category.id, source=source, source_ref=source_ref,
        state=State.SUBMITTED, description=description.strip()[:4000], attributes=clean,
        point_id=point.id if point else None, address=place.address or (point.address if point else ""),
        grid=place.grid or (point.grid if point else ""),
        lat=place.lat if place.lat is not None else (point.lat if point else None),
        long=place.long if place.long is not None else (point.long if point else None),
        hint_lat=hint[0] if hint else None, hint_long=hint[1] if hint else None,
        reporter_user_id=reporter_user_id, reporter_staff_id=reporter_staff_id,
        reporter_name_cipher=reporter_name_cipher, reporter_contact_cipher=reporter_contact_cipher,
        show_reporter=show_reporter, on_behalf=on_behalf_resident_id is not None,
        on_behalf_resident_id=on_behalf_resident_id, subject_resident_id=subject_resident_id, partner=partner,
        round_started_at=now, response_due_at=clock.due_at(now, category.response_hours), due_at=due,
        warn_at=clock.warn_at(now, due), created_at=now, updated_at=now,
        open311_token=secrets.token_hex(12) if source == Source.PARTNER and category.open311_type == "batch" else None,
    )
    await append_event(wo, caller, action="submit_report", from_state=None, to_state=State.SUBMITTED, note=note, now=now,
                  details={"source": str(source)})
    await audit.record(actor=caller.actor, action="workorder.create", target_kind="work_order", target_id=wo.id,
                       community_id=community_id, details={"source": str(source), "category": category.code})
    await _tell(wo, "wo_submitted", category=category)
    return wo


async def user_communities(user: AppUser) -> set[int]:
    """The communities an app user belongs to: their own, and those of the elders they help."""
    found: set[int] = set()
    if user.resident_id is not None:  # type: ignore[attr-defined]
        own = await Resident.get_or_none(id=user.resident_id)  # type: ignore[attr-defined]
        if own is not None:
            found.add(own.community_id)  # type: ignore[attr-defined]
    elders = await HelperBinding.filter(helper_id=user.id, status=BindingStatus.APPROVED).values_list(
        "resident__community_id", flat=True)
    return found | set(elders)


async def report(*, caller: Caller, category_id: int, description: str, point_token: str | None,
                 community_id: int | None, address: str, lat: float | None, long: float | None,
                 hint: tuple[float, float] | None, show_reporter: bool, reporter_name: str | None,
                 on_behalf_resident_id: int | None, attributes: dict[str, Any], now: datetime,
                 cipher: FieldCipher, cache: Cache | None = None) -> WorkOrder:
    """随手拍 from the app: at a scanned point, or at an address / position in one's community.

    A helper may report for an elder they help (代报, recorded as such).
    """
    from backend.workorders import points

    if cache is not None:
        await ratelimit.hit(cache, f"wo:report:{caller.id}", limit=REPORTS_PER_HOUR, window_s=3600,
                            message="提交太频繁，请稍后再试")
    user = await AppUser.get_or_none(id=caller.id, is_active=True)
    if user is None:
        raise Forbidden("账号已停用，请联系社区", code="auth.account_disabled")
    point = await points.point_by_scan(point_token) if point_token else None
    elder: Resident | None = None
    if on_behalf_resident_id is not None:
        if await bindings.can_certify(app_user_id=user.id, resident_id=on_behalf_resident_id) != "helper":
            raise NotFoundError("只能为您帮办的老人代报", code="workorder.not_helper", field="on_behalf_resident_id")
        elder = await Resident.get(id=on_behalf_resident_id)
    if point is not None:
        target = point.community_id  # type: ignore[attr-defined]
    elif elder is not None:
        target = elder.community_id  # type: ignore[attr-defined]
    else:
        mine = await user_communities(user)
        if community_id is not None and community_id in mine:
            target = community_id
        elif community_id is None and len(mine) == 1:
            target = next(iter(mine))
        else:
            raise ValidationFailed("请扫描社区张贴的随手拍二维码，或选择您所在的社区", code="workorder.community_required",
                                   field="community_id")
    category = await catalog.category_or_raise(category_id=category_id, community_id=target)
    if not category.resident_reportable:
        raise ValidationFailed("这个类别不能由居民提交", code="workorder.category_not_reportable", field="category_id")
    description = wording.description(description)
    address = wording.address(address)
    name = wording.person(reporter_name, field="reporter_name") or ""
    if not name and user.resident_id is not None:  # type: ignore[attr-defined]
        own = await Resident.get_or_none(id=user.resident_id)  # type: ignore[attr-defined]
        name = own.name if own else ""
    wo = await _create(
        caller=caller, community_id=target, category=category, source=Source.RESIDENT, description=description,
        place=Place(point=point, address=address, lat=lat, long=long), attributes=attributes, now=now,
        note="居民代报（帮办人为老人反映）" if elder else "居民随手拍提交", reporter_user_id=user.id,
        reporter_name_cipher=cipher.encrypt_text(name, purpose=NAME_PURPOSE) if name else None,
        show_reporter=show_reporter and bool(name), on_behalf_resident_id=elder.id if elder else None, hint=hint,
    )
    return wo


async def staff_report(*, caller: Caller, community_id: int, category_id: int, description: str,
                       point_id: int | None, address: str, grid: str, lat: float | None, long: float | None,
                       on_behalf_resident_id: int | None, contact_name: str | None, contact_phone: str | None,
                       attributes: dict[str, Any], now: datetime, cipher: FieldCipher) -> WorkOrder:
    """A case entered by staff: a phone call, a walk-in, or a grid worker's 代报 for an offline resident."""
    from backend.workorders import points

    point = await points.point_or_raise(point_id=point_id, community_ids=[community_id]) if point_id else None
    if on_behalf_resident_id is not None and not await Resident.exists(id=on_behalf_resident_id,
                                                                     community_id=community_id):
        raise NotFoundError("没有找到这位居民", code="resident.not_found", field="on_behalf_resident_id")
    category = await catalog.category_or_raise(category_id=category_id, community_id=community_id)
    description = wording.description(description, required=True)
    address = wording.address(address)
    grid = wording.line(grid, field="grid", label="网格", max_length=32)
    contact_name = wording.person(contact_name, field="contact_name", label="联系人姓名")
    contact = {k: v for k, v in (("name", contact_name), ("phone", contact_phone)) if v}
    return await _create(
        caller=caller, community_id=community_id, category=category, source=Source.STAFF, description=description,
        place=Place(point=point, address=address, grid=grid, lat=lat, long=long), attributes=attributes, now=now,
        note="工作人员代报" if on_behalf_resident_id else "工作人员登记", reporter_staff_id=caller.id,
        reporter_contact_cipher=cipher.encrypt_text(json.dumps(contact, ensure_ascii=False), purpose=CONTACT_PURPOSE)
        if contact else None, on_behalf_resident_id=on_behalf_resident_id,
    )


async def partner_report(*, caller: Caller, community_id: int, category: Category, description: str, place: Place,
                         attributes: dict[str, Any], contact: dict[str, str], partner: str, now: datetime,
                         cipher: FieldCipher, cache: Cache | None = None) -> WorkOrder:
    """A request a city platform filed through Open311; the person's details are sealed, never shown again
    outside the community's staff."""
    if cache is not None:
        await ratelimit.hit(cache, f"wo:partner:{caller.id}", limit=PARTNER_REPORTS_PER_HOUR, window_s=3600,
                            message="too many requests from this api_key, try again later")
    description = wording.description(description)
    place.address = wording.address(place.address)
    sealed = cipher.encrypt_text(json.dumps(contact, ensure_ascii=False), purpose=CONTACT_PURPOSE) if contact else None
    return await _create(caller=caller, community_id=community_id, category=category, source=Source.PARTNER,
                         description=description, place=place, attributes=attributes, now=now,
                         note=f"{partner}（Open311）转来", reporter_contact_cipher=sealed, partner=partner)


async def open_from_source(*, community_id: int, source: Source, source_ref: str, category_code: str,
                           description: str, now: datetime, subject_resident_id: int | None = None,
                           point_id: int | None = None, address: str = "", lat: float | None = None,
                           long: float | None = None, attributes: dict[str, Any] | None = None,
                           ) -> tuple[WorkOrder, bool]:
    """The entry for other domains' event handlers (device alarms, health alerts, outreach): plain data in.

    Idempotent on (source, source_ref): the same alarm delivered twice opens one case. The case is
    accepted and dispatched to the category's default team at once, by the system, with notes.
    """
    if source in (Source.RESIDENT, Source.STAFF, Source.PARTNER):
        raise ValueError("open_from_source is for system sources")
    existing = await WorkOrder.get_or_none(source=source, source_ref=source_ref)
    if existing is not None:
        return existing, False
    category = await catalog.category_by_code(community_id=community_id, code=category_code)
    point = await QrPoint.get_or_none(id=point_id, community_id=community_id) if point_id else None
    if subject_resident_id is not None and not address:
        elder = await Resident.get_or_none(id=subject_resident_id, community_id=community_id)
        address = (elder.living_address or elder.address) if elder else ""
    try:
        wo = await _create(caller=SYSTEM, community_id=community_id, category=category, source=source,
                           description=description, place=Place(point=point, address=address, lat=lat, long=long),
                           attributes=attributes or {}, now=now, note=f"{SOURCE_LABELS[source]}自动生成工单",
                           source_ref=source_ref, subject_resident_id=subject_resident_id)
    except IntegrityError:  # raced with another worker delivering the same event
        return await WorkOrder.get(source=source, source_ref=source_ref), False
    await transition(caller=SYSTEM, work_order_id=wo.id, action="accept", note="系统自动受理", params=MoveParams(),
                     now=now, cipher=None)
    if category.default_team_id is not None:  # type: ignore[attr-defined]
        await transition(caller=SYSTEM, work_order_id=wo.id, action="dispatch", note="按类别自动派单",
                         params=MoveParams(team_id=category.default_team_id), now=now, cipher=None)  # type: ignore[attr-defined]
    return await WorkOrder.get(id=wo.id), True


# ---- moving a case ----

def _refused(exc: MoveRefused) -> ApiError:
    if exc.code == "workorder.not_your_move":
        return Forbidden(exc.message, code=exc.code)
    if exc.code == "workorder.wrong_state":
        return Conflict(exc.message, code=exc.code)
    return ValidationFailed(exc.message, code=exc.code, field="action")


async def _root(wo: WorkOrder) -> WorkOrder:
    seen = {wo.id}
    while wo.merged_into_id is not None:  # type: ignore[attr-defined]
        wo = await WorkOrder.get(id=wo.merged_into_id)  # type: ignore[attr-defined]
        if wo.id in seen:
            break
        seen.add(wo.id)
    return wo


async def transition(*, caller: Caller, work_order_id: int, action: str, note: str, params: MoveParams,
                     now: datetime, cipher: FieldCipher | None) -> WorkOrder:
    """Make one move from the table, with its note; appends the history row and tells the reporter."""
    wo = await case_or_404(caller, work_order_id)
    try:
        move = check_move(action, wo.state, await parties_of(caller, wo))
    except MoveRefused as exc:
        raise _refused(exc) from None
    note = wording.note(note)
    category: Category = wo.category
    changes: dict[str, Any] = {}
    details: dict[str, Any] = {}
    into: WorkOrder | None = None
    needs = move.needs

    if Need.TEAM in needs:
        team = await catalog.team_or_raise(team_id=params.team_id or 0, community_id=wo.community_id)  # type: ignore[attr-defined]
        if params.assignee_id is not None and not await TeamMember.exists(team_id=team.id, staff_id=params.assignee_id):
            raise ValidationFailed("承办人不是这个队伍的成员", code="workorder.not_member", field="assignee_id")
        changes.update(team_id=team.id, assignee_id=params.assignee_id)
        details.update(team_id=team.id, team=team.name, from_team_id=wo.team_id)  # type: ignore[attr-defined]
    if Need.EXTENSION in needs:
        hours = params.extension_hours or 0
        if not 1 <= hours <= MAX_EXTENSION_HOURS:
            raise ValidationFailed(f"延期时长应为 1 到 {MAX_EXTENSION_HOURS} 小时", code="workorder.bad_extension",
                                   field="extension_hours")
        changes["extension_hours_requested"] = hours
        details["hours"] = hours
    if Need.INTO in needs:
        target = await scoped(caller).get_or_none(id=params.into_id or 0, community_id=wo.community_id)  # type: ignore[attr-defined]
        if target is None:
            raise NotFoundError("没有找到要合并到的工单", code="workorder.merge_target", field="into_id")
        into = await _root(target)
        if into.id == wo.id or into.state in (State.DUPLICATE, State.OUT_OF_SCOPE):
            raise ValidationFailed("不能合并到这张工单", code="workorder.merge_target", field="into_id")
        changes.update(merged_into_id=into.id, closed_at=now)
        details.update(into_id=into.id, into=number(into))
    if Need.RESPONSIBLE in needs:
        responsible = wording.line(params.responsible, field="responsible", label="负责的单位或部门", max_length=200)
        if not responsible:
            raise ValidationFailed("请写明负责的单位或部门", code="workorder.responsible_required", field="responsible")
        changes.update(responsible=responsible, closed_at=now)
        details["responsible"] = responsible
    if Need.AFTER_PHOTO in needs and category.after_photo_required and not await WorkOrderPhoto.exists(
            work_order_id=wo.id, kind=PhotoKind.AFTER, round=wo.round):
        raise ValidationFailed("办结前请上传整改后的照片", code="workorder.after_photo_required", field="photo_ids")
    if Need.CLOSE_FIELDS in needs:
        closing = check_attributes(category.fields_spec or [], params.attributes, stage="close")
        if closing:
            changes["attributes"] = {**(wo.attributes or {}), **closing}
            details["attributes"] = closing
            if "outcome" in closing:
                changes["outcome"] = str(closing["outcome"])
    if Need.SATISFACTION in needs:
        if params.satisfied is None:
            raise ValidationFailed("请告诉我们是否满意", code="workorder.satisfaction_required", field="satisfied")
        changes.update(satisfied=params.satisfied, callback_at=now)
        details["satisfied"] = params.satisfied
    if params.photo_ids:
        owned = await WorkOrderPhoto.filter(id__in=params.photo_ids, work_order_id=wo.id).count()
        if owned != len(set(params.photo_ids)):
            raise NotFoundError("照片不属于这张工单", code="workorder.photo_not_found", field="photo_ids")
        details["photo_ids"] = sorted(set(params.photo_ids))

    if action in ("accept", "merge", "out_of_scope") and wo.responded_at is None:
        changes["responded_at"] = now
    if action == "start" and wo.assignee_id is None:  # type: ignore[attr-defined]
        changes["assignee_id"] = caller.id
    if action in ("approve_extension", "deny_extension"):
        await _check_not_requester(wo, caller)
        changes["extension_hours_requested"] = None
        details["hours"] = wo.extension_hours_requested
    if action == "approve_extension":
        due = wo.due_at + timedelta(hours=wo.extension_hours_requested or 0)
        warn = clock.warn_at(wo.round_started_at, due)
        changes.update(due_at=due, warn_at=warn)
        if warn > now:
            changes["warned_at"] = None
        if due > now:
            changes["escalated_at"] = None
        details.update(old_due=wo.due_at.isoformat(), new_due=due.isoformat())
    if action == "verify":
        changes["closed_at"] = now
        if wo.resolved_at is None:
            changes.update(resolved_at=now, on_time=now <= wo.due_at)
    if action == "reopen":
        due = clock.due_at(now, category.deadline_hours)
        changes.update(round=wo.round + 1, reopen_count=wo.reopen_count + 1, round_started_at=now, due_at=due,
                       warn_at=clock.warn_at(now, due), response_due_at=clock.due_at(now, category.response_hours),
                       warned_at=None, escalated_at=None, closed_at=None, satisfied=False, callback_at=now)

    changes.update(state=move.target, updated_at=now, version=wo.version + 1)
    moved = await WorkOrder.filter(id=wo.id, version=wo.version).update(**changes)
    if not moved:
        raise Conflict("这张工单刚被其他人处理过，请刷新后再试", code="workorder.changed")
    before = wo.state
    await wo.refresh_from_db()
    await append_event(wo, caller, action=action, from_state=before, to_state=move.target, note=note, now=now,
                  details=details, round_=wo.round if action != "reopen" else wo.round)
    if into is not None:
        await _merge_into(wo, into, caller, note=note, now=now)
    await audit.record(actor=caller.actor, action=f"workorder.{action}", target_kind="work_order", target_id=wo.id,
                       community_id=wo.community_id, details={"from": str(before), "to": str(move.target)})  # type: ignore[attr-defined]
    await _tell_move(wo, action, note=note, category=category, into=into)
    return wo


async def _check_not_requester(wo: WorkOrder, caller: Caller) -> None:
    """Nobody approves their own 延期."""
    asked = await WorkOrderEvent.filter(work_order_id=wo.id, action="request_extension").order_by("-id").first()
    if asked is not None and asked.actor_kind == caller.kind and asked.actor_id == str(caller.id):
        raise Forbidden("延期需由另一位负责人审批", code="workorder.self_approval")


async def _merge_into(duplicate: WorkOrder, original: WorkOrder, caller: Caller, *, note: str, now: datetime) -> None:
    """Both linked; the duplicate's reporter and followers now follow the original."""
    people = set(await Follower.filter(work_order_id=duplicate.id).values_list("app_user_id", flat=True))
    if duplicate.reporter_user_id is not None:  # type: ignore[attr-defined]
        people.add(duplicate.reporter_user_id)  # type: ignore[attr-defined]
    people.discard(original.reporter_user_id)  # type: ignore[attr-defined]
    for user_id in people:
        await Follower.get_or_create(work_order_id=original.id, app_user_id=user_id)
    await Follower.filter(work_order_id=duplicate.id).delete()
    await append_event(original, caller, action="merged_in", from_state=original.state, to_state=original.state,
                  note=f"合并重复工单 {number(duplicate)}：{note}", now=now,
                  details={"duplicate_id": duplicate.id, "followers_added": len(people)})


async def append_event(wo: WorkOrder, caller: Caller, *, action: str, from_state: State | str | None,
                  to_state: State | str, note: str, now: datetime, details: dict[str, Any] | None = None,
                  round_: int | None = None) -> WorkOrderEvent:
    label = caller.label
    if caller.kind == "staff" and not label:
        staff = await StaffUser.get_or_none(id=caller.id)
        label = staff.display_name if staff else "工作人员"
    elif caller.kind == "app":
        label = "居民"
    return await WorkOrderEvent.create(
        work_order_id=wo.id, at=now, actor_kind=caller.kind, actor_id=str(caller.id or ""), actor_label=label[:64],
        action=action, from_state=str(from_state) if from_state else None, to_state=str(to_state), note=note[:1000],
        details=details or {}, round=round_ or wo.round,
    )


# ---- telling the reporter and followers ----

async def _recipients(wo: WorkOrder) -> list[tuple[str, str]]:
    ids = set(await Follower.filter(work_order_id=wo.id).values_list("app_user_id", flat=True))
    if wo.reporter_user_id is not None:  # type: ignore[attr-defined]
        ids.add(wo.reporter_user_id)  # type: ignore[attr-defined]
    users = await AppUser.filter(id__in=list(ids), is_active=True).order_by("id")
    return [(u.phone_cipher, u.phone_index) for u in users]


APP_CASE_LINK = "/reports/{id}"  # the phone app's case screen: each message's button opens the case


async def _tell(wo: WorkOrder, template: str, *, category: Category, recipients: list[tuple[str, str]] | None = None,
                about: WorkOrder | None = None, **params: str) -> int:
    return await notices.deliver(recipients=recipients if recipients is not None else await _recipients(wo),
                                 template=template, link=APP_CASE_LINK.format(id=(about or wo).id),
                                 category=category.name, number=number(wo), **params)


async def _tell_move(wo: WorkOrder, action: str, *, note: str, category: Category, into: WorkOrder | None) -> None:
    team = await HandlerTeam.get_or_none(id=wo.team_id) if wo.team_id else None  # type: ignore[attr-defined]
    team_name = team.name if team else "处置队伍"
    if action in ("dispatch", "reassign"):
        await _tell(wo, "wo_dispatched", category=category, team=team_name, due=local_text(wo.due_at))
    elif action == "accept":
        await _tell(wo, "wo_accepted", category=category)
    elif action == "start":
        await _tell(wo, "wo_in_progress", category=category, team=team_name)
    elif action == "approve_extension":
        await _tell(wo, "wo_extended", category=category, due=local_text(wo.due_at), note=note)
    elif action == "verify":
        await _tell(wo, "wo_resolved", category=category, note=note.rstrip("。."))
    elif action == "reopen":
        await _tell(wo, "wo_reopened", category=category)
    elif action == "callback":
        await _tell(wo, "wo_called_back", category=category)
    elif action == "out_of_scope":
        await _tell(wo, "wo_out_of_scope", category=category, responsible=wo.responsible, note=note)
    elif action == "merge" and into is not None:
        # the duplicate's people were moved to the original: tell them where their case went
        recipients = [(u.phone_cipher, u.phone_index) for u in await AppUser.filter(
            id__in=[wo.reporter_user_id or 0, *await Follower.filter(work_order_id=into.id).values_list(  # type: ignore[attr-defined]
                "app_user_id", flat=True)], is_active=True)]
        await _tell(wo, "wo_merged", category=category, recipients=recipients, about=into, into=number(into))


# ---- photos ----

async def add_photo(*, caller: Caller, work_order_id: int, data: bytes, kind: str, now: datetime,
                    cipher: FieldCipher) -> WorkOrderPhoto:
    """Attach a photo (EXIF stripped, sealed): the reporter before acceptance; staff while the case is open."""
    wo = await case_or_404(caller, work_order_id)
    try:
        photo_kind = PhotoKind(kind)
    except ValueError:
        raise ValidationFailed("照片类型应为 before、after 或 progress", code="workorder.photo_kind",
                               field="kind") from None
    parties = await parties_of(caller, wo)
    if Party.REPORTER in parties and not parties - {Party.REPORTER}:
        if photo_kind != PhotoKind.BEFORE or wo.state not in (State.SUBMITTED, State.ACCEPTED):
            raise Conflict("工单受理后，照片由工作人员补充", code="workorder.photo_closed")
    elif photo_kind == PhotoKind.AFTER and Party.HANDLER not in parties:
        raise Forbidden("整改后的照片由承办人上传", code="workorder.after_photo_by_handler")
    elif not parties & {Party.DISPATCHER, Party.HANDLER}:
        raise Forbidden("您不能给这张工单添加照片", code="workorder.photo_forbidden")
    if wo.state in FINAL_STATES:
        raise Conflict("工单已经结束，不能再添加照片", code="workorder.photo_closed")
    if await WorkOrderPhoto.filter(work_order_id=wo.id).count() >= MAX_PHOTOS * 3:
        raise Conflict("这张工单的照片已经够多了", code="workorder.too_many_photos")
    if photo_kind == PhotoKind.BEFORE and await WorkOrderPhoto.filter(
            work_order_id=wo.id, kind=PhotoKind.BEFORE).count() >= MAX_PHOTOS:
        raise Conflict(f"最多 {MAX_PHOTOS} 张照片", code="workorder.too_many_photos")
    clean = await asyncio.to_thread(photos.clean, data)
    return await WorkOrderPhoto.create(
        work_order_id=wo.id, kind=photo_kind, photo_cipher=photos.seal(clean, cipher), width=clean.width,
        height=clean.height, size=len(clean.data), round=wo.round, uploaded_by=caller.ref, created_at=now,
    )


async def photo_bytes(*, caller: Caller, work_order_id: int, photo_id: int, cipher: FieldCipher) -> bytes:
    """A photo's JPEG, to whoever may see the case (staff reads are audited)."""
    wo = await case_or_404(caller, work_order_id)
    photo = await WorkOrderPhoto.get_or_none(id=photo_id, work_order_id=wo.id)
    if photo is None:
        raise NotFoundError("没有找到这张照片", code="workorder.photo_not_found")
    if caller.kind == "staff":
        await audit.record(actor=caller.actor, action="workorder.view_photo", target_kind="work_order",
                           target_id=wo.id, community_id=wo.community_id, details={"photo_id": photo_id})  # type: ignore[attr-defined]
    return photos.unseal(photo.photo_cipher, cipher)


# ---- followers and duplicates ----

async def follow(*, caller: Caller, work_order_id: int, on: bool, now: datetime) -> dict[str, Any]:
    """我也遇到: follow a public case instead of filing a new one (or stop following); a merged case's
    followers follow the original."""
    wo = await case_or_404(caller, (await _root(await case_or_404(caller, work_order_id))).id)
    if wo.category.private:
        raise NotFoundError("没有找到这张工单", code="workorder.not_found")
    if wo.reporter_user_id == caller.id:  # type: ignore[attr-defined]
        raise Conflict("这是您自己反映的问题", code="workorder.own_case")
    if on:
        if wo.state in FINAL_STATES:
            raise Conflict("这张工单已经结束", code="workorder.closed")
        _, created = await Follower.get_or_create(work_order_id=wo.id, app_user_id=caller.id)
        if created:
            await append_event(wo, caller, action="follow", from_state=wo.state, to_state=wo.state,
                          note="又一位居民反映“我也遇到”", now=now)
    else:
        await Follower.filter(work_order_id=wo.id, app_user_id=caller.id).delete()
    count = await Follower.filter(work_order_id=wo.id).count()
    return {"work_order_id": wo.id, "following": on, "followers": count}


# ---- the app's report screen ----

async def app_community(caller: Caller, community_id: int | None) -> int:
    user = await AppUser.get(id=caller.id)
    mine = await user_communities(user)
    if community_id is not None and community_id in mine:
        return community_id
    if community_id is None and len(mine) == 1:
        return next(iter(mine))
    raise ValidationFailed("请扫描社区张贴的随手拍二维码，或选择您所在的社区", code="workorder.community_required",
                           field="community_id")


async def answer_callback(*, caller: Caller, work_order_id: int, resolved: bool, satisfied: bool | None,
                          note: str, now: datetime) -> WorkOrder:
    """解决了吗？满意吗？ "没解决" reopens the case (重办); otherwise it closes with the answer."""
    if resolved and satisfied is None:
        raise ValidationFailed("请告诉我们是否满意", code="workorder.satisfaction_required", field="satisfied")
    remark = wording.note(note, required=False)
    default = "回访：没有解决" if not resolved else f"回访：已解决，{'满意' if satisfied else '不满意'}"
    text = f"{default}。{remark}" if remark else default
    return await transition(caller=caller, work_order_id=work_order_id, action="callback" if resolved else "reopen",
                            note=text, params=MoveParams(satisfied=satisfied), now=now, cipher=None)


# ---- Open311 keys ----

async def create_open311_key(*, caller: Caller, community_id: int, name: str) -> tuple[Open311Key, str]:
    """A new API key for a city platform; the key itself is shown once, only its hash is kept."""
    key = "zl311_" + secrets.token_urlsafe(24)
    row = await Open311Key.create(community_id=community_id, name=name, key_hash=key_hash(key))
    await audit.record(actor=caller.actor, action="workorder.open311_key", target_kind="open311_key", target_id=row.id,
                       community_id=community_id, details={"name": name})
    return row, key


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
