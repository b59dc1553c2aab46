"""The community's category tree and handler teams: defaults on first use, and staff edits.

Every community starts with the same three teams (物业, 网格员, 社区) and the category tree below;
staff then adjust deadlines, teams and privacy. Codes are local (they double as Open311
`service_code`); `standard_code` carries the national classification's code where a community maps
one (none is claimed here: the code table was not at hand when this tree was written).
"""

from __future__ import annotations

from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from backend.auth.models import Role, StaffUser
from backend.errors import Conflict, NotFoundError, ValidationFailed
from backend.workorders import wording
from backend.workorders.models import Category, HandlerTeam, TeamKind, TeamMember

DEFAULT_TEAMS = (("物业", TeamKind.PROPERTY), ("网格员", TeamKind.GRID), ("社区", TeamKind.COMMUNITY))

OUTREACH_CODE = "SYS-OUTREACH"
DEVICE_CODE = "SYS-DEVICE"
HEALTH_CODE = "SYS-HEALTH"
OUTREACH_OUTCOMES = (
    ("certified", "上门已完成认证"),
    ("helper_bound", "已绑定帮办人，由帮办人认证"),
    ("will_certify", "已联系上，本人将自行认证"),
    ("hospitalised", "住院或外出，已登记"),
    ("moved", "已搬离本社区"),
    ("deceased", "已去世"),
    ("unreachable", "多次联系未果"),
)

_E_WHERE = [{"key": "stairwell", "name": "楼道"}, {"key": "indoors", "name": "室内"}, {"key": "other", "name": "其他"}]

# (code, parent code, name, team, response h, deadline h, private, resident reportable, icon, extra)
DEFAULT_TREE: tuple[tuple[str, str | None, str, str | None, int, int, bool, bool, str, dict[str, Any]], ...] = (
    ("ENV", None, "环境卫生", None, 24, 72, False, True, "broom", {}),
    ("ENV-01", "ENV", "垃圾堆放", "物业", 12, 48, False, True, "trash",
     {"keywords": "垃圾,乱扔,清运"}),
    ("ENV-02", "ENV", "绿化损坏", "物业", 24, 120, False, True, "tree", {"keywords": "树木,草坪"}),
    ("FAC", None, "公共设施", None, 24, 72, False, True, "tools", {}),
    ("FAC-01", "FAC", "路灯损坏", "物业", 12, 72, False, True, "lamp",
     {"keywords": "路灯,不亮", "fields_spec": [{"code": "lamp_no", "label": "灯杆编号", "datatype": "string",
                                               "required": False, "stage": "report"}]}),
    ("FAC-02", "FAC", "道路破损、井盖缺失", "物业", 4, 24, False, True, "road", {"keywords": "坑,井盖,路面"}),
    ("FAC-03", "FAC", "电梯、门禁故障", "物业", 4, 24, False, True, "elevator", {"keywords": "电梯,门禁"}),
    ("SAF", None, "安全隐患", None, 12, 48, False, True, "warning", {}),
    ("SAF-01", "SAF", "楼道堆物", "网格员", 12, 48, False, True, "stairs", {"keywords": "消防通道,杂物"}),
    ("SAF-02", "SAF", "电动车违规充电", "网格员", 4, 24, False, True, "ebike",
     {"keywords": "飞线充电,电瓶车", "fields_spec": [{"code": "where", "label": "在哪里充电",
                                                     "datatype": "singlevaluelist", "required": True,
                                                     "stage": "report", "values": _E_WHERE}]}),
    ("ORD", None, "秩序管理", None, 24, 120, False, True, "building", {}),
    ("ORD-01", "ORD", "违章搭建", "社区", 24, 240, False, True, "building",
     {"keywords": "搭建,违建", "open311_type": "batch"}),
    ("ORD-02", "ORD", "噪音扰民", "网格员", 12, 48, False, True, "noise", {"keywords": "噪音,装修"}),
    ("PRI", None, "邻里与个人", None, 12, 72, True, True, "people", {}),
    ("PRI-01", "PRI", "邻里纠纷", "社区", 12, 72, True, True, "people", {"keywords": "矛盾,调解"}),
    ("PRI-02", "PRI", "人身安全", "社区", 1, 12, True, True, "shield", {"keywords": "安全,求助"}),
    ("SYS", None, "系统来源", None, 4, 72, True, False, "bell", {}),
    (DEVICE_CODE, "SYS", "设备告警", "物业", 1, 4, False, False, "alarm", {"keywords": "充电桩,道闸,告警"}),
    (HEALTH_CODE, "SYS", "健康异常", "社区", 1, 24, True, False, "heart", {}),
    (OUTREACH_CODE, "SYS", "认证外联（上门或电话）", "网格员", 24, 72, True, False, "elder",
     {"after_photo_required": False,
      "description": "本月逾期未认证、没有帮办人、也没有无感认证记录的老人：上门或电话联系，办结时登记结果。",
      "fields_spec": [{"code": "outcome", "label": "联系结果", "datatype": "singlevaluelist", "required": True,
                       "stage": "close", "values": [{"key": k, "name": n} for k, n in OUTREACH_OUTCOMES]}]}),
)

DATATYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")
# the category fields staff type: (field, label, length), checked by the one text validator
CATEGORY_TEXT = (("name", "类别名称", 64), ("description", "类别说明", 500), ("keywords", "关键词", 200),
                 ("standard_code", "标准编码", 32), ("icon", "图标", 32))


def _category_text(values: dict[str, Any]) -> dict[str, Any]:
    for key, label, length in CATEGORY_TEXT:
        if values.get(key) is not None:
            values[key] = wording.line(values[key], field=key, label=label, max_length=length, required=key == "name")
    return values


async def ensure_catalog(*, community_id: int) -> None:
    """Give a community its default teams and category tree once (idempotent, race-safe)."""
    if await Category.exists(community_id=community_id):
        return
    try:
        async with in_transaction() as conn:
            teams: dict[str, HandlerTeam] = {}
            for name, kind in DEFAULT_TEAMS:
                team = await HandlerTeam.filter(community_id=community_id, name=name).using_db(conn).first()
                teams[name] = team or await HandlerTeam.create(community_id=community_id, name=name, kind=kind,
                                                               using_db=conn)
            created: dict[str, Category] = {}
            for sort, (code, parent, name, team, response, deadline, private, reportable, icon, extra) in \
                    enumerate(DEFAULT_TREE):
                created[code] = await Category.create(
                    community_id=community_id, parent=created[parent] if parent else None, code=code, name=name,
                    default_team=teams[team] if team else None, response_hours=response, deadline_hours=deadline,
                    private=private, resident_reportable=reportable, icon=icon, sort=sort, using_db=conn,
                    description=extra.get("description", ""), keywords=extra.get("keywords", ""),
                    fields_spec=extra.get("fields_spec", []), open311_type=extra.get("open311_type", "realtime"),
                    after_photo_required=extra.get("after_photo_required", True),
                )
    except IntegrityError:  # another worker seeded it first
        return


async def categories(*, community_id: int, residents_only: bool = False) -> list[Category]:
    """The community's active categories, tree order; for residents only the ones they may report."""
    await ensure_catalog(community_id=community_id)
    query = Category.filter(community_id=community_id, active=True)
    if residents_only:
        query = query.filter(resident_reportable=True)
    return await query.order_by("sort", "id")


async def category_by_code(*, community_id: int, code: str) -> Category:
    await ensure_catalog(community_id=community_id)
    found = await Category.get_or_none(community_id=community_id, code=code, active=True)
    if found is None:
        raise NotFoundError("没有这个问题类别", code="workorder.category_not_found")
    return found


async def category_or_raise(*, category_id: int, community_id: int) -> Category:
    found = await Category.get_or_none(id=category_id, community_id=community_id, active=True)
    if found is None:
        raise NotFoundError("没有这个问题类别", code="workorder.category_not_found", field="category_id")
    return found


