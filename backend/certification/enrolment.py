"""Enrolling a resident's face: consent first, several good frames, an encrypted template.

Face data is sensitive personal information under PIPL: without a recorded, unrevoked
biometric consent nothing is captured. Templates refresh from strong certifications, because
faces of the very old change from year to year.
"""

from __future__ import annotations

from typing import Any

from backend.certification.faces import FaceRuntime
from backend.certification.models import FaceTemplate
from backend.certification.sessions import TEMPLATE_PURPOSE
from backend.errors import ApiError, Conflict, ValidationFailed
from backend.face.errors import FaceError
from backend.residents.models import ConsentRecord, Resident
from backend.security.fieldcrypt import FieldCipher

MAX_TEMPLATES = 3
MIN_FRAMES = 1


async def has_biometric_consent(resident_id: int) -> bool:
    return await ConsentRecord.exists(resident_id=resident_id, kind="biometric", revoked_at=None)


async def enrolment_status(*, resident_id: int) -> dict[str, Any]:
    """Whether a resident can be matched yet, and from which templates (never the embeddings themselves)."""
    templates = await FaceTemplate.filter(resident_id=resident_id, active=True).order_by("-created_at")
    return {
        "enrolled": bool(templates),
        "consent": await has_biometric_consent(resident_id),
        "templates": [{"id": t.id, "source": t.source, "model_id": t.model_id, "quality": round(t.quality, 3),
                       "created_at": t.created_at.isoformat()} for t in templates],
    }


async def enrolled_among(resident_ids: list[int]) -> set[int]:
    """Which of these residents have an active face template (one query, for lists)."""
    if not resident_ids:
        return set()
    rows = await FaceTemplate.filter(resident_id__in=resident_ids, active=True).values_list("resident_id", flat=True)
    return set(rows)


async def enrol(
    *, resident: Resident, frames: list[bytes], source: str, runtime: FaceRuntime, cipher: FieldCipher,
) -> FaceTemplate:
    """Check consent and frame quality, then store a new active template."""
    if not await has_biometric_consent(resident.id):
        raise Conflict("请先记录老人（或监护人）的人脸信息采集授权", code="enrol.no_consent")
    if len(frames) < MIN_FRAMES:
        raise ValidationFailed("请至少拍摄一张照片", code="enrol.no_frames", field="frames")
    engine = await runtime.engine()
    observations: list[Any] = []
    problems: list[str] = []
    for index, frame in enumerate(frames):
        try:
            obs = await runtime.run(engine.analyze, frame, antispoof=True)
        except FaceError as exc:
            problems.append(f"第 {index + 1} 张：{exc.hint}")
            continue
        if obs.quality.guidance:
            problems.append(f"第 {index + 1} 张：{obs.quality.guidance[0].hint}")
            continue
        if obs.antispoof is not None and obs.antispoof < runtime.config.antispoof_threshold:
            problems.append(f"第 {index + 1} 张：请拍摄本人，不要翻拍照片或屏幕")
            continue
        observations.append(obs)
    if not observations:
        raise ApiError("没有合格的照片：" + "；".join(problems[:3]), code="enrol.no_good_frames", status=422,
                       field="frames", details={"problems": problems})
    template = await runtime.run(engine.enroll, observations)
    return await store_template(resident=resident, template_bytes=template.to_bytes(), model_id=template.model_id,
                                source=source, quality=float(max(template.qualities)), cipher=cipher)


async def store_template(
    *, resident: Resident, template_bytes: bytes, model_id: str, source: str, quality: float, cipher: FieldCipher,
) -> FaceTemplate:
    """Keep the newest templates only (minimum data): older ones are deleted, not just hidden."""
    row = await FaceTemplate.create(
        resident_id=resident.id, template_cipher=cipher.encrypt_bytes(template_bytes, purpose=TEMPLATE_PURPOSE),
        model_id=model_id, source=source, quality=quality,
    )
    stale = await FaceTemplate.filter(resident_id=resident.id).order_by("-id").offset(MAX_TEMPLATES).values_list(
        "id", flat=True
    )
    if stale:
        await FaceTemplate.filter(id__in=list(stale)).delete()
    return row
