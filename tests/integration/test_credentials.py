"""Credentials over the real server: issued from the outbox, verified by an independent
implementation written from the W3C specs in this file, tampering named, status lists, the
resident's app view and the SD-JWT VC."""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import json
import re
import secrets
from datetime import UTC, datetime

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from backend.certification import periods
from backend.certification.models import Method
from backend.certification.records import record_certification
from backend.credentials.models import Credential
from backend.notify.models import OutboundMessage
from backend.outbox import service as outbox
from backend.residents.models import Resident
from tests.integration.test_residents import create

# ---------------------------------------------------------------------------------------------
# An independent verifier, from the specs only (nothing from backend.credentials is imported):
# W3C vc-di-eddsa §3.3.2 (eddsa-jcs-2022), RFC 8785, multibase base58btc, Multikey, Bitstring
# Status List §3.2. JCS here is json.dumps with sorted keys and no whitespace: exact RFC 8785
# output for documents of strings, integers, booleans and ASCII keys (what credentials contain).
# ---------------------------------------------------------------------------------------------
_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _base58btc_decode(text: str) -> bytes:
    number = 0
    for char in text:
        number = number * 58 + _ALPHABET.index(char)
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


def _jcs(value: object) -> bytes:
    assert not any(isinstance(v, float) for v in _walk(value))
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _walk(value: object):
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)
    else:
        yield value


def independent_verify(credential: dict, did_document: dict) -> None:
    """Raises AssertionError / InvalidSignature unless the eddsa-jcs-2022 proof verifies."""
    proof = dict(credential["proof"])
    assert proof["type"] == "DataIntegrityProof" and proof["cryptosuite"] == "eddsa-jcs-2022"
    assert proof["proofPurpose"] == "assertionMethod"
    method_id = proof["verificationMethod"]
    assert method_id.split("#")[0] == credential["issuer"] == did_document["id"]
    assert method_id in did_document["assertionMethod"]
    method = next(m for m in did_document["verificationMethod"] if m["id"] == method_id)
    assert method["type"] == "Multikey"
    multikey = method["publicKeyMultibase"]
    assert multikey.startswith("z6Mk")
    raw_key = _base58btc_decode(multikey[1:])
    assert raw_key[:2] == b"\xed\x01" and len(raw_key) == 34
    proof_value = proof.pop("proofValue")
    assert proof_value[0] == "z"
    signature = _base58btc_decode(proof_value[1:])
    document = {k: v for k, v in credential.items() if k != "proof"}
    assert document["@context"][: len(proof["@context"])] == proof["@context"]
    hash_data = hashlib.sha256(_jcs(proof)).digest() + hashlib.sha256(_jcs(document)).digest()
    Ed25519PublicKey.from_public_bytes(raw_key[2:]).verify(signature, hash_data)


