"""Passive evidence needs two people: whoever registered a device never confirms its sightings (issue 13, item 5)."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from backend.auth.models import Role
from backend.certification.models import Device
from tests.integration.conftest import create_staff_login
from tests.integration.test_errors_and_ops import assert_error
from tests.integration.test_residents import create


async def a_device(client, headers) -> tuple[int, Ed25519PrivateKey]:
    key = Ed25519PrivateKey.generate()
    public = base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    made = await client.post("/api/devices", json={"name": "1号楼门禁", "public_key": public}, headers=headers)
    assert made.status_code == 201, made.text
    return made.json()["id"], key


async def sightings(client, device_id: int, key: Ed25519PrivateKey, resident: dict, count: int) -> None:
    now = datetime.now(UTC)
    for i in range(count):
        body = json.dumps({"resident_public_id": resident["public_id"], "score": 0.9,
                           "seen_at": (now - timedelta(minutes=i)).isoformat(), "nonce": secrets.token_hex(8)}).encode()
        signature = base64.b64encode(key.sign(body)).decode()
        posted = await client.post("/api/passive/sightings", content=body,
                                   headers={"X-Device-Id": str(device_id), "X-Signature": signature})
        assert posted.status_code == 201, posted.text


async def test_an_admin_cannot_certify_alone_through_a_device_they_registered(client, make_world, server):
    world = await make_world()
    needed = server.settings.passive_min_sightings
    resident = await create(client, world, seed=1321)
    device_id, key = await a_device(client, world.admin.headers)
    await sightings(client, device_id, key, resident, needed)

    refused = assert_error(await client.post(f"/api/residents/{resident['id']}/passive-confirm",
                                             headers=world.admin.headers), 403, "passive.own_device")
    assert "另一位工作人员" in refused["message"]
    assert (await Device.get(id=device_id)).registered_by == world.admin.user_id
    current = (await client.get("/api/periods/current", headers=world.staff.headers)).json()
    assert current["counts"]["certified"] == 0
    confirmed = await client.post(f"/api/residents/{resident['id']}/passive-confirm", headers=world.staff.headers)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["certification"]["assisted_by"] == f"staff:{world.staff.user_id}"


async def test_sightings_of_ones_own_devices_never_count_toward_ones_own_confirmation(client, make_world, server):
    world = await make_world()
    needed = server.settings.passive_min_sightings
    other_admin = await create_staff_login(client, role=Role.COMMUNITY_ADMIN, community_id=world.community_id)
    resident = await create(client, world, seed=1322)
    mine, my_key = await a_device(client, world.admin.headers)
    theirs, their_key = await a_device(client, other_admin.headers)
    await sightings(client, mine, my_key, resident, needed - 1)
    await sightings(client, theirs, their_key, resident, 1)
    # enough sightings in all, but not without the ones of the confirmer's own device
    assert_error(await client.post(f"/api/residents/{resident['id']}/passive-confirm", headers=world.admin.headers),
                 403, "passive.own_device")
    assert_error(await client.post(f"/api/residents/{resident['id']}/passive-confirm", headers=other_admin.headers),
                 403, "passive.own_device")
    confirmed = await client.post(f"/api/residents/{resident['id']}/passive-confirm", headers=world.staff.headers)
    assert confirmed.status_code == 200, confirmed.text
