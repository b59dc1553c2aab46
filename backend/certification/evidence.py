"""Evidence other than a live face session: home visits by two staff, and passive sightings.

Both exist for people the camera cannot serve. A home visit needs two different staff
members (one records with a photo, another attests). Passive sightings from registered
community devices only put a resident on a list for staff to confirm: never automatic, and
never by the staff member who registered the devices that saw the resident.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.functions import Count

from backend.auth.models import StaffUser
from backend.certification import periods
from backend.certification.models import (
    Certification,
    Device,
    HomeVisit,
    Method,
    MonthStatus,
    PassiveSighting,
    ResidentMonth,
)
from backend.certification.records import Recorded, record_certification
from backend.errors import ApiError, Conflict, Forbidden, NotFoundError, Unauthorized, ValidationFailed
from backend.residents import text as text_rules
from backend.residents.models import Resident
from backend.security.fieldcrypt import FieldCipher

PHOTO_PURPOSE = "home_visit_photo"
MAX_PHOTO_BYTES = 5 * 1024 * 1024
SIGHTING_MAX_AGE = timedelta(hours=48)


def check_photo(data: bytes) -> None:
    """A JPEG or PNG by its content, not its name, and not too large."""
    if not data:
        raise ValidationFailed("请拍摄上门照片", code="visit.no_photo", field="photo")
    if len(data) > MAX_PHOTO_BYTES:
        raise ValidationFailed("照片太大（最大 5MB）", code="visit.photo_too_large", field="photo")
    if not (data.startswith(b"\xff\xd8\xff") or data.startswith(b"\x89PNG\r\n\x1a\n")):
        raise ValidationFailed("照片格式应为 JPG 或 PNG", code="visit.photo_type", field="photo")


async def record_home_visit(
    *, resident: Resident, staff_id: int, photo: bytes, note: str, cipher: FieldCipher,
) -> HomeVisit:
    check_photo(photo)
    note = text_rules.clean_free_text(note, field="note", label="上门情况说明", max_length=500, multiline=True)
    period = await periods.current_period(community_id=resident.community_id)  # type: ignore[attr-defined]
    if await Certification.exists(resident_id=resident.id, period_id=period.id):
        raise Conflict("本月已经认证过了", code="certify.already_certified")
    return await HomeVisit.create(
        resident_id=resident.id, period_id=period.id, first_staff_id=staff_id,
        photo_cipher=cipher.encrypt_bytes(photo, purpose=PHOTO_PURPOSE), note=note,
        visited_at=datetime.now(UTC),
    )


async def get_visit_or_raise(*, visit_id: int, community_ids: list[int] | None) -> HomeVisit:
    query = HomeVisit.filter(id=visit_id)
    if community_ids is not None:
        query = query.filter(resident__community_id__in=community_ids)
    visit = await query.prefetch_related("resident").first()
    if visit is None:
        raise NotFoundError("没有找到这条上门记录", code="visit.not_found")
    return visit


async def list_visits(*, community_ids: list[int] | None, pending: bool = True, page: int = 1, size: int = 50,
                      ) -> tuple[int, list[HomeVisit]]:
    """Home visits awaiting a second staff member (oldest first), or the confirmed ones (newest first)."""
    query = HomeVisit.filter(second_staff_id__isnull=pending)
    if community_ids is not None:
        query = query.filter(resident__community_id__in=community_ids)
    total = await query.count()
    order = "visited_at" if pending else "-confirmed_at"
    items = await query.order_by(order, "id").offset((page - 1) * size).limit(size).prefetch_related("resident",
                                                                                                     "period")
    return total, items


async def visit_views(visits: list[HomeVisit], *, viewer_id: int) -> list[dict[str, Any]]:
    """What the console lists: who was visited, by whom, and whether the viewer may attest."""
    staff_ids = {v.first_staff_id for v in visits} | {v.second_staff_id for v in visits if v.second_staff_id}
    names = dict(await StaffUser.filter(id__in=list(staff_ids)).values_list("id", "display_name"))
    certified = set(await Certification.filter(
        period_id__in=[v.period_id for v in visits],  # type: ignore[attr-defined]
        resident_id__in=[v.resident_id for v in visits],  # type: ignore[attr-defined]
    ).values_list("resident_id", "period_id"))
    return [{
        "id": v.id,
        "resident": {"id": v.resident.id, "name": v.resident.name, "community_id": v.resident.community_id},  # type: ignore[attr-defined]
        "period": v.period.month,
        "first_staff": {"id": v.first_staff_id, "name": names.get(v.first_staff_id, "")},
        "second_staff": {"id": v.second_staff_id, "name": names.get(v.second_staff_id, "")}
        if v.second_staff_id else None,
        "note": v.note,
        "visited_at": v.visited_at.isoformat(),
        "confirmed_at": v.confirmed_at.isoformat() if v.confirmed_at else None,
        "resident_certified": (v.resident_id, v.period_id) in certified,  # type: ignore[attr-defined]
        "can_attest": v.second_staff_id is None and v.first_staff_id != viewer_id,
    } for v in visits]


def visit_photo(visit: HomeVisit, cipher: FieldCipher) -> tuple[bytes, str]:
    """The decrypted photo and its content type (checked at upload: JPEG or PNG)."""
    data = cipher.decrypt_bytes(visit.photo_cipher, purpose=PHOTO_PURPOSE)
    return data, "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"


async def attest_home_visit(*, visit: HomeVisit, staff_id: int) -> Recorded:
    """The second staff member's attestation certifies the resident (method: home visit)."""
    if visit.first_staff_id == staff_id:
        raise Forbidden("上门认证需要另一位工作人员确认", code="visit.same_staff")
    claimed = await HomeVisit.filter(id=visit.id, second_staff_id=None).update(
        second_staff_id=staff_id, confirmed_at=datetime.now(UTC)
    )
    if not claimed:
        raise Conflict("这条上门记录已经确认过了", code="visit.already_confirmed")
    period = await periods.get_period_or_raise(period_id=visit.period_id, community_ids=None)  # type: ignore[attr-defined]
    return await record_certification(
        resident=visit.resident, period=period, method=Method.HOME_VISIT, attempt=None,
        assisted_by=f"staff:{visit.first_staff_id},staff:{staff_id}", assurance="attested",
    )


