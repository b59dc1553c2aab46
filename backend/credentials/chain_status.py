"""What the staff console shows about the chain: the latest final checkpoint and each witness.

The sequencer is asked through the app's `ChainClient` (see `backend.credentials.anchor`):
its health (log size, quorum), its latest final checkpoint and its registered witnesses. The
size each witness last cosigned comes from that witness's own ``/v1/health``, best effort with
a short timeout, because a department's witness being down is exactly what the page must show
rather than fail on. When trust roots are pinned (CHAIN_TRUST_FILE) the checkpoint's log
signature, witnessed time and witness quorum are verified here too, so the page reports a
checked quorum and not merely the sequencer's word for it.

``alerts`` names what needs an operator: the sequencer refusing to sequence (its storage lost
acknowledged or cosigned leaves: it says exactly what and how to recover), a witness refusing
the log (evidence of equivocation), or too few willing witnesses for a quorum. ``quorum_met``
is true only while the chain can still finalize. ``readiness`` is the cheap form of the same
for ``/readyz``: red while the log or a witness refuses.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from backend.errors import ApiError

SEQUENCER_TIMEOUT_S = 6.0
WITNESS_TIMEOUT_S = 2.0


class ChainUnavailable(ApiError):
    """No chain configured, or the sequencer did not answer: the status cannot be shown."""

    status = 503
    code = "chain.unavailable"


NOT_CONFIGURED = "本系统尚未连接存证链（未配置 CHAIN_URL），暂时无法查看存证状态，请联系平台管理员。"
NOT_ANSWERING = "存证链服务没有响应，暂时无法查看存证状态。请稍后再试；如持续出现，请联系平台管理员。"


async def _ask_sequencer(chain: Any) -> tuple[dict[str, Any], dict[str, Any] | None, list[dict[str, Any]]]:
    """Health, latest final checkpoint (None before the first one) and registered witnesses."""
    from chain.client import ChainClientError

    try:
        async with asyncio.timeout(SEQUENCER_TIMEOUT_S):
            health, record, registered = await asyncio.gather(
                chain.health(), chain.latest_checkpoint(), chain.witnesses()
            )
    except (TimeoutError, httpx.HTTPError, ChainClientError, ValueError, KeyError, TypeError) as exc:
        raise ChainUnavailable(NOT_ANSWERING, details={"reason": type(exc).__name__}) from exc
    return health, record, registered


async def _witness_health(http: httpx.AsyncClient, url: str) -> dict[str, Any] | None:
    """A witness's own view (last cosigned size and root, refusal), or None when it does not answer."""
    try:
        response = await http.get(f"{url.rstrip('/')}/v1/health")
        if response.status_code != 200:
            return None
        data = response.json()
        return data if isinstance(data, dict) else None
    except (httpx.HTTPError, ValueError):
        return None


def _verify_checkpoint(record: dict[str, Any], trust: Any) -> tuple[bool, str]:
    """The log signature and the BLS quorum against the pinned trust roots (a pairing: run in a thread)."""
    from chain.checkpoint import NoteError
    from chain.verify import VerificationError, verify_final_checkpoint

    try:
        checkpoint = verify_final_checkpoint(record, trust)
    except NoteError as exc:
        return False, f"检查点的日志签名不能用本系统固定的日志公钥验证：{exc}"
    except VerificationError as exc:
        return False, f"见证人联合签名验证未通过：{exc}"
    except (KeyError, TypeError, ValueError) as exc:
        return False, f"检查点记录不完整：{exc!r}"
    return True, f"日志签名和 {len(record.get('signers') or [])} 个见证人的联合签名均已用固定的信任根验证（规模 {checkpoint.size}）"


async def _last_anchored_at() -> datetime | None:
    """When this backend last stored an inclusion proof (a checkpoint note carries no time of its own)."""
    from backend.audit.models import AuditAnchor
    from backend.credentials.models import Credential
    from backend.exports.models import Export

    times = []
    for model in (Credential, Export, AuditAnchor):
        row = await model.filter(anchored_at__not_isnull=True).order_by("-anchored_at").first().values("anchored_at")
        if row and row["anchored_at"] is not None:
            times.append(row["anchored_at"])
    return max(times) if times else None


