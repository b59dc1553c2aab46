"""Rules for communities and residents: scoped lookups, create/update, roster import, consent.

Every function that reads residents takes `community_ids` (the caller's visible communities,
None for all): a resident outside them is "not found", never "forbidden", so staff cannot
even learn that someone is registered elsewhere.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from backend.errors import ApiError, Conflict, NotFoundError, ValidationFailed
from backend.residents import roster as roster_parser
from backend.residents import text as text_rules
from backend.residents.models import (
    Community,
    ConsentRecord,
    Department,
    HelperBinding,
    Resident,
    ResidentStatus,
)
from backend.residents.national_id import InvalidNationalId, NationalId, parse_national_id, programme_tier
from backend.security.fieldcrypt import FieldCipher
from backend.security.masking import mask_id, mask_phone

ID_PURPOSE = "national_id"
ID_SUFFIX_PURPOSE = "national_id_suffix"
PHONE_PURPOSE = "phone"
MIN_AGE = roster_parser.MIN_AGE
MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
ID_SUFFIX_RE = re.compile(r"^\d{3}[\dXx]$")  # what staff type for "ID ending in …"


# ---- lookups ----

def _scoped(community_ids: list[int] | None):
    query = Resident.all()
    return query if community_ids is None else query.filter(community_id__in=community_ids)


async def get_resident(*, resident_id: int, community_ids: list[int] | None) -> Resident | None:
    return await _scoped(community_ids).get_or_none(id=resident_id)


async def get_resident_or_raise(*, resident_id: int, community_ids: list[int] | None) -> Resident:
    resident = await get_resident(resident_id=resident_id, community_ids=community_ids)
    if resident is None:
        raise NotFoundError("没有找到这位居民", code="resident.not_found")
    return resident


async def get_community_or_raise(*, community_id: int, community_ids: list[int] | None) -> Community:
    if community_ids is not None and community_id not in community_ids:
        raise NotFoundError("没有找到这个社区", code="community.not_found")
    community = await Community.get_or_none(id=community_id)
    if community is None:
        raise NotFoundError("没有找到这个社区", code="community.not_found")
    return community


async def list_communities(*, community_ids: list[int] | None) -> list[Community]:
    query = Community.all() if community_ids is None else Community.filter(id__in=community_ids)
    return await query.order_by("id")


async def list_departments() -> list[Department]:
    return await Department.all().order_by("id")


async def search_residents(
    *,
    community_ids: list[int] | None,
    cipher: FieldCipher,
    q: str | None = None,
    id_suffix: str | None = None,
    status: str | None = None,
    tier: str | None = None,
    page: int = 1,
    size: int = 20,
) -> tuple[int, list[Resident]]:
    """Residents matching the filters, ordered by name.

    `q` is what staff type in one search box: a full ID number or a mobile number is matched
    exactly through its keyed hash (identifiers are never stored in clear, so there is no
    partial match on them), four characters that look like an ID ending also match that
    suffix, and anything else matches part of the name or address.
    """
    query = _scoped(community_ids)
    if q:
        query = query.filter(_search_filter(q.strip(), cipher))
    if id_suffix:
        query = query.filter(id_suffix_index=cipher.blind_index(id_suffix.upper(), purpose=ID_SUFFIX_PURPOSE))
    if status:
        query = query.filter(status=status)
    if tier:
        query = query.filter(programme_tier=tier)
    total = await query.count()
    residents = await query.order_by("name", "id").offset((page - 1) * size).limit(size)
    return total, residents


def _exact_identifier(q: str) -> tuple[str, str] | None:
    """("national_id" | "phone", normalised value) when `q` is a whole identifier, else None."""
    compact = "".join(q.split())
    phone = roster_parser.normalise_phone(compact)
    if MOBILE_RE.match(phone):
        return PHONE_PURPOSE, phone
    if len(compact) == 18:
        try:
            return ID_PURPOSE, parse_national_id(compact).number
        except InvalidNationalId:
            return None
    return None


def _search_filter(q: str, cipher: FieldCipher) -> Q:
    exact = _exact_identifier(q)
    if exact is not None:
        purpose, value = exact
        column = "phone_index" if purpose == PHONE_PURPOSE else "national_id_index"
        return Q(**{column: cipher.blind_index(value, purpose=purpose)})
    text_match = Q(name__contains=q) | Q(address__contains=q)
    if ID_SUFFIX_RE.match(q):
        return text_match | Q(id_suffix_index=cipher.blind_index(q.upper(), purpose=ID_SUFFIX_PURPOSE))
    return text_match


def redacted_search(q: str | None) -> str | None:
    """The search text as the audit trail may keep it: a whole ID or phone number is masked."""
    if not q:
        return q
    exact = _exact_identifier(q.strip())
    if exact is None:
        return q
    purpose, value = exact
    return mask_phone(value) if purpose == PHONE_PURPOSE else mask_id(value)


# ---- views ----

def age_today(birth_date: date, today: date | None = None) -> int:
    today = today or date.today()
    return today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))


def summary_view(resident: Resident, cipher: FieldCipher) -> dict[str, Any]:
    """What a list shows: enough to recognise someone, identifiers masked."""
    national_id = cipher.decrypt_text(resident.national_id_cipher, purpose=ID_PURPOSE)
    phone = cipher.decrypt_text(resident.phone_cipher, purpose=PHONE_PURPOSE) if resident.phone_cipher else None
    return {
        "id": resident.id,
        "public_id": str(resident.public_id),
        "community_id": resident.community_id,  # type: ignore[attr-defined]
        "name": resident.name,
        "sex": resident.sex,
        "birth_date": resident.birth_date.isoformat(),
        "age": age_today(resident.birth_date),
        "programme_tier": resident.programme_tier,
        "status": str(resident.status),
        "id_suffix": national_id[-4:],
        "phone_masked": mask_phone(phone) if phone else None,
        "address": resident.address,
    }


def detail_view(resident: Resident, cipher: FieldCipher) -> dict[str, Any]:
    """Full record for staff handling this person (every call is audited by the route)."""
    view = summary_view(resident, cipher)
    view.update(
        {
            "national_id": cipher.decrypt_text(resident.national_id_cipher, purpose=ID_PURPOSE),
            "phone": cipher.decrypt_text(resident.phone_cipher, purpose=PHONE_PURPOSE)
            if resident.phone_cipher
            else None,
            "living_address": resident.living_address,
            "qr_version": resident.qr_version,
            "created_at": resident.created_at.isoformat(),
            "updated_at": resident.updated_at.isoformat(),
        }
    )
    return view


# ---- writes ----

def _parse_id_or_raise(raw: str) -> NationalId:
    try:
        return parse_national_id(raw)
    except InvalidNationalId as exc:
        raise ValidationFailed(exc.message, code=exc.code, field="national_id") from None


def _identity_columns(national_id: NationalId, cipher: FieldCipher) -> dict[str, Any]:
    return {
        "national_id_cipher": cipher.encrypt_text(national_id.number, purpose=ID_PURPOSE),
        "national_id_index": cipher.blind_index(national_id.number, purpose=ID_PURPOSE),
        "id_suffix_index": cipher.blind_index(national_id.suffix4, purpose=ID_SUFFIX_PURPOSE),
        "birth_date": national_id.birth_date,
        "sex": national_id.sex,
    }


def _phone_columns(phone: str | None, cipher: FieldCipher) -> dict[str, Any]:
    if not phone:
        return {"phone_cipher": None, "phone_index": None}
    return {
        "phone_cipher": cipher.encrypt_text(phone, purpose=PHONE_PURPOSE),
        "phone_index": cipher.blind_index(phone, purpose=PHONE_PURPOSE),
    }


def _tier_or_raise(national_id: NationalId) -> str:
    tier = programme_tier(national_id.age_on(date.today()))
    if tier is None:
        raise ValidationFailed(f"未满 {MIN_AGE} 周岁，不在高龄补贴范围内", code="resident.too_young", field="national_id")
    return tier


def _normalise_phone_or_raise(raw: str | None) -> str | None:
    if not raw:
        return None
    phone = roster_parser.normalise_phone(raw)
    if not MOBILE_RE.match(phone):
        raise ValidationFailed("请输入正确的 11 位手机号码", code="phone.invalid", field="phone")
    return phone


def _clean_address(field_name: str, raw: str | None) -> str | None:
    """The roster's rules for the same column (one validator for every path in)."""
    return text_rules.clean_address(raw, field=field_name, label=roster_parser.FIELD_LABELS[field_name],
                                    required=field_name == "address")