def check_fields_spec(spec: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A category's extra fields, normalised; ValidationFailed names the first bad one."""
    seen: set[str] = set()
    out = []
    for item in spec:
        code = str(item.get("code", "")).strip()
        datatype = item.get("datatype", "string")
        if not code or code in seen or datatype not in DATATYPES:
            raise ValidationFailed("字段定义不正确（code 唯一，datatype 取值见文档）", field="fields_spec")
        seen.add(code)
        values = [{"key": str(v["key"]), "name": wording.line(str(v.get("name", v["key"])), field="fields_spec",
                                                             label="选项名称", max_length=64, required=True)}
                  for v in item.get("values", [])]
        if datatype.endswith("valuelist") and not values:
            raise ValidationFailed(f"字段 {code} 是选择题，需要给出选项", field="fields_spec")
        label = wording.line(str(item.get("label", code)), field="fields_spec", label="字段名称", max_length=64,
                             required=True)
        out.append({"code": code, "label": label, "datatype": datatype,
                    "required": bool(item.get("required", False)),
                    "stage": "close" if item.get("stage") == "close" else "report", "values": values})
    return out


async def create_category(*, community_id: int, values: dict[str, Any]) -> Category:
    await ensure_catalog(community_id=community_id)
    parent_id = values.pop("parent_id", None)
    if parent_id is not None:
        await category_or_raise(category_id=parent_id, community_id=community_id)
    team_id = values.pop("default_team_id", None)
    if team_id is not None:
        await team_or_raise(team_id=team_id, community_id=community_id)
    values["fields_spec"] = check_fields_spec(values.get("fields_spec") or [])
    _category_text(values)
    try:
        return await Category.create(community_id=community_id, parent_id=parent_id, default_team_id=team_id,
                                     **values)
    except IntegrityError:
        raise Conflict("这个类别编码已经存在", code="workorder.category_exists", field="code") from None


async def update_category(*, category_id: int, community_id: int, changes: dict[str, Any]) -> Category:
    category = await category_or_raise(category_id=category_id, community_id=community_id)
    if "default_team_id" in changes and changes["default_team_id"] is not None:
        await team_or_raise(team_id=changes["default_team_id"], community_id=community_id)
    if "fields_spec" in changes:
        changes["fields_spec"] = check_fields_spec(changes["fields_spec"] or [])
    category.update_from_dict(_category_text(changes))
    await category.save()
    return category


# ---- teams ----

async def teams(*, community_id: int) -> list[HandlerTeam]:
    await ensure_catalog(community_id=community_id)
    return await HandlerTeam.filter(community_id=community_id).order_by("id").prefetch_related("members__staff")


async def team_or_raise(*, team_id: int, community_id: int) -> HandlerTeam:
    team = await HandlerTeam.get_or_none(id=team_id, community_id=community_id, active=True)
    if team is None:
        raise NotFoundError("没有找到这个处置队伍", code="workorder.team_not_found", field="team_id")
    return team


async def create_team(*, community_id: int, name: str, kind: str, phone: str) -> HandlerTeam:
    await ensure_catalog(community_id=community_id)
    name = wording.line(name, field="name", label="队伍名称", max_length=64, required=True)
    phone = wording.line(phone, field="phone", label="队伍电话", max_length=32)
    try:
        return await HandlerTeam.create(community_id=community_id, name=name, kind=TeamKind(kind), phone=phone)
    except IntegrityError:
        raise Conflict("已有同名的处置队伍", code="workorder.team_exists", field="name") from None


HANDLER_ROLES = (Role.COMMUNITY_STAFF, Role.COMMUNITY_ADMIN)


async def add_member(*, team_id: int, community_id: int, staff_id: int) -> TeamMember:
    """Members are staff of the team's own community."""
    team = await team_or_raise(team_id=team_id, community_id=community_id)
    staff = await StaffUser.get_or_none(id=staff_id, community_id=community_id, is_active=True,
                                        role__in=list(HANDLER_ROLES))
    if staff is None:
        raise NotFoundError("没有找到这位本社区的工作人员", code="workorder.staff_not_found", field="staff_id")
    member, _ = await TeamMember.get_or_create(team_id=team.id, staff_id=staff.id)
    return member


async def remove_member(*, team_id: int, community_id: int, staff_id: int) -> int:
    team = await team_or_raise(team_id=team_id, community_id=community_id)
    return await TeamMember.filter(team_id=team.id, staff_id=staff_id).delete()


def team_view(team: HandlerTeam) -> dict[str, Any]:
    return {"id": team.id, "name": team.name, "kind": str(team.kind), "phone": team.phone, "active": team.active,
            "members": [{"staff_id": m.staff_id, "name": m.staff.display_name}  # type: ignore[attr-defined]
                        for m in team.members]}


def category_view(category: Category) -> dict[str, Any]:
    return {
        "id": category.id, "code": category.code, "standard_code": category.standard_code, "name": category.name,
        "parent_id": category.parent_id, "description": category.description,  # type: ignore[attr-defined]
        "keywords": category.keywords, "icon": category.icon,
        "default_team_id": category.default_team_id,  # type: ignore[attr-defined]
        "response_hours": category.response_hours, "deadline_hours": category.deadline_hours,
        "private": category.private, "resident_reportable": category.resident_reportable,
        "open311_type": category.open311_type, "after_photo_required": category.after_photo_required,
        "fields": category.fields_spec,
    }
