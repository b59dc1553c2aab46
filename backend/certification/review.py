"""The review queue: borderline attempts decided by a person, with the best frame and the scores.

Approving a first certification also enrols the face from that session's frames. Frames are
decrypted only for the reviewer (and audited by the route), and purged after retention.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from backend.certification import periods
from backend.certification.enrolment import store_template
from backend.certification.models import (
    Attempt,
    Decision,
    FaceTemplate,
    MonthStatus,
    ResidentMonth,
    ReviewStatus,
)
from backend.certification.records import record_certification
from backend.certification.sessions import FRAME_PURPOSE, TEMPLATE_PURPOSE
from backend.errors import Conflict, NotFoundError
from backend.face.config import FaceConfig
from backend.face.matching import FaceTemplate as EngineTemplate
from backend.notify import notices
from backend.residents import text as text_rules
from backend.residents.models import Resident
from backend.security.fieldcrypt import FieldCipher

REASON_LABELS = {
    "no_template": "首次认证，尚未录入人脸",
    "match_uncertain": "人脸比对分数处于待定区间",
    "antispoof_uncertain": "防伪检测分数处于待定区间",
}


async def queue(*, community_ids: list[int] | None, status: str = "pending", page: int = 1, size: int = 20
                ) -> tuple[int, list[Attempt]]:
    query = Attempt.filter(decision=Decision.REVIEW, review_status=status)
    if community_ids is not None:
        query = query.filter(resident__community_id__in=community_ids)
    total = await query.count()
    items = await query.order_by("created_at").offset((page - 1) * size).limit(size).prefetch_related("resident")
    return total, items


async def get_attempt_or_raise(*, attempt_id: int, community_ids: list[int] | None) -> Attempt:
    query = Attempt.filter(id=attempt_id, decision=Decision.REVIEW)
    if community_ids is not None:
        query = query.filter(resident__community_id__in=community_ids)
    attempt = await query.prefetch_related("resident").first()
    if attempt is None:
        raise NotFoundError("没有找到这条复核记录", code="review.not_found")
    return attempt


def attempt_view(attempt: Attempt) -> dict[str, Any]:
    resident: Resident = attempt.resident
    return {
        "id": attempt.id,
        "resident": {"id": resident.id, "name": resident.name, "programme_tier": resident.programme_tier},
        "method": str(attempt.method),
        "decision": str(attempt.decision),
        "reasons": [{"code": r, "label": REASON_LABELS.get(r, r)} for r in attempt.reasons],
        "scores": attempt.scores,
        "has_frame": attempt.best_frame_cipher is not None,
        "review_status": str(attempt.review_status) if attempt.review_status else None,
        "review_reason": attempt.review_reason,
        "created_at": attempt.created_at.isoformat(),
    }


def thresholds_view(config: FaceConfig) -> dict[str, float]:
    """The score lines a reviewer weighs the numbers against (configuration, so read, never assumed)."""
    return {
        "match_accept": config.match_threshold,
        "match_accept_elder": max(config.match_threshold, config.match_threshold_elder),
        "elder_age": config.elder_age,
        "match_review": config.match_review_threshold,
        "antispoof_reject": config.antispoof_threshold,
        "antispoof_accept": config.antispoof_review_threshold,
        "identity_consistency": config.identity_consistency_threshold,
    }


def best_frame(attempt: Attempt, cipher: FieldCipher) -> bytes:
    if attempt.best_frame_cipher is None:
        raise NotFoundError("照片已按规定删除", code="review.frame_purged")
    return cipher.decrypt_bytes(attempt.best_frame_cipher, purpose=FRAME_PURPOSE)


async def decide(*, attempt: Attempt, approve: bool, reason: str, staff_id: int, cipher: FieldCipher) -> Attempt:
    """Approve (certify, and enrol a first-timer) or reject with a reason the resident will read."""
    reason = text_rules.clean_free_text(reason, field="reason", label="原因", max_length=200)
    claimed = await Attempt.filter(id=attempt.id, review_status=ReviewStatus.PENDING).update(
        review_status=ReviewStatus.APPROVED if approve else ReviewStatus.REJECTED,
        reviewed_by=staff_id, reviewed_at=datetime.now(UTC), review_reason=reason,
    )
    if not claimed:
        raise Conflict("这条记录已经处理过了", code="review.already_decided")
    resident: Resident = attempt.resident
    period = await periods.get_period_or_raise(period_id=attempt.period_id, community_ids=None)  # type: ignore[attr-defined]
    if approve:
        if attempt.probe_cipher and not await FaceTemplate.exists(resident_id=resident.id, active=True):
            probe = cipher.decrypt_bytes(attempt.probe_cipher, purpose=TEMPLATE_PURPOSE)
            template = EngineTemplate.from_bytes(probe)
            await store_template(resident=resident, template_bytes=probe, model_id=template.model_id,
                                 source="approved_first", quality=float(max(template.qualities or [0.0])),
                                 cipher=cipher)
        await record_certification(resident=resident, period=period, method=attempt.method, attempt=attempt,
                                   assisted_by=f"staff:{staff_id}")
    else:
        await ResidentMonth.filter(period_id=period.id, resident_id=resident.id, status=MonthStatus.IN_REVIEW).update(
            status=MonthStatus.OVERDUE if str(period.status) == "closed" else MonthStatus.PENDING
        )
        await notices.review_rejected(attempt=attempt, reason=reason)  # the elder and the helper read why
    return await Attempt.get(id=attempt.id).prefetch_related("resident")


async def purge_expired_frames(now: datetime | None = None) -> int:
    """Delete review frames past retention (run by the worker)."""
    return await Attempt.filter(frame_purge_after__lte=now or datetime.now(UTC)).exclude(best_frame_cipher=None).update(
        best_frame_cipher=None, frame_purge_after=None
    )