async def create_resident(
    *, community: Community, name: str, national_id: str, phone: str | None, address: str,
    living_address: str | None, cipher: FieldCipher,
) -> Resident:
    name = text_rules.clean_name(name)
    address = _clean_address("address", address) or ""
    living_address = _clean_address("living_address", living_address)
    parsed = _parse_id_or_raise(national_id)
    tier = _tier_or_raise(parsed)
    normalised_phone = _normalise_phone_or_raise(phone)
    # Only this community's register is consulted: whether another community has the person is
    # not the caller's to learn (the district resolves the move, see backend.residents.moves).
    duplicate = Conflict("该身份证号已在本社区登记", code="resident.duplicate", field="national_id")
    if await Resident.exists(community_id=community.id,
                             national_id_index=cipher.blind_index(parsed.number, purpose=ID_PURPOSE)):
        raise duplicate
    try:
        return await Resident.create(
            public_id=uuid.uuid4(), community=community, name=name, address=address,
            living_address=living_address or "", programme_tier=tier,
            **_identity_columns(parsed, cipher), **_phone_columns(normalised_phone, cipher),
        )
    except IntegrityError:  # the same person registered here a moment ago by someone else
        raise duplicate from None


async def update_resident(*, resident: Resident, changes: dict[str, Any], cipher: FieldCipher) -> list[str]:
    """Apply the given fields; returns the names of the fields that changed (for the audit trail)."""
    changed: list[str] = []
    if "name" in changes:
        name = text_rules.clean_name(changes["name"] or "")
        if name != resident.name:
            resident.name = name
            changed.append("name")
    for simple in ("address", "living_address"):
        if simple in changes:
            value = _clean_address(simple, changes[simple]) or ""
            if value != getattr(resident, simple):
                setattr(resident, simple, value)
                changed.append(simple)
    if "phone" in changes:
        columns = _phone_columns(_normalise_phone_or_raise(changes["phone"]), cipher)
        if columns["phone_index"] != resident.phone_index:
            for key, value in columns.items():
                setattr(resident, key, value)
            changed.append("phone")
    if "status" in changes and changes["status"] != str(resident.status):
        resident.status = ResidentStatus(changes["status"])
        changed.append("status")
    if changed:
        await resident.save()
    return changed


async def delete_resident(*, resident: Resident) -> None:
    await resident.delete()


# ---- consent ----

async def record_consent(
    *, resident: Resident, kind: str, version: str, method: str, witnessed_by_id: int | None,
    granted_at: datetime | None = None,
) -> ConsentRecord:
    return await ConsentRecord.create(
        resident=resident, kind=kind, version=version, method=method, witnessed_by_id=witnessed_by_id,
        granted_at=granted_at or datetime.now(UTC),
    )


async def revoke_consent(*, resident: Resident, consent_id: int) -> ConsentRecord:
    consent = await ConsentRecord.get_or_none(id=consent_id, resident_id=resident.id)
    if consent is None:
        raise NotFoundError("没有找到这条授权记录", code="consent.not_found")
    if consent.revoked_at is None:
        consent.revoked_at = datetime.now(UTC)
        await consent.save(update_fields=["revoked_at"])
    return consent


async def list_consents(*, resident: Resident) -> list[ConsentRecord]:
    return await ConsentRecord.filter(resident_id=resident.id).order_by("-granted_at")


def consent_view(consent: ConsentRecord) -> dict[str, Any]:
    return {
        "id": consent.id,
        "kind": consent.kind,
        "version": consent.version,
        "method": consent.method,
        "granted_at": consent.granted_at.isoformat(),
        "witnessed_by": consent.witnessed_by_id,  # type: ignore[attr-defined]
        "revoked_at": consent.revoked_at.isoformat() if consent.revoked_at else None,
    }


