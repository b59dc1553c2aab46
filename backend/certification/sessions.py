"""Liveness sessions: who may start one, the challenge kept in the cache, frames in, a decision out.

A session is created for one resident by one caller on one device. Its challenge lives in the
cache with a short TTL and is claimed exactly once (a session id cannot be replayed). The
frames are analysed on the worker holding the connection; the server decides from its own
analysis, never from the client's opinion.
"""

from __future__ import annotations

import json
import random
import secrets
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from backend import ratelimit
from backend.audit import service as audit
from backend.audit.service import Actor
from backend.auth.guards import RESIDENT_MANAGERS
from backend.auth.scope import visible_community_ids
from backend.auth.tokens import Principal
from backend.cache import Cache
from backend.certification import periods
from backend.certification.faces import FaceRuntime
from backend.certification.models import (
    Attempt,
    Decision,
    FaceTemplate,
    Method,
    MonthStatus,
    ResidentMonth,
    ReviewStatus,
)
from backend.certification.records import record_certification
from backend.errors import ApiError, Conflict, Forbidden, NotFoundError, RateLimited
from backend.face.errors import FaceError
from backend.face.liveness import ACTIONS, Challenge
from backend.face.matching import FaceTemplate as EngineTemplate
from backend.notify import notices
from backend.residents.models import Community, Resident, ResidentStatus
from backend.residents.service import age_today
from backend.security.fieldcrypt import FieldCipher
from backend.settings import Settings

TEMPLATE_PURPOSE = "face_template"
FRAME_PURPOSE = "review_frame"
MAX_FRAME_BYTES = 512 * 1024
MAX_FRAMES = 400

REASON_MESSAGES = {
    "no_template": "这是第一次认证，已提交社区工作人员审核，请耐心等待结果",
    "review": "需要社区工作人员再看一下，请耐心等待结果",
}


@dataclass
class SessionInfo:
    """What the cache holds for a session between its start and its (single) use."""

    session_id: str
    resident_id: int
    period_id: int
    method: str
    caller_kind: str
    caller_id: int
    device_id: str
    challenge: dict[str, Any]
    has_template: bool

    def public(self) -> dict[str, Any]:
        challenge = Challenge.from_dict(self.challenge)
        return {
            "session_id": self.session_id,
            "resident_id": self.resident_id,
            "actions": list(challenge.actions),
            "prompts": challenge.prompts(),
            "expires_in": max(0, int(challenge.deadline - time.time())),
            "first_certification": not self.has_template,
        }


@dataclass
class Outcome:
    decision: str
    reasons: list[str]
    hint: str
    attempt_id: int
    certification: dict[str, Any] | None = None
    scores: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _session_key(session_id: str) -> str:
    return f"cert:session:{session_id}"


def _active_key(resident_id: int) -> str:
    return f"cert:active:{resident_id}"


# ---- who may certify whom ----

async def relation_of(principal: Principal, resident: Resident) -> Method | None:
    """The method a caller would certify `resident` by, or None when they may not."""
    if principal.kind == "staff":
        if principal.role not in {str(r) for r in RESIDENT_MANAGERS}:
            return None
        scope = await visible_community_ids(principal)
        return Method.STAFF if scope is None or resident.community_id in scope else None  # type: ignore[attr-defined]
    from backend.residents.bindings import can_certify

    relation = await can_certify(app_user_id=principal.user_id, resident_id=resident.id)
    return {"self": Method.SELF, "helper": Method.HELPER}.get(relation or "")


async def resident_for_caller(*, principal: Principal, resident_id: int) -> tuple[Resident, Method]:
    """The resident and the caller's relation; anyone unrelated learns nothing (404)."""
    resident = await Resident.get_or_none(id=resident_id)
    method = await relation_of(principal, resident) if resident else None
    if resident is None or method is None:
        raise NotFoundError("没有找到这位老人，或您还不能为TA认证", code="certify.not_allowed")
    return resident, method


async def _load_template(resident_id: int, cipher: FieldCipher) -> EngineTemplate | None:
    """All active enrolled templates of the resident, merged (same model) into one."""
    rows = await FaceTemplate.filter(resident_id=resident_id, active=True).order_by("-id")
    templates = [EngineTemplate.from_bytes(cipher.decrypt_bytes(r.template_cipher, purpose=TEMPLATE_PURPOSE)) for r in rows]
    if not templates:
        return None
    model = templates[0].model_id
    same = [t for t in templates if t.model_id == model]
    if len(same) == 1:
        return same[0]
    return EngineTemplate(
        model, same[0].model_version, np.concatenate([t.embeddings for t in same]),
        [q for t in same for q in t.qualities],
    )


