"""What a portal may read about a resident under the `certification:*` scopes.

This is the one hook between the OAuth provider and the certification domain: the months come
from the certification service's own tables (one status row per period, the certification when
there is one), newest first, the day of certification rather than its instant (an instant to the
microsecond, the same at every portal, would itself link two portals' users). No identifier leaves: a portal knows the resident by its pairwise
`sub` only (OIDC Core §8.1), never by the resident's `public_id`, which is the same for every
portal and would let two portals link their users.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

from backend.residents.models import Resident

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")


async def certification_status(*, resident: Resident | None, limit: int = 24) -> dict[str, Any]:
    """This and past months' certification status of `resident` (None: the user has no resident)."""
    from backend.certification import periods
    from backend.certification.models import Certification, ResidentMonth

    if resident is None:
        return {"months": []}
    await periods.resident_month(
        period=await periods.current_period(community_id=resident.community_id),  # type: ignore[attr-defined]
        resident=resident,
    )
    rows = await ResidentMonth.filter(resident_id=resident.id).prefetch_related("period") \
        .order_by("-period__month").limit(limit)
    certifications = {c.period_id: c for c in await Certification.filter(resident_id=resident.id)}  # type: ignore[attr-defined]
    months = []
    for row in rows:
        cert = certifications.get(row.period_id)  # type: ignore[attr-defined]
        months.append({
            "period": row.period.month,
            "status": str(row.status),
            "certified_on": cert.certified_at.astimezone(CHINA).date().isoformat() if cert else None,
            "method": str(cert.method) if cert else None,
            "late": cert.late if cert else False,
        })
    return {"months": months}


def certify_link(*, public_url: str, resident: Resident | None) -> str | None:
    """Deep link into the miniapp's certify screen (the signed-in resident certifies themself: no id in it)."""
    if resident is None:
        return None
    return f"{public_url.rstrip('/')}/m/#/certify"
