"""Anchoring hashes on the chain through the outbox (DESIGN §4 step 8).

Two steps per anchored row (a credential, an export), each an outbox event retried with
back-off:

1. ``<kind>.anchor``: ``ChainClient.submit(leaf, label)`` (idempotent at the sequencer),
   store the leaf index, enqueue step 2;
2. ``<kind>.proof``: wait up to CHAIN_PROOF_WAIT_S for a final checkpoint covering the leaf,
   then look the leaf up (the proof is checked against the trust roots by the client) and store
   the proof with its checkpoint; not final yet -> raise, so the outbox retries later. A leaf the
   log says it does not have (404 ``leaf_not_found``: it lost it, e.g. a torn write recovered
   without it) is submitted again, at once: waiting would never make it final.

With no chain configured the anchoring handlers are not registered: the events stay queued,
untouched, and nothing fails. ``attach_chain`` connects a chain to a running app.

Every row keeps its leaf hash and the index the log acknowledged: ``submitted_leaves`` exports
them (``python -m backend chain-leaves``) for ``python -m chain recover``.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sanic import Sanic

from backend.certification.records import CERTIFIED_EVENT
from backend.credentials import service
from backend.credentials.models import Anchored, Credential
from backend.outbox import service as outbox
from backend.outbox.models import OutboxEvent
from backend.outbox.recovery import Dependency
from backend.settings import Settings

Handler = Callable[[OutboxEvent], Awaitable[None]]
log = logging.getLogger("zhilian.anchor")


class NotFinalYet(Exception):
    """No checkpoint cosigned by a witness quorum covers the leaf yet (retried by the outbox)."""


def chain_client_from_settings(settings: Settings) -> Any:
    """A `chain.client.ChainClient` for CHAIN_URL, or None when no chain is configured."""
    if not settings.chain_url:
        return None
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from chain.client import ChainClient
    from chain.verify import Trust

    if settings.chain_submitter_key:
        key: Any = Ed25519PrivateKey.from_private_bytes(base64.b64decode(settings.chain_submitter_key))
    elif settings.chain_submitter_key_file:
        key = Path(settings.chain_submitter_key_file)
    else:
        from backend.settings import SettingsError

        raise SettingsError("CHAIN_URL needs CHAIN_SUBMITTER_KEY or CHAIN_SUBMITTER_KEY_FILE")
    trust = None
    if settings.chain_trust_file:
        from chain.verify import VerificationError

        try:  # a witness key without a valid proof of possession is refused here too
            trust = Trust.load(settings.chain_trust_file)
        except (OSError, VerificationError, KeyError, TypeError, ValueError) as exc:
            from backend.settings import SettingsError

            raise SettingsError(f"CHAIN_TRUST_FILE {settings.chain_trust_file}: {exc}") from exc
    return ChainClient(settings.chain_url, submitter=settings.chain_submitter, private_key=key, trust=trust)


def _submit_handler(app: Sanic, model: type[Anchored], prefix: str, label: str) -> Handler:
    async def submit(event: OutboxEvent) -> None:
        row = await model.get_or_none(id=event.payload["id"])
        if row is None or row.inclusion is not None:
            return
        index = await app.ctx.chain.submit(bytes.fromhex(row.leaf_hash), label)
        await model.filter(id=row.id).update(anchor_index=index)
        await outbox.enqueue(kind=f"{prefix}.proof", dedupe_key=f"{prefix}.proof:{row.id}",
                             payload={"id": str(row.id), "leaf_index": index})

    return submit


class FinalityWatch:
    """The largest final tree size seen, so one outbox pass waits for finality at most once.

    Without it, a chain whose witnesses are down would hold the outbox loop CHAIN_PROOF_WAIT_S
    for every pending proof in turn.
    """

    def __init__(self) -> None:
        self.size = 0
        self.gave_up_at = -1e9

    async def wait_for(self, chain: Any, index: int, wait: float) -> None:
        if index < self.size or wait <= 0:
            return
        if time.monotonic() - self.gave_up_at < wait:
            return  # just waited in vain for this tip: let the outbox back-off retry later
        record = await chain.latest_checkpoint(wait_size=index + 1, timeout=wait)
        if record is not None:
            self.size = max(self.size, int(record["size"]))
        if index >= self.size:
            self.gave_up_at = time.monotonic()


def _proof_handler(app: Sanic, model: type[Anchored], prefix: str, label: str) -> Handler:
    async def prove(event: OutboxEvent) -> None:
        row = await model.get_or_none(id=event.payload["id"])
        if row is None or row.inclusion is not None:
            return
        chain = app.ctx.chain
        wait = float(app.ctx.settings.chain_proof_wait_s)
        leaf = bytes.fromhex(row.leaf_hash)
        index = row.anchor_index if row.anchor_index is not None else int(event.payload["leaf_index"])
        await app.ctx.chain_finality.wait_for(chain, index, wait)
        found = await chain.find(leaf)
        if found.state == "unknown":
            # the log acknowledged it once and has lost it: only a new submission can anchor it
            index = await chain.submit(leaf, label)
            log.warning("chain log did not have an acknowledged leaf; submitted again",
                        extra={"kind": prefix, "row_id": str(row.id), "recorded_index": row.anchor_index,
                               "new_index": index})
            await model.filter(id=row.id).update(anchor_index=index)
            await app.ctx.chain_finality.wait_for(chain, index, wait)
            found = await chain.find(leaf)
        inclusion = found.inclusion
        if inclusion is None:
            raise NotFinalYet(f"expected a final checkpoint covering leaf {index} of {prefix} {row.id}, none yet")
        await model.filter(id=row.id).update(
            inclusion=json.loads(json.dumps(inclusion.bundle)), anchor_index=inclusion.leaf_index,
            anchor_tree_size=inclusion.tree_size, anchored_at=datetime.now(UTC),
        )

    return prove


def anchor_handlers(app: Sanic, model: type[Anchored], prefix: str, label: str) -> dict[str, Handler]:
    return {f"{prefix}.anchor": _submit_handler(app, model, prefix, label),
            f"{prefix}.proof": _proof_handler(app, model, prefix, label)}


def _anchored_models() -> list[tuple[type[Anchored], str]]:
    from backend.audit.models import AuditAnchor
    from backend.exports.models import Export

    return [(Credential, "credential"), (Export, "export"), (AuditAnchor, "audit_batch")]


def _anchored_elsewhere(inclusion: Any, log_vkey: str | None) -> bool:
    """A stored proof whose checkpoint another log signed: the row is that log's leaf, not this one's."""
    if not log_vkey or not isinstance(inclusion, dict):
        return False
    from chain.checkpoint import NoteError, NoteVerifier, open_checkpoint

    try:
        open_checkpoint(str((inclusion.get("checkpoint") or {}).get("note", "")), NoteVerifier.from_vkey(log_vkey))
    except NoteError:
        return True
    return False


async def submitted_leaves(submitter: str, *, log_vkey: str | None = None,
                           page: int = 1000) -> AsyncIterator[dict[str, Any]]:
    """Every leaf hash this backend puts on the chain, with the index the log acknowledged (None
    while not acknowledged): what ``python -m chain recover`` rebuilds a damaged log from.

    With ``log_vkey`` (the configured chain's log key) rows already proven on another log (a
    chain this backend used before) are left out: their indices belong to that log."""
    for model, label in _anchored_models():
        last = None
        while True:
            query = model.all().order_by("id")
            if last is not None:
                query = query.filter(id__gt=last)
            rows = await query.limit(page).values_list("id", "leaf_hash", "anchor_index", "inclusion")
            for _id, leaf_hash, anchor_index, inclusion in rows:
                if not _anchored_elsewhere(inclusion, log_vkey):
                    yield {"index": anchor_index, "hash": leaf_hash, "label": label, "submitter": submitter}
            if len(rows) < page:
                break
            last = rows[-1][0]


def _chain_handlers(app: Sanic) -> dict[str, Handler]:
    from backend.audit.models import AuditAnchor
    from backend.exports.models import Export

    return {**anchor_handlers(app, Credential, "credential", "credential"),
            **anchor_handlers(app, Export, "export", "export"),
            **anchor_handlers(app, AuditAnchor, "audit", "audit_batch")}


def _chain_progress(client: Any) -> Callable[[], Awaitable[int]]:
    """The outbox's probe of the chain: the final tree size (raises while the sequencer is away).

    A change — the sequencer answers again, or witnesses cosign a larger checkpoint — makes the
    backed-off anchoring events due at once (`backend.outbox.recovery`).
    """

    async def probe() -> int:
        record = await client.latest_checkpoint()
        return int(record["size"]) if record else 0

    return probe


def attach_chain(app: Sanic, client: Any) -> None:
    """Connect a chain client: anchoring events start being processed."""
    app.ctx.chain = client
    app.ctx.chain_finality = FinalityWatch()
    handlers = _chain_handlers(app)
    app.ctx.outbox_handlers.update(handlers)
    app.ctx.outbox_dependencies["chain"] = Dependency(_chain_progress(client), frozenset(handlers))


def detach_chain(app: Sanic) -> None:
    """Disconnect the chain: anchoring events wait in the outbox again."""
    for kind in _chain_handlers(app):
        app.ctx.outbox_handlers.pop(kind, None)
    app.ctx.outbox_dependencies.pop("chain", None)
    app.ctx.chain = None


def install(app: Sanic, settings: Settings) -> None:
    """Issue on `certification.passed`; anchor when CHAIN_URL is set; close the client at stop."""

    async def issue(event: OutboxEvent) -> None:
        await service.issue_for_certification(
            certification_id=int(event.payload["certification_id"]), settings=app.ctx.settings
        )

    app.ctx.outbox_handlers[CERTIFIED_EVENT] = issue
    app.ctx.chain = None
    client = chain_client_from_settings(settings)
    if client is not None:
        attach_chain(app, client)

    @app.after_server_stop
    async def _close_chain(app: Sanic) -> None:
        if getattr(app.ctx, "chain", None) is not None:
            await app.ctx.chain.aclose()
