"""Issue 13.2: a staff account reads only its own communities, and an account that belongs nowhere reads nothing.

Every staff GET route under /api is walked with four principals against one community's data:
its own community admin, another community's admin, an admin whose scope is empty (legacy data,
written straight into the table because the service now refuses to create one) and the admin of
its district. A route added later without an entry here fails the walk until it is classified.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from backend.auth import service as auth_service
from backend.auth.models import Role, StaffUser
from backend.auth.passwords import hash_password
from backend.certification import periods
from backend.certification.models import Attempt, Decision, Method, ReviewStatus
from backend.certification.sessions import FRAME_PURPOSE
from backend.errors import ValidationFailed
from backend.residents import service as residents
from tests.conftest import REPO_ROOT
from tests.integration.conftest import STAFF_PASSWORD, Staff, create_staff_login, login
from tests.integration.test_credentials import certified_resident
from tests.integration.test_errors_and_ops import assert_error
from tests.integration.test_home_visit_list import record_visit
from tests.integration.test_periods_and_evidence import a_photo
from tests.integration.test_residents import create
from tests.integration.workorders_support import make_point, photo_with_gps, upload
from tests.support.ids import fresh_elder_id

# Routes whose answer holds no community's records: the same for every staff member who may call them.
NOT_COMMUNITY_DATA = {
    "api/auth/me": "the caller's own account",
    "api/departments": "the list of departments",
    "api/chain/status": "the log's state",
    "api/audit/verify": "recomputes the hash chain; reports only the first bad event id",
    "api/oauth/clients": "portal registrations, platform admins only",
    "api/residents/import/template": "an empty spreadsheet",
}
# Routes for app users (residents, helpers) or portals: staff tokens are refused outright.
NOT_FOR_STAFF_PREFIXES = ("api/app/", "api/portal/")
STAFF_ON_APP_ROUTES = {"api/app/residents/<rid:int>/qr.png", "api/app/residents/<rid:int>/qr.svg"}


INSIDERS = ("own community admin", "district admin")


@dataclass
class Probe:
    """How to ask a route about community A, and (for lists) whether an answer shows any of A."""

    path: str
    shows_a: Callable[[Any], bool] | None = None  # None: a read of one A record (200 = seen, 404 = not)
    readers: tuple[str, ...] = INSIDERS  # the insiders whose role may call the route (others: 403)


async def unscoped_admin(client, **fields: Any) -> Staff:
    """A community admin as legacy data left it: no community (the service refuses to create one now)."""
    username = f"legacy_{secrets.token_hex(4)}"
    user = await StaffUser.create(username=username, display_name=username, role=Role.COMMUNITY_ADMIN,
                                  password_hash=hash_password(STAFF_PASSWORD), **fields)
    return Staff(user.id, username, await login(client, username), None)


async def review_attempt(resident_id: int, period_id: int, cipher) -> int:
    attempt = await Attempt.create(
        session_id=secrets.token_hex(8), resident_id=resident_id, period_id=period_id, method=Method.SELF,
        actor_kind="app", actor_id=1, decision=Decision.REVIEW, reasons=["low_match"],
        best_frame_cipher=cipher.encrypt_bytes(a_photo(), purpose=FRAME_PURPOSE), review_status=ReviewStatus.PENDING,
    )
    return attempt.id


def ids_in(body: Any, key: str = "items") -> set:
    return {item["id"] for item in body.get(key, [])}


async def test_every_read_route_with_own_other_empty_and_district_principals(client, server, make_world):
    district = f"区{secrets.token_hex(3)}"
    own = await make_world(district=district)
    other = await make_world(district=f"区{secrets.token_hex(3)}")
    a = own.community_id

    # community A's records, one of each kind a read route can return
    resident = await create(client, own, seed=1301, name="范围老人")
    rid = resident["id"]
    consent = await client.post(f"/api/residents/{rid}/consents", headers=own.staff.headers,
                                json={"kind": "biometric", "version": "v1", "method": "paper"})
    assert consent.status_code == 201, consent.text
    period = await periods.current_period(community_id=a)
    visit_id = await record_visit(client, own.staff, rid)
    attempt_id = await review_attempt(rid, period.id, server.app.ctx.cipher)
    certified, credential = await certified_resident(client, server, own, seed=1302)
    await residents.ensure_department(code="civil_affairs", name="民政局")  # the demo's name: the first caller names it
    made = await client.post("/api/exports", json={"period_id": period.id, "department": "civil_affairs"},
                             headers=own.admin.headers)
    assert made.status_code == 201, made.text
    export_id = made.json()["id"]
    # a person registered in A and in another community of the district: a move for the district to resolve
    neighbour = await make_world(district=district)
    moving_id = fresh_elder_id()
    moving = await client.post("/api/residents", headers=own.staff.headers, json={
        "name": "范围迁居", "national_id": moving_id, "address": "南桥镇解放路 2号"})
    assert moving.status_code == 201, moving.text
    assert (await client.post("/api/residents", headers=neighbour.staff.headers, json={
        "name": "范围迁居", "national_id": moving_id, "address": "南桥镇江海路 8号"})).status_code == 201
    # a work order at a fixed point of A, with a photo
    categories = (await client.get("/api/workorders/categories", headers=own.staff.headers)).json()["items"]
    category = next(c for c in categories if c["parent_id"] is not None and not c["fields"])  # a plain leaf
    point = await make_point(client, own)
    case = await client.post("/api/workorders", headers=own.staff.headers, json={
        "category_id": category["id"], "description": "范围测试：路灯不亮", "point_id": point["id"]})
    assert case.status_code == 201, case.text
    case_id = case.json()["id"]
    photo = await upload(client, own.staff.headers, case_id, photo_with_gps())
    month = datetime.now(UTC).strftime("%Y-%m")

    probes: dict[str, Probe] = {
        "api/communities": Probe("/api/communities", lambda b: a in ids_in(b)),
        "api/residents": Probe(f"/api/residents?community_id={a}", lambda b: rid in ids_in(b)),
        "api/residents/<rid:int>": Probe(f"/api/residents/{rid}"),
        "api/residents/<rid:int>/consents": Probe(f"/api/residents/{rid}/consents"),
        "api/residents/<rid:int>/enrolment": Probe(f"/api/residents/{rid}/enrolment"),
        "api/residents/<rid:int>/helpers": Probe(f"/api/residents/{rid}/helpers"),
        "api/residents/<rid:int>/qr.png": Probe(f"/api/residents/{rid}/qr.png"),
        "api/residents/<rid:int>/qr.svg": Probe(f"/api/residents/{rid}/qr.svg"),
        "api/app/residents/<rid:int>/qr.png": Probe(f"/api/app/residents/{rid}/qr.png"),
        "api/app/residents/<rid:int>/qr.svg": Probe(f"/api/app/residents/{rid}/qr.svg"),
        "api/periods/current": Probe(f"/api/periods/current?community_id={a}", lambda b: b.get("id") == period.id),
        "api/periods": Probe(f"/api/periods?community_id={a}", lambda b: period.id in ids_in(b)),
        "api/periods/<pid:int>/residents": Probe(f"/api/periods/{period.id}/residents"),
        "api/review": Probe("/api/review", lambda b: attempt_id in ids_in(b)),
        "api/review/<aid:int>/frame": Probe(f"/api/review/{attempt_id}/frame"),
        "api/home-visits": Probe(f"/api/home-visits?community_id={a}", lambda b: visit_id in ids_in(b)),
        "api/home-visits/<hid:int>/photo": Probe(f"/api/home-visits/{visit_id}/photo"),
        "api/passive/candidates": Probe(f"/api/passive/candidates?community_id={a}", lambda b: True),
        "api/trends": Probe(f"/api/trends?community_id={a}", lambda b: True),
        "api/credentials": Probe(f"/api/credentials?resident_id={certified['id']}",
                                 lambda b: str(credential.id) in ids_in(b)),
        "api/exports": Probe("/api/exports", lambda b: export_id in ids_in(b)),
        "api/exports/<export_id:uuid>": Probe(f"/api/exports/{export_id}"),
        "api/exports/<export_id:uuid>/files/<kind:str>": Probe(f"/api/exports/{export_id}/files/json"),
        "api/audit/events": Probe(f"/api/audit/events?target_kind=resident&target_id={rid}",
                                  lambda b: any(e["community_id"] == a for e in b["items"])),
        "api/auth/staff": Probe("/api/auth/staff", lambda b: own.staff.user_id in ids_in(b)),
        "api/residents/moves": Probe("/api/residents/moves", lambda b: any(
            r["resident_id"] == moving.json()["id"] for g in b["items"] for r in g["registrations"]),
            readers=("district admin",)),
        "api/workorders/categories": Probe(f"/api/workorders/categories?community_id={a}",
                                           lambda b: category["id"] in ids_in(b)),
        "api/workorders/teams": Probe(f"/api/workorders/teams?community_id={a}", lambda b: True),
        "api/workorders/points": Probe(f"/api/workorders/points?community_id={a}", lambda b: point["id"] in ids_in(b)),
        "api/workorders/points/<pid:int>/sign.pdf": Probe(f"/api/workorders/points/{point['id']}/sign.pdf"),
        "api/workorders": Probe(f"/api/workorders?community_id={a}", lambda b: case_id in ids_in(b)),
        "api/workorders/duplicates": Probe(
            f"/api/workorders/duplicates?category_id={category['id']}&point_id={point['id']}",
            lambda b: case_id in ids_in(b)),
        "api/workorders/<wid:int>": Probe(f"/api/workorders/{case_id}"),
        "api/workorders/<wid:int>/photos/<pid:int>": Probe(f"/api/workorders/{case_id}/photos/{photo['id']}"),
        "api/workorders/figures": Probe(f"/api/workorders/figures?month={month}&community_id={a}", lambda b: True),
    }

    # every staff GET route under /api is classified: probed, not community data, or not for staff
    unclassified = []
    for route in server.app.router.routes:
        path = route.path
        if "GET" not in route.methods or not path.startswith("api/") or path in NOT_COMMUNITY_DATA:
            continue
        if path.startswith(NOT_FOR_STAFF_PREFIXES) and path not in STAFF_ON_APP_ROUTES:
            continue
        if path not in probes:
            unclassified.append(path)
    assert not unclassified, f"classify these read routes in {__file__}: {unclassified}"

    insiders = {
        "own community admin": own.admin,
        "district admin": await create_staff_login(client, role=Role.DISTRICT_ADMIN, district=district),
    }
    outsiders = {
        "other community admin": other.admin,
        "admin without a community": await unscoped_admin(client),
        "district admin without a district": await unscoped_admin_of_district(client),
    }
    for name, principal in insiders.items():
        for route, probe in probes.items():
            answer = await client.get(probe.path, headers=principal.headers)
            if name not in probe.readers:
                assert_error(answer, 403, "auth.role_forbidden")
                continue
            assert answer.status_code == 200, (name, route, answer.text)
            if probe.shows_a is not None:
                assert probe.shows_a(answer.json()), (name, route, answer.text)
    for name, principal in outsiders.items():
        for route, probe in probes.items():
            answer = await client.get(probe.path, headers=principal.headers)
            if answer.status_code == 403:  # refused by role before any lookup: reveals nothing
                assert answer.json()["error"]["code"] == "auth.role_forbidden", (name, route)
                continue
            if probe.shows_a is None:
                assert answer.status_code == 404, (name, route, answer.status_code, answer.text[:300])
                continue
            assert answer.status_code in (200, 404), (name, route, answer.text[:300])
            if answer.status_code == 200:
                assert not probe.shows_a(answer.json()), (name, route, answer.text[:300])
            assert "范围" not in answer.text, (name, route, answer.text[:300])


async def unscoped_admin_of_district(client) -> Staff:
    username = f"legacy_d_{secrets.token_hex(4)}"
    user = await StaffUser.create(username=username, display_name=username, role=Role.DISTRICT_ADMIN, district="",
                                  password_hash=hash_password(STAFF_PASSWORD))
    return Staff(user.id, username, await login(client, username), None)


async def test_the_empty_scope_reads_nothing_even_naming_a_community(client, make_world):
    """The probe from the report: `?community_id=1` gave an unscoped admin community 1's residents."""
    world = await make_world()
    await create(client, world, seed=1303)
    legacy = await unscoped_admin(client)
    listed = await client.get("/api/residents", params={"community_id": world.community_id}, headers=legacy.headers)
    assert listed.status_code == 200 and listed.json()["total"] == 0 and listed.json()["items"] == []
    assert (await client.get("/api/residents", headers=legacy.headers)).json()["total"] == 0


