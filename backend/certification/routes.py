"""HTTP and WebSocket routes of certification: sessions, the month board, enrolment, review."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from pydantic import Field
from sanic import Blueprint, Request, raw
from sanic import json as json_response
from sanic_ext import openapi

from backend.audit import service as audit
from backend.auth.guards import (
    RESIDENT_ADMINS,
    RESIDENT_MANAGERS,
    actor_of,
    authenticated,
    principal_from_request,
)
from backend.auth.models import Role
from backend.auth.scope import target_community_id, visible_community_ids
from backend.certification import enrolment, periods, review, sessions, trends
from backend.certification.models import Certification, MonthStatus, Period, ResidentMonth
from backend.certification.records import certification_view
from backend.errors import ApiError, NotFoundError, ValidationFailed
from backend.http import Schema, json_body, parse_model, validated_body, validated_query
from backend.idempotency.http import idempotent
from backend.residents import service as residents

bp = Blueprint("certification")

MONTH_LABELS = {
    "pending": "待认证", "certified": "已认证", "in_review": "审核中", "overdue": "已逾期",
    "suspended": "已暂停发放", "exempt": "免于认证",
}


class StartSession(Schema):
    resident_id: int
    device_id: str = Field(min_length=4, max_length=64)


class BoardQuery(Schema):
    community_id: int | None = None
    status: str | None = Field(default=None, pattern=r"^(pending|certified|in_review|overdue|suspended|exempt)$")
    q: str | None = Field(default=None, max_length=30)
    page: int = Field(default=1, ge=1)
    size: int = Field(default=50, ge=1, le=500)


class OpenPeriod(Schema):
    community_id: int | None = None
    month: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    due_day: int = Field(default=periods.DEFAULT_DUE_DAY, ge=1, le=28)


class PeriodReason(Schema):
    reason: str = Field(default="", max_length=200, description="required to close early and to reopen")


class ExemptBody(Schema):
    reason: str = Field(min_length=2, max_length=200)


class ReviewDecision(Schema):
    approve: bool
    reason: str = Field(default="", max_length=200)


class ReviewQuery(Schema):
    status: str = Field(default="pending", pattern=r"^(pending|approved|rejected)$")
    page: int = Field(default=1, ge=1)
    size: int = Field(default=20, ge=1, le=200)


class ResidentRef(Schema):
    resident_id: int | None = None


class TrendQuery(Schema):
    months: int = Field(default=trends.DEFAULT_MONTHS, ge=1, le=trends.MAX_MONTHS)
    community_id: int | None = None


TREND_READERS = (*RESIDENT_MANAGERS, Role.DEPARTMENT_OFFICER, Role.AUDITOR)


def _runtime(request: Request):
    return request.app.ctx.face


# ---- sessions ----

@bp.post("/api/certify/sessions")
@authenticated(kinds=("app", "staff"))
@idempotent
@validated_body(StartSession)
async def start(request: Request, body: StartSession):
    ctx = request.app.ctx
    info = await sessions.start_session(
        principal=request.ctx.principal, resident_id=body.resident_id, device_id=body.device_id,
        actor=actor_of(request), cache=ctx.cache, settings=ctx.settings, runtime=ctx.face,
    )
    return json_response(info.public(), status=201)


async def _live(request: Request, session_id: str, device_id: str) -> sessions.LiveSession:
    ctx = request.app.ctx
    info = await sessions.claim_session(session_id=session_id, principal=request.ctx.principal,
                                        device_id=device_id, cache=ctx.cache)
    resident = await residents.Resident.get(id=info.resident_id)
    template = await sessions._load_template(resident.id, ctx.cipher)
    return sessions.LiveSession(info, runtime=ctx.face, resident=resident, template=template)


@bp.post("/api/certify/sessions/<session_id:str>/frames")
@authenticated(kinds=("app", "staff"))
@idempotent
@openapi.body({"multipart/form-data": {"device_id": {"type": "string"}, "frame": {"type": "array"},
                                       "t": {"type": "array", "items": {"type": "number"}}}})
async def upload_frames(request: Request, session_id: str):
    """Fallback for phones whose WebSocket fails: all frames of the session in one upload.

    `t` gives each frame's capture time in milliseconds since the challenge was shown; the
    times must increase and end before the deadline.
    """
    form = request.form or {}
    frames = [f.body for f in (request.files.getlist("frame") if request.files else [])]
    if not frames:
        raise ValidationFailed("没有收到画面，请重新开始", code="certify.no_frames", field="frame")
    offsets_raw = form.getlist("t") if form else []
    try:
        offsets = [float(x) / 1000.0 for x in offsets_raw]
    except ValueError:
        raise ValidationFailed("时间格式不正确", code="certify.bad_times", field="t") from None
    if len(offsets) != len(frames) or any(b <= a for a, b in zip(offsets, offsets[1:], strict=False)):
        raise ValidationFailed("每一帧都需要递增的拍摄时间", code="certify.bad_times", field="t")
    live = await _live(request, session_id, (form.get("device_id") or "") if form else "")
    start_at = live.challenge.issued_at
    if start_at + offsets[-1] > time.time() + 1.0:
        raise ValidationFailed("拍摄时间不合理", code="certify.bad_times", field="t")
    for frame, offset in zip(frames, offsets, strict=True):
        progress = await live.feed(frame, start_at + offset)
        if progress["finished"]:
            break
    ctx = request.app.ctx
    outcome = await sessions.finish_session(live=live, actor=actor_of(request), cache=ctx.cache, cipher=ctx.cipher,
                                            settings=ctx.settings)
    return json_response({"type": "result", **outcome.as_dict()})


@bp.websocket("/ws/certify")
async def certify_socket(request: Request, ws: Any):
    """Live session: {"type":"auth"} then {"type":"start"|"resume"}, JPEG frames as binary messages.

    The server answers every frame with guidance and ends with {"type":"result"}.
    """
    ctx = request.app.ctx
    live: sessions.LiveSession | None = None

    async def send(message: dict[str, Any]) -> None:
        await ws.send(json.dumps(message, ensure_ascii=False))

    async def fail(error: ApiError) -> None:
        await send({"type": "error", **error.body()})

    try:
        hello = json.loads(await asyncio.wait_for(ws.recv(), 15))
        request.headers["authorization"] = f"Bearer {hello.get('token', '')}"
        request.ctx.principal = await principal_from_request(request)
        first = hello if hello.get("type") in ("start", "resume") else json.loads(await asyncio.wait_for(ws.recv(), 15))
        device_id = str(first.get("device_id", ""))
        if first.get("type") == "start":
            info = await sessions.start_session(
                principal=request.ctx.principal, resident_id=int(first.get("resident_id", 0)), device_id=device_id,
                actor=actor_of(request), cache=ctx.cache, settings=ctx.settings, runtime=ctx.face,
            )
            session_id = info.session_id
        else:
            session_id = str(first.get("session_id", ""))
        live = await _live(request, session_id, device_id)
        await send({"type": "challenge", **live.info.public(), "hint": live.challenge.prompts()[0]})
        while True:
            remaining = live.challenge.deadline - time.time() + 5
            message = await asyncio.wait_for(ws.recv(), max(1.0, remaining))
            if message is None:
                break
            if isinstance(message, bytes | bytearray):
                progress = await live.feed(bytes(message))
                await send(progress)
                if progress["finished"]:
                    break
            else:
                command = json.loads(message)
                if command.get("type") == "finish":
                    break
        outcome = await sessions.finish_session(live=live, actor=actor_of(request), cache=ctx.cache,
                                                cipher=ctx.cipher, settings=ctx.settings)
        await send({"type": "result", **outcome.as_dict()})
        live = None
    except ApiError as error:
        await fail(error)
    except TimeoutError:
        await fail(ApiError("等待画面超时，请重新开始", code="certify.timeout", status=408))
    except (ValueError, KeyError, TypeError, json.JSONDecodeError):
        await fail(ApiError("消息格式不正确", code="certify.bad_message", status=400))
    finally:
        if live is not None:
            await sessions.abandon(info=live.info, cache=ctx.cache)
        await _drain(ws)
        with contextlib.suppress(Exception):
            await ws.close()


async def _drain(ws: Any, seconds: float = 1.0) -> None:
    """Read and drop frames the phone sent after the verdict, so none stay queued on the worker."""
    deadline = time.monotonic() + seconds
    with contextlib.suppress(Exception):
        while (left := deadline - time.monotonic()) > 0:
            if await asyncio.wait_for(ws.recv(), left) is None:
                break


# ---- what the resident (or helper) sees ----

@bp.get("/api/app/certification")
@authenticated(kinds=("app",))
@validated_query(ResidentRef)
async def my_status(request: Request, query: ResidentRef):
    from backend.auth.models import AppUser

    principal = request.ctx.principal
    resident_id = query.resident_id
    if resident_id is None:
        user = await AppUser.get(id=principal.user_id)
        resident_id = user.resident_id  # type: ignore[attr-defined]
        if resident_id is None:
            raise NotFoundError("您的手机号还没有登记为老人本人，可在“我帮助的老人”中为家人认证", code="app.no_resident")
    resident, method = await sessions.resident_for_caller(principal=principal, resident_id=resident_id)
    period = await periods.current_period(community_id=resident.community_id)  # type: ignore[attr-defined]
    month = await periods.resident_month(period=period, resident=resident)
    certification = await Certification.get_or_none(resident_id=resident.id, period_id=period.id)
    last = await sessions.Attempt.filter(resident_id=resident.id).order_by("-id").first()
    return json_response({
        "resident": {"id": resident.id, "name": resident.name},
        "relation": str(method),
        "period": {"month": period.month, "due_day": period.due_day},
        "status": str(month.status),
        "status_label": MONTH_LABELS[str(month.status)],
        "certification": certification_view(certification) if certification else None,
        "last_attempt": None if last is None else {
            "decision": str(last.decision), "review_status": str(last.review_status) if last.review_status else None,
            "review_reason": last.review_reason, "at": last.created_at.isoformat(),
        },
        "community_phone": await sessions.community_phone(resident),
    })


# ---- staff: periods and the month board ----

async def _scope(request: Request) -> list[int] | None:
    return await visible_community_ids(request.ctx.principal)


async def _community_id(request: Request, requested: int | None) -> int:
    return await target_community_id(request.ctx.principal, requested)


def _period_view(period: Period, counts: dict[str, int] | None = None) -> dict[str, Any]:
    view = {"id": period.id, "community_id": period.community_id, "month": period.month,  # type: ignore[attr-defined]
            "due_day": period.due_day, "status": str(period.status),
            "closed_at": period.closed_at.isoformat() if period.closed_at else None}
    if counts is not None:
        view["counts"] = counts
        view["total"] = sum(counts.values())
    return view


@bp.get("/api/periods/current")
@authenticated(roles=RESIDENT_MANAGERS)
@validated_query(BoardQuery)
async def current(request: Request, query: BoardQuery):
    community_id = await _community_id(request, query.community_id)
    period = await periods.current_period(community_id=community_id)
    return json_response(_period_view(period, await periods.board(period=period)))


@bp.get("/api/periods")
@authenticated(roles=RESIDENT_MANAGERS)
@validated_query(BoardQuery)
async def list_periods(request: Request, query: BoardQuery):
    community_id = await _community_id(request, query.community_id)
    items = await Period.filter(community_id=community_id).order_by("-month")
    return json_response({"items": [_period_view(p, await periods.board(period=p)) for p in items]})


@bp.post("/api/periods")
@authenticated(roles=RESIDENT_MANAGERS)
@idempotent
@validated_body(OpenPeriod)
async def open_period(request: Request, body: OpenPeriod):
    community_id = await _community_id(request, body.community_id)
    period = await periods.open_period(community_id=community_id, month=body.month, due_day=body.due_day)
    await audit.record(actor=actor_of(request), action="period.open", target_kind="period", target_id=period.id,
                       community_id=community_id, details={"month": body.month})
    return json_response(_period_view(period, await periods.board(period=period)), status=201)


@bp.post("/api/periods/<pid:int>/close")
@authenticated(roles=RESIDENT_MANAGERS)
@openapi.body({"application/json": PeriodReason}, required=False)
async def close(request: Request, pid: int):
    """Close the month; on or before the due day only an admin may, with a reason (undo: reopen)."""
    body = parse_model(PeriodReason, json_body(request) if request.body else {})
    period = await periods.get_period_or_raise(period_id=pid, community_ids=await _scope(request))
    principal = request.ctx.principal
    closure = await periods.close_period(
        period=period, closed_by=principal.user_id, may_close_early=principal.role in RESIDENT_ADMINS,
        reason=body.reason, suspend_after_months=request.app.ctx.settings.suspend_after_months,
    )
    result = periods.closure_counts(closure)
    await audit.record(actor=actor_of(request), action="period.close", target_kind="period", target_id=period.id,
                       community_id=period.community_id,  # type: ignore[attr-defined]
                       details={**result, "closure_id": closure.id, "early": closure.early, "reason": closure.reason})
    return json_response({**_period_view(period, await periods.board(period=period)), **result,
                          "closure_id": closure.id, "early": closure.early, "reason": closure.reason})


@bp.post("/api/periods/<pid:int>/reopen")
@authenticated(roles=RESIDENT_ADMINS)  # undoing a close changes many residents' payments: an admin's call
@validated_body(PeriodReason)
async def reopen(request: Request, pid: int, body: PeriodReason):
    """Undo the latest close: exactly the statuses it wrote are put back, unless changed since."""
    period = await periods.get_period_or_raise(period_id=pid, community_ids=await _scope(request))
    restored = await periods.reopen_period(period=period, reopened_by=request.ctx.principal.user_id,
                                           reason=body.reason)
    await audit.record(actor=actor_of(request), action="period.reopen", target_kind="period", target_id=period.id,
                       community_id=period.community_id,  # type: ignore[attr-defined]
                       details={"restored": restored, "reason": body.reason})
    return json_response({**_period_view(period, await periods.board(period=period)), "restored": restored})


@bp.get("/api/periods/<pid:int>/residents")
@authenticated(roles=RESIDENT_MANAGERS)
@validated_query(BoardQuery)
async def board_rows(request: Request, pid: int, query: BoardQuery):
    period = await periods.get_period_or_raise(period_id=pid, community_ids=await _scope(request))
    rows = ResidentMonth.filter(period_id=period.id)
    if query.status:
        rows = rows.filter(status=query.status)
    if query.q:
        rows = rows.filter(resident__name__contains=query.q)
    total = await rows.count()
    page = await rows.order_by("resident__name", "id").offset((query.page - 1) * query.size).limit(query.size) \
        .prefetch_related("resident")
    certs = {c.resident_id: c for c in await Certification.filter(  # type: ignore[attr-defined]
        period_id=period.id, resident_id__in=[r.resident_id for r in page])}  # type: ignore[attr-defined]
    items = []
    for row in page:
        cert = certs.get(row.resident_id)  # type: ignore[attr-defined]
        items.append({
            "resident_id": row.resident_id, "name": row.resident.name,  # type: ignore[attr-defined]
            "programme_tier": row.resident.programme_tier, "status": str(row.status),
            "status_label": MONTH_LABELS[str(row.status)], "exempt_reason": row.exempt_reason,
            "method": str(cert.method) if cert else None,
            "certified_at": cert.certified_at.isoformat() if cert else None,
            "last_attempt_at": row.last_attempt_at.isoformat() if row.last_attempt_at else None,
        })
    await audit.record(actor=actor_of(request), action="period.board", target_kind="period", target_id=period.id,
                       community_id=period.community_id,  # type: ignore[attr-defined]
                       details={"filters": query.model_dump(exclude_none=True), "returned": len(items)})
    return json_response({"total": total, "items": items, "period": _period_view(period)})


@bp.post("/api/periods/<pid:int>/residents/<rid:int>/exempt")
@authenticated(roles=RESIDENT_ADMINS)  # taking someone off the month's list is an admin's call, with a reason
@validated_body(ExemptBody)
async def exempt(request: Request, pid: int, rid: int, body: ExemptBody):
    scope = await _scope(request)
    resident = await residents.get_resident_or_raise(resident_id=rid, community_ids=scope)
    period = await periods.get_period_or_raise(period_id=pid, community_ids=scope)
    row = await periods.resident_month(period=period, resident=resident)
    if row.status == MonthStatus.CERTIFIED:
        raise ApiError("本月已认证，无需免除", code="period.already_certified", status=409)
    await periods.set_exempt(row=row, reason=body.reason)
    await audit.record(actor=actor_of(request), action="period.exempt", target_kind="resident", target_id=rid,
                       community_id=resident.community_id, details={"period": period.month, "reason": body.reason})  # type: ignore[attr-defined]
    return json_response({"resident_id": rid, "status": "exempt"})


# ---- staff: enrolment and review ----

@bp.post("/api/residents/<rid:int>/enrolment")
@authenticated(roles=RESIDENT_MANAGERS)
@idempotent
@openapi.body({"multipart/form-data": {"frame": {"type": "array", "items": {"type": "string", "format": "binary"}}}})
async def enrol(request: Request, rid: int):
    resident = await residents.get_resident_or_raise(resident_id=rid, community_ids=await _scope(request))
    frames = [f.body for f in (request.files.getlist("frame") if request.files else [])][:10]
    template = await enrolment.enrol(resident=resident, frames=frames, source="staff_enrolment",
                                     runtime=_runtime(request), cipher=request.app.ctx.cipher)
    await audit.record(actor=actor_of(request), action="face.enrol", target_kind="resident", target_id=rid,
                       community_id=resident.community_id, details={"template_id": template.id})  # type: ignore[attr-defined]
    return json_response({"template_id": template.id, "model_id": template.model_id,
                          "quality": round(template.quality, 3)}, status=201)


@bp.get("/api/residents/<rid:int>/enrolment")
@authenticated(roles=RESIDENT_MANAGERS)
async def enrolment_state(request: Request, rid: int):
    """Is this resident's face enrolled (and consented)? Staff decide from it whether to enrol at the desk."""
    resident = await residents.get_resident_or_raise(resident_id=rid, community_ids=await _scope(request))
    return json_response(await enrolment.enrolment_status(resident_id=resident.id))