def _refusal_text(refusal: Any) -> str | None:
    if not isinstance(refusal, dict):
        return None
    return f"{refusal.get('code', '')}: {refusal.get('message', '')}".strip(": ")


REFUSING = ("存证链序列器拒绝继续记账：它的存储与已确认或已被见证人联署的记录不一致（{reason}：{message}）。"
            "新的上链请求会暂存在本系统中，不会丢失。请平台管理员按以下步骤恢复：{recovery}")
STARTING = "存证链序列器正在启动，核对存储与见证人联署的记录，核对完成前暂不记账。"
WITNESS_REFUSED = "{name}的见证人拒绝继续联署这条日志（{refusal}）：它发现日志被回滚或出现分叉。请立即联系平台管理员核查。"
NO_QUORUM = "愿意联署的见证人只有 {willing} 个，少于法定人数 {quorum}：新的检查点无法确认。"


def _alerts(health: dict[str, Any], witnesses: list[dict[str, Any]], quorum: int) -> list[dict[str, str]]:
    """What needs an operator, in words for staff (the reason stays technical and exact)."""
    alerts = []
    status = health.get("status", "ok")
    if status == "refusing":
        refusal = health.get("refusal") or {}
        alerts.append({"code": "chain.log_refusing", "level": "error",
                       "message": REFUSING.format(reason=refusal.get("reason", "?"),
                                                  message=refusal.get("message", ""),
                                                  recovery=refusal.get("recovery", "")),
                       "reason": str(refusal.get("reason", ""))})
    elif status == "starting":
        alerts.append({"code": "chain.log_starting", "level": "warning", "message": STARTING, "reason": "starting"})
    for w in witnesses:
        if w["refused"]:
            alerts.append({"code": "chain.witness_refused", "level": "error",
                           "message": WITNESS_REFUSED.format(name=w["name"], refusal=w.get("refusal") or "拒绝"),
                           "reason": f"{w['department']}: {w.get('refusal') or 'refused'}"})
    willing = sum(1 for w in witnesses if w["registered"] and not w["refused"])
    if quorum > 0 and willing < quorum:
        alerts.append({"code": "chain.no_quorum", "level": "error",
                       "message": NO_QUORUM.format(willing=willing, quorum=quorum),
                       "reason": f"{willing} willing witnesses < quorum {quorum}"})
    return alerts


@dataclass(frozen=True)
class Readiness:
    ready: bool  # False only when the chain needs an operator (a refusal): an outage is not a refusal
    detail: str


READINESS_TTL_S = 5.0
READINESS_TIMEOUT_S = 1.5


async def readiness(app: Any) -> Readiness:
    """Whether the chain refuses (the log, or a witness, through the sequencer's health); cached a few
    seconds so probes do not hammer the sequencer. Unreachable is reported but not red: anchoring
    waits in the outbox and resumes by itself."""
    chain = getattr(app.ctx, "chain", None)
    if chain is None:
        return Readiness(True, "not_configured")
    cached = getattr(app.ctx, "chain_readiness", None)
    if cached is not None and time.monotonic() - cached[0] < READINESS_TTL_S and cached[2] is chain:
        return cached[1]
    from chain.client import ChainClientError

    try:
        async with asyncio.timeout(READINESS_TIMEOUT_S):
            health = await chain.health()
    except (TimeoutError, httpx.HTTPError, ChainClientError, ValueError) as exc:
        result = Readiness(True, f"unreachable: {type(exc).__name__} (anchoring waits in the outbox)")
    else:
        status = health.get("status", "ok")
        refusals = health.get("witness_refusals") if isinstance(health.get("witness_refusals"), dict) else {}
        if status == "refusing":
            refusal = health.get("refusal") or {}
            result = Readiness(False, f"refused: the log refuses to sequence ({refusal.get('reason')}): "
                                      f"{refusal.get('message')}")
        elif refusals:
            named = "; ".join(f"{d}: {_refusal_text(r)}" for d, r in sorted(refusals.items()))
            result = Readiness(False, f"refused: witnesses refuse the log ({named})")
        else:
            result = Readiness(True, "ok" if status == "ok" else status)
    app.ctx.chain_readiness = (time.monotonic(), result, chain)
    return result


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat(timespec="seconds") if at else None


