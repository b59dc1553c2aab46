"""Demo work orders for 南桥社区, so a newcomer's `scripts/dev` shows a living board.

Four fixed points with signs, the default category tree and teams (the demo staff are members),
and a dozen cases spread over the states — new, accepted, dispatched, being handled, due soon,
overdue and escalated, handed back, waiting for the check, resolved awaiting the call-back, called
back, reopened, merged, out of scope — made through the same service functions the API uses, with
times set in the past. A demo resident with the app is the reporter of several (their "my reports").
Idempotent: a community that already has cases is left alone.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

from PIL import Image, ImageDraw

from backend.audit.service import Actor
from backend.auth.models import AppUser, StaffUser
from backend.residents.models import Community, Resident
from backend.security.fieldcrypt import FieldCipher
from backend.workorders import catalog, deadlines, points, service
from backend.workorders.models import Category, HandlerTeam, PhotoKind, TeamMember, WorkOrder
from backend.workorders.service import Caller, MoveParams, Place

SEED_ACTOR = Actor("system", "demo-seed")
POINTS = (
    ("L001", "3号楼前路灯", "lamp_post", "南桥镇解放东路 128弄 3号楼前", "第一网格", 30.91820, 121.47410),
    ("G001", "小区东门道闸", "gate", "南桥镇解放东路 128弄 东门", "第一网格", 30.91790, 121.47530),
    ("C001", "7号楼电动车充电棚", "charging_shed", "南桥镇解放东路 128弄 7号楼北侧", "第二网格", 30.91905, 121.47360),
    ("S001", "12号楼 2单元楼道", "stair_hall", "南桥镇解放东路 128弄 12号楼 2单元", "第二网格", 30.91950, 121.47480),
)


def _picture(colour: tuple[int, int, int], label: str) -> bytes:
    image = Image.new("RGB", (480, 360), colour)
    draw = ImageDraw.Draw(image)
    for x in range(0, 480, 40):
        draw.line([(x, 0), (x + 120, 360)], fill=(255, 255, 255), width=3)
    draw.rectangle([20, 300, 300, 340], fill=(0, 0, 0))
    draw.text((30, 310), label, fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


async def seed_workorders(*, community: Community, cipher: FieldCipher, public_url: str = "") -> dict[str, Any]:
    """Create the demo points, teams' members and cases once; returns what exists."""
    await catalog.ensure_catalog(community_id=community.id)
    if await WorkOrder.exists(community_id=community.id):
        return {"cases": await WorkOrder.filter(community_id=community.id).count(), "created": 0}
    teams = {t.name: t for t in await HandlerTeam.filter(community_id=community.id)}
    staff = {s.username: s for s in await StaffUser.filter(community_id=community.id)}
    dispatcher, admin = staff.get("nq_staff"), staff.get("nq_admin")
    if dispatcher is None or admin is None:
        return {"cases": 0, "created": 0}
    for team, member in (("网格员", dispatcher), ("社区", dispatcher), ("物业", admin)):
        await TeamMember.get_or_create(team_id=teams[team].id, staff_id=member.id)
    placed = {}
    for code, name, kind, address, grid, lat, long in POINTS:
        placed[code] = await points.create_point(community_id=community.id, name=name, kind=kind, address=address,
                                                 grid=grid, lat=lat, long=long, code=code)
    cats = {c.code: c for c in await Category.filter(community_id=community.id)}
    resident = await Resident.filter(community_id=community.id, phone_index__isnull=False).order_by("id").first()
    reporter = None
    if resident is not None:
        reporter = await AppUser.get_or_none(phone_index=resident.phone_index)
        reporter = reporter or await AppUser.create(phone_cipher=resident.phone_cipher,
                                                    phone_index=resident.phone_index, resident=resident)
    scope = [community.id]
    desk = Caller("staff", dispatcher.id, str(dispatcher.role), scope, SEED_ACTOR)
    boss = Caller("staff", admin.id, str(admin.role), scope, SEED_ACTOR)
    app = Caller("app", reporter.id, "app", [], SEED_ACTOR) if reporter else None
    now = datetime.now(UTC)

    async def new(code: str, text: str, hours_ago: float, *, point: str | None = None, address: str = "",
                  by_resident: bool = True, photo: tuple[int, int, int] | None = None, **attributes: Any) -> WorkOrder:
        at = now - timedelta(hours=hours_ago)
        category = cats[code]
        place = Place(point=placed[point] if point else None, address=address)
        if by_resident and app is not None:
            wo = await service.report(caller=app, category_id=category.id, description=text,
                                      point_token=placed[point].token if point else None, community_id=community.id,
                                      address=address, lat=None, long=None, hint=None, show_reporter=False,
                                      reporter_name=None, on_behalf_resident_id=None, attributes=attributes, now=at,
                                      cipher=cipher)
        else:
            wo = await service.staff_report(caller=desk, community_id=community.id, category_id=category.id,
                                            description=text, point_id=place.point.id if place.point else None,
                                            address=address, grid="", lat=None, long=None, on_behalf_resident_id=None,
                                            contact_name=None, contact_phone=None, attributes=attributes, now=at,
                                            cipher=cipher)
        if photo:
            await service.add_photo(caller=app if by_resident and app else desk, work_order_id=wo.id,
                                    data=_picture(photo, category.code), kind="before", now=at, cipher=cipher)
        return wo

    async def step(wo: WorkOrder, action: str, note: str, hours_ago: float, who: Caller | None = None,
                   **params: Any) -> None:
        at = now - timedelta(hours=hours_ago)
        if action == "submit" and cats_by_id[wo.category_id].after_photo_required:  # type: ignore[attr-defined]
            await service.add_photo(caller=who or desk, work_order_id=wo.id, data=_picture((60, 150, 90), "after"),
                                    kind=PhotoKind.AFTER, now=at, cipher=cipher)
        await service.transition(caller=who or desk, work_order_id=wo.id, action=action, note=note,
                                 params=MoveParams(**params), now=at, cipher=cipher)

    cats_by_id = {c.id: c for c in cats.values()}
    grid, prop, comm = teams["网格员"].id, teams["物业"].id, teams["社区"].id
    await new("FAC-01", "3号楼前的路灯晚上不亮，老人下楼看不清台阶", 2, point="L001", photo=(40, 40, 90))
    await new("ENV-01", "东门旁边的垃圾桶满出来了", 1, point="G001", photo=(120, 100, 60))
    wo = await new("SAF-01", "12号楼 2单元楼道里堆了很多纸箱，挡住了通道", 20, point="S001", photo=(150, 120, 90))
    await step(wo, "accept", "已签收，转网格员", 19)
    wo = await new("SAF-02", "有人从3楼窗户拉电线给电瓶车充电", 30, point="C001", photo=(90, 90, 90), where="indoors")
    await step(wo, "accept", "签收", 29)
    await step(wo, "dispatch", "请网格员今天上门劝导", 29, team_id=grid)
    wo = await new("FAC-02", "7号楼北侧井盖松动，踩上去会晃", 21, address="7号楼北侧", photo=(70, 70, 70))
    await step(wo, "accept", "签收", 20.5)
    await step(wo, "dispatch", "派物业加固", 20, team_id=prop)
    await step(wo, "start", "已联系维修工", 19, who=boss)  # due in 24 h: past 80 %, due soon
    wo = await new("FAC-03", "东门门禁刷卡没反应，老人进不来", 30, point="G001", by_resident=False)
    await step(wo, "accept", "电话报修，已签收", 29.5)
    await step(wo, "dispatch", "派物业", 29, team_id=prop)  # 24 h deadline passed: overdue, escalated
    wo = await new("ENV-02", "小花园的树被大风刮倒了一棵", 40, address="小区中心花园", photo=(60, 120, 60))
    await step(wo, "accept", "签收", 39)
    await step(wo, "dispatch", "派物业绿化", 38, team_id=prop)
    await step(wo, "return", "倒树在市政绿地上，不归物业", 30, who=boss)  # 退单: back at the dispatcher
    wo = await new("ORD-02", "楼上装修每天早上7点就开始电钻", 50, address="5号楼 602室")
    await step(wo, "accept", "签收", 49)
    await step(wo, "dispatch", "网格员上门沟通", 48, team_id=grid)
    await step(wo, "start", "已和业主沟通", 30)
    await step(wo, "submit", "业主同意9点后施工", 6, attributes={})
    wo = await new("ENV-01", "3号楼后面的建筑垃圾没人清", 72, address="3号楼北侧", photo=(110, 90, 70))
    await step(wo, "accept", "签收", 70)
    await step(wo, "dispatch", "派物业清运", 69, team_id=prop)
    await step(wo, "start", "安排清运车", 60, who=boss)
    await step(wo, "submit", "已清运完毕", 30, who=boss)
    await step(wo, "verify", "现场核查已清理干净", 28)  # resolved: the call-back is waiting for the resident
    first = await new("FAC-01", "小区东门那盏路灯一闪一闪", 120, point="G001", photo=(30, 30, 60))
    await step(first, "accept", "签收", 118)
    await step(first, "dispatch", "派物业", 117, team_id=prop)
    await step(first, "start", "换灯管", 100, who=boss)
    await step(first, "submit", "已更换灯管", 90, who=boss)
    await step(first, "verify", "夜间核查已亮", 80)
    if app is not None:
        await step(first, "callback", "回访：已解决，满意", 70, who=app, satisfied=True)
    dup = await new("FAC-01", "东门路灯闪", 119, point="G001", by_resident=False)
    await step(dup, "merge", "与先前的东门路灯工单是同一问题", 118, into_id=first.id)
    wo = await new("ORD-01", "小区外面人行道上有人摆摊占道", 10, address="解放东路 128弄 外人行道", by_resident=False)
    await step(wo, "out_of_scope", "人行道占道经营由城管负责，已转告", 9, responsible="南桥镇城市管理执法中队（12345）")
    wo = await new("SAF-01", "8号楼楼道电瓶车堵住了楼梯", 100, address="8号楼 1单元")
    await step(wo, "accept", "签收", 99)
    await step(wo, "dispatch", "网格员劝导", 98, team_id=grid)
    await step(wo, "start", "已劝导", 90)
    await step(wo, "submit", "车主已挪走", 80)
    await step(wo, "verify", "核查通过", 78)
    if app is not None:
        await step(wo, "reopen", "回访：没有解决，车又停回来了", 50, who=app)  # 重办
    await step(wo, "dispatch", "重办：请网格员和物业一起处理", 49, team_id=comm)
    await deadlines.sweep(now=now)  # the board shows warnings and escalations at once
    return {"cases": await WorkOrder.filter(community_id=community.id).count(), "created": 1,
            "points": len(placed)}