@bp.get("/api/review")
@authenticated(roles=RESIDENT_MANAGERS)
@validated_query(ReviewQuery)
async def review_queue(request: Request, query: ReviewQuery):
    total, items = await review.queue(community_ids=await _scope(request), status=query.status, page=query.page,
                                      size=query.size)
    await audit.record(actor=actor_of(request), action="review.list", target_kind="attempt",
                       community_id=request.ctx.principal.community_id,
                       details={"filters": query.model_dump(), "returned": len(items)})
    return json_response({"total": total, "items": [review.attempt_view(a) for a in items],
                          "thresholds": review.thresholds_view(_runtime(request).config)})


@bp.get("/api/review/<aid:int>/frame")
@authenticated(roles=RESIDENT_MANAGERS)
async def review_frame(request: Request, aid: int):
    attempt = await review.get_attempt_or_raise(attempt_id=aid, community_ids=await _scope(request))
    data = review.best_frame(attempt, request.app.ctx.cipher)
    await audit.record(actor=actor_of(request), action="review.view_frame", target_kind="resident",
                       target_id=attempt.resident_id, community_id=attempt.resident.community_id,  # type: ignore[attr-defined]
                       details={"attempt_id": aid})
    return raw(data, content_type="image/jpeg", headers={"Cache-Control": "no-store"})