async def community_phone(resident: Resident) -> str:
    community = await Community.get_or_none(id=resident.community_id)  # type: ignore[attr-defined]
    return community.phone if community and community.phone else "社区服务电话"


# ---- starting and claiming ----

def new_challenge(config: Any, pool_setting: str) -> Challenge:
    """A random challenge drawn from the configured actions (some elders cannot nod or turn far)."""
    pool = tuple(a.strip() for a in pool_setting.split(",") if a.strip()) or ACTIONS
    rng = random.SystemRandom()
    count = min(len(pool), rng.randint(config.challenge_min_actions, config.challenge_max_actions))
    while True:
        actions = tuple(rng.sample(pool, count))
        sweeps = any({a, b} == {"turn_left", "turn_right"} for a, b in zip(actions, actions[1:], strict=False))
        if not sweeps or len(pool) <= 2:
            return Challenge(actions, ttl_s=config.challenge_ttl_s)


async def start_session(
    *, principal: Principal, resident_id: int, device_id: str, actor: Actor, cache: Cache, settings: Settings,
    runtime: FaceRuntime,
) -> SessionInfo:
    resident, method = await resident_for_caller(principal=principal, resident_id=resident_id)
    if resident.status in (ResidentStatus.MOVED, ResidentStatus.DECEASED):
        raise Conflict("该居民的状态不需要认证，如有疑问请联系社区", code="certify.not_required")
    await ratelimit.hit(cache, f"cert:start:{principal.actor}", limit=settings.cert_starts_per_hour, window_s=3600,
                        message="开始认证太频繁了，请休息一会儿再试")
    locked = await cache.ttl(f"cert:lock:{resident.id}")
    if locked:
        phone = await community_phone(resident)
        raise RateLimited(
            f"认证没有成功的次数较多，请 {max(1, locked // 60)} 分钟后再试，或拨打 {phone} 请社区工作人员帮忙（可预约上门认证）",
            code="certify.locked", retry_after=locked,
        )
    period = await periods.current_period(community_id=resident.community_id)  # type: ignore[attr-defined]
    month = await periods.resident_month(period=period, resident=resident)
    if month.status == MonthStatus.CERTIFIED:
        raise Conflict("本月已经认证过了，不需要再认证", code="certify.already_certified")
    if month.status == MonthStatus.EXEMPT:
        raise Conflict("本月不需要认证", code="certify.exempt")
    if month.status == MonthStatus.IN_REVIEW:
        raise Conflict("上次认证正在由社区工作人员审核，请耐心等待结果", code="certify.in_review")
    challenge = new_challenge(runtime.config, settings.cert_challenge_actions)
    session_id = secrets.token_urlsafe(24)
    ttl = int(challenge.ttl_s) + 15
    if not await cache.add(_active_key(resident.id), session_id, ttl=ttl):
        raise Conflict("正在为这位老人认证中，请先完成或稍等一分钟再试", code="certify.session_active")
    info = SessionInfo(
        session_id=session_id, resident_id=resident.id, period_id=period.id, method=str(method),
        caller_kind=principal.kind, caller_id=principal.user_id, device_id=device_id[:64],
        challenge=challenge.to_dict(), has_template=await FaceTemplate.exists(resident_id=resident.id, active=True),
    )
    await cache.set(_session_key(session_id), json.dumps(asdict(info)), ttl=ttl)
    await audit.record(actor=actor, action="certify.start", target_kind="resident", target_id=resident.id,
                       community_id=resident.community_id, details={"method": str(method), "session": session_id[:8]})  # type: ignore[attr-defined]
    return info


