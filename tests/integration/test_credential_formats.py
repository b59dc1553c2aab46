"""Credential formats checked by code that is not ours, over the real server (issue 13, items 9, 13, 14):

* the SD-JWT VC by the IETF SD-JWT reference implementation (`sd-jwt` from PyPI), its lifetime and its
  ``status`` read through a Token Status List verifier written here from the draft (pyjwt + zlib);
* every term of an issued credential and of a status list credential defined, by JSON-LD expansion
  (pyld) with a document loader that serves only the W3C VC 2.0 context (a local copy) and our own
  context (as this server serves it) and nothing else;
* no identifier that links a resident's credentials of different months, or shows their public id.
"""

from __future__ import annotations

import base64
import json
import zlib
from datetime import UTC, date, datetime, timedelta, timezone

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jwcrypto.jwk import JWK
from pyld import jsonld
from sd_jwt.verifier import SDJWTVerifier

from backend.certification import periods
from backend.certification.models import Method, Period
from backend.certification.records import record_certification
from backend.credentials.models import Credential
from backend.outbox import service as outbox
from backend.residents.models import Resident
from tests.conftest import REPO_ROOT
from tests.integration.test_credentials import (
    _base58btc_decode,
    app_login,
    certified_resident,
    did_document_of,
    fetch,
    unique_phone,
)

VC_V2 = "https://www.w3.org/ns/credentials/v2"
W3C_CONTEXT = json.loads((REPO_ROOT / "tests" / "fixtures" / "jsonld" / "credentials-v2.jsonld").read_text())
CHINA = timezone(timedelta(hours=8))


def issuer_key(did_document: dict, kid: str) -> bytes:
    method = next(m for m in did_document["verificationMethod"] if m["id"] == kid)
    return _base58btc_decode(method["publicKeyMultibase"][1:])[2:]


async def sd_jwt_of(client, credential: Credential, headers: dict, resident_id: int) -> httpx.Response:
    return await client.get(f"/api/app/credentials/{credential.id}/sd-jwt", params={"resident_id": resident_id},
                            headers=headers)


# ---- a Token Status List relying party, from draft-ietf-oauth-status-list §8 -------------------------

