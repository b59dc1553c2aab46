"""Which communities a staff member may see. Every resident query is filtered by this.

A scope is a list of community ids, or None for "every community" (platform admins only). An
account whose scope is empty (a community role without a community, say) sees nothing: a
requested community is always intersected with the scope (`within`), never taken instead of it.
"""

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


def within(visible: list[int] | None, requested: int | None) -> list[int] | None:
    """The communities a query covers: the visible ones, narrowed to the one requested (never widened to it)."""
    if requested is None:
        return visible
    if visible is None:
        return [requested]
    return [requested] if requested in visible else []


async def target_community_id(principal: Principal, requested: int | None) -> int:
    """The community a staff action applies to: one's own, or (above a community) the one named and visible."""
    from backend.errors import NotFoundError, ValidationFailed

    community_id = requested if requested is not None else principal.community_id
    if community_id is None:
        raise ValidationFailed("请选择社区", code="community.required", field="community_id")
    visible = await visible_community_ids(principal)
    if (visible is not None and community_id not in visible) or not await Community.exists(id=community_id):
        raise NotFoundError("没有找到这个社区", code="community.not_found")
    return community_id
