"""Appending to and checking the hash-chained audit trail.

Each event's hash is SHA-256 over the previous event's hash and the event's own fields in a
canonical JSON form, so changing, removing or reordering any stored event breaks every
hash after it. Appends lock one head row, so concurrent workers extend a single chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from backend.audit.models import AuditAnchor, AuditEvent, AuditHead

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class Actor:
    """Who did it and from where; built once per request by the routes."""

    kind: str  # staff | app | system | device
    id: str
    ip: str = ""
    request_id: str = ""


SYSTEM = Actor("system", "system")


@dataclass
class ChainCheck:
    ok: bool
    checked: int
    first_bad_event_id: int | None = None
    reason: str = ""
    head_hash: str = GENESIS_HASH
    problems: list[str] = field(default_factory=list)


def _canonical_time(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def compute_hash(prev_hash: str, *, at: datetime, actor_kind: str, actor_id: str, action: str,
                 target_kind: str, target_id: str, community_id: int | None, ip: str,
                 request_id: str, details: dict[str, Any]) -> str:
    payload = {
        "at": _canonical_time(at),
        "actor": [actor_kind, actor_id],
        "action": action,
        "target": [target_kind, target_id],
        "community_id": community_id,
        "origin": [ip, request_id],
        "details": details,
    }
    body = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def _event_hash(event: AuditEvent, prev_hash: str) -> str:
    return compute_hash(
        prev_hash, at=event.at, actor_kind=event.actor_kind, actor_id=event.actor_id, action=event.action,
        target_kind=event.target_kind, target_id=event.target_id, community_id=event.community_id,
        ip=event.ip, request_id=event.request_id, details=event.details or {},
    )


async def ensure_head() -> None:
    """Create the head row once (safe when several workers start together)."""
    if await AuditHead.exists(id=1):
        return
    with contextlib.suppress(IntegrityError):  # another worker created it first
        await AuditHead.create(id=1, last_event_id=0, last_hash=GENESIS_HASH)


async def record(
    *,
    actor: Actor,
    action: str,
    target_kind: str = "",
    target_id: str | int = "",
    community_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain and return it."""
    details = json.loads(json.dumps(details or {}, ensure_ascii=False, default=str))
    at = datetime.now(UTC)
    async with in_transaction() as conn:
        head = await AuditHead.select_for_update().using_db(conn).get_or_none(id=1)
        if head is None:
            head = await AuditHead.create(id=1, last_event_id=0, last_hash=GENESIS_HASH, using_db=conn)
        digest = compute_hash(
            head.last_hash, at=at, actor_kind=actor.kind, actor_id=actor.id, action=action,
            target_kind=target_kind, target_id=str(target_id), community_id=community_id,
            ip=actor.ip, request_id=actor.request_id, details=details,
        )
        event = await AuditEvent.create(
            at=at, actor_kind=actor.kind, actor_id=actor.id, action=action, target_kind=target_kind,
            target_id=str(target_id), community_id=community_id, ip=actor.ip, request_id=actor.request_id,
            details=details, prev_hash=head.last_hash, hash=digest, using_db=conn,
        )
        head.last_event_id = event.id
        head.last_hash = digest
        await head.save(using_db=conn, update_fields=["last_event_id", "last_hash"])
    return event


async def verify_chain(*, batch: int = 2000) -> ChainCheck:
    """Recompute every hash in order; report the first event that does not match."""
    prev = GENESIS_HASH
    checked = 0
    last_id = 0
    while True:
        events = await AuditEvent.filter(id__gt=last_id).order_by("id").limit(batch)
        if not events:
            break
        for event in events:
            if event.prev_hash != prev:
                return ChainCheck(False, checked, event.id, "prev_hash does not link to the event before it", prev)
            expected = _event_hash(event, prev)
            if expected != event.hash:
                return ChainCheck(False, checked, event.id, "event content does not match its hash", prev)
            prev = event.hash
            checked += 1
            last_id = event.id
    head = await AuditHead.get_or_none(id=1)
    if head is not None and (head.last_hash != prev or head.last_event_id != last_id):
        return ChainCheck(False, checked, head.last_event_id, "chain is shorter than its head: events were removed", prev)
    for anchor in await AuditAnchor.all().order_by("last_event_id"):
        event = await AuditEvent.get_or_none(id=anchor.last_event_id)
        if event is None or event.hash != anchor.leaf_hash:
            return ChainCheck(False, checked, anchor.last_event_id,
                              f"trail differs from the head anchored on the chain at event {anchor.last_event_id}", prev)
    return ChainCheck(True, checked, None, "", prev)


