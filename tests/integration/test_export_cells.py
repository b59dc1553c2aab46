"""Whatever is stored, an export is made and nothing in it runs (issue 13, items 7 and 8): legacy rows with a
control character or a formula-like name (written straight to the database, as older versions allowed)
still export, the characters a workbook cannot hold are dropped and formulas are neutralised."""

from __future__ import annotations

import io

from openpyxl import load_workbook

from backend.residents import service as residents
from backend.residents.models import Resident
from tests.integration.test_residents import create


async def test_legacy_rows_with_control_characters_or_formulas_still_export_as_plain_text(
    client, make_world, backend_kind,
):
    world = await make_world()
    await residents.ensure_department(code="civil_affairs", name="民政局")
    # PostgreSQL cannot store NUL at all; the other C0 controls break a workbook just the same
    control = "\x00\x1b" if backend_kind == "sqlite" else "\x1b\x08"
    odd = await create(client, world, seed=1471, name="王桂英")
    formula = await create(client, world, seed=1472, name="李秀兰")
    plain = await create(client, world, seed=1473, name="赵秀兰")
    await Resident.filter(id=odd["id"]).update(name=f"王{control}桂英")
    await Resident.filter(id=formula["id"]).update(name='=HYPERLINK("http://e.cn","点我")')
    period = (await client.get("/api/periods/current", headers=world.staff.headers)).json()

    made = await client.post("/api/exports", json={"period_id": period["id"], "department": "civil_affairs"},
                             headers=world.staff.headers)
    assert made.status_code == 201, made.text
    xlsx = await client.get(f"/api/exports/{made.json()['id']}/files/xlsx", headers=world.staff.headers)
    pdf = await client.get(f"/api/exports/{made.json()['id']}/files/pdf", headers=world.staff.headers)
    assert xlsx.status_code == 200 and pdf.status_code == 200 and pdf.content.startswith(b"%PDF")

    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    cells = {row[0].value: row[1] for row in sheet.iter_rows(min_row=3) if row[0].value is not None}
    names = sorted(cell.value for cell in cells.values())
    assert names == sorted(["王桂英", "'=HYPERLINK(\"http://e.cn\",\"点我\")", "赵秀兰"]), names
    assert all(cell.data_type == "s" for cell in cells.values())  # text, never a formula
    assert not any(str(cell.value).startswith("=") for row in sheet.iter_rows() for cell in row if cell.value)
    assert plain["id"] and odd["id"] != formula["id"]