async def list_helpers(*, resident: Resident) -> list[HelperBinding]:
    """This resident's helper bindings with the helper loaded (staff recognise them by phone)."""
    return await HelperBinding.filter(resident_id=resident.id).prefetch_related("helper").order_by("-created_at", "-id")


# ---- roster import ----

@dataclass
class ImportReport:
    """What an import did or would do; `errors` lists every bad row with its reason."""

    format: str = ""
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    committed: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format, "rows": self.rows, "created": self.created, "updated": self.updated,
            "unchanged": self.unchanged, "errors": self.errors, "ok": self.ok, "committed": self.committed,
        }


def _row_error(line: int, field_name: str | None, code: str, message: str) -> dict[str, Any]:
    return {"line": line, "field": field_name, "code": code, "message": message}


async def import_roster(
    *, community: Community, filename: str, data: bytes, commit: bool, cipher: FieldCipher,
) -> ImportReport:
    """Check a roster (dry run) or import it all-or-nothing; re-importing updates, never duplicates."""
    try:
        # parsing a large workbook is blocking CPU work: keep it off the event loop
        parsed = await asyncio.to_thread(roster_parser.parse_roster, filename, data, as_of=date.today())
    except roster_parser.RosterFileError as exc:
        raise ApiError(exc.message, code=exc.code, status=422, field="file") from None
    bad_lines = {e.line for e in parsed.errors if e.line != parsed.header_line}
    report = ImportReport(format=parsed.format, rows=len(parsed.rows) + len(bad_lines))
    report.errors = [_row_error(e.line, e.field, e.code, e.message) for e in parsed.errors]

    indexes = {row.line: cipher.blind_index(row.national_id.number, purpose=ID_PURPOSE) for row in parsed.rows}
    existing: dict[str, Resident] = {}
    wanted = list(indexes.values())
    for start in range(0, len(wanted), 500):  # this community's register only: see create_resident
        for resident in await Resident.filter(community_id=community.id, national_id_index__in=wanted[start:start + 500]):
            existing[resident.national_id_index] = resident
    plan = [(row, existing.get(indexes[row.line])) for row in parsed.rows]
    report.errors.sort(key=lambda e: (e["line"], e["field"] or ""))
    for row, current in plan:
        if current is None:
            report.created += 1
        elif _roster_changes(row, current, cipher):
            report.updated += 1
        else:
            report.unchanged += 1
    if not report.ok or not commit:
        return report

    async with in_transaction() as conn:
        for row, current in plan:
            if current is None:
                await Resident.create(
                    public_id=uuid.uuid4(), community=community, name=row.name, address=row.address,
                    living_address=row.living_address or "", programme_tier=row.tier,
                    **_identity_columns(row.national_id, cipher), **_phone_columns(row.phone, cipher),
                    using_db=conn,
                )
                continue
            changes = _roster_changes(row, current, cipher)
            if changes:
                for key, value in changes.items():
                    setattr(current, key, value)
                await current.save(using_db=conn)
    report.committed = True
    return report


def _roster_changes(row: roster_parser.RosterRow, current: Resident, cipher: FieldCipher) -> dict[str, Any]:
    wanted: dict[str, Any] = {
        "name": row.name,
        "address": row.address,
        "living_address": row.living_address or "",
        "programme_tier": row.tier,
    }
    changes = {key: value for key, value in wanted.items() if getattr(current, key) != value}
    phone_columns = _phone_columns(row.phone, cipher)
    if phone_columns["phone_index"] != current.phone_index:
        changes.update(phone_columns)
    return changes


async def ensure_community(*, code: str, name: str, street: str = "", district: str = "", phone: str = "") -> Community:
    community, _ = await Community.get_or_create(
        code=code, defaults={"name": name, "street": street, "district": district, "phone": phone}
    )
    return community


async def ensure_department(*, code: str, name: str) -> Department:
    department, _ = await Department.get_or_create(code=code, defaults={"name": name})
    return department
