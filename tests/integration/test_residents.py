"""Staff manage their own community's residents; the roster imports all-or-nothing; no plaintext IDs at rest."""

from __future__ import annotations

import os
import random
import re
import subprocess
from datetime import date

import pytest

from backend.residents.demo import demo_roster
from backend.residents.national_id import synthetic_national_id
from backend.residents.roster import write_roster_csv, write_roster_xlsx
from tests.integration.test_errors_and_ops import assert_error
from tests.support.ids import elder_id
from tests.support.names import numbered_name

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def an_elder_id(seed: int, *, age: int = 86) -> str:
    return elder_id(seed, age=age)


async def create(client, world, *, seed: int, name: str = "王桂英", phone: str | None = "13800138000", age: int = 86):
    response = await client.post(
        "/api/residents",
        json={"name": name, "national_id": an_elder_id(seed, age=age), "phone": phone, "address": "南桥镇解放路 12弄 3号"},
        headers=world.staff.headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def upload(client, world, data: bytes, *, mode: str, filename: str = "roster.xlsx", content_type: str = XLSX):
    return await client.post(
        "/api/residents/import", params={"mode": mode}, files={"file": (filename, data, content_type)},
        headers=world.staff.headers,
    )


async def test_create_read_update_search(client, make_world):
    world = await make_world()
    created = await create(client, world, seed=1)
    assert created["national_id"] == an_elder_id(1)
    assert created["programme_tier"] == "80-89"
    assert created["age"] == 86 or created["age"] == 85
    rid = created["id"]

    detail = (await client.get(f"/api/residents/{rid}", headers=world.staff.headers)).json()
    assert detail["phone"] == "13800138000"

    patched = await client.patch(f"/api/residents/{rid}", json={"phone": "13900139000", "status": "moved"},
                                 headers=world.staff.headers)
    assert patched.status_code == 200, patched.text
    assert patched.json()["phone"] == "13900139000" and patched.json()["status"] == "moved"

    await create(client, world, seed=2, name="李德明", phone=None, age=93)
    by_name = (await client.get("/api/residents", params={"q": "德明"}, headers=world.staff.headers)).json()
    assert [r["name"] for r in by_name["items"]] == ["李德明"]
    assert by_name["items"][0]["programme_tier"] == "90-99"
    suffix = an_elder_id(2, age=93)[-4:]
    by_suffix = (await client.get("/api/residents", params={"id_suffix": suffix}, headers=world.staff.headers)).json()
    assert [r["name"] for r in by_suffix["items"]] == ["李德明"]
    by_status = (await client.get("/api/residents", params={"status": "moved"}, headers=world.staff.headers)).json()
    assert [r["id"] for r in by_status["items"]] == [rid]
    assert by_status["items"][0]["phone_masked"] == "139****9000"

    assert_error(await client.post("/api/residents", json={
        "name": "重复", "national_id": an_elder_id(1), "address": "x"}, headers=world.staff.headers), 409,
        "resident.duplicate")
    young = synthetic_national_id(random.Random(3), birth_date=date(1990, 1, 1), sex="M")
    assert_error(await client.post("/api/residents", json={"name": "年轻人", "national_id": young, "address": "x"},
                                   headers=world.staff.headers), 422, "resident.too_young")


async def test_one_search_box_finds_by_whole_id_phone_or_id_ending(client, make_world):
    from backend.audit.models import AuditEvent

    world = await make_world()
    first = await create(client, world, seed=11, name="陈秀兰", phone="13700137011")
    await create(client, world, seed=12, name="赵永福", phone="13700137012")

    def names(response) -> list[str]:
        assert response.status_code == 200, response.text
        return [r["name"] for r in response.json()["items"]]

    async def search(q: str):
        return await client.get("/api/residents", params={"q": q}, headers=world.staff.headers)

    assert names(await search(an_elder_id(11))) == ["陈秀兰"]  # the whole ID number, matched by keyed hash
    assert names(await search("137 0013 7012")) == ["赵永福"]  # a mobile number as people type it
    assert names(await search("+8613700137011")) == ["陈秀兰"]
    assert names(await search(an_elder_id(11)[-4:])) == ["陈秀兰"]  # an ID ending
    assert names(await search("13700137999")) == []  # nobody has that phone
    assert names(await search("秀兰")) == ["陈秀兰"]  # names still match in part
    # the audit trail keeps the search, but never a whole ID or phone number
    logged = await AuditEvent.filter(action="resident.list", actor_id=str(world.staff.user_id)).order_by("id") \
        .values_list("details", flat=True)
    text = " ".join(str(d) for d in logged)
    assert an_elder_id(11) not in text and "13700137012" not in text and "13700137011" not in text
    assert first["national_id"][:4] + "*" * 10 + first["national_id"][-4:] in text


async def test_paging(client, make_world):
    world = await make_world()
    for seed in range(30, 35):
        await create(client, world, seed=seed, name=numbered_name("张", seed))
    page1 = (await client.get("/api/residents", params={"size": 2, "page": 1}, headers=world.staff.headers)).json()
    page3 = (await client.get("/api/residents", params={"size": 2, "page": 3}, headers=world.staff.headers)).json()
    assert page1["total"] == 5 and len(page1["items"]) == 2 and len(page3["items"]) == 1


def resident_routes(app) -> list[tuple[str, str]]:
    """Every route that names a resident: (method, path template)."""
    found = []
    for route in app.router.routes:
        if "<rid" in route.path or "rid" in {p.name for p in route.params.values()}:
            for method in sorted(route.methods - {"OPTIONS", "HEAD"}):
                found.append((method, route.path))
    return found


async def test_other_community_gets_404_on_every_resident_route(client, make_world, server):
    ours, theirs = await make_world(), await make_world()
    resident = await create(client, theirs, seed=7)
    routes = resident_routes(server.app)
    assert len(routes) >= 6, routes
    bodies = {"PATCH": {"name": "改名"}, "POST": {"kind": "biometric", "version": "v1", "method": "paper"}}
    for method, template in routes:
        path = "/" + re.sub(r"<rid(:int)?>", str(resident["id"]), template).lstrip("/")
        path = re.sub(r"<cid(:int)?>", "1", path)
        admin = await client.request(method, path, json=bodies.get(method), headers=ours.admin.headers)
        assert admin.status_code == 404, (method, path, admin.text)
        staff = await client.request(method, path, json=bodies.get(method), headers=ours.staff.headers)
        # staff lacking the role for a route are refused by role before any lookup (reveals nothing)
        assert staff.status_code == 404 or staff.json()["error"]["code"] == "auth.role_forbidden", staff.text
    # and nothing changed for the owner
    detail = (await client.get(f"/api/residents/{resident['id']}", headers=theirs.staff.headers)).json()
    assert detail["name"] == "王桂英"
    listing = (await client.get("/api/residents", headers=ours.staff.headers)).json()
    assert listing["total"] == 0


async def test_roster_with_bad_rows_imports_nothing_and_reports_each(client, make_world):
    world = await make_world()
    rows = demo_roster(300, as_of=date.today(), seed=11)
    bad = [dict(r) for r in rows]
    bad[4]["身份证号"] = bad[4]["身份证号"][:-1] + ("0" if bad[4]["身份证号"][-1] != "0" else "1")  # checksum
    bad[10]["联系电话"] = "12345"
    bad[20]["姓名"] = ""
    bad[30]["身份证号"] = bad[29]["身份证号"]  # duplicate inside the file
    for mode in ("dry_run", "commit"):
        response = await upload(client, world, write_roster_xlsx(bad), mode=mode)
        assert response.status_code == 422, response.text
        report = response.json()
        assert report["committed"] is False
        assert report["error"]["code"] == "roster.invalid_rows"
        lines = sorted({e["line"] for e in report["errors"]})
        assert lines == [6, 12, 22, 32], report["errors"]
        assert all(e["message"] for e in report["errors"])
    listing = (await client.get("/api/residents", headers=world.staff.headers)).json()
    assert listing["total"] == 0


async def test_good_roster_imports_300_and_reimport_updates_without_duplicates(client, make_world):
    world = await make_world()
    rows = demo_roster(300, as_of=date.today(), seed=12)
    dry = await upload(client, world, write_roster_xlsx(rows), mode="dry_run")
    assert dry.status_code == 200, dry.text
    assert dry.json()["created"] == 300 and dry.json()["committed"] is False
    assert (await client.get("/api/residents", headers=world.staff.headers)).json()["total"] == 0

    first = await upload(client, world, write_roster_xlsx(rows), mode="commit")
    assert first.json()["created"] == 300 and first.json()["committed"] is True
    rows[0]["联系电话"] = "13611112222"
    again = await upload(client, world, write_roster_csv(rows), mode="commit", filename="roster.csv",
                         content_type="text/csv")
    assert again.status_code == 200, again.text
    assert again.json()["created"] == 0 and again.json()["updated"] == 1 and again.json()["unchanged"] == 299
    assert (await client.get("/api/residents", headers=world.staff.headers)).json()["total"] == 300


async def test_not_a_roster_file_is_a_clear_error(client, make_world):
    world = await make_world()
    response = await upload(client, world, b"%PDF-1.4 not a roster", mode="dry_run", filename="x.xlsx")
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "file"


@pytest.mark.parametrize("table", ["resident", "app_user", "outbound_message"])
async def test_no_plaintext_identity_numbers_or_phones_at_rest(client, make_world, server, backend_kind, table):
    """Read the raw rows the way an attacker with the database would, and look for the numbers."""
    from tortoise.connection import get_connection

    world = await make_world()
    seed = 990 + ["resident", "app_user", "outbound_message"].index(table)
    national_id = an_elder_id(seed)
    phone = f"135123498{seed - 990:02d}"
    resident = await create(client, world, seed=seed, phone=phone)
    assert (await client.post("/api/auth/app/otp", json={"phone": phone})).status_code == 200
    from backend.notify.models import OutboundMessage

    index = server.app.ctx.cipher.blind_index(phone, purpose="phone")
    sent = await OutboundMessage.filter(recipient_index=index, template="login_code").order_by("-id").first()
    code = re.search(r"\d{6}", sent.body).group(0)
    login = await client.post("/api/auth/app/login", json={"phone": phone, "code": code})
    assert login.status_code == 200, login.text  # the app user row now exists, linked to the resident
    conn = get_connection("default")
    if backend_kind == "postgres":
        _, rows = await conn.execute_query(f'SELECT t::text AS row FROM "{table}" t')
        dump = "\n".join(r["row"] for r in rows)
    else:
        _, rows = await conn.execute_query(f'SELECT * FROM "{table}"')
        dump = "\n".join(repr(tuple(r)) for r in rows)
    assert dump, "the table should not be empty"
    for secret in (national_id, phone, national_id[-8:], phone[-8:]):
        assert secret not in dump
    if backend_kind == "sqlite":
        # Read the raw files in another process: closing any descriptor of the database file in this
        # process would drop SQLite's POSIX locks for the whole test session (and corrupt the file later).
        path = server.settings.effective_database_url.removeprefix("sqlite://")
        raw = subprocess.run(["cat", path, *([path + "-wal"] if os.path.exists(path + "-wal") else [])],
                             capture_output=True, check=True).stdout
        assert national_id.encode() not in raw and phone.encode() not in raw
    assert resident["national_id"] == national_id