async def claim_session(*, session_id: str, principal: Principal, device_id: str, cache: Cache) -> SessionInfo:
    """Take the session out of the cache (once). Another caller or device cannot use it."""
    raw = await cache.pop(_session_key(session_id))
    if raw is None:
        raise ApiError("认证已过期或已使用，请重新开始", code="certify.session_invalid", status=410)
    info = SessionInfo(**json.loads(raw))
    if (info.caller_kind, info.caller_id) != (principal.kind, principal.user_id) or info.device_id != device_id[:64]:
        await cache.delete(_active_key(info.resident_id))
        raise Forbidden("这次认证不属于当前设备或账号，请重新开始", code="certify.session_mismatch")
    return info


# ---- running a session ----

class LiveSession:
    """One claimed session on this worker: frames in arrival order, progress out, a verdict at the end."""

    def __init__(self, info: SessionInfo, *, runtime: FaceRuntime, resident: Resident, template: EngineTemplate | None):
        self.info = info
        self.runtime = runtime
        self.resident = resident
        self.template = template
        self.challenge = Challenge.from_dict(info.challenge)
        self.tracker: Any = None
        self.frames = 0
        self.best: tuple[float, bytes] | None = None
        self.observations: list[Any] = []

    async def _tracker(self) -> Any:
        if self.tracker is None:
            engine = await self.runtime.engine()
            self.tracker = engine.tracker(self.challenge, template=self.template,
                                          age=age_today(self.resident.birth_date))
        return self.tracker

    @property
    def finished(self) -> bool:
        return self.tracker is not None and self.tracker.finished

    async def feed(self, jpeg: bytes, t: float | None = None) -> dict[str, Any]:
        """Analyse one frame (arrival time `t`) and say what the resident should do next."""
        if len(jpeg) > MAX_FRAME_BYTES:
            return {"type": "progress", "code": "frame.too_large", "hint": "画面太大，这一帧没有用上", "finished": False,
                    "done": [], "current": None}
        self.frames += 1
        if self.frames > MAX_FRAMES:
            # enough frames to decide: the session ends here and the result follows (no button to press)
            return {"type": "progress", "code": "frame.too_many", "hint": "正在核对，请稍候", "finished": True,
                    "done": [], "current": None}
        tracker = await self._tracker()
        engine = await self.runtime.engine()
        arrival = time.time() if t is None else t
        progress = await self.runtime.run(self._analyse, engine, tracker, jpeg, arrival)
        return {"type": "progress", "code": progress.code, "hint": progress.hint, "done": list(progress.done),
                "current": progress.current, "finished": progress.finished, "failed": progress.failed}

    def _analyse(self, engine: Any, tracker: Any, jpeg: bytes, t: float) -> Any:
        if t > self.challenge.deadline:
            return tracker.feed(jpeg, t)  # the tracker refuses frames after the deadline
        try:
            obs = engine.analyze(jpeg, antispoof=False, stream=True)
        except FaceError:
            return tracker.feed(jpeg, t)  # the tracker turns the error into guidance
        score = obs.quality.score
        if self.best is None or score > self.best[0]:
            self.best = (score, jpeg)
        return tracker.feed_observation(obs, t)

    async def verdict(self) -> Any:
        tracker = await self._tracker()
        return await self.runtime.run(tracker.verdict)

    async def probe_template(self) -> bytes | None:
        """The session's best frames as an enrolment template (used if staff approve a first certification)."""
        tracker = await self._tracker()
        engine = await self.runtime.engine()
        observations = [f.obs for f in tracker.frames if f.obs is not None]
        if not observations:
            return None
        best = sorted(observations, key=lambda o: -o.quality.score)[: runtime_frames(engine)]
        template = await self.runtime.run(engine.enroll, best)
        return template.to_bytes()


def runtime_frames(engine: Any) -> int:
    return max(1, int(engine.config.session_embed_frames))


