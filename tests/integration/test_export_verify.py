"""POST /api/exports/verify: a department's downloaded bundle and signed manifest checked online, on a
real chain (sequencer + 3 witnesses as processes), with the server's pinned trust roots and issuer
DID documents in place of the copies inside the bundle. Tampering is a verdict (200, the failing
checks named); files that are not a bundle or a manifest are 4xx with a Chinese message."""

from __future__ import annotations

import hashlib
import json

from backend.audit.models import AuditEvent
from backend.certification import periods
from backend.certification.models import Method
from tests.integration.test_credentials import certified_resident
from tests.integration.test_exports import anchor_everything, officer

URL = "/api/exports/verify"


def dumps(document: dict) -> bytes:
    return json.dumps(document, ensure_ascii=False, indent=1, sort_keys=True).encode()


async def verify(client, headers: dict, bundle: bytes | None, manifest: bytes | None = None):
    files = {}
    if bundle is not None:
        files["bundle"] = ("bundle.json", bundle, "application/json")
    if manifest is not None:
        files["manifest"] = ("manifest.json", manifest, "application/json")
    return await client.post(URL, files=files or {"other": ("x.txt", b"x", "text/plain")}, headers=headers)


async def test_a_genuine_export_verifies_and_every_tampering_is_named(client, server, make_world, chain):
    world = await make_world()
    _, cred_a = await certified_resident(client, server, world, seed=851)
    _, cred_b = await certified_resident(client, server, world, seed=852, method=Method.STAFF)
    await anchor_everything(server)
    period = await periods.current_period(community_id=world.community_id)
    _, civil_officer = await officer(client, "civil_affairs", "民政局")
    made = await client.post("/api/exports", json={"period_id": period.id, "department": "civil_affairs"},
                             headers=world.staff.headers)
    assert made.status_code == 201, made.text
    export = made.json()
    base = f"/api/exports/{export['id']}/files"
    bundle = (await client.get(f"{base}/json", headers=civil_officer.headers)).content
    early_manifest = (await client.get(f"{base}/manifest", headers=civil_officer.headers)).content
    assert json.loads(early_manifest)["inclusion"] is None  # downloaded before the export was anchored
    await anchor_everything(server)
    manifest = (await client.get(f"{base}/manifest", headers=civil_officer.headers)).content
    assert json.loads(manifest)["inclusion"] is not None

    # the genuine pair: every credential, the manifest's signature, this very file, its anchor
    response = await verify(client, civil_officer.headers, bundle, manifest)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["verified"] is True, report
    assert report["trust"] == "server_pinned" and report["roots"]["chain"] == "server"
    assert {i["source"] for i in report["roots"]["issuers"]} == {"server"}
    assert report["credentials"] == {"total": 2, "verified": 2, "failed_count": 0, "failed": []}
    assert {c["name"]: c["ok"] for c in report["manifest"]["checks"]} == {
        "format": True, "signature": True, "bundle_hash": True, "checkpoint": True, "witness_quorum": True,
        "inclusion": True}
    assert report["manifest"]["export_id"] == export["id"] and report["manifest"]["matches_bundle"] is True
    assert report["bundle_sha256"] == hashlib.sha256(bundle).hexdigest() == export["manifest"]["files"]["json"]
    assert report["export"]["id"] == export["id"] and "核验通过" in report["message"]
    assert "本系统固定的存证链信任根" in report["message"]
    audited = await AuditEvent.filter(action="export.verify", target_id=export["id"])
    assert len(audited) == 1 and audited[0].actor_id == str(civil_officer.user_id)
    assert audited[0].community_id == world.community_id
    assert audited[0].details["bundle_sha256"] == report["bundle_sha256"] and audited[0].details["verified"] is True

    assert report["changed_since_export"] == []

    # revoked after the export: the package is still authentic, and the officer is told what changed since
    revoked = await client.post(f"/api/credentials/{cred_b.id}/status", headers=world.staff.headers,
                                json={"purpose": "revocation", "value": True, "reason": "老人已去世"})
    assert revoked.status_code == 200, revoked.text
    later = (await verify(client, civil_officer.headers, bundle, manifest)).json()
    assert later["verified"] is True
    assert later["changed_since_export"] == [
        {"id": f"urn:uuid:{cred_b.id}", "revoked": True, "suspended": False, "reason": "老人已去世"}]
    assert "导出之后已被撤销或暂停" in later["message"]

    # a manifest downloaded before anchoring: the server supplies the proof it now holds
    early = (await verify(client, civil_officer.headers, bundle, early_manifest)).json()
    assert early["verified"] is True and early["proofs_from_server"] == 1, early

    # without a manifest the bundle's own signature attests its period and completeness
    alone = (await verify(client, civil_officer.headers, bundle)).json()
    assert alone["verified"] is True and alone["manifest"] is None and "数据包签名核对无误" in alone["message"]
    assert alone["bundle"]["verified"] is True and alone["bundle"]["format"] == "zhilian-export-bundle/v2"

    # one credential edited by hand: it is named with its failing check, and the file no longer matches
    document = json.loads(bundle)
    edited_id = document["credentials"][0]["credential"]["id"]
    assert edited_id in {cred_a.document["id"], cred_b.document["id"]}
    document["credentials"][0]["credential"]["credentialSubject"]["method"] = "self"
    tampered = (await verify(client, civil_officer.headers, dumps(document), manifest))
    assert tampered.status_code == 200, tampered.text
    result = tampered.json()
    assert result["verified"] is False and result["credentials"]["verified"] == 1
    [failed] = result["credentials"]["failed"]
    assert failed["id"] == edited_id and "signature" in failed["failed_checks"], failed
    assert "数字签名" in failed["message"]
    assert result["manifest"]["failed"] == ["bundle_hash"] and "核验未通过" in result["message"]
    assert result["bundle"]["failed"] == ["bundle_signature"]
    assert "1 份凭证未通过" in result["message"]

    # the bundle's own copies of the roots are not what is trusted: garbling them changes nothing
    copies = json.loads(bundle)
    for did in copies["issuers"]:
        copies["issuers"][did] = {"id": did, "assertionMethod": []}
    copies["trust"] = {"log_vkey": "nobody+00000000+AAAA", "witnesses": [], "quorum": 0}
    pinned = (await verify(client, civil_officer.headers, dumps(copies))).json()
    assert pinned["verified"] is True and pinned["trust"] == "server_pinned", pinned

    # a manifest of another export (the next one of the same period) does not name this bundle
    again = await client.post("/api/exports", json={"period_id": period.id, "department": "civil_affairs"},
                              headers=world.staff.headers)
    other = (await client.get(f"/api/exports/{again.json()['id']}/files/manifest", headers=civil_officer.headers))
    crossed = (await verify(client, civil_officer.headers, bundle, other.content)).json()
    assert crossed["verified"] is False and "bundle_hash" in crossed["manifest"]["failed"], crossed
    assert crossed["manifest"]["matches_bundle"] is False and "另一份导出" in crossed["message"]
    assert crossed["credentials"]["failed_count"] == 0

    # files that are not what they should be: 4xx with a message for the person who chose them
    wrong_way = await verify(client, civil_officer.headers, manifest, bundle)
    assert wrong_way.status_code == 422 and wrong_way.json()["error"]["code"] == "exports.verify_not_bundle"
    assert "清单" in wrong_way.json()["error"]["message"]
    not_manifest = await verify(client, civil_officer.headers, bundle, b'{"hello": 1}')
    assert not_manifest.status_code == 422 and not_manifest.json()["error"]["code"] == "exports.verify_not_manifest"


