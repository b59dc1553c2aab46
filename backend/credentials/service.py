"""Issuing credentials, their status lists, the SD-JWT form, and server-side verification.

Issuance runs from the outbox (`certification.passed`), is idempotent per certification,
and enqueues the anchoring of SHA-256(JCS(credential)) in the same transaction.
"""

from __future__ import annotations

import asyncio
import calendar
import secrets
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from backend.certification.models import Certification, Period
from backend.credentials import eddsa_jcs, sdjwt, status_list, token_status
from backend.credentials.context import context_url
from backend.credentials.errors import CredentialError
from backend.credentials.keys import IssuerSigner, community_did, community_did_document, signer_for
from backend.credentials.models import Credential
from backend.credentials.verify import CREDENTIAL_TYPE, Report, leaf_hash, verify_credential
from backend.errors import ApiError, NotFoundError
from backend.outbox import service as outbox
from backend.residents.models import Community, Resident
from backend.security.fieldcrypt import FieldCipher
from backend.settings import Settings

ANCHOR_EVENT = "credential.anchor"
LIST_SIZE = status_list.MIN_ENTRIES
LIST_FILL = LIST_SIZE // 2  # a list pair holds at most half its entries: random picks stay cheap, herds large
CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")  # periods and due days are China dates (no DST)