def independent_status_bit(entry: dict, list_credential: dict, did_document: dict) -> int:
    independent_verify_list = dict(list_credential)
    proof = dict(independent_verify_list["proof"])
    method = next(m for m in did_document["verificationMethod"] if m["id"] == proof["verificationMethod"])
    key = _base58btc_decode(method["publicKeyMultibase"][1:])[2:]
    signature = _base58btc_decode(proof.pop("proofValue")[1:])
    document = {k: v for k, v in list_credential.items() if k != "proof"}
    Ed25519PublicKey.from_public_bytes(key).verify(
        signature, hashlib.sha256(_jcs(proof)).digest() + hashlib.sha256(_jcs(document)).digest())
    subject = list_credential["credentialSubject"]
    assert subject["statusPurpose"] == entry["statusPurpose"]
    encoded = subject["encodedList"]
    assert encoded[0] == "u"
    bits = gzip.decompress(base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4)))
    assert len(bits) * 8 >= 131_072
    index = int(entry["statusListIndex"])
    return (bits[index // 8] >> (7 - index % 8)) & 1


# ---------------------------------------------------------------------------------------------

def unique_phone() -> str:
    return "137" + f"{secrets.randbelow(10**8):08d}"


async def app_login(client: httpx.AsyncClient, server, phone: str) -> dict[str, str]:
    assert (await client.post("/api/auth/app/otp", json={"phone": phone})).status_code == 200
    index = server.app.ctx.cipher.blind_index(phone, purpose="phone")
    message = await OutboundMessage.filter(recipient_index=index, template="login_code").order_by("-id").first()
    code = re.search(r"\d{6}", message.body).group(0)
    login = await client.post("/api/auth/app/login", json={"phone": phone, "code": code})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def certified_resident(client, server, world, *, seed: int, method: Method = Method.HOME_VISIT,
                             phone: str | None = None) -> tuple[dict, Credential]:
    """A resident certified this period, and the credential the outbox issued for it."""
    created = await create(client, world, seed=seed, phone=phone or unique_phone())
    resident = await Resident.get(id=created["id"])
    period = await periods.current_period(community_id=world.community_id)
    recorded = await record_certification(resident=resident, period=period, method=method, attempt=None,
                                          assisted_by=f"staff:{world.staff.user_id}")
    await outbox.run_due(server.app.ctx.outbox_handlers)
    credential = await Credential.get(certification_id=recorded.certification.id)
    return created, credential


async def fetch(client: httpx.AsyncClient, url: str) -> dict:
    """GET a URL the credential names (served by this backend)."""
    response = await client.get(httpx.URL(url).raw_path.decode())
    assert response.status_code == 200, response.text
    return response.json()


async def did_document_of(client, credential: dict) -> dict:
    code = credential["issuer"].rsplit(":", 1)[1]
    return await fetch(client, f"/communities/{code}/did.json")


async def verify_remote(client, credential: dict, inclusion: dict | None = None) -> dict:
    body = {"credential": credential} if inclusion is None else {"credential": credential, "inclusion": inclusion}
    response = await client.post("/credentials/verify", json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def test_issued_on_the_outbox_once_and_verified_independently(client, server, make_world):
    world = await make_world()
    created, credential = await certified_resident(client, server, world, seed=901)
    document = credential.document
    # idempotent: the event ran once; issuing again returns the same credential
    from backend.credentials import service

    again = await service.issue_for_certification(certification_id=credential.certification_id,
                                                  settings=server.app.ctx.settings)
    assert again.id == credential.id
    assert await Credential.filter(resident_id=created["id"]).count() == 1

    assert document["type"] == ["VerifiableCredential", "ElderlyLivenessCertification"]
    assert document["@context"][0] == "https://www.w3.org/ns/credentials/v2"
    assert document["issuer"].startswith("did:web:") and document["issuer"].endswith(f":communities:{world.community_code}")
    subject = document["credentialSubject"]
    assert subject["id"].startswith("urn:uuid:") and created["public_id"] not in json.dumps(document)
    assert subject["method"] == "home_visit" and subject["assuranceLevel"] == "substantial"
    assert subject["period"] == periods.month_of(__import__("datetime").date.today())
    text = json.dumps(document, ensure_ascii=False)
    assert created["name"] not in text and created["national_id"] not in text and created["national_id"][-6:] not in text

    did_document = await did_document_of(client, document)
    independent_verify(document, did_document)
    for entry in document["credentialStatus"]:
        assert entry["type"] == "BitstringStatusListEntry"
        list_credential = await fetch(client, entry["statusListCredential"])
        assert "BitstringStatusListCredential" in list_credential["type"]
        assert independent_status_bit(entry, list_credential, did_document) == 0
    assert {e["statusPurpose"] for e in document["credentialStatus"]} == {"revocation", "suspension"}

    report = await verify_remote(client, document)
    assert report["verified"] is True, report
    checks = {c["name"]: c["ok"] for c in report["checks"]}
    assert checks["signature"] and checks["issuer_key"] and checks["status"]


async def test_every_change_fails_with_the_named_check(client, server, make_world):
    world = await make_world()
    _, credential = await certified_resident(client, server, world, seed=902)
    document = credential.document
    did_document = await did_document_of(client, document)

    def changed(path: list, value) -> dict:
        copy_ = copy.deepcopy(document)
        target = copy_
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return copy_

    signature_cases = [
        changed(["credentialSubject", "method"], "self"),
        changed(["credentialSubject", "period"], "2020-01"),
        changed(["credentialSubject", "id"], "urn:uuid:00000000-0000-0000-0000-000000000000"),
        changed(["credentialSubject", "assuranceLevel"], "high"),
        changed(["validFrom"], "2020-01-01T00:00:00Z"),
        changed(["id"], "urn:uuid:11111111-1111-1111-1111-111111111111"),
        changed(["credentialStatus", 0, "statusListIndex"], "0"),
        changed(["proof", "created"], "2020-01-01T00:00:00Z"),
        changed(["proof", "proofValue"], document["proof"]["proofValue"][:-3] + "abc"),
    ]
    for case in signature_cases:
        try:
            independent_verify(case, did_document)
            raise AssertionError("the independent verifier accepted a changed credential")
        except (InvalidSignature, AssertionError, ValueError) as exc:
            assert "accepted" not in str(exc)
        report = await verify_remote(client, case)
        assert report["verified"] is False
        assert "signature" in report["failed"], report
        failed = next(c for c in report["checks"] if c["name"] == "signature")
        assert "expected" in failed["message"]

    # exhaustively: every leaf value of the document, proof included, changed one at a time
    def leaves(value, path=()):
        if isinstance(value, dict):
            for key, item in value.items():
                yield from leaves(item, (*path, key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                yield from leaves(item, (*path, i))
        else:
            yield list(path), value

    paths = list(leaves(document))
    assert len(paths) > 25
    for path, value in paths:
        case = changed(path, value + "x" if isinstance(value, str) else not value)
        try:
            independent_verify(case, did_document)
            raise AssertionError(f"the independent verifier accepted a change of {path}")
        except (InvalidSignature, AssertionError, ValueError, StopIteration, KeyError) as exc:
            assert "accepted" not in str(exc), exc
        report = await verify_remote(client, case)
        assert report["verified"] is False and report["failed"], (path, report)
        assert set(report["failed"]) <= {"format", "issuer_key", "signature", "status"}, (path, report["failed"])

    suite = await verify_remote(client, changed(["proof", "cryptosuite"], "eddsa-rdfc-2022"))
    assert suite["failed"] == ["signature"] and "eddsa-jcs-2022" in suite["checks"][2]["message"]
    unknown_key = await verify_remote(client, changed(["proof", "verificationMethod"], document["issuer"] + "#nope"))
    assert unknown_key["failed"] == ["issuer_key"]
    foreign = await verify_remote(client, changed(["issuer"], "did:web:elsewhere.example"))
    assert "issuer_key" in foreign["failed"]

    # status: suspend, then reinstate, then revoke (final)
    url = f"/api/credentials/{credential.id}/status"
    suspended = await client.post(url, json={"purpose": "suspension", "value": True, "reason": "核查中"},
                                  headers=world.staff.headers)
    assert suspended.status_code == 200, suspended.text
    report = await verify_remote(client, document)
    assert report["failed"] == ["status"]
    status_check = next(c for c in report["checks"] if c["name"] == "status")
    assert status_check["error"] == "CredentialSuspended" and "suspension bit" in status_check["message"]
    entry = next(e for e in document["credentialStatus"] if e["statusPurpose"] == "suspension")
    assert independent_status_bit(entry, await fetch(client, entry["statusListCredential"]), did_document) == 1
    await client.post(url, json={"purpose": "suspension", "value": False}, headers=world.staff.headers)
    assert (await verify_remote(client, document))["verified"] is True
    revoked = await client.post(url, json={"purpose": "revocation", "value": True, "reason": "重复认证"},
                                headers=world.staff.headers)
    assert revoked.status_code == 200
    report = await verify_remote(client, document)
    assert report["failed"] == ["status"] and report["checks"][3]["error"] == "CredentialRevoked"
    undo = await client.post(url, json={"purpose": "revocation", "value": False}, headers=world.staff.headers)
    assert undo.status_code == 409

    other = await make_world()
    assert (await client.post(url, json={"purpose": "suspension", "value": True},
                              headers=other.staff.headers)).status_code == 404
    mine = (await client.get("/api/credentials", params={"period_id": credential.period_id},
                             headers=world.staff.headers)).json()["items"]
    assert [c["id"] for c in mine] == [str(credential.id)] and mine[0]["revoked"] is True
    theirs = (await client.get("/api/credentials", headers=other.staff.headers)).json()["items"]
    assert str(credential.id) not in {c["id"] for c in theirs}
    assert (await client.get("/api/credentials", params={"resident_id": credential.resident_id},
                             headers=other.staff.headers)).json()["items"] == []


async def test_resident_app_view_with_qr_payload_and_sd_jwt(client, server, make_world):
    world = await make_world()
    phone = unique_phone()
    created, credential = await certified_resident(client, server, world, seed=903, phone=phone)
    headers = await app_login(client, server, phone)
    listed = await client.get("/api/app/credentials", params={"resident_id": created["id"]}, headers=headers)
    assert listed.status_code == 200, listed.text
    (item,) = listed.json()["items"]
    assert item["id"] == str(credential.id) and item["credential"] == credential.document
    assert item["verifier_qr"].endswith(f"/credentials/{credential.id}#sha256={credential.leaf_hash}")
    public = await client.get(f"/credentials/{credential.id}")
    assert public.status_code == 200 and public.json()["credential"] == credential.document
    # a stranger's app account learns nothing
    stranger = await app_login(client, server, unique_phone())
    assert (await client.get("/api/app/credentials", params={"resident_id": created["id"]},
                             headers=stranger)).status_code == 404
    assert (await client.get("/api/app/credentials", params={"resident_id": created["id"]},
                             headers=world.staff.headers)).status_code == 403

    token = await client.get(f"/api/app/credentials/{credential.id}/sd-jwt", params={"resident_id": created["id"]},
                             headers=headers)
    assert token.status_code == 200, token.text
    sd_jwt = token.json()["sd_jwt"]
    # verified here from the SD-JWT spec with pyjwt, the key from the issuer's DID document
    import jwt

    issuer_jwt, *disclosures, tail = sd_jwt.split("~")
    assert tail == ""
    header = jwt.get_unverified_header(issuer_jwt)
    assert header["typ"] == "dc+sd-jwt" and header["alg"] == "EdDSA"
    did_document = await did_document_of(client, credential.document)
    method = next(m for m in did_document["verificationMethod"] if m["id"] == header["kid"])
    key = Ed25519PublicKey.from_public_bytes(_base58btc_decode(method["publicKeyMultibase"][1:])[2:])
    payload = jwt.decode(issuer_jwt, key, algorithms=["EdDSA"])
    assert payload["vct"] and payload["_sd_alg"] == "sha-256" and "sub" not in payload
    assert "name" not in payload and "id_number_suffix" not in payload and "credential_id" not in payload
    revealed = {}
    for disclosure in disclosures:
        digest = base64.urlsafe_b64encode(hashlib.sha256(disclosure.encode()).digest()).rstrip(b"=").decode()
        assert digest in payload["_sd"]
        _, name, value = json.loads(base64.urlsafe_b64decode(disclosure + "=" * (-len(disclosure) % 4)))
        revealed[name] = value
    assert revealed == {"name": created["name"], "id_number_suffix": created["national_id"][-4:],
                        "credential_id": credential.document["id"],
                        "subject_id": credential.document["credentialSubject"]["id"]}


async def test_without_a_chain_anchoring_waits_and_nothing_fails(client, server, make_world):
    from backend.outbox.models import OutboxEvent

    if getattr(server.app.ctx, "chain", None) is not None:
        return
    world = await make_world()
    _, credential = await certified_resident(client, server, world, seed=904)
    await outbox.run_due(server.app.ctx.outbox_handlers)
    event = await OutboxEvent.get(dedupe_key=f"credential.anchor:{credential.id}")
    assert event.processed_at is None and event.attempts == 0 and event.last_error == ""
    assert (await Credential.get(id=credential.id)).inclusion is None


async def test_did_documents_and_key_rotation_keep_old_credentials_verifiable(client, server, make_world):
    from backend.credentials import keys
    from backend.residents.models import Community

    world = await make_world()
    _, first = await certified_resident(client, server, world, seed=905)
    root = await client.get("/.well-known/did.json")
    assert root.status_code == 200 and root.json()["id"].startswith("did:web:")
    community = await Community.get(id=world.community_id)
    rotated = await keys.rotate_file_key(settings=server.app.ctx.settings, community=community)
    _, second = await certified_resident(client, server, world, seed=906)
    assert second.document["proof"]["verificationMethod"] == rotated.verification_method
    assert first.document["proof"]["verificationMethod"] != rotated.verification_method
    did_document = await did_document_of(client, first.document)
    assert len(did_document["assertionMethod"]) == 2
    for credential in (first, second):
        independent_verify(credential.document, did_document)
        assert (await verify_remote(client, credential.document))["verified"] is True
    # a compromised key is withdrawn: what it signed no longer verifies, and it signs nothing more
    from backend.credentials.models import IssuerKey

    old_kid = first.document["proof"]["verificationMethod"].rsplit("#", 1)[1]
    await IssuerKey.filter(community_id=world.community_id, kid=old_kid).update(withdrawn_at=datetime.now(UTC))
    assert (await verify_remote(client, first.document))["failed"] == ["issuer_key"]
    assert (await verify_remote(client, second.document))["verified"] is True
    await IssuerKey.filter(community_id=world.community_id, kid=rotated.kid).update(withdrawn_at=datetime.now(UTC))
    with pytest.raises(keys.IssuerKeyMissing):
        await keys.signer_for(settings=server.app.ctx.settings, community=community)


async def test_issuer_keys_from_the_environment_sign_and_are_published(client, server, make_world, monkeypatch):
    import dataclasses

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    world = await make_world()
    key = Ed25519PrivateKey.generate()
    seed = base64.b64encode(key.private_bytes_raw()).decode()
    monkeypatch.setattr(server.app.ctx, "settings", dataclasses.replace(
        server.app.ctx.settings, issuer_keys=f"{world.community_code}:env-2026:{seed}"))
    _, credential = await certified_resident(client, server, world, seed=907)
    method = credential.document["proof"]["verificationMethod"]
    assert method == f"{credential.document['issuer']}#env-2026"
    did_document = await did_document_of(client, credential.document)
    raw = key.public_key().public_bytes_raw()
    published = next(m for m in did_document["verificationMethod"] if m["id"] == method)
    assert _base58btc_decode(published["publicKeyMultibase"][1:]) == b"\xed\x01" + raw
    independent_verify(credential.document, did_document)
    assert (await client.get("/did.json")).status_code == 200
