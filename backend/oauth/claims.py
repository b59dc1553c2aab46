"""What a portal may read about a resident under the `certification:*` scopes.

This is the one hook between the OAuth provider and the certification domain: the months come
from the certification service's own tables (one status row per period, the certification when
there is one), newest first; nothing personal beyond the pseudonymous id leaves.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from backend.residents.models import Resident


async def certification_status(*, resident: Resident | None, limit: int = 24) -> dict[str, Any]:
    """This and past months' certification status of `resident` (None: the user has no resident)."""
    from backend.certification import periods
    from backend.certification.models import Certification, ResidentMonth

    if resident is None:
        return {"resident_public_id": None, "months": []}
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
            "certified_at": cert.certified_at.isoformat() if cert else None,
            "method": str(cert.method) if cert else None,
            "late": cert.late if cert else False,
        })
    return {"resident_public_id": str(resident.public_id), "months": months}


def certify_link(*, public_url: str, resident: Resident | None) -> str | None:
    """Deep link into the miniapp's certify screen for this resident."""
    if resident is None:
        return None
    return f"{public_url.rstrip('/')}/m/#/certify?resident={quote(str(resident.public_id))}"