async def token_status(client, reference: dict, did_document: dict) -> int:
    """Fetch the Status List Token the reference names, check it, and read the entry's status value."""
    uri, index = reference["status_list"]["uri"], reference["status_list"]["idx"]
    response = await client.get(httpx.URL(uri).raw_path.decode(), headers={"Accept": "application/statuslist+jwt"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/statuslist+jwt")
    token = response.text
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "statuslist+jwt"
    key = Ed25519PublicKey.from_public_bytes(issuer_key(did_document, header["kid"]))
    claims = jwt.decode(token, key, algorithms=["EdDSA"], options={"require": ["sub", "iat", "exp"]})
    assert claims["sub"] == uri and claims["ttl"] > 0
    status_list = claims["status_list"]
    bits = status_list["bits"]
    assert bits in (1, 2, 4, 8)
    lst = status_list["lst"]
    raw = zlib.decompress(base64.urlsafe_b64decode(lst + "=" * (-len(lst) % 4)))
    per_byte = 8 // bits
    return (raw[index // per_byte] >> (bits * (index % per_byte))) & ((1 << bits) - 1)


def expected_expiry(month: str, due_day: int) -> datetime:
    """The end of the next month's due day, China time (independently of the service's own function)."""
    year, number = map(int, month.split("-"))
    following = date(year + number // 12, number % 12 + 1, 1)
    day = following.replace(day=due_day) if due_day <= 28 else following.replace(day=28)
    return datetime(day.year, day.month, day.day, tzinfo=CHINA) + timedelta(days=1)


async def test_sd_jwt_vc_has_a_lifetime_and_a_status_and_is_refused_when_suspended_or_revoked(
    client, server, make_world
):
    """Issue 13 item 9: before, the SD-JWT had no exp and no status, and a suspended credential got a fresh one."""
    world = await make_world()
    phone = unique_phone()
    created, credential = await certified_resident(client, server, world, seed=931, phone=phone)
    headers = await app_login(client, server, phone)
    response = await sd_jwt_of(client, credential, headers, created["id"])
    assert response.status_code == 200, response.text
    token = response.json()["sd_jwt"]
    did_document = await did_document_of(client, credential.document)

    def key_of(issuer: str, header: dict) -> JWK:
        assert issuer == credential.document["issuer"]
        raw = issuer_key(did_document, header["kid"])
        return JWK(kty="OKP", crv="Ed25519", x=base64.urlsafe_b64encode(raw).rstrip(b"=").decode())

    # the reference implementation checks the issuer signature and every disclosure's digest
    payload = SDJWTVerifier(token, key_of).get_verified_payload()
    assert payload["iss"] == credential.document["issuer"] and payload["vct"]
    assert payload["name"] == created["name"] and payload["period"] == credential.document["credentialSubject"]["period"]
    now = datetime.now(UTC).timestamp()
    period = await Period.get(id=credential.period_id)
    assert payload["iat"] <= now + 5 < payload["exp"]
    assert payload["exp"] == int(expected_expiry(period.month, period.due_day).timestamp())
    assert 20 * 86400 < payload["exp"] - payload["iat"] < 62 * 86400  # about one monthly cycle, never open-ended
    # a presentation hiding everything optional still verifies and carries no identifier
    issuer_jwt, *_ = token.split("~")
    hidden = SDJWTVerifier(issuer_jwt + "~", key_of).get_verified_payload()
    assert not {"name", "id_number_suffix", "credential_id", "subject_id", "sub"} & set(hidden)
    assert hidden["status"] == payload["status"]
    assert await token_status(client, payload["status"], did_document) == 0

    # suspended: no new SD-JWT, and the one already out reads SUSPENDED (0x02) on the list
    url = f"/api/credentials/{credential.id}/status"
    assert (await client.post(url, json={"purpose": "suspension", "value": True, "reason": "核查"},
                              headers=world.staff.headers)).status_code == 200
    refused = await sd_jwt_of(client, credential, headers, created["id"])
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "credentials.not_valid"
    assert await token_status(client, payload["status"], did_document) == 2
    assert (await client.post(url, json={"purpose": "suspension", "value": False},
                              headers=world.staff.headers)).status_code == 200
    assert (await sd_jwt_of(client, credential, headers, created["id"])).status_code == 200
    assert await token_status(client, payload["status"], did_document) == 0
    # revoked (final): INVALID (0x01), refused for good
    assert (await client.post(url, json={"purpose": "revocation", "value": True, "reason": "重复"},
                              headers=world.staff.headers)).status_code == 200
    assert (await sd_jwt_of(client, credential, headers, created["id"])).status_code == 409
    assert await token_status(client, payload["status"], did_document) == 1
    for bad in (f"{world.community_code}/-1", f"{world.community_code}/99999999999999999999", f"{'A' * 40}/0"):
        assert (await client.get(f"/credentials/statuslists/{bad}")).status_code == 404


async def test_an_old_months_credential_gets_no_sd_jwt(client, server, make_world):
    world = await make_world()
    phone = unique_phone()
    created, _ = await certified_resident(client, server, world, seed=932, phone=phone)
    resident = await Resident.get(id=created["id"])
    old = await periods.open_period(community_id=world.community_id, month="2025-01")
    recorded = await record_certification(resident=resident, period=old, method=Method.HOME_VISIT, attempt=None,
                                          assisted_by=f"staff:{world.staff.user_id}")
    await outbox.run_due(server.app.ctx.outbox_handlers)
    stale = await Credential.get(certification_id=recorded.certification.id)
    headers = await app_login(client, server, phone)
    response = await sd_jwt_of(client, stale, headers, created["id"])
    assert response.status_code == 409 and response.json()["error"]["code"] == "credentials.expired"


# ---- JSON-LD: every term defined ------------------------------------------------------------------

def _loader(our_url: str, our_context: dict):
    served = {VC_V2: W3C_CONTEXT, our_url: our_context}

    def load(url: str, options: dict | None = None) -> dict:
        if url not in served:
            raise jsonld.JsonLdError(f"refusing to load {url}: only the W3C and our own contexts", "loading document failed")
        return {"contextUrl": None, "documentUrl": url, "document": served[url]}

    return load


def _properties(value, *, expanded: bool) -> int:
    """How many property slots a document has: compact keys other than @-keywords and the id/type aliases,
    or expanded keys that are IRIs. JSON-LD expansion drops a term it cannot define, so a shortfall is an
    undefined term."""
    if isinstance(value, list):
        return sum(_properties(v, expanded=expanded) for v in value)
    if not isinstance(value, dict):
        return 0
    count = 0
    for key, item in value.items():
        if key == "@context":
            continue
        if expanded:
            count += not key.startswith("@")
        else:
            count += key not in ("id", "type") and not key.startswith("@")
        if not (expanded and key == "@value"):
            count += _properties(item, expanded=expanded)
    return count


def assert_all_terms_defined(document: dict, loader) -> list:
    expanded = jsonld.expand(document, {"documentLoader": loader})
    assert _properties(expanded, expanded=True) == _properties(document, expanded=False), (
        json.dumps(expanded, indent=1)[:3000])
    iris = {k for node in _walk_nodes(expanded) for k in node if not k.startswith("@")}
    assert all(i.startswith(("https://", "http://")) for i in iris), iris  # absolute IRIs, none relative
    return expanded


def _walk_nodes(value):
    if isinstance(value, list):
        for v in value:
            yield from _walk_nodes(v)
    elif isinstance(value, dict):
        yield value
        for v in value.values():
            yield from _walk_nodes(v)


async def test_every_term_of_our_credentials_is_defined_by_a_context_we_serve(client, server, make_world):
    """Issue 13 item 14: credentials use a context that defines their custom terms (before: period, method,
    certifiedAt … were undefined, and VC 2.0 has no @vocab fallback any more)."""
    world = await make_world()
    _, credential = await certified_resident(client, server, world, seed=933)
    document = credential.document
    assert document["@context"][0] == VC_V2 and len(document["@context"]) == 2
    our_url = document["@context"][1]
    assert our_url.startswith(server.app.ctx.settings.effective_public_url + "/")
    response = await client.get(httpx.URL(our_url).raw_path.decode())
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/ld+json")
    loader = _loader(our_url, response.json())

    expanded = assert_all_terms_defined(document, loader)
    subject = expanded[0]["https://www.w3.org/2018/credentials#credentialSubject"][0]
    period = next(v for k, v in subject.items() if k.endswith("#period"))[0]
    assert period == {"@type": "http://www.w3.org/2001/XMLSchema#gYearMonth",
                      "@value": document["credentialSubject"]["period"]}
    # the check itself can fail: one undefined term is caught
    undefined = json.loads(json.dumps(document))
    undefined["credentialSubject"]["residentName"] = "x"
    try:
        assert_all_terms_defined(undefined, loader)
        raise RuntimeError("an undefined term passed")
    except AssertionError:
        pass

    # the status list credentials too, with their validUntil and ttl
    for entry in document["credentialStatus"]:
        listed = await fetch(client, entry["statusListCredential"])
        assert_all_terms_defined(listed, loader)
        valid_from = datetime.fromisoformat(listed["validFrom"].replace("Z", "+00:00"))
        valid_until = datetime.fromisoformat(listed["validUntil"].replace("Z", "+00:00"))
        assert valid_from <= datetime.now(UTC) < valid_until <= valid_from + timedelta(days=1)
        assert listed["credentialSubject"]["ttl"] == 300_000


async def test_a_residents_credentials_share_no_identifier(client, server, make_world):
    """Issue 13 item 13: the credential subject was the resident's global public_id, the same every month
    and the same id portals got under certification:read."""
    world = await make_world()
    phone = unique_phone()
    created, this_month = await certified_resident(client, server, world, seed=934, phone=phone)
    resident = await Resident.get(id=created["id"])
    earlier = await periods.open_period(community_id=world.community_id,
                                        month=periods.previous_month(periods.month_of(date.today())))
    recorded = await record_certification(resident=resident, period=earlier, method=Method.HOME_VISIT, attempt=None,
                                          assisted_by=f"staff:{world.staff.user_id}")
    await outbox.run_due(server.app.ctx.outbox_handlers)
    last_month = await Credential.get(certification_id=recorded.certification.id)
    subjects = {c.document["credentialSubject"]["id"] for c in (this_month, last_month)}
    assert len(subjects) == 2
    for credential in (this_month, last_month):
        public = (await client.get(f"/credentials/{credential.id}")).text
        assert created["public_id"] not in public
    headers = await app_login(client, server, phone)
    tokens = [(await sd_jwt_of(client, this_month, headers, created["id"])).json()["sd_jwt"] for _ in range(2)]
    issuer_parts = [t.split("~")[0] for t in tokens]
    assert issuer_parts[0] != issuer_parts[1]  # fresh salts and digests each time
    for part in issuer_parts:
        claims = jwt.decode(part, options={"verify_signature": False})
        assert created["public_id"] not in json.dumps(claims)
        assert this_month.document["id"] not in json.dumps(claims) and "sub" not in claims
