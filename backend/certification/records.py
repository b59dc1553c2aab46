"""Recording an accepted certification exactly once per resident and period.

The unique (resident, period) constraint decides races: when two helpers pass at the same
moment, one insert wins and the other caller gets the existing certification back. The
credential step is triggered through the outbox in the same transaction; once it is committed,
the elder (and the helper who certified) get an in-app notice (backend/notify/notices.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from backend.certification.models import Attempt, Certification, Method, MonthStatus, Period, ResidentMonth
from backend.certification.periods import months_owed, resident_month
from backend.notify import notices
from backend.outbox import service as outbox
from backend.residents.models import Resident, ResidentStatus

CERTIFIED_EVENT = "certification.passed"


@dataclass(frozen=True)
class Recorded:
    certification: Certification
    created: bool  # False: somebody else certified this resident for this period first


async def record_certification(
    *, resident: Resident, period: Period, method: Method, attempt: Attempt | None, assisted_by: str,
    assurance: str = "substantial",
) -> Recorded:
    """Certify `resident` for `period` unless already certified; restore a suspended resident."""
    owed = await months_owed(resident_id=resident.id, before=period)
    await resident_month(period=period, resident=resident)  # residents added after the period opened
    now = datetime.now(UTC)
    try:
        async with in_transaction() as conn:
            certification = await Certification.create(
                resident_id=resident.id, period_id=period.id, method=method,
                attempt_id=attempt.id if attempt else None, assisted_by=assisted_by, certified_at=now,
                late=bool(owed), back_pay_months=owed, assurance=assurance, using_db=conn,
            )
            await ResidentMonth.filter(period_id=period.id, resident_id=resident.id).using_db(conn).update(
                status=MonthStatus.CERTIFIED, last_attempt_at=now
            )
            if resident.status == ResidentStatus.SUSPENDED:
                await Resident.filter(id=resident.id).using_db(conn).update(status=ResidentStatus.ACTIVE)
                resident.status = ResidentStatus.ACTIVE
            await outbox.enqueue(
                kind=CERTIFIED_EVENT, dedupe_key=f"certification:{certification.id}",
                payload={"certification_id": certification.id, "resident_id": resident.id, "period_id": period.id,
                         "method": str(method)},
                using_db=conn,
            )
    except IntegrityError:
        existing = await Certification.get(resident_id=resident.id, period_id=period.id)
        return Recorded(existing, created=False)
    await notices.certification_passed(resident=resident, period=period, attempt=attempt)  # after the commit
    return Recorded(certification, created=True)


def certification_view(certification: Certification) -> dict:
    return {
        "id": certification.id,
        "period_id": certification.period_id,  # type: ignore[attr-defined]
        "method": str(certification.method),
        "certified_at": certification.certified_at.isoformat(),
        "late": certification.late,
        "back_pay_months": certification.back_pay_months,
        "assisted_by": certification.assisted_by,
        "assurance": certification.assurance,
    }
