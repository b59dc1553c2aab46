"""Monthly trends: rates, method mix and days to certify, summed over exactly the caller's scope,
from periods, exemptions, closes and certifications made through the real services and API."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, timedelta

from backend.auth.models import Role
from backend.certification import periods
from backend.certification.models import Method, Period
from backend.certification.records import record_certification
from backend.residents import service as residents_service
from backend.residents.models import Resident
from tests.integration.conftest import create_staff_login
from tests.integration.test_errors_and_ops import assert_error
from tests.integration.test_periods_and_evidence import a_photo, second_staff
from tests.integration.test_residents import create
from tests.support.names import numbered_name

NO_METHODS = {"self": 0, "helper": 0, "staff": 0, "home_visit": 0, "passive": 0}


async def certify(resident_id: int, period: Period, method: Method) -> None:
    resident = await Resident.get(id=resident_id)
    recorded = await record_certification(resident=resident, period=period, method=method, attempt=None,
                                          assisted_by="staff:0")
    assert recorded.created


def by_month(body: dict) -> dict[str, dict]:
    return {item["month"]: item for item in body["items"]}


async def trends_of(client, staff, **params) -> dict:
    response = await client.get("/api/trends", params=params, headers=staff.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_trends_count_rates_methods_and_days_within_scope(client, make_world):
    district = f"趋势区{secrets.token_hex(3)}"
    world = await make_world(district=district)
    neighbour = await make_world(district=district)
    people = [(await create(client, world, seed=9101 + i, name=numbered_name("趋势", i)))["id"] for i in range(4)]
    lone = (await create(client, neighbour, seed=9111, name="趋势邻居"))["id"]
    this_month = periods.month_of(date.today())
    last_month = periods.previous_month(this_month)
    before_that = periods.previous_month(last_month)

    # Last month: opened three days before its certifications (the test cannot wait for days),
    # two certify (self, helper), one is exempt, the fourth misses it and is suspended at the close.
    opened = await client.post("/api/periods", json={"month": last_month}, headers=world.staff.headers)
    assert opened.status_code == 201, opened.text
    last_id = opened.json()["id"]
    await Period.filter(id=last_id).update(opened_at=datetime.now(UTC) - timedelta(days=3))
    last = await Period.get(id=last_id)
    await certify(people[0], last, Method.SELF)
    await certify(people[1], last, Method.HELPER)
    exempt = await client.post(f"/api/periods/{last_id}/residents/{people[2]}/exempt", json={"reason": "住院治疗中"},
                               headers=world.admin.headers)
    assert exempt.status_code == 200, exempt.text
    closed = await client.post(f"/api/periods/{last_id}/close", headers=world.staff.headers)
    assert closed.json()["suspended"] == 1

    # This month: a staff-assisted certification, and a late one by a two-person home visit.
    current = await periods.current_period(community_id=world.community_id)
    await certify(people[0], current, Method.STAFF)
    visit = await client.post(f"/api/residents/{people[3]}/home-visits", files={"photo": ("p.jpg", a_photo())},
                              headers=world.staff.headers)
    assert visit.status_code == 201, visit.text
    other = await second_staff(client, world)
    attested = await client.post(f"/api/home-visits/{visit.json()['id']}/attest", headers=other.headers)
    assert attested.status_code == 200, attested.text
    await certify(lone, await periods.current_period(community_id=neighbour.community_id), Method.SELF)

    body = await trends_of(client, world.staff, months=3)
    assert [item["month"] for item in body["items"]] == [before_that, last_month, this_month]
    assert [c["id"] for c in body["communities"]] == [world.community_id]
    months = by_month(body)
    assert months[before_that] | {"counts": None} == {
        "month": before_that, "periods": 0, "total": 0, "counts": None, "certified": 0, "rate": None,
        "methods": NO_METHODS, "late": 0, "median_days": None,
    }
    past = months[last_month]
    assert past["periods"] == 1 and past["total"] == 4 and past["certified"] == 2
    assert past["counts"] == {"pending": 0, "certified": 2, "in_review": 0, "overdue": 0, "suspended": 1, "exempt": 1}
    assert past["rate"] == round(2 / 3, 4)  # the exempt resident does not count against the rate
    assert past["methods"] == NO_METHODS | {"self": 1, "helper": 1}
    assert past["median_days"] == 3.0 and past["late"] == 0
    now = months[this_month]
    assert now["total"] == 4 and now["certified"] == 2 and now["counts"]["pending"] == 2 and now["rate"] == 0.5
    assert now["methods"] == NO_METHODS | {"staff": 1, "home_visit": 1}
    assert now["late"] == 1 and now["median_days"] == 0.0
    # aggregate counts only: no resident appears in the answer
    assert "趋势" not in str(body["items"])

    # A district admin and a district auditor see both communities summed, or one when asked.
    district_admin = await create_staff_login(client, role=Role.DISTRICT_ADMIN, district=district)
    auditor = await create_staff_login(client, role=Role.AUDITOR, district=district)
    for reader in (district_admin, auditor):
        summed = await trends_of(client, reader, months=2)
        assert sorted(c["id"] for c in summed["communities"]) == sorted([world.community_id, neighbour.community_id])
        both = by_month(summed)[this_month]
        assert both["periods"] == 2 and both["total"] == 5 and both["certified"] == 3 and both["rate"] == 0.6
        assert both["methods"] == NO_METHODS | {"self": 1, "staff": 1, "home_visit": 1}
        one = by_month(await trends_of(client, reader, months=2, community_id=neighbour.community_id))[this_month]
        assert one["total"] == 1 and one["rate"] == 1.0 and one["methods"] == NO_METHODS | {"self": 1}

    # A department officer reads every community (as with exports), narrowed on request.
    department = await residents_service.ensure_department(code="civil_affairs", name="民政局")
    officer = await create_staff_login(client, role=Role.DEPARTMENT_OFFICER, department_id=department.id)
    wide = await trends_of(client, officer, months=1)
    assert {world.community_id, neighbour.community_id} <= {c["id"] for c in wide["communities"]}
    assert wide["items"][0]["total"] >= 5
    narrowed = await trends_of(client, officer, months=3, community_id=world.community_id)
    assert narrowed["items"] == body["items"]
    no_department = await create_staff_login(client, role=Role.DEPARTMENT_OFFICER)
    empty = await trends_of(client, no_department, months=1)
    assert empty["communities"] == [] and empty["items"][0]["total"] == 0

    # Another community's staff cannot name this one; bad month counts are refused.
    assert_error(await client.get("/api/trends", params={"community_id": world.community_id},
                                  headers=neighbour.staff.headers), 404, "community.not_found")
    assert_error(await client.get("/api/trends", params={"months": 0}, headers=world.staff.headers), 422)
    assert_error(await client.get("/api/trends", params={"months": 37}, headers=world.staff.headers), 422)
    assert_error(await client.get("/api/trends"), 401)