def describe(result: ChainCheck) -> str:
    """The outcome in words for the console (the English `reason` stays for logs and tests)."""
    if result.ok:
        return f"审计日志完整：已逐条核对 {result.checked} 条记录的哈希链，没有发现篡改、删除或顺序变动。"
    where = f"第 {result.first_bad_event_id} 号记录" if result.first_bad_event_id is not None else "某条记录"
    if "prev_hash" in result.reason:
        what = "与前一条记录的链接断开（记录被删除、插入或调换了顺序）"
    elif "content" in result.reason:
        what = "的内容与其哈希不符（记录被改动过）"
    elif "removed" in result.reason:
        what = "之后的记录被删除了（日志比记录的链头短）"
    elif "anchored" in result.reason:
        what = "与锚定在存证链上的链头不一致（日志被整体重写过）"
    else:
        what = f"校验未通过（{result.reason}）"
    return f"审计日志完整性校验未通过：{where}{what}。此前 {result.checked} 条记录核对无误。"


async def anchored_head(*, trust: Any = None) -> dict[str, Any]:
    """The latest trail head with a final inclusion proof, re-checked against the chain trust roots when given."""
    pending = await AuditAnchor.filter(anchored_at__isnull=True).count()
    anchor = await AuditAnchor.filter(anchored_at__not_isnull=True).order_by("-last_event_id").first()
    if anchor is None:
        return {"anchored": False, "pending": pending}
    proof_ok: bool | None = None
    proof_message = "未配置存证链信任根，上链证明未在本系统重新验证"
    if trust is not None:
        proof_ok, proof_message = await asyncio.to_thread(_check_anchor_proof, anchor, trust)
    return {
        "anchored": True, "pending": pending, "last_event_id": anchor.last_event_id, "leaf_hash": anchor.leaf_hash,
        "anchor_index": anchor.anchor_index, "tree_size": anchor.anchor_tree_size,
        "anchored_at": _canonical_time(anchor.anchored_at) if anchor.anchored_at else None,
        "proof_ok": proof_ok, "proof_message": proof_message,
    }


def _check_anchor_proof(anchor: AuditAnchor, trust: Any) -> tuple[bool, str]:
    """The stored inclusion proof of an anchored head, checked offline (a BLS pairing: call in a thread)."""
    from chain.verify import verify_inclusion_bundle

    try:
        checkpoint = verify_inclusion_bundle(anchor.inclusion or {}, bytes.fromhex(anchor.leaf_hash), trust)
    except (ValueError, KeyError, TypeError) as exc:  # chain.verify, merkle and note errors are ValueErrors
        return False, f"上链证明验证未通过：{exc}"
    return True, f"上链证明有效：链头在见证日志第 {anchor.anchor_index} 号叶子，检查点规模 {checkpoint.size}，已由见证人法定人数联合签名"


ANCHOR_EVENT = "audit.anchor"


async def anchor_head() -> AuditAnchor | None:
    """Record the current head for anchoring (once per head) and queue it for the chain."""
    from backend.outbox import service as outbox

    head = await AuditHead.get_or_none(id=1)
    if head is None or head.last_event_id == 0 or await AuditAnchor.exists(last_event_id=head.last_event_id):
        return None
    with contextlib.suppress(IntegrityError):
        anchor = await AuditAnchor.create(last_event_id=head.last_event_id, leaf_hash=head.last_hash)
        await outbox.enqueue(kind=ANCHOR_EVENT, dedupe_key=f"audit.anchor:{anchor.id}", payload={"id": str(anchor.id)})
        return anchor
    return None


async def search(
    *,
    community_ids: list[int] | None,
    action: str | None = None,
    target_kind: str | None = None,
    target_id: str | None = None,
    actor_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    page: int = 1,
    size: int = 50,
) -> tuple[int, list[AuditEvent]]:
    query = AuditEvent.all()
    if community_ids is not None:
        query = query.filter(community_id__in=community_ids)
    if action:
        query = query.filter(action__startswith=action)
    if target_kind:
        query = query.filter(target_kind=target_kind)
    if target_id:
        query = query.filter(target_id=target_id)
    if actor_id:
        query = query.filter(actor_id=actor_id)
    if since is not None:
        query = query.filter(at__gte=since)
    if until is not None:
        query = query.filter(at__lte=until)
    total = await query.count()
    events = await query.order_by("-id").offset((page - 1) * size).limit(size)
    return total, events


async def staff_names(events: list[AuditEvent]) -> dict[str, str]:
    """Display names of the staff who acted in `events`, so auditors read people, not numbers."""
    from backend.auth.models import StaffUser  # auth records into the audit trail: import at use, not at load

    ids = {int(e.actor_id) for e in events if e.actor_kind == "staff" and e.actor_id.isdigit()}
    if not ids:
        return {}
    rows = await StaffUser.filter(id__in=ids).values_list("id", "display_name", "username")
    return {str(uid): f"{display}（{username}）" for uid, display, username in rows}


def to_dict(event: AuditEvent, names: dict[str, str] | None = None) -> dict[str, Any]:
    actor_name = (names or {}).get(event.actor_id) if event.actor_kind == "staff" else None
    return {
        "id": event.id,
        "at": _canonical_time(event.at),
        "actor": {"kind": event.actor_kind, "id": event.actor_id, "name": actor_name},
        "action": event.action,
        "target": {"kind": event.target_kind, "id": event.target_id},
        "community_id": event.community_id,
        "ip": event.ip,
        "request_id": event.request_id,
        "details": event.details,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }
