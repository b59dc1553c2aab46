"""Credentials anchored on a real chain (sequencer + 3 witnesses as processes), department exports
(xlsx, JSON bundle, PDF), officers confined to their department, and `scripts/verify` checking an
exported bundle in a subprocess with no database and no backend settings."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import io
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from backend.audit.models import AuditEvent
from backend.auth.models import Role
from backend.certification import periods
from backend.certification.models import Method
from backend.credentials.models import Credential
from backend.exports.models import Export
from backend.outbox import service as outbox
from backend.outbox.models import OutboxEvent
from backend.residents import service as residents
from chain.verify import Trust, verify_inclusion_bundle
from tests.conftest import REPO_ROOT
from tests.integration.conftest import create_staff_login
from tests.integration.test_credentials import (
    certified_resident,
    did_document_of,
    independent_verify,
    verify_remote,
)
from tests.integration.test_residents import create

ANCHOR_KINDS = ["credential.anchor", "credential.proof", "export.anchor", "export.proof", "audit.anchor", "audit.proof"]


async def anchor_everything(server, timeout: float = 60.0) -> None:
    """Run the outbox until no anchoring event is pending (back-off shortened: this is a test)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        await outbox.run_due(server.app.ctx.outbox_handlers, limit=1000)
        pending = await OutboxEvent.filter(processed_at=None, kind__in=ANCHOR_KINDS)
        if not pending:
            return
        assert asyncio.get_running_loop().time() < deadline, [(e.kind, e.last_error) for e in pending][:5]
        await OutboxEvent.filter(processed_at=None, kind__in=ANCHOR_KINDS).update(next_attempt_at=datetime.now(UTC))
        await asyncio.sleep(0.2)


