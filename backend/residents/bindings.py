"""Helper bindings: who may certify for an elder besides the elder themself.

A helper (a child, a neighbour, a grid worker) asks by scanning the elder's QR code; the
request stays pending until the elder (the app user linked to that resident) or staff of the
elder's community approve it. Either side, or staff, may revoke at any time; a revoked pair may
ask again. The certification module asks `can_certify` and nothing else. Each step leaves an
in-app notice for the other side (backend/notify/notices.py): the elder reads who asks, the
helper reads the answer.

Statuses are those of `BindingStatus`: a rejected request is stored as `revoked` (the audit
trail says `binding.reject`), since the table has no separate state for it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from backend import ratelimit
from backend.auth.models import AppUser
from backend.cache import Cache
from backend.errors import ApiError, Conflict, NotFoundError, RateLimited
from backend.notify import notices
from backend.residents.models import BindingStatus, HelperBinding, Resident
from backend.security.fieldcrypt import FieldCipher
from backend.security.masking import mask_name, mask_phone

PHONE_PURPOSE = "phone"
MAX_PENDING_PER_HELPER = 5  # open requests one helper may have at once
MAX_REQUESTS_PER_DAY = 20  # requests (including re-requests) one helper may make per day


class Relation(StrEnum):
    CHILD = "child"
    SPOUSE = "spouse"
    RELATIVE = "relative"
    NEIGHBOUR = "neighbour"
    GRID_WORKER = "grid_worker"
    OTHER = "other"


RELATION_LABELS: dict[str, str] = {
    Relation.CHILD: "子女",
    Relation.SPOUSE: "配偶",
    Relation.RELATIVE: "亲属",
    Relation.NEIGHBOUR: "邻居",
    Relation.GRID_WORKER: "网格员",
    Relation.OTHER: "其他",
}


class BindingNotFound(NotFoundError):
    code = "binding.not_found"

    def __init__(self) -> None:
        super().__init__("没有找到这条绑定记录")


class BindingNotPending(Conflict):
    code = "binding.not_pending"

    def __init__(self) -> None:
        super().__init__("这条绑定申请已经处理过了")


# ---- the question the certification module asks ----

async def can_certify(*, app_user_id: int, resident_id: int) -> str | None:
    """"self" if the app user is the resident, "helper" if an approved helper, else None."""
    user = await AppUser.get_or_none(id=app_user_id, is_active=True)
    if user is None:
        return None
    if user.resident_id == resident_id:  # type: ignore[attr-defined]
        return "self"
    if await HelperBinding.exists(helper_id=app_user_id, resident_id=resident_id, status=BindingStatus.APPROVED):
        return "helper"
    return None


async def relationship(*, app_user_id: int, resident_id: int) -> tuple[str | None, HelperBinding | None]:
    """How an app user stands to a resident: ("self" | "helper" | "pending" | None, the binding if any)."""
    user = await AppUser.get_or_none(id=app_user_id, is_active=True)
    if user is None:
        return None, None
    if user.resident_id == resident_id:  # type: ignore[attr-defined]
        return "self", None
    binding = await HelperBinding.get_or_none(helper_id=app_user_id, resident_id=resident_id)
    if binding is None or binding.status == BindingStatus.REVOKED:
        return None, binding
    return ("helper" if binding.status == BindingStatus.APPROVED else "pending"), binding


# ---- requests ----

async def request_binding(
    *, resident: Resident, helper_id: int, relation: str, cache: Cache, cipher: FieldCipher,
) -> HelperBinding:
    """Ask to help `resident` (after a verified QR scan); pending until the elder or staff approve.

    The elder is told in the app who asks (the helper's masked phone and the relation they gave).
    """
    relation = Relation(relation).value
    helper = await AppUser.get_or_none(id=helper_id, is_active=True)
    if helper is None:
        raise ApiError("账号不可用，请重新登录", code="binding.helper_unavailable", status=403)
    if helper.resident_id == resident.id:  # type: ignore[attr-defined]
        raise Conflict("这是您本人的二维码，无需绑定，可直接认证", code="binding.self")
    existing = await HelperBinding.get_or_none(helper_id=helper_id, resident_id=resident.id)
    if existing is not None and existing.status == BindingStatus.PENDING:
        raise Conflict("已提交绑定申请，请等待老人或社区确认", code="binding.already_pending")
    if existing is not None and existing.status == BindingStatus.APPROVED:
        raise Conflict("您已经绑定了这位老人，可以直接帮TA认证", code="binding.already_approved")
    pending = await HelperBinding.filter(helper_id=helper_id, status=BindingStatus.PENDING).count()
    if pending >= MAX_PENDING_PER_HELPER:
        raise RateLimited(
            f"您有 {pending} 条绑定申请还在等待确认，请等对方确认后再申请",
            code="binding.too_many_pending", retry_after=3600,
        )
    await ratelimit.hit(
        cache, f"binding:request:{helper_id}", limit=MAX_REQUESTS_PER_DAY, window_s=86400,
        message="今天的绑定申请次数已用完，请明天再试",
    )
    if existing is not None:  # revoked or rejected before: ask again
        updated = await HelperBinding.filter(id=existing.id, status=BindingStatus.REVOKED).update(
            status=BindingStatus.PENDING, relation=relation, approved_by=None, decided_at=None,
        )
        if not updated:
            raise Conflict("已提交绑定申请，请等待老人或社区确认", code="binding.already_pending")
        await existing.refresh_from_db()
        binding = existing
    else:
        try:
            async with in_transaction():  # a savepoint inside a caller's transaction: losing the race leaves it usable
                binding = await HelperBinding.create(resident=resident, helper_id=helper_id, relation=relation)
        except IntegrityError:  # the same request raced in twice
            raise Conflict("已提交绑定申请，请等待老人或社区确认", code="binding.already_pending") from None
    await notices.binding_requested(binding=binding, helper_phone_masked=helper_phone_masked(helper, cipher))
    return binding


# ---- lookups for each party ----

async def get_binding(*, binding_id: int) -> HelperBinding | None:
    return await HelperBinding.get_or_none(id=binding_id).prefetch_related("resident", "helper")


async def get_for_elder_or_raise(*, binding_id: int, app_user_id: int) -> HelperBinding:
    """A binding of the resident linked to this app user (only the elder may approve in the app)."""
    user = await AppUser.get_or_none(id=app_user_id, is_active=True)
    binding = await get_binding(binding_id=binding_id)
    if user is None or binding is None or user.resident_id is None:  # type: ignore[attr-defined]
        raise BindingNotFound()
    if binding.resident_id != user.resident_id:  # type: ignore[attr-defined]
        raise BindingNotFound()
    return binding


async def get_for_party_or_raise(*, binding_id: int, app_user_id: int) -> HelperBinding:
    """A binding where this app user is the helper or the elder."""
    binding = await get_binding(binding_id=binding_id)
    if binding is None:
        raise BindingNotFound()
    if binding.helper_id == app_user_id:  # type: ignore[attr-defined]
        return binding
    user = await AppUser.get_or_none(id=app_user_id, is_active=True)
    if user is not None and user.resident_id is not None and user.resident_id == binding.resident_id:  # type: ignore[attr-defined]
        return binding
    raise BindingNotFound()


async def get_for_resident_or_raise(*, binding_id: int, resident: Resident) -> HelperBinding:
    """A binding of this (already scope-checked) resident, for staff."""
    binding = await get_binding(binding_id=binding_id)
    if binding is None or binding.resident_id != resident.id:  # type: ignore[attr-defined]
        raise BindingNotFound()
    return binding


def helper_phone_masked(helper: AppUser, cipher: FieldCipher) -> str:
    """How the elder recognises a helper (who has no name with us): 138****5678."""
    return mask_phone(cipher.decrypt_text(helper.phone_cipher, purpose=PHONE_PURPOSE))


async def _helper_phone(binding: HelperBinding, cipher: FieldCipher) -> str:
    helper = await AppUser.get(id=binding.helper_id)  # type: ignore[attr-defined]
    return helper_phone_masked(helper, cipher)


def party_of(binding: HelperBinding, app_user_id: int) -> str:
    """"helper" or "resident": which side of the binding this app user is on."""
    return "helper" if binding.helper_id == app_user_id else "resident"  # type: ignore[attr-defined]


# ---- decisions ----

async def decide(*, binding: HelperBinding, approve: bool, decided_by: str, cipher: FieldCipher) -> HelperBinding:
    """Approve or reject a pending request; `decided_by` is "resident" or "staff:<id>".

    The helper is told the answer; when staff approve, the elder is told of their new helper.
    """
    now = datetime.now(UTC)
    changes: dict[str, Any] = {"decided_at": now}
    if approve:
        changes.update(status=BindingStatus.APPROVED, approved_by=decided_by)
    else:
        changes.update(status=BindingStatus.REVOKED, approved_by=None)
    updated = await HelperBinding.filter(id=binding.id, status=BindingStatus.PENDING).update(**changes)
    if not updated:
        raise BindingNotPending()
    await binding.refresh_from_db()
    await notices.binding_decided(binding=binding, approved=approve, decided_by=decided_by,
                                  helper_phone_masked=await _helper_phone(binding, cipher))
    return binding


async def revoke(*, binding: HelperBinding, by: str, cipher: FieldCipher) -> HelperBinding:
    """End a binding (or withdraw a pending request); revoking twice is harmless.

    `by` is "helper", "resident" or "staff:<id>": the other side(s) are told, once, by whoever
    actually changed the row.
    """
    if binding.status != BindingStatus.REVOKED:
        was = BindingStatus(binding.status)
        changed = await HelperBinding.filter(id=binding.id).exclude(status=BindingStatus.REVOKED).update(
            status=BindingStatus.REVOKED, decided_at=datetime.now(UTC),
        )
        await binding.refresh_from_db()
        if changed:
            await notices.binding_revoked(binding=binding, was=was, by=by,
                                          helper_phone_masked=await _helper_phone(binding, cipher))
    return binding


# ---- lists and views ----

async def list_for_app_user(*, app_user_id: int) -> tuple[list[HelperBinding], list[HelperBinding]]:
    """(bindings where I help someone, bindings of helpers who help me), newest first."""
    as_helper = await HelperBinding.filter(helper_id=app_user_id).prefetch_related("resident").order_by("-id")
    user = await AppUser.get_or_none(id=app_user_id)
    as_elder: list[HelperBinding] = []
    if user is not None and user.resident_id is not None:  # type: ignore[attr-defined]
        as_elder = await HelperBinding.filter(
            Q(resident_id=user.resident_id) & ~Q(helper_id=app_user_id)  # type: ignore[attr-defined]
        ).prefetch_related("helper").order_by("-id")
    return as_helper, as_elder


def binding_view(binding: HelperBinding) -> dict[str, Any]:
    """The binding itself, without anyone's personal data."""
    return {
        "id": binding.id,
        "resident_id": binding.resident_id,  # type: ignore[attr-defined]
        "helper_id": binding.helper_id,  # type: ignore[attr-defined]
        "relation": binding.relation,
        "relation_label": RELATION_LABELS.get(binding.relation, binding.relation),
        "status": str(binding.status),
        "approved_by": binding.approved_by,
        "created_at": binding.created_at.isoformat(),
        "decided_at": binding.decided_at.isoformat() if binding.decided_at else None,
    }


def helper_side_view(binding: HelperBinding) -> dict[str, Any]:
    """What the helper sees: the elder's masked name only once the binding is approved."""
    view = binding_view(binding)
    approved = binding.status == BindingStatus.APPROVED
    view["resident_name"] = mask_name(binding.resident.name) if approved else None
    return view


def elder_side_view(binding: HelperBinding, cipher: FieldCipher) -> dict[str, Any]:
    """What the elder sees: who asks, as a masked phone number, so they can recognise them."""
    view = binding_view(binding)
    view["helper_phone_masked"] = helper_phone_masked(binding.helper, cipher)
    return view


def staff_view(binding: HelperBinding, cipher: FieldCipher) -> dict[str, Any]:
    return elder_side_view(binding, cipher)
