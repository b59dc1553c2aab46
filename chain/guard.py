"""Fail closed: the sequencer hands out indices only while its log is the one it acknowledged and
the witnesses cosigned.

A sequencer whose storage lost committed transactions (a torn write, a restored backup) would
otherwise start again from a smaller tree, give the lost indices to other hashes, and sign a
second history with the same log key: the witnesses would refuse it for good and finality would
stop. So at start, before the first append, the guard compares the stored tree with

* the *acknowledged mark* (``chain.log.AckMark``): the size and root last acknowledged;
* the checkpoint each witness last cosigned, fetched from the witness, its log signature checked.

It opens the log for appends once the mark agrees and ``n - quorum + 1`` witnesses have answered
consistently (then at least one of them cosigned every final checkpoint). ``n`` is the configured
witness set (``--departments``), not what happens to be registered: a store that lost its witness
registrations must not lower the bar, so configure only the departments that run a witness. A log that is behind
or differs refuses, loudly and with the exact state, until ``python -m chain recover`` has rebuilt
the missing leaves from the submitters' records. Witnesses that answer later, or that report a
size beyond ours during a round, are checked the same way; a witness that refuses the log is
recorded (it is evidence of equivocation and turns readiness red).
"""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from .checkpoint import NoteError, NoteVerifier, open_checkpoint
from .log import Log

log = logging.getLogger("chain.guard")

STARTING, OK, REFUSING = "starting", "ok", "refusing"
RECOVERY_HINT = (
    "stop the sequencer, export the submitted leaves from every submitter "
    "(backend: python -m backend chain-leaves > leaves.jsonl) and run "
    "python -m chain recover --data-dir <sequencer data dir> --leaves leaves.jsonl"
)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@dataclass(frozen=True)
class WitnessView:
    """What one witness said it last cosigned for this log, and whether our tree agrees."""

    department: str
    size: int
    root_hash: str
    signed: bool  # the claim came with the log-signed checkpoint (else: a witness state from before)
    consistent: bool
    refused: dict[str, Any] | None
    checked_at: float


class Guard:
    """The start-up and running consistency rules of one sequencer (no I/O of its own)."""

    def __init__(self, log_: Log, log_verifier: NoteVerifier, needed: int) -> None:
        self.log = log_
        self.log_verifier = log_verifier
        self.needed = needed
        self.state = STARTING
        self.refusal: dict[str, Any] | None = None
        self.views: dict[str, WitnessView] = {}
        self.witness_refusals: dict[str, dict[str, Any]] = {}
        self.witness_errors: dict[str, dict[str, Any]] = {}

    @property
    def accepting(self) -> bool:
        return self.state == OK

    def _tree_state(self) -> dict[str, Any]:
        return {"size": self.log.size, "root_hash": _b64(self.log.tree.root())}

    def refuse(self, reason: str, message: str, **details: Any) -> None:
        """Stop sequencing for good (until a restart after recovery), and say exactly why."""
        if self.state == REFUSING:
            return
        self.state = REFUSING
        self.refusal = {
            "reason": reason,
            "message": message,
            "log": self._tree_state(),
            **details,
            "recovery": RECOVERY_HINT,
            "since": time.time(),
        }
        log.critical("REFUSING TO SEQUENCE (%s): %s; state %s", reason, message, self.refusal)

    def check_acknowledged(self) -> None:
        """The stored tree must contain the acknowledged mark's tree."""
        mark = self.log.acknowledged
        if mark is None:
            return
        acknowledged = {"size": mark.size, "root_hash": _b64(mark.root_hash)}
        if mark.size > self.log.size:
            self.refuse(
                "behind_acknowledged",
                f"the log holds {self.log.size} leaves but {mark.size} were acknowledged: "
                f"{mark.size - self.log.size} acknowledged leaves are missing from storage",
                acknowledged=acknowledged,
            )
        elif self.log.tree.root(mark.size) != mark.root_hash:
            self.refuse(
                "inconsistent_with_acknowledged",
                f"the stored tree at size {mark.size} has root {_b64(self.log.tree.root(mark.size))}, "
                f"the acknowledged one {acknowledged['root_hash']}",
                acknowledged=acknowledged,
            )

    def witness_answer(self, department: str, health: dict[str, Any]) -> WitnessView | None:
        """Check a witness's ``/v1/health`` against our tree; None if the answer is unusable."""
        try:
            size = int(health["size"])
            root_hash = str(health["root_hash"])
            root = base64.b64decode(root_hash, validate=True)
            note = health.get("checkpoint")
            signed = False
            if note:
                checkpoint = open_checkpoint(str(note), self.log_verifier)
                if checkpoint.size != size or checkpoint.root_hash != root:
                    raise ValueError(f"its checkpoint says size {checkpoint.size}, its state size {size}")
                signed = True
        except (KeyError, TypeError, ValueError, NoteError) as exc:
            log.warning("witness %s gave an unusable state: %s", department, exc)
            return None
        refused = health.get("refused") if isinstance(health.get("refused"), dict) else None
        if refused is not None:
            self.witness_refusals[department] = {**refused, "source": "witness"}
        consistent = size <= self.log.size and (size == 0 or self.log.tree.root(size) == root)
        view = WitnessView(department, size, root_hash, signed, consistent, refused, time.time())
        self.views[department] = view
        if size > self.log.size:
            self.refuse(
                "behind_witness",
                f"witness {department} cosigned size {size} (root {root_hash}) but the log holds only "
                f"{self.log.size} leaves: {size - self.log.size} cosigned leaves are missing from storage",
                witness=asdict(view),
            )
        elif not consistent:
            self.refuse(
                "inconsistent_with_witness",
                f"witness {department} cosigned root {root_hash} at size {size}, the stored tree has "
                f"{_b64(self.log.tree.root(size))} there",
                witness=asdict(view),
            )
        return view

    def maybe_open(self) -> bool:
        """Open for appends once enough witnesses agree (and nothing refused)."""
        if self.state == STARTING and len(self.views) >= self.needed:
            self.state = OK
            log.info(
                "log consistent with the acknowledged mark and witnesses %s at size %d: sequencing",
                ", ".join(sorted(self.views)), self.log.size,
            )
        return self.state == OK

    def note_witness_error(self, department: str, code: str, message: str) -> None:
        """A round's refusal (sticky) or error (until the witness cosigns again)."""
        record = {"code": code, "message": message, "at": time.time()}
        if code in ("log_refused", "rollback_refused", "fork_refused"):
            self.witness_refusals[department] = {**record, "source": "add-checkpoint"}
        else:
            self.witness_errors[department] = record

    def note_witness_ok(self, department: str) -> None:
        self.witness_errors.pop(department, None)

    def report(self) -> dict[str, Any]:
        """The exact state, for ``/v1/health`` and the refusal answers."""
        return {
            "status": self.state,
            "refusal": self.refusal,
            "acknowledged_at_start": (
                {"size": self.log.acknowledged.size, "root_hash": _b64(self.log.acknowledged.root_hash)}
                if self.log.acknowledged else None
            ),
            "witnesses_checked": {d: asdict(v) for d, v in sorted(self.views.items())},
            "witnesses_needed": self.needed,
            "witness_refusals": dict(sorted(self.witness_refusals.items())),
            "witness_errors": dict(sorted(self.witness_errors.items())),
        }