def xsd(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_list_url(settings: Settings, community_code: str, number: int, purpose: str) -> str:
    return f"{settings.effective_public_url}/credentials/status/{community_code}/{number}/{purpose}"


def token_status_list_url(settings: Settings, community_code: str, number: int) -> str:
    """Where the IETF Status List Token of a community's list pair is served (SD-JWT VC ``status``)."""
    return f"{settings.effective_public_url}/credentials/statuslists/{community_code}/{number}"


async def get(*, credential_id: str | uuid.UUID) -> Credential | None:
    try:
        return await Credential.get_or_none(id=uuid.UUID(str(credential_id)))
    except ValueError:
        return None


async def get_or_raise(*, credential_id: str | uuid.UUID) -> Credential:
    credential = await get(credential_id=credential_id)
    if credential is None:
        raise NotFoundError("没有找到这份凭证", code="credentials.not_found")
    return credential


async def search(
    *, community_ids: list[int] | None, period_id: int | None = None, resident_id: int | None = None, limit: int = 500
) -> list[Credential]:
    query = Credential.all()
    if community_ids is not None:
        query = query.filter(community_id__in=community_ids)
    if period_id is not None:
        query = query.filter(period_id=period_id)
    if resident_id is not None:
        query = query.filter(resident_id=resident_id)
    return await query.order_by("-issued_at").limit(limit)


async def _allocate_status_index(community_id: int) -> tuple[int, int]:
    """A random, unused position in the community's current list pair (herd privacy)."""
    issued = await Credential.filter(community_id=community_id).count()
    number = issued // LIST_FILL
    for _ in range(64):
        index = secrets.randbelow(LIST_SIZE)
        if not await Credential.exists(community_id=community_id, status_list=number, status_index=index):
            return number, index
    raise ApiError("状态列表已满", code="credentials.status_list_full", status=503)


def build_document(
    *, settings: Settings, credential_id: uuid.UUID, community: Community, period: Period,
    certification: Certification, status_number: int, status_index: int, subject_id: uuid.UUID,
) -> dict[str, Any]:
    """The unsecured VC 2.0 document: no name, ID number or face data.

    The subject id is drawn afresh for every credential: a resident's credentials of different
    months, or one shown to two portals and to a department, share no identifier that would
    link them (the resident's `public_id` stays inside our QR codes). Who the subject is, is
    known to the resident, to us, and to the department that gets the export's named list.
    """
    return {
        "@context": [status_list.VC_CONTEXT, context_url(settings.effective_public_url)],
        "id": f"urn:uuid:{credential_id}",
        "type": ["VerifiableCredential", CREDENTIAL_TYPE],
        "issuer": community_did(settings, community.code),
        "validFrom": xsd(certification.certified_at),
        "credentialSubject": {
            "id": f"urn:uuid:{subject_id}",
            "period": period.month,
            "programme": period.programme,
            "method": str(certification.method),
            "certifiedAt": xsd(certification.certified_at),
            "assuranceLevel": certification.assurance,
        },
        "credentialStatus": [
            status_list.status_entry(status_list_url(settings, community.code, status_number, purpose), purpose,
                                     status_index)
            for purpose in status_list.PURPOSES
        ],
    }


async def issue_for_certification(*, certification_id: int, settings: Settings) -> Credential:
    """Issue the credential of a certification once; later calls return the same credential."""
    existing = await Credential.get_or_none(certification_id=certification_id)
    if existing is not None:
        return existing
    certification = await Certification.get(id=certification_id)
    period = await Period.get(id=certification.period_id)  # type: ignore[attr-defined]
    resident = await Resident.get(id=certification.resident_id)  # type: ignore[attr-defined]
    community = await Community.get(id=period.community_id)  # type: ignore[attr-defined]
    signer = await signer_for(settings=settings, community=community)
    for _ in range(8):
        number, index = await _allocate_status_index(community.id)
        credential_id = uuid.uuid4()
        document = build_document(
            settings=settings, credential_id=credential_id, community=community, period=period,
            certification=certification, status_number=number, status_index=index, subject_id=uuid.uuid4(),
        )
        secured = eddsa_jcs.add_proof(document, private_key=signer.private_key,
                                      verification_method=signer.verification_method)
        try:
            async with in_transaction() as conn:
                credential = await Credential.create(
                    id=credential_id, certification_id=certification.id, community_id=community.id,
                    resident_id=resident.id, period_id=period.id, document=secured, status_list=number,
                    status_index=index, leaf_hash=leaf_hash(secured).hex(), using_db=conn,
                )
                await outbox.enqueue(kind=ANCHOR_EVENT, dedupe_key=f"{ANCHOR_EVENT}:{credential_id}",
                                     payload={"id": str(credential_id)}, using_db=conn)
            return credential
        except IntegrityError:
            existing = await Credential.get_or_none(certification_id=certification.id)
            if existing is not None:  # another worker issued it first
                return existing
            # the random status position was taken concurrently: draw again
    raise ApiError("签发凭证失败，请稍后重试", code="credentials.issue_failed", status=503)


async def set_status(*, credential: Credential, purpose: str, value: bool, reason: str) -> Credential:
    """Set or clear a status bit (revocation is final: it cannot be cleared)."""
    if purpose not in status_list.PURPOSES:
        raise ApiError("未知的状态类型", code="credentials.bad_purpose", status=422)
    if purpose == "revocation":
        if not value and credential.revoked:
            raise ApiError("已撤销的凭证不能恢复", code="credentials.revocation_final", status=409)
        credential.revoked = True if value else credential.revoked
    else:
        credential.suspended = value
    credential.status_reason = reason
    await credential.save(update_fields=["revoked", "suspended", "status_reason"])
    return credential


async def status_list_credential(*, settings: Settings, community: Community, number: int, purpose: str) -> dict:
    """The signed BitstringStatusListCredential, built from the credentials' current flags."""
    flag = {"revocation": "revoked", "suspension": "suspended"}[purpose]
    indices = await Credential.filter(community_id=community.id, status_list=number, **{flag: True}).values_list(
        "status_index", flat=True
    )
    signer = await signer_for(settings=settings, community=community)
    return sign_status_list(signer, status_list_url(settings, community.code, number, purpose), purpose, indices)


def sign_status_list(signer: IssuerSigner, url: str, purpose: str, indices: list[int]) -> dict:
    now = datetime.now(UTC)
    document = status_list.status_list_credential(
        list_url=url, issuer=signer.did, purpose=purpose, set_indices=set(indices), valid_from=xsd(now),
        valid_until=xsd(now + timedelta(seconds=status_list.LIST_VALIDITY_S)),
    )
    return eddsa_jcs.add_proof(document, private_key=signer.private_key, verification_method=signer.verification_method)


async def token_status_list(*, settings: Settings, community: Community, number: int) -> str:
    """The signed IETF Status List Token of a list pair: revoked entries INVALID, suspended SUSPENDED."""
    rows = await Credential.filter(community_id=community.id, status_list=number).filter(
        Q(revoked=True) | Q(suspended=True)).values_list("status_index", "revoked")
    statuses = {index: token_status.INVALID if revoked else token_status.SUSPENDED for index, revoked in rows}
    signer = await signer_for(settings=settings, community=community)
    uri = token_status_list_url(settings, community.code, number)
    encoded = await asyncio.to_thread(token_status.encode_list, statuses, size=LIST_SIZE)
    return token_status.sign_token(uri=uri, issuer=signer.did, status_list=encoded, private_key=signer.private_key,
                                   kid=signer.verification_method)


async def status_lists_for(*, settings: Settings, credentials: list[Credential]) -> dict[str, dict]:
    """Every status list credential the given credentials point at, by URL."""
    wanted = {(c.community_id, c.status_list) for c in credentials}  # type: ignore[attr-defined]
    out: dict[str, dict] = {}
    for community_id, number in sorted(wanted):
        community = await Community.get(id=community_id)
        for purpose in status_list.PURPOSES:
            out[status_list_url(settings, community.code, number, purpose)] = await status_list_credential(
                settings=settings, community=community, number=number, purpose=purpose
            )
    return out


async def did_documents_for(*, settings: Settings, community_ids: set[int]) -> dict[str, dict]:
    out = {}
    for community in await Community.filter(id__in=list(community_ids)):
        out[community_did(settings, community.code)] = await community_did_document(
            settings=settings, community=community
        )
    return out


def trust_json(trust: Any) -> dict[str, Any] | None:
    """chain.verify.Trust as the JSON a verifier loads (`Trust.from_json`): witness keys with their
    proofs of possession (a verifier refuses a key without one) and tlog-cosignature keys."""
    if trust is None:
        return None
    return trust.to_json()


async def verify_document(*, settings: Settings, document: Any, inclusion: dict | None, trust: Any) -> Report:
    """Verify a presented credential against this server's issuers, status lists and chain trust."""
    did_documents: dict[str, dict] = {}
    status_lists: dict[str, dict] = {}
    issuer = document.get("issuer") if isinstance(document, dict) else None
    community = None
    prefix = community_did(settings, "")
    if isinstance(issuer, str) and issuer.startswith(prefix):
        community = await Community.get_or_none(code=unquote(issuer[len(prefix):]))
    stored = None
    if community is not None:
        did_documents[issuer] = await community_did_document(settings=settings, community=community)
        entries = document.get("credentialStatus") or []
        for entry in (entries if isinstance(entries, list) else [entries])[: 2 * len(status_list.PURPOSES)]:
            url = entry.get("statusListCredential", "") if isinstance(entry, dict) else ""
            if url in status_lists:
                continue
            prefix = f"{settings.effective_public_url}/credentials/status/{community.code}/"
            number, _, purpose = url[len(prefix):].partition("/") if url.startswith(prefix) else ("", "", "")
            if number.isdigit() and purpose in status_list.PURPOSES:
                status_lists[url] = await status_list_credential(
                    settings=settings, community=community, number=int(number), purpose=purpose
                )
        try:
            stored = await Credential.get_or_none(leaf_hash=leaf_hash(document).hex())
        except CredentialError:  # a document RFC 8785 cannot canonicalize: the format check says why
            stored = None
    if inclusion is None and stored is not None:
        inclusion = stored.inclusion
    # a BLS pairing and two 16 KB lists: off the event loop (DESIGN §9)
    return await asyncio.to_thread(
        verify_credential, document, did_documents=did_documents, status_lists=status_lists, inclusion=inclusion,
        trust=trust, require_anchor=False,
    )


def qr_payload(settings: Settings, credential: Credential) -> str:
    """What a verifier's scanner reads: where to fetch the credential and the hash it must have."""
    return f"{settings.effective_public_url}/credentials/{credential.id}#sha256={credential.leaf_hash}"


def view(credential: Credential, settings: Settings) -> dict[str, Any]:
    return {
        "id": str(credential.id),
        "certification_id": credential.certification_id,  # type: ignore[attr-defined]
        "period_id": credential.period_id,  # type: ignore[attr-defined]
        "issued_at": credential.issued_at.isoformat() if credential.issued_at else None,
        "revoked": credential.revoked,
        "suspended": credential.suspended,
        "leaf_hash": credential.leaf_hash,
        "anchored": credential.inclusion is not None,
        "anchor_index": credential.anchor_index,
        "credential": credential.document,
        "inclusion": credential.inclusion,
        "verifier_qr": qr_payload(settings, credential),
    }


def sd_jwt_expiry(*, month: str, due_day: int) -> datetime:
    """When the SD-JWT of a month's certification stops being presentable: the end of the next
    month's due day (China time). Until then it is the resident's latest proof of life; by then
    the next month's certification replaces it, or the resident is overdue and a portal must not
    go on accepting last month's proof."""
    year, number = map(int, month.split("-"))
    year, number = (year + 1, 1) if number == 12 else (year, number + 1)
    day = min(due_day, calendar.monthrange(year, number)[1])
    return datetime.combine(date(year, number, day) + timedelta(days=1), datetime.min.time(), CHINA)


async def sd_jwt_for(*, settings: Settings, credential: Credential, cipher: FieldCipher) -> str:
    """The SD-JWT VC of the same certification, for a portal the resident shows it to.

    Refused for a revoked or suspended credential, and once its month's validity is over. In
    clear: the month, programme, method, time and assurance, with ``iat``/``exp`` and the
    ``status`` reference (IETF Token Status List, same random index as the W3C form). Each
    separately disclosable, so nothing links two presentations unless the resident reveals
    it: the name, the ID-number suffix, the credential id and the subject id.
    """
    from backend.residents.service import ID_PURPOSE

    if credential.revoked or credential.suspended:
        raise ApiError("这份凭证已被撤销或暂停，不能再出示", code="credentials.not_valid", status=409)
    period = await Period.get(id=credential.period_id)  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    expires = sd_jwt_expiry(month=period.month, due_day=period.due_day)
    if expires <= now:
        raise ApiError(f"{period.month} 的凭证已过有效期，请出示最近一个月的凭证", code="credentials.expired",
                       status=409)
    resident = await Resident.get(id=credential.resident_id)  # type: ignore[attr-defined]
    community = await Community.get(id=credential.community_id)  # type: ignore[attr-defined]
    signer = await signer_for(settings=settings, community=community)
    subject = credential.document["credentialSubject"]
    national_id = cipher.decrypt_text(resident.national_id_cipher, purpose=ID_PURPOSE)
    claims = {
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "status": token_status.reference(token_status_list_url(settings, community.code, credential.status_list),
                                         credential.status_index),
        "period": subject["period"],
        "programme": subject["programme"],
        "method": subject["method"],
        "certified_at": subject["certifiedAt"],
        "assurance_level": subject["assuranceLevel"],
    }
    return sdjwt.issue(
        claims=claims, private_key=signer.private_key, kid=signer.verification_method, issuer=signer.did,
        disclosable={"name": resident.name, "id_number_suffix": national_id[-4:],
                     "credential_id": credential.document["id"], "subject_id": subject["id"]},
    )