@pytest.mark.parametrize(("role", "fields", "code"), [
    (Role.COMMUNITY_STAFF, {}, "staff.community_required"),
    (Role.COMMUNITY_ADMIN, {"district": "奉贤区"}, "staff.community_required"),
    (Role.DISTRICT_ADMIN, {}, "staff.district_required"),
    (Role.DISTRICT_ADMIN, {"district": "   "}, "staff.district_required"),
    (Role.AUDITOR, {}, "staff.scope_required"),
    (Role.COMMUNITY_ADMIN, {"community_id": 987654}, "community.not_found"),
])
async def test_accounts_without_a_scope_are_refused(server, role, fields, code):
    username = f"noscope_{secrets.token_hex(4)}"
    with pytest.raises(ValidationFailed) as refused:
        await auth_service.create_staff(username=username, password=STAFF_PASSWORD, display_name=username, role=role,
                                        **fields)
    assert refused.value.code == code
    assert not await StaffUser.exists(username=username)


def run_cli(data_dir: Path, *args: str, password: str = STAFF_PASSWORD) -> subprocess.CompletedProcess[str]:
    """`python -m backend …` over a SQLite file of its own (never one the in-process test server has open)."""
    env = {"PATH": "/usr/bin:/bin", "ZHILIAN_ENV": "test", "DATA_DIR": str(data_dir), "LOG_LEVEL": "WARNING"}
    return subprocess.run([sys.executable, "-m", "backend", *args], cwd=REPO_ROOT, env=env, input=password + "\n",
                          capture_output=True, text=True, timeout=120)


def test_create_staff_command_refuses_an_empty_scope(tmp_path: Path):
    assert run_cli(tmp_path, "migrate").returncode == 0
    username = f"cli_{secrets.token_hex(4)}"
    refused = run_cli(tmp_path, "create-staff", username, "--role", "community_admin")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "staff.community_required" in refused.stderr and "社区" in refused.stderr
    refused = run_cli(tmp_path, "create-staff", username, "--role", "community_staff", "--community-id", "7")
    assert refused.returncode == 2 and "community.not_found" in refused.stderr, refused.stderr
    refused = run_cli(tmp_path, "create-staff", username, "--role", "district_admin")
    assert refused.returncode == 2 and "staff.district_required" in refused.stderr, refused.stderr
    made = run_cli(tmp_path, "create-staff", username, "--role", "district_admin", "--district", "奉贤区")
    assert made.returncode == 0, made.stderr
    assert re.search(rf"created staff user {username} \(id \d+\)", made.stdout)
    again = run_cli(tmp_path, "create-staff", username, "--role", "district_admin", "--district", "奉贤区")
    assert again.returncode == 2 and "staff.username_taken" in again.stderr  # the first one was stored
