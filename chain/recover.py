"""Rebuild the leaves a sequencer lost from what its submitters recorded, then resume consistently.

``python -m chain recover --data-dir D --leaves leaves.jsonl [--leaves more.jsonl] [--fill-gaps]``
runs against a *stopped* sequencer (it takes the log's writer lock). Every submitter keeps the
hashes it submitted and the index the log acknowledged for each (the backend exports them with
``python -m backend chain-leaves``: one JSON object per line, ``{"index", "hash", "label",
"submitter"}``). Recovery

1. reads the stored leaves, the acknowledged mark and what each registered witness last
   cosigned (its log-signed checkpoint, checked with the log key);
2. checks the submitters' records against the stored leaves (a recorded index holding another
   hash is a conflict: nothing is written);
3. fills the missing indices, from the stored size up to the largest of the acknowledged mark,
   the witnesses' sizes and the recorded indices, with the recorded hashes *at their recorded
   indices* (an index is never given to another hash);
4. recomputes the tree and requires it to reproduce every witness's cosigned root and the
   acknowledged root; only then appends the leaves in one transaction and moves the mark.

An index below a witness's size that no submitter recorded cannot be rebuilt (its hash is
unknown and the cosigned root depends on it): recovery stops and names it. An index above every
witness's size but acknowledged (mark or a later recorded index) is a gap only ``--fill-gaps``
seals, with a filler leaf ``SHA-256("zhilian/chain/recovery-filler/v1\\n" origin "\\n" index)``:
the index stays used, and the submitter whose leaf it was re-submits it (the log answers 404 for
that hash) and gets a new index. Leaves recorded without an index were never acknowledged: their
submitters re-submit them the same way.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from . import keys
from .checkpoint import NoteError, open_checkpoint
from .log import AckMark, AckMarkError, Acknowledged, Log, LogLocked, StoredRow, make_store
from .merkle import hash_leaf
from .sequencer import SequencerSettings

FILLER_LABEL = "recovery_filler"
FILLER_SUBMITTER = "recovery"
MAX_LISTED = 50


class RecoveryError(Exception):
    """Recovery cannot proceed safely; ``state`` says exactly why (nothing was written)."""

    def __init__(self, message: str, **state: Any) -> None:
        super().__init__(message)
        self.state = state


@dataclass(frozen=True)
class SubmittedLeaf:
    index: int | None
    leaf: bytes
    label: str
    submitter: str


def parse_leaves(text: str, source: str = "input") -> list[SubmittedLeaf]:
    """JSON lines (or one JSON array / ``{"leaves": [...]}``) of ``{index, hash, label, submitter}``."""
    stripped = text.strip()
    if not stripped:
        return []
    if stripped.startswith("[") or stripped.startswith('{"leaves"'):
        data = json.loads(stripped)
        items = data["leaves"] if isinstance(data, dict) else data
    else:
        items = [json.loads(line) for line in stripped.splitlines() if line.strip()]
    leaves = []
    for n, item in enumerate(items, 1):
        try:
            leaf = bytes.fromhex(item["hash"])
            index = item.get("index")
            if len(leaf) != 32 or (index is not None and (not isinstance(index, int) or index < 0)):
                raise ValueError("a 32-byte hex hash and a non-negative integer index (or null)")
            leaves.append(SubmittedLeaf(index, leaf, str(item.get("label") or "credential"),
                                        str(item.get("submitter") or "unknown")))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{source}: record {n} is not {{index, hash, label, submitter}}: {exc}") from exc
    return leaves


def filler_leaf(origin: str, index: int) -> bytes:
    """What seals an acknowledged index whose hash no submitter recorded (anyone can recompute it)."""
    return hashlib.sha256(f"zhilian/chain/recovery-filler/v1\n{origin}\n{index}".encode()).digest()


def _listed(indices: list[int]) -> list[int]:
    return indices[:MAX_LISTED]


async def _witness_claims(settings: SequencerSettings, urls: dict[str, str]) -> list[dict[str, Any]]:
    """What every reachable witness last cosigned, its log signature checked when present."""
    verifier = keys.log_signer(settings.data_dir, settings.origin).verifier
    claims = []
    async with httpx.AsyncClient(timeout=5) as http:
        for department, url in sorted(urls.items()):
            claim: dict[str, Any] = {"department": department, "url": url}
            try:
                health = (await http.get(f"{url.rstrip('/')}/v1/health")).json()
                claim["size"] = int(health["size"])
                claim["root_hash"] = str(health["root_hash"])
                claim["signed"] = False
                if health.get("checkpoint"):
                    checkpoint = open_checkpoint(str(health["checkpoint"]), verifier)
                    if checkpoint.size != claim["size"] or base64.b64encode(checkpoint.root_hash).decode() != claim[
                        "root_hash"
                    ]:
                        raise ValueError("its state and its log-signed checkpoint disagree")
                    claim["signed"] = True
                claim["refused"] = health.get("refused")
            except (httpx.HTTPError, KeyError, TypeError, ValueError, NoteError) as exc:
                claim["error"] = f"{type(exc).__name__}: {exc}"
            claims.append(claim)
    return claims


async def recover(
    settings: SequencerSettings,
    leaves: list[SubmittedLeaf],
    *,
    witness_urls: dict[str, str] | None = None,
    fill_gaps: bool = False,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Restore the missing leaves (see the module docstring); returns a report of what was done."""
    mark = AckMark(settings.data_dir / "acknowledged")
    log_ = Log(make_store(settings.resolved_database_url()), mark=None)
    try:
        await log_.store.open()
    except LogLocked as exc:
        raise RecoveryError(f"stop the sequencer first: {exc}") from exc
    try:
        await log_.open_tree()
        try:
            acknowledged: Acknowledged | None = mark.read()
            mark_note = None
        except AckMarkError as exc:
            acknowledged, mark_note = None, str(exc)
        urls = {w["department"]: w["url"] for w in await log_.store.load_witnesses()}
        urls.update(witness_urls or {})
        claims = await _witness_claims(settings, urls)
        return await _restore(settings, log_, mark, acknowledged, mark_note, claims, leaves, fill_gaps, dry_run)
    finally:
        await log_.store.close()
        mark.close()


