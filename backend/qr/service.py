"""Rules for personal QR codes: issuing, resolving, rotating, images, cards and scanning.

A QR code identifies; it never certifies by itself. Resolving a token checks the signature
(`backend.qr.tokens`) and then the database: the version must be the resident's current one,
so rotating (`qr_version + 1`) stops every old code at once. A failed scan never says whose
code it was.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from tortoise.expressions import F

from backend import ratelimit
from backend.auth.tokens import Principal
from backend.cache import Cache
from backend.errors import ApiError, NotFoundError, ValidationFailed
from backend.qr import cards as card_pdf
from backend.qr.images import ImageKind, QrImageCache
from backend.qr.tokens import QrSigner, TokenError, extract_token, scan_url
from backend.residents import bindings
from backend.residents import service as residents
from backend.residents.models import Community, Resident, ResidentStatus
from backend.security.fieldcrypt import FieldCipher
from backend.security.masking import mask_name

MAX_CARDS = 2000  # one request; a community's whole roster fits
SCANS_PER_MINUTE = 30  # per account: plenty for a person, useless for guessing
CARD_STATUSES = (ResidentStatus.ACTIVE, ResidentStatus.SUSPENDED)


class QrInvalid(ApiError):
    status = 400
    code = "qr.invalid"

    def __init__(self) -> None:
        super().__init__("无法识别这个二维码，请确认是社区发放的“智链”二维码")


class QrRotated(ApiError):
    status = 400
    code = "qr.rotated"

    def __init__(self) -> None:
        super().__init__("这个二维码已经作废，请使用社区新发的二维码")


# ---- tokens ----

def token_for(*, resident: Resident, signer: QrSigner) -> str:
    """The resident's current token."""
    return signer.make(public_id=resident.public_id, version=resident.qr_version)


def content_for(*, resident: Resident, signer: QrSigner, public_url: str) -> str:
    """What the resident's QR code holds: the app link carrying the current token."""
    return scan_url(public_url, token_for(resident=resident, signer=signer))


async def resolve_token(*, token: str, signer: QrSigner) -> Resident:
    """The resident a scanned token belongs to, if it is genuine and current (else QrInvalid/QrRotated)."""
    try:
        claims = signer.verify(extract_token(token))
    except TokenError:
        raise QrInvalid() from None
    resident = await Resident.get_or_none(public_id=claims.public_id)
    if resident is None or claims.version > resident.qr_version:
        raise QrInvalid()
    if claims.version < resident.qr_version:
        raise QrRotated()
    return resident


async def rotate(*, resident: Resident) -> Resident:
    """Issue a new code: bump the version atomically; every earlier code stops working."""
    await Resident.filter(id=resident.id).update(qr_version=F("qr_version") + 1)
    await resident.refresh_from_db(fields=["qr_version"])
    return resident


# ---- images and cards ----

async def image(
    *, resident: Resident, kind: ImageKind, signer: QrSigner, public_url: str, images: QrImageCache,
) -> bytes:
    """The resident's current QR code as PNG or SVG (rendered once per version, then cached)."""
    return await images.get(content_for(resident=resident, signer=signer, public_url=public_url), kind)


async def residents_for_cards(
    *, community: Community | None, resident_ids: Sequence[int] | None, community_ids: list[int] | None,
) -> list[Resident]:
    """The residents to print: the named ones (all must be visible), or a community's active roster."""
    if resident_ids is not None:
        wanted = list(dict.fromkeys(resident_ids))
        if len(wanted) > MAX_CARDS:
            raise ValidationFailed(f"一次最多打印 {MAX_CARDS} 张卡片", code="qr.too_many_cards", field="resident_ids")
        query = Resident.filter(id__in=wanted)
        if community_ids is not None:
            query = query.filter(community_id__in=community_ids)
        found = {r.id: r for r in await query}
        if len(found) != len(wanted):
            raise NotFoundError("没有找到这位居民", code="resident.not_found", field="resident_ids")
        return [found[rid] for rid in wanted]
    assert community is not None
    query = Resident.filter(community_id=community.id, status__in=list(CARD_STATUSES))
    if await query.count() > MAX_CARDS:
        raise ValidationFailed(f"一次最多打印 {MAX_CARDS} 张卡片，请选择居民分批打印", code="qr.too_many_cards")
    found = await query.order_by("name", "id")
    if not found:
        raise NotFoundError("这个社区还没有可打印卡片的居民", code="qr.no_residents")
    return found


async def cards(*, residents_to_print: Sequence[Resident], signer: QrSigner, public_url: str) -> bytes:
    """One A6 card per resident as a PDF, rendered off the event loop."""
    community_ids = {r.community_id for r in residents_to_print}  # type: ignore[attr-defined]
    communities = {c.id: c for c in await Community.filter(id__in=list(community_ids))}
    items = [
        card_pdf.Card(
            name=r.name,
            community_name=communities[r.community_id].name,  # type: ignore[attr-defined]
            community_phone=communities[r.community_id].phone,  # type: ignore[attr-defined]
            qr_content=content_for(resident=r, signer=signer, public_url=public_url),
            qr_version=r.qr_version,
        )
        for r in residents_to_print
    ]
    return await asyncio.to_thread(card_pdf.render_cards, items)


# ---- scanning ----

async def scan(
    *, token: str, principal: Principal, signer: QrSigner, cipher: FieldCipher, cache: Cache,
    staff_community_ids: list[int] | None = None,
) -> tuple[Resident, dict[str, Any]]:
    """What the caller may learn from scanning: only what their relation to the resident allows.

    Returns the resident (for the audit trail, never shown as such) and the view for the caller.
    """
    await ratelimit.hit(
        cache, f"qr:scan:{principal.actor}", limit=SCANS_PER_MINUTE, window_s=60,
        message="扫码太频繁，请稍后再试",
    )
    resident = await resolve_token(token=token, signer=signer)
    if principal.kind == "staff":
        visible = await residents.get_resident(resident_id=resident.id, community_ids=staff_community_ids)
        if visible is None:
            raise NotFoundError("没有找到这位居民", code="resident.not_found")
        return resident, {"relation": "staff", "resident": residents.summary_view(resident, cipher)}
    relation, binding = await bindings.relationship(app_user_id=principal.user_id, resident_id=resident.id)
    if relation == "self":
        return resident, {
            "relation": "self", "can_certify": True, "binding": None,
            "resident": {"id": resident.id, "display_name": resident.name, "status": str(resident.status)},
        }
    if relation == "helper" and binding is not None:
        return resident, {
            "relation": "helper", "can_certify": True, "binding": bindings.binding_view(binding),
            "resident": {"id": resident.id, "display_name": mask_name(resident.name), "status": str(resident.status)},
        }
    if relation == "pending" and binding is not None:
        # the caller asked already: say so, still nothing about the resident
        return resident, {"can_request_binding": False, "binding": {"id": binding.id, "status": "pending"}}
    return resident, {"can_request_binding": True}
