"""A department witness: checks that each new checkpoint extends the last one it cosigned.

The request shape follows C2SP ``tlog-witness`` (https://c2sp.org/tlog-witness,
``add-checkpoint``): the old size the sequencer believes the witness is at, a
RFC 9162 §2.1.4 consistency proof from that size, and the new checkpoint as a
C2SP signed note.  The answers follow it too: a size mismatch is a conflict
that reports the witness's real size; a bad log signature is refused.

Each accepted checkpoint gets two cosignatures:

* a BLS12-381 signature (ciphersuite ``BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_``)
  over ``checkpoint.cosignature_message(T)``, so the sequencer can aggregate.
  ``T`` is the time the sequencer proposes for the round; the witness signs it
  only if it is within ``max_skew`` seconds of its own clock, so a quorum of
  these says "we saw this tree by time T" (give or take the skew) and a
  checkpoint cannot be back-dated;
* a C2SP ``tlog-cosignature`` v1 line (Ed25519, the witness's own time), which
  any standard witness client can check.

A log that signs a *smaller* tree than one already cosigned (rollback), a
different root at the same size, or a tree its consistency proof cannot link
(fork) has equivocated: the witness records the evidence,
marks the state refused, and refuses that log from then on, across restarts.
State lives in ``state-<log key id>.json`` and evidence in ``refusals-<log key id>.jsonl``.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import bls, keys
from .checkpoint import Checkpoint, CosignerKey, NoteError, NoteVerifier, open_checkpoint
from .merkle import EMPTY_ROOT, ConsistencyProofError, verify_consistency

DEPARTMENTS = ("civil_affairs", "social_security", "health")


class WitnessError(Exception):
    """Base class; ``status`` and ``code`` say how HTTP reports it."""

    status = 400
    code = "witness_error"


class BadCheckpoint(WitnessError):
    """The checkpoint note is malformed or not signed by the log key."""

    status = 403
    code = "bad_log_signature"


class OldSizeMismatch(WitnessError):
    """The sequencer's idea of our last cosigned size is wrong; it should retry from ``size``."""

    status = 409
    code = "old_size_mismatch"

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


class BadTimestamp(WitnessError):
    """The proposed time is too far from the witness's clock to be attested (not a log fault)."""

    status = 400
    code = "bad_timestamp"


class LogRefused(WitnessError):
    """The log equivocated (now or earlier); this witness no longer cosigns it."""

    status = 409
    code = "log_refused"


class RollbackRefused(LogRefused):
    code = "rollback_refused"


class ForkRefused(LogRefused):
    code = "fork_refused"


