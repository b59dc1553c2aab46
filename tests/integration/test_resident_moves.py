"""No staff member can test an ID number against other communities' registers (issue 13, item 16): adding
or importing a person answers the same whether another community has them or not, and the district
resolves the move."""

from __future__ import annotations

import secrets
from datetime import date

from backend.audit.models import AuditEvent
from backend.auth.models import AppUser, Role
from backend.residents.demo import demo_roster
from backend.residents.roster import write_roster_xlsx
from tests.integration.conftest import create_staff_login
from tests.integration.test_credentials import app_login, unique_phone
from tests.integration.test_errors_and_ops import assert_error
from tests.integration.test_residents import an_elder_id, upload


def shape(response) -> tuple[int, list[str]]:
    """What an answer tells apart from another one, personal values aside: its status and its fields."""
    body = response.json()
    return response.status_code, sorted(body if isinstance(body, dict) else [])


async def add(client, world, national_id: str, *, name: str = "周玉兰", phone: str | None = None):
    return await client.post("/api/residents", headers=world.staff.headers, json={
        "name": name, "national_id": national_id, "phone": phone, "address": "南桥镇江海路 8号"})


async def test_adding_someone_registered_elsewhere_answers_like_adding_someone_new(client, make_world):
    district = f"迁移区{secrets.token_hex(3)}"
    home, elsewhere = await make_world(district=district), await make_world(district=district)
    known, unknown = an_elder_id(1481), an_elder_id(1482)
    assert (await add(client, elsewhere, known)).status_code == 201

    registered_elsewhere = await add(client, home, known)
    nowhere_else = await add(client, home, unknown)
    assert registered_elsewhere.status_code == 201
    assert shape(registered_elsewhere) == shape(nowhere_else)
    assert registered_elsewhere.json()["national_id"] == known
    # within one's own community a duplicate is still refused (staff see that register anyway)
    assert_error(await add(client, home, known), 409, "resident.duplicate")

    # the roster import's dry run cannot be used to test IDs either: rows of people registered
    # elsewhere are reported exactly like new people
    rows = demo_roster(4, as_of=date.today(), seed=14)
    assert (await upload(client, elsewhere, write_roster_xlsx(rows[:2]), mode="commit")).status_code == 200
    dry = await upload(client, home, write_roster_xlsx(rows), mode="dry_run")
    assert dry.status_code == 200, dry.text
    assert (dry.json()["created"], dry.json()["errors"]) == (4, [])


async def test_a_district_admin_resolves_the_move_and_community_staff_cannot(client, make_world, server):
    district = f"迁移区{secrets.token_hex(3)}"
    old_home, new_home = await make_world(district=district), await make_world(district=district)
    other_district = f"别区{secrets.token_hex(3)}"
    await make_world(district=other_district)
    person, phone = an_elder_id(1491), unique_phone()
    first = (await add(client, old_home, person, phone=phone)).json()
    await app_login(client, server, phone)  # the elder's phone login is linked to the old registration
    assert (await AppUser.get(resident_id=first["id"])).resident_id == first["id"]
    second = (await add(client, new_home, person, name="周玉兰", phone=phone)).json()

    for staff in (new_home.staff, new_home.admin, old_home.admin):
        assert_error(await client.get("/api/residents/moves", headers=staff.headers), 403)
        assert_error(await client.post("/api/residents/moves", json={"keep_resident_id": second["id"], "reason": "迁入"},
                                       headers=staff.headers), 403)
    outsider = await create_staff_login(client, role=Role.DISTRICT_ADMIN, district=other_district)
    assert (await client.get("/api/residents/moves", headers=outsider.headers)).json()["items"] == []

    district_admin = await create_staff_login(client, role=Role.DISTRICT_ADMIN, district=district)
    listed = (await client.get("/api/residents/moves", headers=district_admin.headers)).json()["items"]
    assert len(listed) == 1
    assert [r["resident_id"] for r in listed[0]["registrations"]] == [first["id"], second["id"]]
    assert person not in str(listed) and listed[0]["national_id_masked"].endswith(person[-4:])

    assert_error(await client.post("/api/residents/moves", json={"keep_resident_id": second["id"], "reason": ""},
                                   headers=district_admin.headers), 422)
    resolved = await client.post("/api/residents/moves", json={"keep_resident_id": second["id"], "reason": "已迁入新社区"},
                                 headers=district_admin.headers)
    assert resolved.status_code == 200, resolved.text
    assert resolved.json() == {"kept": second["id"], "moved": [first["id"]]}
    old_view = (await client.get(f"/api/residents/{first['id']}", headers=old_home.staff.headers)).json()
    assert old_view["status"] == "moved"
    assert (await AppUser.get(phone_index=server.app.ctx.cipher.blind_index(phone, purpose="phone"))).resident_id == \
        second["id"]  # the elder's phone now certifies where they live
    assert (await client.get("/api/residents/moves", headers=district_admin.headers)).json()["items"] == []
    assert_error(await client.post("/api/residents/moves", json={"keep_resident_id": second["id"], "reason": "再次"},
                                   headers=district_admin.headers), 409, "resident.no_move")
    # each community's own trail says what happened to its resident
    moved_out = await AuditEvent.get(action="resident.moved_out", target_id=str(first["id"]))
    assert moved_out.community_id == old_home.community_id and moved_out.details["reason"] == "已迁入新社区"