# ---- passive sightings ----

def parse_public_key(b64: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(b64, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, TypeError):
        raise ValidationFailed("设备公钥应为 32 字节 Ed25519 公钥的 base64", code="device.bad_key",
                               field="public_key") from None


async def register_device(*, community_id: int, name: str, public_key: str, registered_by: int) -> Device:
    """Register a device under the staff member who supplied its key: they can never confirm what it reports."""
    name = text_rules.clean_free_text(name, field="name", label="设备名称", max_length=64, required=True)
    parse_public_key(public_key)
    return await Device.create(community_id=community_id, name=name, public_key=public_key,
                               registered_by=registered_by)


async def record_sighting(*, device_id: int, signature_b64: str, body: bytes, min_score: float) -> PassiveSighting:
    """Accept a sighting signed by a registered, active device (Ed25519 over the exact body bytes)."""
    device = await Device.get_or_none(id=device_id, active=True)
    if device is None:
        raise Unauthorized("unknown or inactive device", code="device.unknown")
    try:
        parse_public_key(device.public_key).verify(base64.b64decode(signature_b64), body)
    except (InvalidSignature, ValueError):
        raise Unauthorized("signature does not verify with the device key", code="device.bad_signature") from None
    try:
        data = json.loads(body)
        resident_public_id = str(data["resident_public_id"])
        score = float(data["score"])
        seen_at = datetime.fromisoformat(str(data["seen_at"]))
        nonce = str(data["nonce"])[:64]
    except (ValueError, KeyError, TypeError):
        raise ValidationFailed("resident_public_id, score, seen_at (ISO 8601 with zone) and nonce are required",
                               code="sighting.bad_body") from None
    if seen_at.tzinfo is None:
        raise ValidationFailed("seen_at needs a time zone", code="sighting.bad_body", field="seen_at")
    now = datetime.now(UTC)
    if not now - SIGHTING_MAX_AGE <= seen_at <= now + timedelta(minutes=5):
        raise ValidationFailed("seen_at is outside the accepted window", code="sighting.stale", field="seen_at")
    if score < min_score:
        raise ValidationFailed("score below the configured minimum", code="sighting.low_score", field="score")
    resident = await Resident.get_or_none(public_id=resident_public_id, community_id=device.community_id)  # type: ignore[attr-defined]
    if resident is None:
        raise NotFoundError("resident not found in the device's community", code="sighting.unknown_resident")
    period = await periods.current_period(community_id=device.community_id)  # type: ignore[attr-defined]
    try:
        return await PassiveSighting.create(device_id=device.id, resident_id=resident.id, period_id=period.id,
                                            score=score, seen_at=seen_at, nonce=nonce)
    except IntegrityError:
        raise ApiError("nonce already used", code="sighting.replayed", status=409) from None


async def passive_candidates(*, community_id: int, min_sightings: int) -> list[dict[str, Any]]:
    """Uncertified residents with enough sightings this period, for staff to confirm."""
    period = await periods.current_period(community_id=community_id)
    rows = await PassiveSighting.filter(period_id=period.id).group_by("resident_id").annotate(
        n=Count("id")
    ).values("resident_id", "n")
    enough = {r["resident_id"]: r["n"] for r in rows if r["n"] >= min_sightings}
    if not enough:
        return []
    open_rows = await ResidentMonth.filter(
        period_id=period.id, resident_id__in=list(enough), status__in=[MonthStatus.PENDING, MonthStatus.OVERDUE]
    ).prefetch_related("resident")
    return [{"resident_id": r.resident_id, "name": r.resident.name, "sightings": enough[r.resident_id],  # type: ignore[attr-defined]
             "period": period.month} for r in open_rows]


async def confirm_passive(*, resident: Resident, staff_id: int, min_sightings: int) -> Recorded:
    """Certify from sightings, confirmed by someone other than whoever registered the devices that saw them.

    Like the home visit's two staff: whoever registered a device holds (or chose) its key and could
    post sightings at will, so the sightings of devices they registered never count toward their own
    confirmation; someone else has to confirm.
    """
    period = await periods.current_period(community_id=resident.community_id)  # type: ignore[attr-defined]
    seen = PassiveSighting.filter(period_id=period.id, resident_id=resident.id)
    count = await seen.count()
    if count < min_sightings:
        raise Conflict(f"本月只有 {count} 次识别记录，不足 {min_sightings} 次，不能确认", code="passive.not_enough")
    usable = await seen.filter(Q(device__registered_by__isnull=True) | ~Q(device__registered_by=staff_id)).count()
    if usable < min_sightings:
        raise Forbidden(f"本月的识别记录有 {count - usable} 次来自您登记的设备，去掉后不足 {min_sightings} 次；"
                        "请另一位工作人员确认", code="passive.own_device")
    return await record_certification(resident=resident, period=period, method=Method.PASSIVE, attempt=None,
                                      assisted_by=f"staff:{staff_id}", assurance="low")
