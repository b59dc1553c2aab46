"""Certification outreach: an elder the month did not reach becomes a case for the grid worker.

Certification (a lower layer) finds the elder — overdue, no approved helper, no passive evidence —
and puts a `certification.unreached` outbox event with plain ids on the queue. This handler, owned
by the work orders, opens one private case per elder and month (idempotent), dispatched to the
category's default team (网格员) to visit or call; closing records the outcome (`outcome` field).
"""

from __future__ import annotations

from datetime import datetime

from backend.certification.outreach import UNREACHED_EVENT
from backend.outbox.models import OutboxEvent
from backend.workorders import service
from backend.workorders.catalog import OUTREACH_CODE
from backend.workorders.models import Source

__all__ = ["UNREACHED_EVENT", "on_unreached"]


async def on_unreached(event: OutboxEvent, *, now: datetime) -> None:
    data = event.payload
    month = str(data["month"])
    await service.open_from_source(
        community_id=int(data["community_id"]), source=Source.OUTREACH,
        source_ref=f"{month}:{int(data['resident_id'])}", category_code=OUTREACH_CODE,
        subject_resident_id=int(data["resident_id"]), now=now,
        description=f"{month} 认证逾期：这位老人没有帮办人，也没有无感认证记录。请上门或电话联系，"
                    "帮助完成认证或了解原因，办结时登记联系结果。",
    )