@dataclass
class WitnessState:
    """What must survive restarts: the last cosigned tree, and any refusal."""

    origin: str | None = None
    size: int = 0
    root_hash: str = base64.b64encode(EMPTY_ROOT).decode()
    refused: dict[str, Any] | None = None
    note: str | None = None  # the log-signed checkpoint last cosigned: proof of the log's own claim
    timestamp: int | None = None  # the time attested with it

    @classmethod
    def load(cls, path: Path) -> WitnessState:
        if not path.exists():
            return cls()
        return cls(**json.loads(path.read_text()))

    def save(self, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, json.dumps(asdict(self), sort_keys=True).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


@dataclass(frozen=True)
class Cosigned:
    """What a witness returns for an accepted checkpoint."""

    checkpoint: Checkpoint
    timestamp: int  # the attested time T of the BLS cosignature
    signature: bytes  # BLS over checkpoint.cosignature_message(timestamp)
    line: str  # C2SP tlog-cosignature/v1 note line (Ed25519, the witness's own time)


DEFAULT_MAX_SKEW = 30


class Witness:
    """The cosigning rule of one department; thread-safe, synchronous (run it off the event loop)."""

    def __init__(
        self,
        department: str,
        secret_key: int,
        log_verifier: NoteVerifier,
        data_dir: Path,
        *,
        cosigner: CosignerKey | None = None,
        max_skew: int = DEFAULT_MAX_SKEW,
    ) -> None:
        self.department = department
        self._sk = secret_key
        self.public_key = bls.SkToPk(secret_key)
        self.pop = bls.PopProve(secret_key)
        self.cosigner = cosigner or keys.witness_cosigner_key(data_dir, keys.witness_cosigner_name(department))
        self.max_skew = max_skew
        self.log_verifier = log_verifier
        self.data_dir = data_dir
        # One state per log key: a new log (new key) starts fresh instead of looking like a rollback.
        key_id = log_verifier.key_id.hex()
        self._state_path = data_dir / f"state-{key_id}.json"
        self._refusals_path = data_dir / f"refusals-{key_id}.jsonl"
        self._lock = threading.Lock()
        self.state = WitnessState.load(self._state_path)

    def _refuse(self, error: LogRefused, checkpoint: Checkpoint, note: str) -> LogRefused:
        """Persist the evidence and the refusal before answering."""
        evidence = {
            "at": time.time(),
            "code": error.code,
            "message": str(error),
            "cosigned": {"size": self.state.size, "root_hash": self.state.root_hash},
            "presented": {
                "size": checkpoint.size,
                "root_hash": base64.b64encode(checkpoint.root_hash).decode(),
            },
            "note": note,
        }
        with open(self._refusals_path, "a") as fh:
            fh.write(json.dumps(evidence) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.state.refused = {"code": error.code, "message": str(error), "at": evidence["at"]}
        self.state.save(self._state_path)
        return error

    def _cosign(self, checkpoint: Checkpoint, timestamp: int) -> Cosigned:
        signature = bls.Sign(self._sk, checkpoint.cosignature_message(timestamp))
        line = self.cosigner.sign_line(checkpoint.text(), int(time.time()))
        return Cosigned(checkpoint, timestamp, signature, line)

    def _check_time(self, timestamp: int | None) -> int:
        now = int(time.time())
        if timestamp is None:
            return now
        if not isinstance(timestamp, int) or abs(timestamp - now) > self.max_skew:
            raise BadTimestamp(
                f"expected a time within {self.max_skew}s of this witness's clock ({now}), got {timestamp!r}"
            )
        return timestamp

    def add_checkpoint(
        self, old_size: int, proof: list[bytes], note: str, timestamp: int | None = None
    ) -> Cosigned:
        """Check ``note`` against the last cosigned tree; returns our cosignatures.

        ``timestamp`` is the time to attest (default: now); one further than ``max_skew`` from
        our clock is refused without penalty: the log did nothing wrong, its clock did."""
        with self._lock:
            if self.state.refused is not None:
                raise LogRefused(
                    f"expected a log that never equivocated; refused since {self.state.refused['code']}: "
                    f"{self.state.refused['message']}"
                )
            try:
                checkpoint = open_checkpoint(note, self.log_verifier)
            except NoteError as exc:
                raise BadCheckpoint(str(exc)) from exc
            timestamp = self._check_time(timestamp)
            last_root = base64.b64decode(self.state.root_hash)
            if checkpoint.size < self.state.size:
                raise self._refuse(
                    RollbackRefused(
                        f"expected a tree of size >= {self.state.size} (already cosigned), "
                        f"the log signed size {checkpoint.size}"
                    ),
                    checkpoint,
                    note,
                )
            if checkpoint.size == self.state.size and self.state.size > 0:
                if checkpoint.root_hash != last_root:
                    raise self._refuse(
                        ForkRefused(
                            f"expected root {self.state.root_hash} at size {checkpoint.size} (already cosigned), "
                            f"the log signed {base64.b64encode(checkpoint.root_hash).decode()}"
                        ),
                        checkpoint,
                        note,
                    )
                return self._cosign(checkpoint, timestamp)
            if old_size != self.state.size:
                raise OldSizeMismatch(
                    f"expected old size {self.state.size}, got {old_size}", size=self.state.size
                )
            try:
                verify_consistency(self.state.size, checkpoint.size, proof, last_root, checkpoint.root_hash)
            except ConsistencyProofError as exc:
                raise self._refuse(
                    ForkRefused(f"expected size {checkpoint.size} to extend size {self.state.size}: {exc}"),
                    checkpoint,
                    note,
                ) from exc
            cosigned = self._cosign(checkpoint, timestamp)
            self.state.origin = checkpoint.origin
            self.state.size = checkpoint.size
            self.state.root_hash = base64.b64encode(checkpoint.root_hash).decode()
            self.state.note = note
            self.state.timestamp = timestamp
            self.state.save(self._state_path)
            return cosigned