async def test_bad_files_are_refused_in_words_and_a_token_is_required(client, make_world):
    world = await make_world()
    headers = world.staff.headers
    assert (await client.post(URL, files={"bundle": ("b.json", b"{}", "application/json")})).status_code == 401
    missing = await verify(client, headers, None)
    assert missing.status_code == 400 and missing.json()["error"]["message"] == "请选择要核验的导出数据包（JSON 文件）"
    garbage = await verify(client, headers, b"\x89PNG not json")
    assert garbage.status_code == 422 and garbage.json()["error"]["code"] == "exports.verify_not_json"
    broken = await verify(client, headers, b'{"format": "zhilian-export-bundle/v1", ')
    assert broken.status_code == 422 and "不是有效的 JSON" in broken.json()["error"]["message"]
    credential = await verify(client, headers, b'{"credential": {"id": "x"}}')
    assert credential.status_code == 422 and credential.json()["error"]["code"] == "exports.verify_not_bundle"
    empty = await verify(client, headers, dumps({"format": "zhilian-export-bundle/v1", "credentials": []}))
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "exports.verify_nothing"
    # hostile shapes inside a bundle are verdicts, never a server error
    odd = dumps({"format": "zhilian-export-bundle/v1", "issuers": [], "status_lists": "x", "trust": 5,
                 "credentials": [7, {"credential": "x", "inclusion": "y", "leaf_hash": "ab" * 32},
                                 {"credential": {"issuer": "did:web:evil"}, "inclusion": [1]}]})
    answer = await verify(client, headers, odd, dumps({"manifest": {"format": "zhilian-export-manifest/v1",
                                                                    "issuer": 3}, "inclusion": "z"}))
    assert answer.status_code == 200, answer.text
    assert answer.json()["verified"] is False and answer.json()["credentials"]["failed_count"] == 3
