"""Names and free text are checked by one validator on every path in (issue 13, items 7 and 8): a formula
start, a control character, a bidi override or a zero-width character is refused with a 422 and a Chinese
message, the same from the API as from the roster import."""

from __future__ import annotations

import csv
import io
import unicodedata

import numpy as np
import pytest
from PIL import Image

from tests.integration.test_errors_and_ops import assert_error
from tests.integration.test_residents import an_elder_id, create, upload

BAD_NAMES = {
    '=HYPERLINK("http://e.cn","点我")': "text.formula",
    "+cmd|' /C calc'!A0": "text.formula",
    "@SUM(A1)": "text.formula",
    "王\x00桂英": "text.invisible_character",  # NUL
    "王\x1b桂英": "text.invisible_character",  # ESC
    "王桂英\u202e": "text.invisible_character",  # right-to-left override
    "王\u2066桂英\u2069": "text.invisible_character",  # isolate
    "王\u200b桂英": "text.invisible_character",  # zero-width space
    "王\u200d桂英": "text.invisible_character",  # zero-width joiner
    "\ufeff王桂英": "text.invisible_character",  # BOM
}


def hostile_roster(name: str, national_id: str) -> bytes:
    """A CSV as an attacker writes it: no neutralising writer between the value and the cell."""
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerows([["姓名", "身份证号", "户籍地址"], [name, national_id, "江海路1号"]])
    return buffer.getvalue().encode("utf-8")


def a_photo() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((np.random.default_rng(2).random((60, 80, 3)) * 255).astype("uint8")).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize(("name", "code"), list(BAD_NAMES.items()), ids=[repr(n)[:24] for n in BAD_NAMES])
async def test_a_bad_name_is_refused_alike_by_the_api_and_the_roster(client, make_world, name, code):
    world = await make_world()
    seed = 1400 + list(BAD_NAMES).index(name)
    body = {"name": name, "national_id": an_elder_id(seed), "address": "南桥镇解放路 12弄 3号"}
    error = assert_error(await client.post("/api/residents", json=body, headers=world.staff.headers), 422, code)
    assert error["field"] == "name" and any("\u4e00" <= ch <= "\u9fff" for ch in error["message"])
    assert (await client.get("/api/residents", headers=world.staff.headers)).json()["total"] == 0

    kept = await create(client, world, seed=seed + 50)
    patched = await client.patch(f"/api/residents/{kept['id']}", json={"name": name}, headers=world.staff.headers)
    assert_error(patched, 422, code)
    assert (await client.get(f"/api/residents/{kept['id']}", headers=world.staff.headers)).json()["name"] == "王桂英"

    report = await upload(client, world, hostile_roster(name, an_elder_id(seed + 100)), mode="dry_run",
                          filename="r.csv", content_type="text/csv")
    assert report.status_code == 422, report.text
    if any(unicodedata.category(ch) == "Cc" for ch in name):  # a CSV with control characters is no roster at all
        assert report.json()["error"]["code"] == "roster.bad_type"
        return
    rows = report.json()["errors"]
    assert [(r["field"], r["code"]) for r in rows] == [("name", "roster.name")]
    assert rows[0]["message"] == error["message"]  # one validator: the same words on both paths


async def test_addresses_and_free_text_are_refused_the_same_way(client, make_world):
    world = await make_world()
    base = {"name": "李秀兰", "national_id": an_elder_id(1460)}
    for field, value, code in (("address", "=1+1", "text.formula"), ("address", "解放路\u202e号", "text.invisible_character"),
                               ("living_address", "@SUM(A1)", "text.formula"),
                               ("living_address", "敬老院\x07", "text.invisible_character")):
        body = {"address": "南桥镇解放路 1号", **base, field: value}
        error = assert_error(await client.post("/api/residents", json=body, headers=world.staff.headers), 422, code)
        assert error["field"] == field
    resident = await create(client, world, seed=1461)
    period = (await client.get("/api/periods/current", headers=world.staff.headers)).json()
    exempt = f"/api/periods/{period['id']}/residents/{resident['id']}/exempt"
    assert_error(await client.post(exempt, json={"reason": "住院\u200b治疗"}, headers=world.admin.headers), 422,
                 "text.invisible_character")
    assert_error(await client.post(exempt, json={"reason": "-住院"}, headers=world.admin.headers), 422, "text.formula")
    visit = await client.post(f"/api/residents/{resident['id']}/home-visits", files={"photo": ("p.jpg", a_photo())},
                              data={"note": "卧床\x00神志清楚"}, headers=world.staff.headers)
    assert_error(visit, 422, "text.invisible_character")
    device = await client.post("/api/devices", json={"name": "=HYPERLINK(1)", "public_key": "A" * 44},
                               headers=world.admin.headers)
    assert_error(device, 422, "text.formula")
    # ordinary text still goes through, line breaks of a note included
    ok = await client.post(f"/api/residents/{resident['id']}/home-visits", files={"photo": ("p.jpg", a_photo())},
                           data={"note": "卧床，神志清楚\n家属在场"}, headers=world.staff.headers)
    assert ok.status_code == 201, ok.text
