"""Seeding the demo community (南桥社区): departments, staff accounts and ~300 residents.

Idempotent: running it again changes nothing (the roster import updates, never duplicates).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from backend.auth import service as auth_service
from backend.auth.models import Role, StaffUser
from backend.residents import service as residents
from backend.residents.demo import demo_roster
from backend.residents.roster import FIELD_LABELS, write_roster_xlsx
from backend.security.fieldcrypt import FieldCipher

DEMO_PASSWORD = "Zhilian-demo-2026"
DEPARTMENTS = [("civil_affairs", "民政局"), ("social_security", "人力资源和社会保障局"), ("health", "卫生健康委员会")]
DEMO_STAFF = [
    ("nq_staff", "王晓燕（社区工作人员）", Role.COMMUNITY_STAFF),
    ("nq_admin", "李建华（社区管理员）", Role.COMMUNITY_ADMIN),
    ("fx_district", "张伟（区管理员）", Role.DISTRICT_ADMIN),
    ("mz_officer", "陈静（民政局）", Role.DEPARTMENT_OFFICER),
    ("rs_officer", "刘洋（人社局）", Role.DEPARTMENT_OFFICER),
    ("auditor", "赵敏（审计）", Role.AUDITOR),
    ("platform", "平台管理员", Role.PLATFORM_ADMIN),
]


async def seed_demo(*, cipher: FieldCipher, residents_count: int = 300) -> dict[str, Any]:
    """Create what is missing of the demo data set; returns counts and a resident to sign in as, for the banner."""
    community = await residents.ensure_community(
        code="NQ001", name="南桥社区", street="南桥镇", district="奉贤区", phone="021-57180000"
    )
    departments = {code: await residents.ensure_department(code=code, name=name) for code, name in DEPARTMENTS}
    for username, display_name, role in DEMO_STAFF:
        if await StaffUser.exists(username=username):
            continue
        department = None
        if username == "mz_officer":
            department = departments["civil_affairs"]
        elif username == "rs_officer":
            department = departments["social_security"]
        await auth_service.create_staff(
            username=username, password=DEMO_PASSWORD, display_name=display_name, role=role,
            community_id=community.id if role in (Role.COMMUNITY_STAFF, Role.COMMUNITY_ADMIN, Role.AUDITOR) else None,
            district="奉贤区" if role in (Role.DISTRICT_ADMIN, Role.AUDITOR) else "",
            department_id=department.id if department else None,
        )
    rows = demo_roster(residents_count, as_of=date.today())
    roster = write_roster_xlsx(rows)
    report = await residents.import_roster(
        community=community, filename="demo.xlsx", data=roster, commit=True, cipher=cipher
    )
    example = next((row for row in rows if row[FIELD_LABELS["phone"]]), None)
    from backend.workorders.demo import seed_workorders

    workorders = await seed_workorders(community=community, cipher=cipher)  # 随手拍: points, teams, a living board
    return {"created": report.created, "updated": report.updated, "unchanged": report.unchanged,
            "errors": len(report.errors), "work_orders": workorders["cases"],
            "example_resident": (example[FIELD_LABELS["name"]], example[FIELD_LABELS["phone"]]) if example else None}