async def status(*, chain: Any, department_names: dict[str, str]) -> dict[str, Any]:
    """The latest final checkpoint, the quorum and each department witness, for the console."""
    if chain is None:
        raise ChainUnavailable(NOT_CONFIGURED)
    health, record, registered = await _ask_sequencer(chain)
    trust = getattr(chain, "trust", None)
    by_department = {str(w.get("department")): w for w in registered if isinstance(w, dict)}

    async with httpx.AsyncClient(timeout=WITNESS_TIMEOUT_S) as http:
        answers = await asyncio.gather(*(
            _witness_health(http, str(w["url"])) if w.get("url") else asyncio.sleep(0, result=None)
            for w in by_department.values()
        ))
    seen = dict(zip(by_department, answers, strict=True))

    order: list[str] = []
    for source in ([d for d, _ in trust.witnesses] if trust is not None else [],
                   [w.get("department") for w in (record or {}).get("witnesses", [])],
                   list(health.get("witnesses") or []), list(by_department)):
        order += [str(d) for d in source if d and str(d) not in order]
    pinned = {d: pk.hex() for d, pk in trust.witnesses} if trust is not None else {}
    signers = set((record or {}).get("signers") or [])
    quorum = int(trust.quorum if trust is not None else (record or {}).get("quorum") or health.get("quorum") or 0)

    refusals = health.get("witness_refusals") if isinstance(health.get("witness_refusals"), dict) else {}
    witnesses = []
    for department in order:
        registration = by_department.get(department) or {}
        own = seen.get(department)
        public_key = registration.get("public_key") or (own or {}).get("public_key")
        last_size = int(own["size"]) if own and isinstance(own.get("size"), int) else None
        witnesses.append({
            "department": department,
            "name": department_names.get(department, department),
            "registered": bool(registration),
            "public_key": public_key,
            "pinned": department in pinned,
            "key_matches_pin": (pinned.get(department) == public_key) if department in pinned and public_key else None,
            "cosigned_latest": department in signers,
            "reachable": own is not None if registration.get("url") else None,
            "last_signed_size": last_size,
            "last_signed_root": (own or {}).get("root_hash") if last_size else None,
            "refused": bool((own or {}).get("refused")) or department in refusals,
            "refusal": _refusal_text((own or {}).get("refused") or refusals.get(department)),
        })

    alerts = _alerts(health, witnesses, quorum)
    refused_count = sum(1 for w in witnesses if w["refused"])
    willing = sum(1 for w in witnesses if w["registered"] and not w["refused"])
    checkpoint = None
    if record is not None:
        verified, verification = (None, "未配置信任根（CHAIN_TRUST_FILE），检查点未在本系统独立验证")
        if trust is not None:
            verified, verification = await asyncio.to_thread(_verify_checkpoint, record, trust)
        checkpoint = {
            "origin": record.get("origin"),
            "size": record.get("size"),
            "root_hash": record.get("root_hash"),
            "signers": [d for d in order if d in signers],
            "signer_count": len(signers),
            "signer_bitmap": record.get("signer_bitmap"),
            "finalized_at": record.get("finalized_at"),  # the sequencer's clock, not signed: shown, never trusted
            # the time a quorum attested with the checkpoint (checked with it when trust is pinned)
            "witnessed_at": _iso(datetime.fromtimestamp(record["timestamp"], UTC))
            if isinstance(record.get("timestamp"), int) else None,
            "verified": verified,
            "verification": verification,
        }
    log_size = int(health.get("size") or 0)
    final_size = int(record["size"]) if record is not None else 0
    return {
        "origin": health.get("origin"),
        "log_size": log_size,
        "final_size": final_size,
        "pending_leaves": max(0, log_size - final_size),
        "quorum": quorum,
        "witness_count": len(order),
        # the latest checkpoint had its quorum AND the chain can still finalize
        "quorum_met": record is not None and len(signers) >= quorum > 0 and willing >= quorum
        and health.get("status", "ok") == "ok",
        "sequencer_status": health.get("status", "ok"),
        "refused_witnesses": refused_count,
        "alerts": alerts,
        "trust_pinned": trust is not None,
        "checkpoint": checkpoint,
        "witnesses": witnesses,
        "last_anchored_at": _iso(await _last_anchored_at()),
        "checked_at": _iso(datetime.now(UTC)),
    }
