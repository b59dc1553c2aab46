"""Shared steps of the work-order tests: a community with teams and handlers, residents signed in to
the app, photos with GPS in their EXIF, and moves over the real API."""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass
from datetime import datetime

from PIL import ExifTags, Image

from tests.integration.conftest import Staff, World, create_staff_login
from tests.integration.test_qr import app_login

GPS_LAT = (31.0, 5.0, 30.12)  # 31°05'30.12" N: the 南桥 area
GPS_LONG = (121.0, 28.0, 1.05)


def a_phone() -> str:
    return "136" + f"{secrets.randbelow(10**8):08d}"


def photo_with_gps(*, size: tuple[int, int] = (320, 200), orientation: int = 1) -> bytes:
    """A real JPEG carrying camera make, owner name and a GPS position in its EXIF."""
    image = Image.new("RGB", size, (200, 80, 40))
    for x in range(0, size[0], 20):  # some structure, so the picture is not one flat colour
        for y in range(size[1]):
            image.putpixel((x, y), (20, 20, 220))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "ZhilianTestCam"
    exif[ExifTags.Base.Artist] = "王桂英"
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: GPS_LAT,
        ExifTags.GPS.GPSLongitudeRef: "E", ExifTags.GPS.GPSLongitude: GPS_LONG,
    }
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


@dataclass
class AppUserHandle:
    phone: str
    token: str
    id: int
    resident_id: int | None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def resident_user(client, server, phone: str | None = None) -> AppUserHandle:
    user = await app_login(client, server, phone or a_phone())
    return AppUserHandle(user.phone, user.token, user.user_id, user.resident_id)


@dataclass
class Desk:
    """A community's work-order desk: dispatcher (staff), approver (admin), handlers per team."""

    world: World
    teams: dict[str, int]
    categories: dict[str, dict]
    property_handler: Staff
    grid_handler: Staff


async def desk(client, world: World) -> Desk:
    from backend.auth.models import Role

    teams = (await client.get("/api/workorders/teams", headers=world.staff.headers)).json()["items"]
    team_ids = {t["name"]: t["id"] for t in teams}
    cats = (await client.get("/api/workorders/categories", headers=world.staff.headers)).json()["items"]
    handlers = []
    for team in ("物业", "网格员"):
        handler = await create_staff_login(client, role=Role.COMMUNITY_STAFF, community_id=world.community_id)
        added = await client.post(f"/api/workorders/teams/{team_ids[team]}/members", json={"staff_id": handler.user_id},
                                  headers=world.admin.headers)
        assert added.status_code == 201, added.text
        handlers.append(handler)
    return Desk(world, team_ids, {c["code"]: c for c in cats}, handlers[0], handlers[1])


async def make_point(client, world: World, *, name: str = "3号楼路灯", lat: float | None = 30.9203,
                     long: float | None = 121.4712) -> dict:
    response = await client.post("/api/workorders/points", json={
        "name": name, "kind": "lamp_post", "address": "南桥镇解放路 12弄 3号楼前", "grid": "第三网格",
        "lat": lat, "long": long}, headers=world.staff.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def roster_resident(client, world: World, *, name: str = "李秀兰", phone: str | None = None) -> dict:
    """A resident on the world's roster (the app user with this phone signs in as them)."""
    from tests.support.ids import fresh_elder_id

    response = await client.post("/api/residents", json={
        "name": name, "national_id": fresh_elder_id(), "phone": phone, "address": "南桥镇解放路 12弄 3号 201室"},
        headers=world.staff.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def community_resident(client, server, world: World, name: str = "李秀兰") -> AppUserHandle:
    """An app user who lives in the world's community (on its roster, signed in with their phone)."""
    phone = a_phone()
    await roster_resident(client, world, name=name, phone=phone)
    return await resident_user(client, server, phone)


async def move(client, staff: Staff, wid: int, action: str, note: str = "处理说明", **extra) -> dict:
    response = await client.post(f"/api/workorders/{wid}/moves", json={"action": action, "note": note, **extra},
                                 headers=staff.headers)
    assert response.status_code == 200, f"{action}: {response.text}"
    return response.json()


async def staff_detail(client, staff: Staff, wid: int) -> dict:
    response = await client.get(f"/api/workorders/{wid}", headers=staff.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def upload(client, headers, wid: int, data: bytes, *, kind: str = "before", app: bool = False) -> dict:
    base = "/api/app/workorders" if app else "/api/workorders"
    response = await client.post(f"{base}/{wid}/photos", files={"photo": ("p.jpg", data, "image/jpeg")},
                                 data={"kind": kind}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def iso(at: datetime) -> str:
    return at.isoformat()
