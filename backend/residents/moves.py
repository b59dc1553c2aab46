"""People registered in more than one community: a move (迁入/迁出) a district-level admin resolves.

A community that registers someone gets the same answer whether another community already has
that national ID or not: the registration is made (only a duplicate within the same community is
refused). Telling community staff "registered elsewhere" would let any of them test any ID number
against the whole city's register. Instead the district admin (or the platform admin), who sees
both communities, finds the person here, decides which registration is current, and the others
become `moved`: they leave the month boards and exports, and the person's phone login follows
the registration kept.
"""

from __future__ import annotations

from typing import Any

from tortoise.functions import Count
from tortoise.transactions import in_transaction

from backend.auth.models import AppUser
from backend.errors import Conflict
from backend.residents import text as text_rules
from backend.residents.models import Resident, ResidentStatus
from backend.residents.service import ID_PURPOSE
from backend.security.fieldcrypt import FieldCipher
from backend.security.masking import mask_id

LIVE = (ResidentStatus.ACTIVE, ResidentStatus.SUSPENDED)  # registrations that still draw the subsidy


def _live(community_ids: list[int] | None):
    query = Resident.filter(status__in=LIVE)
    return query if community_ids is None else query.filter(community_id__in=community_ids)


async def pending_moves(*, community_ids: list[int] | None) -> list[list[Resident]]:
    """Groups of live registrations of one person within the caller's communities, oldest first."""
    doubled = await _live(community_ids).group_by("national_id_index").annotate(n=Count("id")) \
        .filter(n__gt=1).values_list("national_id_index", flat=True)
    if not doubled:
        return []
    groups: dict[str, list[Resident]] = {}
    for resident in await _live(community_ids).filter(national_id_index__in=list(doubled)) \
            .prefetch_related("community").order_by("created_at", "id"):
        groups.setdefault(resident.national_id_index, []).append(resident)
    return sorted(groups.values(), key=lambda group: group[-1].created_at, reverse=True)


def move_view(group: list[Resident], cipher: FieldCipher) -> dict[str, Any]:
    """One person's registrations, as the district admin compares them (the ID masked)."""
    national_id = cipher.decrypt_text(group[0].national_id_cipher, purpose=ID_PURPOSE)
    return {
        "national_id_masked": mask_id(national_id),
        "registrations": [
            {"resident_id": r.id, "community_id": r.community_id,  # type: ignore[attr-defined]
             "community": r.community.name, "name": r.name, "status": str(r.status), "address": r.address,
             "registered_at": r.created_at.isoformat()}
            for r in group
        ],
    }


async def resolve_move(*, keep: Resident, community_ids: list[int] | None, reason: str) -> list[tuple[int, int]]:
    """Keep one registration; the person's other live ones the caller can see become `moved`.

    App logins linked to a registration that moves are linked to the one kept, so the elder's
    phone keeps working. Returns (resident id, community id) of each registration marked moved.
    """
    text_rules.clean_free_text(reason, field="reason", label="原因", max_length=200, required=True)
    if keep.status not in LIVE:
        raise Conflict("要保留的登记已迁出或注销，请选择仍在册的那一条", code="resident.move_keep_not_live")
    others = await _live(community_ids).filter(national_id_index=keep.national_id_index).exclude(id=keep.id) \
        .values_list("id", "community_id")
    if not others:
        raise Conflict("这位居民没有其他社区的登记，无需处理", code="resident.no_move")
    async with in_transaction() as conn:
        ids = [resident_id for resident_id, _ in others]
        await Resident.filter(id__in=ids).using_db(conn).update(status=ResidentStatus.MOVED)
        await AppUser.filter(resident_id__in=ids).using_db(conn).update(resident_id=keep.id)
    return [(resident_id, community_id) for resident_id, community_id in others]