@bp.post("/api/review/<aid:int>/decision")
@authenticated(roles=RESIDENT_MANAGERS)
@idempotent
@validated_body(ReviewDecision)
async def review_decide(request: Request, aid: int, body: ReviewDecision):
    attempt = await review.get_attempt_or_raise(attempt_id=aid, community_ids=await _scope(request))
    if not body.approve and len(body.reason.strip()) < 2:
        raise ValidationFailed("不通过时请写明原因，老人会看到", code="review.reason_required", field="reason")
    updated = await review.decide(attempt=attempt, approve=body.approve, reason=body.reason,
                                  staff_id=request.ctx.principal.user_id, cipher=request.app.ctx.cipher)
    await audit.record(actor=actor_of(request), action="review.approve" if body.approve else "review.reject",
                       target_kind="resident", target_id=attempt.resident_id,  # type: ignore[attr-defined]
                       community_id=attempt.resident.community_id, details={"attempt_id": aid, "reason": body.reason})
    return json_response(review.attempt_view(updated))


# ---- trends (aggregate counts only) ----

@bp.get("/api/trends")
@authenticated(roles=TREND_READERS)
@validated_query(TrendQuery)
async def trend(request: Request, query: TrendQuery):
    """Monthly certification rate, method mix and median days to certify, summed over the scope."""
    principal = request.ctx.principal
    visible = await trends.trend_scope(principal=principal, community_id=None)
    scope = visible
    if query.community_id is not None:
        scope = await trends.trend_scope(principal=principal, community_id=query.community_id)
    return json_response({
        "community_id": query.community_id, "months": query.months,
        "communities": await trends.communities_in(visible),
        "items": await trends.monthly_trends(community_ids=scope, months=query.months),
    })