async def finish_session(
    *, live: LiveSession, actor: Actor, cache: Cache, cipher: FieldCipher, settings: Settings,
) -> Outcome:
    """Turn the verdict into a decision, store the attempt, certify on pass, count failures."""
    info = live.info
    resident = live.resident
    verdict = await live.verdict()
    decision = Decision(verdict.decision)
    reasons = list(verdict.reasons)
    hint = verdict.hint
    if decision == Decision.PASS and not info.has_template:
        decision, reasons, hint = Decision.REVIEW, ["no_template"], REASON_MESSAGES["no_template"]
    elif decision == Decision.REVIEW:
        hint = REASON_MESSAGES["review"]
    scores = {
        "antispoof": verdict.antispoof,
        "identity_min": verdict.identity_min,
        "match": getattr(verdict.match, "score", None),
        "actions_done": list(verdict.actions_done),
        "frames": verdict.frames,
        "duration_s": round(verdict.duration_s, 2),
    }
    keep_frame = decision == Decision.REVIEW and live.best is not None
    probe = await live.probe_template() if decision == Decision.REVIEW else None
    now = datetime.now(UTC)
    attempt = await Attempt.create(
        session_id=info.session_id, resident_id=resident.id, period_id=info.period_id, method=Method(info.method),
        actor_kind=info.caller_kind, actor_id=info.caller_id, decision=decision, reasons=reasons, scores=scores,
        best_frame_cipher=cipher.encrypt_bytes(live.best[1], purpose=FRAME_PURPOSE) if keep_frame and live.best else None,
        probe_cipher=cipher.encrypt_bytes(probe, purpose=TEMPLATE_PURPOSE) if probe else None,
        frame_purge_after=now + timedelta(days=settings.frame_retention_days) if keep_frame else None,
        review_status=ReviewStatus.PENDING if decision == Decision.REVIEW else None,
    )
    certification = None
    period = await periods.get_period_or_raise(period_id=info.period_id, community_ids=None)
    if decision == Decision.PASS:
        recorded = await record_certification(
            resident=resident, period=period, method=Method(info.method), attempt=attempt,
            assisted_by=f"{info.caller_kind}:{info.caller_id}",
        )
        from backend.certification.records import certification_view

        certification = certification_view(recorded.certification)
        if not recorded.created:
            hint = "本月已经认证过了"
        await cache.delete(f"cert:fails:{resident.id}")
        await _refresh_template(live=live, verdict=verdict, cipher=cipher, settings=settings)
    else:
        status = MonthStatus.IN_REVIEW if decision == Decision.REVIEW else None
        update: dict[str, Any] = {"last_attempt_at": now}
        if status:
            update["status"] = status
        await ResidentMonth.filter(period_id=period.id, resident_id=resident.id,
                                   status__in=[MonthStatus.PENDING, MonthStatus.OVERDUE, MonthStatus.SUSPENDED]
                                   if status else list(MonthStatus)).update(**update)
        if decision == Decision.FAIL:
            fails = await cache.incr(f"cert:fails:{resident.id}", ttl=settings.cert_fail_window_s)
            if fails >= settings.cert_max_failures:
                await cache.set(f"cert:lock:{resident.id}", "1", ttl=settings.cert_lock_s)
                await cache.delete(f"cert:fails:{resident.id}")
                phone = await community_phone(resident)
                hint = f"{hint}。多次没有成功，请拨打 {phone} 请社区工作人员帮忙，或预约上门认证"
                reasons.append("locked")
        await notices.attempt_decided(attempt=attempt, resident=resident, hint=hint)  # a pass: told by the record
    await cache.delete(_active_key(resident.id))
    await audit.record(
        actor=actor, action=f"certify.{decision.value}", target_kind="resident", target_id=resident.id,
        community_id=resident.community_id,  # type: ignore[attr-defined]
        details={"attempt_id": attempt.id, "method": info.method, "reasons": reasons},
    )
    return Outcome(decision.value, reasons, hint, attempt.id, certification, scores)


async def _refresh_template(*, live: LiveSession, verdict: Any, cipher: FieldCipher, settings: Settings) -> None:
    """Faces of the very old change: a strong pass on an old template adds a fresh one from this session."""
    score = getattr(verdict.match, "score", None)
    if score is None or score < settings.template_refresh_min_score:
        return
    newest = await FaceTemplate.filter(resident_id=live.resident.id, active=True).order_by("-created_at").first()
    if newest is None or newest.created_at > datetime.now(UTC) - timedelta(days=settings.template_refresh_days):
        return
    probe = await live.probe_template()
    if probe is None:
        return
    from backend.certification.enrolment import store_template

    template = EngineTemplate.from_bytes(probe)
    await store_template(resident=live.resident, template_bytes=probe, model_id=template.model_id, source="refresh",
                         quality=float(max(template.qualities or [0.0])), cipher=cipher)


async def abandon(*, info: SessionInfo, cache: Cache) -> None:
    """Free the resident for a new session (connection dropped before a verdict)."""
    await cache.delete(_active_key(info.resident_id))
