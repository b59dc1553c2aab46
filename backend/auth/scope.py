"""Which communities a staff member may see. Every resident query is filtered by this."""

from __future__ import annotations

from backend.auth.models import Role
from backend.auth.tokens import Principal
from backend.residents.models import Community


async def visible_community_ids(principal: Principal) -> list[int] | None:
    """Community ids the caller may see; None means every community (platform admins)."""
    role = principal.role
    if role == Role.PLATFORM_ADMIN:
        return None
    if role in (Role.COMMUNITY_STAFF, Role.COMMUNITY_ADMIN):
        return [principal.community_id] if principal.community_id is not None else []
    if role in (Role.DISTRICT_ADMIN, Role.AUDITOR) and principal.district:
        return list(await Community.filter(district=principal.district).values_list("id", flat=True))
    if role == Role.AUDITOR and principal.community_id is not None:
        return [principal.community_id]
    return []