def run_verify(bundle: Path, *extra: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """scripts/verify as an officer would run it: no DATABASE_URL, no ZHILIAN_* settings, another folder."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ZHILIAN", "DATABASE", "REDIS", "CHAIN", "ISSUER", "PYTHONPATH"))}
    return subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "verify"), str(bundle), *extra],
                          capture_output=True, text=True, timeout=60, cwd=cwd, env=env)


async def test_anchored_credential_verifies_with_chain_and_tampered_proofs_are_named(client, server, make_world, chain):
    world = await make_world()
    _, credential = await certified_resident(client, server, world, seed=801)
    await anchor_everything(server)
    credential = await Credential.get(id=credential.id)
    assert credential.inclusion is not None and credential.anchor_index is not None
    leaf = bytes.fromhex(credential.leaf_hash)
    assert hashlib.sha256(__import__("rfc8785").dumps(credential.document)).digest() == leaf
    verify_inclusion_bundle(credential.inclusion, leaf, Trust.from_json(chain.trust()))

    report = await verify_remote(client, credential.document)
    assert report["verified"] is True, report
    assert {c["name"]: c["ok"] for c in report["checks"]} == {
        "format": True, "issuer_key": True, "signature": True, "status": True,
        "checkpoint": True, "witness_quorum": True, "inclusion": True}

    inclusion = credential.inclusion
    bad_hash = copy.deepcopy(inclusion)
    if bad_hash["proof"]:
        bad_hash["proof"][0] = ("00" if bad_hash["proof"][0][:2] != "00" else "11") + bad_hash["proof"][0][2:]
    else:
        bad_hash["leaf_index"] = int(bad_hash["leaf_index"]) + 1
    assert (await verify_remote(client, credential.document, bad_hash))["failed"] == ["inclusion"]
    other_leaf = copy.deepcopy(inclusion)
    other_leaf["hash"] = "ab" * 32
    assert (await verify_remote(client, credential.document, other_leaf))["failed"] == ["inclusion"]
    bad_note = copy.deepcopy(inclusion)
    lines = bad_note["checkpoint"]["note"].split("\n")
    lines[1] = str(int(lines[1]) + 1)
    bad_note["checkpoint"]["note"] = "\n".join(lines)
    assert (await verify_remote(client, credential.document, bad_note))["failed"] == ["checkpoint"]
    one_signer = copy.deepcopy(inclusion)
    first = one_signer["checkpoint"]["signers"][0]
    position = [w["department"] for w in one_signer["checkpoint"]["witnesses"]].index(first)
    one_signer["checkpoint"]["signer_bitmap"] = f"{1 << position:02x}"
    report = await verify_remote(client, credential.document, one_signer)
    assert report["failed"] == ["witness_quorum"], report
    bad_cosig = copy.deepcopy(inclusion)
    sig = bad_cosig["checkpoint"]["aggregate_signature"]
    bad_cosig["checkpoint"]["aggregate_signature"] = sig[:-2] + ("00" if sig[-2:] != "00" else "01")
    assert (await verify_remote(client, credential.document, bad_cosig))["failed"] == ["witness_quorum"]


async def officer(client, code: str, name: str):
    department = await residents.ensure_department(code=code, name=name)
    return department, await create_staff_login(client, role=Role.DEPARTMENT_OFFICER, department_id=department.id)


async def test_department_export_verifies_offline_and_stays_in_its_department(
    client, server, make_world, chain, tmp_path: Path
):
    world = await make_world()
    created_a, cred_a = await certified_resident(client, server, world, seed=811)
    created_b, cred_b = await certified_resident(client, server, world, seed=812, method=Method.STAFF)
    pending = await create(client, world, seed=813, name="赵秀兰", phone=None)
    await anchor_everything(server)
    period = await periods.current_period(community_id=world.community_id)
    civil, civil_officer = await officer(client, "civil_affairs", "民政局")
    _, health_officer = await officer(client, "health", "卫健")

    assert (await client.post("/api/exports", json={"period_id": period.id, "department": "civil_affairs"},
                              headers=civil_officer.headers)).status_code == 403
    made = await client.post("/api/exports", json={"period_id": period.id, "department": "civil_affairs"},
                             headers=world.staff.headers)
    assert made.status_code == 201, made.text
    export = made.json()
    assert export["counts"]["total"] == 3 and export["counts"]["certified"] == 2
    assert export["counts"]["credentials"] == 2 and export["counts"]["anchored"] == 2
    other_world = await make_world()
    assert (await client.post("/api/exports", json={"period_id": period.id, "department": "civil_affairs"},
                              headers=other_world.staff.headers)).status_code == 404

    # the other department's officer sees nothing of it; the right one downloads (audited)
    base = f"/api/exports/{export['id']}"
    for path in (base, f"{base}/files/json", f"{base}/files/xlsx", f"{base}/files/pdf"):
        assert (await client.get(path, headers=health_officer.headers)).status_code == 404
    assert (await client.get("/api/exports", headers=health_officer.headers)).json()["items"] == []
    listed = (await client.get("/api/exports", params={"period_id": period.id}, headers=civil_officer.headers)).json()
    assert [e["id"] for e in listed["items"]] == [export["id"]]
    assert {k: listed["items"][0][k] for k in ("department", "period", "community")} == {
        "department": "civil_affairs", "period": period.month, "community": world.community_code}
    files = {}
    for kind in ("xlsx", "json", "pdf"):
        response = await client.get(f"{base}/files/{kind}", headers=civil_officer.headers)
        assert response.status_code == 200, response.text
        files[kind] = response.content
        assert hashlib.sha256(response.content).hexdigest() == export["manifest"]["files"][kind]
    audited = await AuditEvent.filter(action="export.download", target_id=export["id"])
    assert len(audited) == 3 and {e.actor_id for e in audited} == {str(civil_officer.user_id)}

    # xlsx: one row per resident with status, method, time, credential id
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(files["xlsx"])).active
    rows = [r for r in sheet.iter_rows(min_row=3, values_only=True) if r[0] is not None]
    by_name = {r[1]: r for r in rows}
    assert len(rows) == 3 and by_name["赵秀兰"][3] == "待认证" and by_name["赵秀兰"][6] in (None, "")
    assert {r[6] for r in rows if r[6]} == {str(cred_a.id), str(cred_b.id)}
    assert any(r[4] == "上门核验" for r in rows) and any(r[4] == "工作人员协助" for r in rows)
    assert created_a["national_id"] not in json.dumps([list(map(str, r)) for r in rows], ensure_ascii=False)
    # pdf: Chinese through the built-in CID font
    assert files["pdf"].startswith(b"%PDF") and b"STSong-Light" in files["pdf"]
    assert b"UniGB-UCS2-H" in files["pdf"] and b"/Subtype /Image" not in files["pdf"]

    # the bundle verifies offline, against trust roots the officer holds separately
    bundle = json.loads(files["json"])
    assert bundle["trust"]["quorum"] == 2 and len(bundle["trust"]["witnesses"]) == 3
    assert {c["credential"]["id"] for c in bundle["credentials"]} == {cred_a.document["id"], cred_b.document["id"]}
    assert all(c["inclusion"] is not None for c in bundle["credentials"])
    workdir = tmp_path / "officer"
    workdir.mkdir()
    (workdir / "bundle.json").write_bytes(files["json"])
    (workdir / "trust.json").write_text(json.dumps(chain.trust()))
    issuer = await did_document_of(client, cred_a.document)
    (workdir / "issuer.json").write_text(json.dumps(issuer))
    ok = run_verify(workdir / "bundle.json", "--trust", "trust.json", "--issuer", "issuer.json", cwd=workdir)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "3 verified, 0 failed" in ok.stdout and "note:" not in ok.stdout  # the bundle itself, then 2 credentials
    assert f"OK   bundle {export['id']}  (bundle_signature, bundle_period, bundle_complete)" in ok.stdout
    bare = run_verify(workdir / "bundle.json", "--json", cwd=workdir)
    assert bare.returncode == 0 and "taken from the bundle itself" in bare.stdout

    def tampered(name: str, change) -> Path:
        data = copy.deepcopy(bundle)
        change(data)
        path = workdir / f"{name}.json"
        path.write_text(json.dumps(data, ensure_ascii=False))
        return path

    def first_proof_hash(d):
        inc = d["credentials"][0]["inclusion"]
        if inc["proof"]:
            inc["proof"][0] = ("00" if inc["proof"][0][:2] != "00" else "11") + inc["proof"][0][2:]
        else:
            inc["leaf_index"] += 1

    cases = {
        "signature": lambda d: d["credentials"][0]["credential"]["credentialSubject"].update(method="self"),
        "inclusion": first_proof_hash,
        "checkpoint": lambda d: d["credentials"][0]["inclusion"]["checkpoint"].update(
            note=d["credentials"][0]["inclusion"]["checkpoint"]["note"].replace("\n", "\n\n", 1)),
        "issuer_key": lambda d: d["credentials"][0]["credential"]["proof"].update(
            verificationMethod=d["credentials"][0]["credential"]["issuer"] + "#other"),
        "status": lambda d: [v["credentialSubject"].update(encodedList=v["credentialSubject"]["encodedList"][:-8] + "AAAAAAAA")
                             for v in d["status_lists"].values()],
    }
    for check, change in cases.items():
        result = run_verify(tampered(check, change), "--trust", "trust.json", "--issuer", "issuer.json", cwd=workdir)
        assert result.returncode == 1, (check, result.stdout, result.stderr)
        assert f"  {check}: expected" in result.stdout or f"  {check}: " in result.stdout, (check, result.stdout)
        assert re.search(r"\n[0-2] verified, [1-3] failed", result.stdout), result.stdout

    # a revoked credential: the status bit in the next export fails with its purpose named
    await client.post(f"/api/credentials/{cred_b.id}/status", json={"purpose": "revocation", "value": True},
                      headers=world.staff.headers)
    again = await client.post("/api/exports", json={"period_id": period.id, "department": "civil_affairs"},
                              headers=world.staff.headers)
    second = (await client.get(f"/api/exports/{again.json()['id']}/files/json", headers=civil_officer.headers)).content
    (workdir / "second.json").write_bytes(second)
    result = run_verify(workdir / "second.json", "--trust", "trust.json", "--issuer", "issuer.json", cwd=workdir)
    assert result.returncode == 1 and f"FAIL {cred_b.document['id']}  status: expected revocation bit" in result.stdout

    # the export itself is anchored (label "export"): leaf = SHA-256 of the canonical manifest
    await anchor_everything(server)
    detail = (await client.get(base, headers=civil_officer.headers)).json()
    assert detail["anchored"] is True
    import rfc8785

    leaf = hashlib.sha256(rfc8785.dumps(detail["manifest"])).digest()
    assert leaf.hex() == detail["leaf_hash"]
    verify_inclusion_bundle(detail["inclusion"], leaf, Trust.from_json(chain.trust()))
    assert (await Export.get(id=export["id"])).anchored_at is not None

    # the officer checks the export itself: signed manifest, this very bundle file, its anchor
    manifest = await client.get(f"{base}/files/manifest", headers=civil_officer.headers)
    assert manifest.status_code == 200
    (workdir / "manifest.json").write_bytes(manifest.content)
    assert json.loads(manifest.content)["manifest"]["proof"]["cryptosuite"] == "eddsa-jcs-2022"
    whole = run_verify(workdir / "bundle.json", "--trust", "trust.json", "--issuer", "issuer.json",
                       "--manifest", "manifest.json", cwd=workdir)
    assert whole.returncode == 0 and "4 verified, 0 failed" in whole.stdout, whole.stdout + whole.stderr
    assert f"OK   export {export['id']}" in whole.stdout
    (workdir / "edited.json").write_bytes(files["json"] + b"\n")
    edited = run_verify(workdir / "edited.json", "--trust", "trust.json", "--issuer", "issuer.json",
                        "--manifest", "manifest.json", cwd=workdir)
    assert edited.returncode == 1 and f"FAIL export {export['id']}  bundle_hash: expected" in edited.stdout
    signed = json.loads(manifest.content)
    signed["manifest"]["counts"]["certified"] = 3
    (workdir / "forged-manifest.json").write_text(json.dumps(signed))
    forged = run_verify(workdir / "bundle.json", "--trust", "trust.json", "--issuer", "issuer.json",
                        "--manifest", "forged-manifest.json", cwd=workdir)
    assert forged.returncode == 1 and "  signature: expected" in forged.stdout and "  inclusion: expected" in forged.stdout
    assert pending["id"]
    independent_verify(cred_a.document, issuer)


async def test_chain_outage_delays_anchoring_but_loses_nothing(client, server, make_world, chain, monkeypatch):
    import dataclasses

    monkeypatch.setattr(server.app.ctx, "settings", dataclasses.replace(server.app.ctx.settings,
                                                                        chain_proof_wait_s=0.5))
    world = await make_world()
    # witnesses down: the leaf is appended but no checkpoint reaches quorum
    for department in ("social_security", "health"):
        await asyncio.to_thread(chain.stop_child, department)
    _, credential = await certified_resident(client, server, world, seed=821)
    for _ in range(3):
        await outbox.run_due(server.app.ctx.outbox_handlers, limit=1000)
        await OutboxEvent.filter(processed_at=None, kind__in=ANCHOR_KINDS).update(next_attempt_at=datetime.now(UTC))
    proof = await OutboxEvent.get(dedupe_key=f"credential.proof:{credential.id}")
    assert proof.processed_at is None and proof.attempts >= 1 and "expected a final checkpoint" in proof.last_error
    assert (await Credential.get(id=credential.id)).inclusion is None
    # the sequencer down too: a new credential's append fails and is retried, never lost
    await asyncio.to_thread(chain.stop_child, "sequencer")
    _, later = await certified_resident(client, server, world, seed=822)
    await outbox.run_due(server.app.ctx.outbox_handlers, limit=1000)
    append = await OutboxEvent.get(dedupe_key=f"credential.anchor:{later.id}")
    assert append.processed_at is None and append.attempts == 1 and append.last_error
    # everything back: both anchor, with proofs a quorum cosigned
    for name in ("sequencer", "social_security", "health"):
        await asyncio.to_thread(chain.start_child, name)
    for name in ("sequencer", "social_security", "health"):
        await asyncio.to_thread(chain.wait_child, name, 30)
    await anchor_everything(server)
    for row in (credential, later):
        fresh = await Credential.get(id=row.id)
        assert fresh.inclusion is not None
        assert (await verify_remote(client, fresh.document))["verified"] is True


async def test_a_forged_bundle_and_an_edited_xlsx_fail_with_named_checks(client, server, make_world, tmp_path: Path):
    """Issue 13 item 10: with the export's period changed to another month and one credential deleted, and
    no manifest, scripts/verify printed '3 verified, 0 failed' (exit 0) and POST /api/exports/verify said
    verified. Now the bundle carries its own signature; the xlsx is checked against it."""
    from openpyxl import load_workbook

    world = await make_world()
    creds = [(await certified_resident(client, server, world, seed=seed))[1] for seed in (841, 842, 843)]
    await create(client, world, seed=844, name="钱桂英", phone=None)
    await residents.ensure_department(code="civil_affairs", name="民政局")
    period = await periods.current_period(community_id=world.community_id)
    made = await client.post("/api/exports", json={"period_id": period.id, "department": "civil_affairs"},
                             headers=world.staff.headers)
    assert made.status_code == 201, made.text
    export = made.json()
    base = f"/api/exports/{export['id']}/files"
    bundle_bytes = (await client.get(f"{base}/json", headers=world.staff.headers)).content
    xlsx_bytes = (await client.get(f"{base}/xlsx", headers=world.staff.headers)).content
    bundle = json.loads(bundle_bytes)

    workdir = tmp_path / "officer"
    workdir.mkdir()
    issuer = await did_document_of(client, creds[0].document)
    (workdir / "issuer.json").write_text(json.dumps(issuer))
    (workdir / "list.xlsx").write_bytes(xlsx_bytes)

    def verify(name: str, data: bytes, *extra: str) -> subprocess.CompletedProcess[str]:
        (workdir / name).write_bytes(data)
        return run_verify(workdir / name, "--issuer", "issuer.json", "--allow-unanchored", *extra, cwd=workdir)

    # the forgery of the issue: another month, one credential fewer, no manifest
    forged = copy.deepcopy(bundle)
    forged["export"]["period"] = "2020-01"
    del forged["credentials"][1]
    forged_bytes = json.dumps(forged, ensure_ascii=False, indent=1, sort_keys=True).encode()
    result = verify("forged.json", forged_bytes)
    assert result.returncode == 1, result.stdout
    assert f"FAIL bundle {export['id']}  bundle_signature: expected the bundle's eddsa-jcs-2022 proof" in result.stdout
    assert f"FAIL bundle {export['id']}  bundle_period: expected every credential to be of the bundle's period 2020-01" in result.stdout
    assert "bundle_complete: expected 3 credentials (signed counts), found 2" in result.stdout

    # the genuine one: signed, with its rows and the xlsx's hash (no names)
    assert bundle["format"] == "zhilian-export-bundle/v2" and bundle["proof"]["cryptosuite"] == "eddsa-jcs-2022"
    assert bundle["files"]["xlsx"] == hashlib.sha256(xlsx_bytes).hexdigest() == export["manifest"]["files"]["xlsx"]
    assert len(bundle["rows"]) == 4 and {r["credential"] for r in bundle["rows"]} - {None} == {
        c.document["id"] for c in creds}
    assert "钱桂英" not in bundle_bytes.decode()  # the names stay in the xlsx
    genuine = verify("bundle.json", bundle_bytes, "--xlsx", "list.xlsx")
    assert genuine.returncode == 0, genuine.stdout + genuine.stderr
    assert (f"OK   bundle {export['id']}  (bundle_signature, bundle_period, bundle_complete, xlsx_hash, xlsx_rows)"
            in genuine.stdout) and "4 verified, 0 failed" in genuine.stdout
    # passed off as an old unsigned bundle: nothing attests it
    downgraded = {k: v for k, v in forged.items() if k not in ("proof", "issuer")} | {"format": "zhilian-export-bundle/v1"}
    result = verify("downgraded.json", json.dumps(downgraded).encode())
    assert result.returncode == 1 and "bundle_signature: expected a signed zhilian-export-bundle/v2" in result.stdout

    # the same forgery at POST /api/exports/verify (the same code): not verified, the checks named
    async def online(data: bytes, xlsx: bytes | None = None) -> dict:
        files = {"bundle": ("bundle.json", data, "application/json")}
        if xlsx is not None:
            files["xlsx"] = ("list.xlsx", xlsx, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        response = await client.post("/api/exports/verify", files=files, headers=world.staff.headers)
        assert response.status_code == 200, response.text
        return response.json()

    answer = await online(forged_bytes)
    assert answer["verified"] is False and {"bundle_signature", "bundle_period"} <= set(answer["bundle"]["failed"])
    assert "数据包本身的" in answer["message"]
    genuine_online = await online(bundle_bytes, xlsx_bytes)  # (not anchored here: no chain in this test)
    assert genuine_online["bundle"]["verified"] is True and genuine_online["bundle"]["failed"] == []
    assert [c["name"] for c in genuine_online["bundle"]["checks"]] == [
        "bundle_signature", "bundle_period", "bundle_complete", "xlsx_hash", "xlsx_rows"]

    # the xlsx: a status changed by hand fails both checks, naming the row; a re-saved copy keeps its rows
    book = load_workbook(io.BytesIO(xlsx_bytes))
    sheet = book.active
    pending_row = next(r for r in sheet.iter_rows(min_row=3) if r[1].value == "钱桂英")
    pending_row[3].value = "已认证"
    edited = io.BytesIO()
    book.save(edited)
    (workdir / "edited.xlsx").write_bytes(edited.getvalue())
    result = verify("bundle.json", bundle_bytes, "--xlsx", "edited.xlsx")
    assert result.returncode == 1
    assert "xlsx_hash: expected the xlsx's SHA-256 to be" in result.stdout
    assert "xlsx_rows: row 4 本月状态: expected '待认证', found '已认证'" in result.stdout
    resaved = io.BytesIO()
    load_workbook(io.BytesIO(xlsx_bytes)).save(resaved)
    (workdir / "resaved.xlsx").write_bytes(resaved.getvalue())
    result = verify("bundle.json", bundle_bytes, "--xlsx", "resaved.xlsx", "--json")
    checks = {c["name"]: c["ok"] for c in json.loads(result.stdout)["credentials"][0]["checks"]}
    assert checks["xlsx_hash"] is False and checks["xlsx_rows"] is True
    answer = await online(bundle_bytes, edited.getvalue())
    assert answer["verified"] is False and set(answer["bundle"]["failed"]) == {"xlsx_hash", "xlsx_rows"}