async def _restore(
    settings: SequencerSettings,
    log_: Log,
    mark: AckMark,
    acknowledged: Acknowledged | None,
    mark_note: str | None,
    claims: list[dict[str, Any]],
    leaves: list[SubmittedLeaf],
    fill_gaps: bool,
    dry_run: bool,
) -> dict[str, Any]:
    stored = log_.size
    state: dict[str, Any] = {
        "stored_size": stored,
        "acknowledged": (
            {"size": acknowledged.size, "root_hash": base64.b64encode(acknowledged.root_hash).decode()}
            if acknowledged else mark_note
        ),
        "witnesses": claims,
    }
    # 1. the records against the stored leaves and against each other
    at: dict[int, SubmittedLeaf] = {}
    conflicts: list[str] = []
    for item in leaves:
        if item.index is None:
            continue
        known = log_.index_of(item.leaf)
        if known is not None and known != item.index:
            conflicts.append(f"{item.leaf.hex()} recorded at {item.index}, stored at {known}")
        elif item.index < stored:
            if log_.leaf_hash(item.index) != hash_leaf(item.leaf):
                conflicts.append(f"index {item.index} recorded for {item.leaf.hex()}, stored for another hash")
        elif item.index in at and at[item.index].leaf != item.leaf:
            conflicts.append(f"index {item.index} recorded for two hashes")
        else:
            at[item.index] = item
    if conflicts:
        raise RecoveryError("the submitters' records disagree with the stored log; nothing written",
                            conflicts=conflicts[:MAX_LISTED], conflict_count=len(conflicts), **state)
    unindexed = sum(1 for item in leaves if item.index is None and log_.index_of(item.leaf) is None)
    # 2. how far to rebuild, and what is missing
    witnessed = max([c["size"] for c in claims if "size" in c], default=0)
    target = max(stored, witnessed, acknowledged.size if acknowledged else 0, max(at, default=-1) + 1)
    missing = [i for i in range(stored, target) if i not in at]
    cosigned_missing = [i for i in missing if i < witnessed]
    if cosigned_missing:
        raise RecoveryError(
            f"{len(cosigned_missing)} cosigned indices are recorded by no submitter; export the leaves of "
            "every submitter and retry", missing=_listed(cosigned_missing), target_size=target, **state)
    if missing and not fill_gaps:
        raise RecoveryError(
            f"{len(missing)} acknowledged indices are recorded by no submitter; rerun with --fill-gaps to seal "
            "them with filler leaves (their submitters re-submit and get new indices)",
            missing=_listed(missing), target_size=target, **state)
    # 3. rebuild in memory and check every root we know of
    now = time.time()
    rows = []
    for index in range(stored, target):
        item = at.get(index)
        if item is None:
            rows.append(StoredRow(index, filler_leaf(settings.origin, index), FILLER_LABEL, FILLER_SUBMITTER, now))
        else:
            rows.append(StoredRow(index, item.leaf, item.label, item.submitter, now))
    for row in rows:
        log_.tree.append(hash_leaf(row.leaf))
    mismatches = []
    for claim in claims:
        if "size" in claim and claim["size"] > 0:
            root = base64.b64encode(log_.tree.root(claim["size"])).decode()
            if root != claim["root_hash"]:
                mismatches.append(f"{claim['department']}: cosigned {claim['root_hash']} at size {claim['size']}, "
                                  f"rebuilt {root}")
    # with a filled index below the mark, its root cannot match: the gap is sealed knowingly
    mark_checked = bool(acknowledged) and not any(i < acknowledged.size for i in missing)
    if mark_checked and log_.tree.root(acknowledged.size) != acknowledged.root_hash:
        mismatches.append(f"acknowledged mark: size {acknowledged.size}, rebuilt root differs")
    if mismatches:
        raise RecoveryError("the rebuilt tree does not reproduce the cosigned roots; nothing written",
                            mismatches=mismatches, target_size=target, **state)
    report = {
        **state,
        "restored": len(rows) - len(missing),
        "filled": _listed(missing),
        "filled_count": len(missing),
        "unindexed_to_resubmit": unindexed,
        "acknowledged_root_checked": mark_checked,
        "size": target,
        "root_hash": base64.b64encode(log_.tree.root()).decode(),
        "written": not dry_run,
    }
    if not dry_run:
        await log_.store.append(rows)
        mark.write(target, log_.tree.root())
    return report
