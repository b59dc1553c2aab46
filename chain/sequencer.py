"""The sequencer: owns the log, signs C2SP checkpoints, gathers witness cosignatures.

After every committed batch (and every ``checkpoint_interval`` seconds while a
checkpoint is not yet final) it signs a C2SP ``tlog-checkpoint`` for the
current tree with the log's Ed25519 key, sends it to every registered witness
with a RFC 9162 §2.1.4 consistency proof from the size that witness last
cosigned (C2SP ``tlog-witness`` ``add-checkpoint`` shape), checks each BLS
cosignature, and — once ``quorum`` witnesses agree — aggregates them into one
signature with a signer bitmap.  That record is the *final* checkpoint.

Each round proposes a time ``T`` (POSIX seconds, renewed every
``timestamp_refresh`` seconds); witnesses check it against their clocks and
sign it with the checkpoint, so the final record carries a time a quorum
attests.  Each witness also returns a C2SP ``tlog-cosignature`` v1 line
(Ed25519); the record's ``cosigned_note`` is the checkpoint note with those
lines, for standard witness clients.

Witness keys are registered with a proof of possession (draft-irtf-cfrg-bls-
signature-05 §3.3), which is what makes FastAggregateVerify safe against
rogue-key attacks.

Nothing is sequenced before ``chain.guard`` has found the stored log consistent
with the acknowledged mark and with the witnesses (fail closed).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from . import bls
from .checkpoint import (
    Checkpoint,
    CosignerVerifier,
    NoteError,
    NoteSigner,
    open_cosignatures,
    sign_checkpoint,
)
from .guard import OK, REFUSING, Guard
from .log import AckMark, AckMarkError, Log, make_store
from .verify import encode_bitmap
from .witness import DEPARTMENTS

log = logging.getLogger("chain.sequencer")


class SequencerError(Exception):
    status = 400
    code = "sequencer_error"


class UnknownDepartment(SequencerError):
    code = "unknown_department"


class BadProofOfPossession(SequencerError):
    status = 403
    code = "bad_proof_of_possession"


class WitnessKeyConflict(SequencerError):
    status = 409
    code = "witness_key_conflict"


class BadCosignerKey(SequencerError):
    code = "bad_cosigner_key"


@dataclass
class SequencerSettings:
    """How a sequencer runs (CLI flags and ``ZHILIAN_CHAIN_*`` variables map onto these)."""

    data_dir: Path
    database_url: str | None = None
    origin: str = "zhilian.local/chain"
    quorum: int = 2
    departments: tuple[str, ...] = DEPARTMENTS
    checkpoint_interval: float = 1.0
    witness_timeout: float = 2.0
    quorum_grace: float = 0.3
    batch_window: float = 0.01
    timestamp_refresh: float = 10.0  # a round's proposed time is reused this long (witnesses allow 30 s)
    host: str = "127.0.0.1"
    port: int = 8650

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'chain.sqlite3'}"


@dataclass
class RegisteredWitness:
    department: str
    public_key: bytes
    pop: bytes
    url: str
    cosigner_vkey: str = ""  # C2SP tlog-cosignature v1 verifier key (type 0x04)

    def to_json(self) -> dict[str, Any]:
        return {
            "department": self.department,
            "public_key": self.public_key.hex(),
            "pop": self.pop.hex(),
            "url": self.url,
            "cosigner_vkey": self.cosigner_vkey,
        }


@dataclass
class _Pending:
    checkpoint: Checkpoint
    note: str
    timestamp: int
    cosignatures: dict[str, bytes] = field(default_factory=dict)
    lines: dict[str, str] = field(default_factory=dict)


class Sequencer:
    """Log + checkpoint signer + witness round-trips; no HTTP serving here."""

    def __init__(self, settings: SequencerSettings, signer: NoteSigner) -> None:
        if not 1 <= settings.quorum <= len(settings.departments):
            raise ValueError(f"expected 1 <= quorum <= {len(settings.departments)}, got {settings.quorum}")
        self.settings = settings
        self.signer = signer
        self.log = Log(make_store(settings.resolved_database_url()), mark=AckMark(settings.data_dir / "acknowledged"))
        self.guard = Guard(self.log, signer.verifier, len(settings.departments) - settings.quorum + 1)
        self.witnesses: dict[str, RegisteredWitness] = {}
        self.latest_final: dict[str, Any] | None = None
        self._pending: _Pending | None = None
        self._known_size: dict[str, int] = {}
        self._kick = asyncio.Event()
        self._final_changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._guard_task: asyncio.Task[None] | None = None
        self._registered = asyncio.Event()
        self._http: httpx.AsyncClient | None = None

    async def start(self) -> None:
        try:
            await self.log.open()
        except AckMarkError as exc:
            self.guard.refuse("acknowledged_mark_unreadable", str(exc))
        for record in await self.log.store.load_witnesses():
            self.witnesses[record["department"]] = RegisteredWitness(
                record["department"],
                bytes.fromhex(record["public_key"]),
                bytes.fromhex(record["pop"]),
                record["url"],
                record.get("cosigner_vkey", ""),
            )
        self.latest_final = await self.log.store.latest_checkpoint()
        self._http = httpx.AsyncClient(timeout=self.settings.witness_timeout)
        self.guard.check_acknowledged()
        self.log.on_grow(lambda _size: self._kick.set())
        self._kick.set()
        self._task = asyncio.create_task(self._run(), name="checkpointer")
        self._guard_task = asyncio.create_task(self._check_witnesses_at_start(), name="start-check")

    async def stop(self) -> None:
        for task in (self._task, self._guard_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
        await self.log.close()

    # --- fail closed -----------------------------------------------------------------------------

    @property
    def accepting(self) -> bool:
        """Appends are taken only once the guard has found the log consistent (chain.guard)."""
        return self.guard.accepting

    async def _witness_health(self, witness: RegisteredWitness) -> dict[str, Any] | None:
        assert self._http is not None
        try:
            response = await self._http.get(f"{witness.url}/v1/health")
            data = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    async def check_witness(self, witness: RegisteredWitness) -> bool:
        """Fetch what ``witness`` last cosigned and compare it with our tree (may refuse)."""
        health = await self._witness_health(witness)
        if health is None:
            return False
        return self.guard.witness_answer(witness.department, health) is not None

    async def _check_witnesses_at_start(self) -> None:
        """Ask every registered witness until enough agree; then open the log for appends.

        Witnesses that answer later are still checked (a refusal's report shows them all)."""
        delay = 0.05
        while True:
            self._registered.clear()
            pending = [w for d, w in self.witnesses.items() if d not in self.guard.views]
            await asyncio.gather(*(self.check_witness(w) for w in pending))
            if self.guard.state == REFUSING or self.guard.maybe_open():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._registered.wait(), delay)
            delay = min(2.0, delay * 2)
        if self.guard.state == OK:
            self._kick.set()
        while True:
            late = [w for d, w in self.witnesses.items() if d not in self.guard.views]
            if not late:
                return
            self._registered.clear()
            await asyncio.gather(*(self.check_witness(w) for w in late))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._registered.wait(), 2.0)

    def status(self) -> dict[str, Any]:
        """Health: the log, the final checkpoint and the guard's exact state."""
        final = self.latest_final
        return {
            **self.guard.report(),
            "role": "sequencer",
            "origin": self.settings.origin,
            "size": self.log.size,
            "final_size": final["size"] if final else 0,
            "quorum": self.settings.quorum,
            "witnesses": sorted(self.witnesses),
        }

    # --- witnesses -----------------------------------------------------------------------------

    async def register_witness(
        self, department: str, public_key: bytes, pop: bytes, url: str, cosigner_vkey: str = ""
    ) -> RegisteredWitness:
        """Admit a witness key only with a valid proof of possession (rogue-key defence)."""
        if department not in self.settings.departments:
            raise UnknownDepartment(
                f"expected one of {', '.join(self.settings.departments)}, got {department!r}"
            )
        if cosigner_vkey:
            try:
                CosignerVerifier.from_vkey(cosigner_vkey)
            except NoteError as exc:
                raise BadCosignerKey(f"expected a C2SP cosignature/v1 verifier key: {exc}") from exc
        loop = asyncio.get_running_loop()
        valid = await loop.run_in_executor(None, bls.PopVerify, public_key, pop)
        if not valid:
            raise BadProofOfPossession(
                f"expected a proof of possession for {public_key.hex()[:16]}…, it does not verify"
            )
        existing = self.witnesses.get(department)
        if existing is not None and existing.public_key != public_key:
            raise WitnessKeyConflict(
                f"expected the registered key {existing.public_key.hex()[:16]}… for {department}, "
                f"got {public_key.hex()[:16]}… (an operator must retire the old key first)"
            )
        witness = RegisteredWitness(department, public_key, pop, url, cosigner_vkey)
        await self.log.store.save_witness(witness.to_json())
        self.witnesses[department] = witness
        self._known_size.pop(department, None)
        self._registered.set()
        self._kick.set()
        return witness

    def trust(self) -> dict[str, Any]:
        """The verifier trust roots as this sequencer knows them (bootstrap only; pin them)."""
        return {
            "log_vkey": self.signer.verifier.vkey,
            "quorum": self.settings.quorum,
            "witnesses": [
                {"department": d, "public_key": w.public_key.hex(), "pop": w.pop.hex(),
                 "cosigner_vkey": w.cosigner_vkey}
                for d in self.settings.departments
                if (w := self.witnesses.get(d)) is not None
            ],
        }

    # --- checkpoints ---------------------------------------------------------------------------

    async def wait_final(self, size: int, timeout: float) -> dict[str, Any] | None:
        """Wait until a final checkpoint covers ``size`` leaves (or time out)."""

        def covered() -> bool:
            return self.latest_final is not None and self.latest_final["size"] >= size

        async with self._final_changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._final_changed.wait_for(covered), timeout)
        return self.latest_final if covered() else None

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), self.settings.checkpoint_interval)
            self._kick.clear()
            # Let a burst of batches land first: one checkpoint for all of them.
            await asyncio.sleep(self.settings.batch_window)
            try:
                await self.checkpoint_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("checkpoint round failed")

    async def checkpoint_once(self) -> dict[str, Any] | None:
        """One round: sign the current tree if new, ask witnesses, finalize at quorum."""
        if not self.accepting:
            return None  # never sign a tree the guard has not found consistent
        size = self.log.size
        final = self.latest_final
        # a final record from before witnessed times is cosigned again, with a time
        if size == 0 or (final is not None and final["size"] >= size and final.get("timestamp") is not None):
            return None
        now = int(time.time())
        if (
            self._pending is None
            or self._pending.checkpoint.size != size
            or now - self._pending.timestamp > self.settings.timestamp_refresh
        ):
            checkpoint = Checkpoint(self.settings.origin, size, self.log.tree.root(size))
            self._pending = _Pending(checkpoint, sign_checkpoint(checkpoint, self.signer), now)
        pending = self._pending
        await self._collect(pending)
        if len(pending.cosignatures) < self.settings.quorum:
            log.info(
                "checkpoint %d has %d of %d cosignatures",
                size,
                len(pending.cosignatures),
                self.settings.quorum,
            )
            return None
        return await self._finalize(pending)

    async def _collect(self, pending: _Pending) -> None:
        tasks = {
            asyncio.create_task(self._ask(w, pending)): d
            for d, w in self.witnesses.items()
            if d not in pending.cosignatures
        }
        if not tasks:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.witness_timeout
        grace_until: float | None = None
        waiting = set(tasks)
        while waiting:
            if grace_until is None and len(pending.cosignatures) >= self.settings.quorum:
                grace_until = loop.time() + self.settings.quorum_grace
            until = deadline if grace_until is None else min(deadline, grace_until)
            timeout = until - loop.time()
            if timeout <= 0:
                break
            done, waiting = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                answer = task.result()
                if answer is not None:
                    pending.cosignatures[tasks[task]], pending.lines[tasks[task]] = answer
        for task in waiting:
            task.cancel()

    async def _ask(self, witness: RegisteredWitness, pending: _Pending) -> tuple[bytes, str] | None:
        """One witness's cosignature, or None; a misbehaving witness never breaks the round."""
        try:
            return await self._add_checkpoint(witness, pending)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("witness %s answered with something unusable", witness.department)
            return None

    async def _add_checkpoint(self, witness: RegisteredWitness, pending: _Pending) -> tuple[bytes, str] | None:
        """C2SP tlog-witness style add-checkpoint, retrying on an old-size conflict."""
        assert self._http is not None
        checkpoint = pending.checkpoint
        department = witness.department
        for _ in range(3):
            old = self._known_size.get(department, 0)
            if old > checkpoint.size:
                await self.check_witness(witness)  # a witness ahead of us: refuse if it is right
                return None
            proof = self.log.tree.consistency_proof(old, checkpoint.size)
            body = {
                "old_size": old,
                "consistency_proof": [h.hex() for h in proof],
                "checkpoint": pending.note,
                "timestamp": pending.timestamp,
            }
            try:
                response = await self._http.post(f"{witness.url}/v1/add-checkpoint", json=body)
            except httpx.HTTPError as exc:
                log.info("witness %s unreachable: %s", department, exc)
                self.guard.note_witness_error(department, "unreachable", str(exc) or type(exc).__name__)
                return None
            data = (
                response.json()
                if response.headers.get("content-type", "").startswith("application/json")
                else {}
            )
            if response.status_code == 409 and "size" in data:
                self._known_size[department] = int(data["size"])
                continue
            if response.status_code != 200:
                error = data.get("error") if isinstance(data.get("error"), dict) else {}
                code, message = str(error.get("code", response.status_code)), str(error.get("message", ""))
                log.warning("witness %s refused size %d: %s %s", department, checkpoint.size, code, message)
                self.guard.note_witness_error(department, code, message)
                return None
            if data.get("timestamp") != pending.timestamp:
                log.warning("witness %s attested another time than proposed: %r", department, data.get("timestamp"))
                return None
            # Checked in _finalize, all at once (one pairing for the aggregate, not one per witness).
            self._known_size[department] = checkpoint.size
            self.guard.note_witness_ok(department)
            return bytes.fromhex(data["signature"]), str(data.get("cosignature", ""))
        return None

    def _line_verifies(self, department: str, pending: _Pending) -> bool:
        """The witness's tlog-cosignature line is over this checkpoint and by its registered key."""
        vkey = self.witnesses[department].cosigner_vkey
        line = pending.lines.get(department, "")
        if not vkey or not line:
            return not vkey  # a witness registered without an Ed25519 key sends no line
        try:
            text, times = open_cosignatures(pending.note + line, [CosignerVerifier.from_vkey(vkey)])
        except NoteError:
            return False
        return text == pending.checkpoint.text() and len(times) == 1

    def _aggregate_verified(self, pending: _Pending) -> bytes | None:
        """Aggregate the cosignatures and check them with one FastAggregateVerify; on failure,
        check each, drop the bad ones, and aggregate again if a quorum is left.  Runs in a thread."""
        message = pending.checkpoint.cosignature_message(pending.timestamp)
        for department in list(pending.cosignatures):
            if not self._line_verifies(department, pending):
                log.warning("witness %s sent a tlog-cosignature line that does not verify", department)
                del pending.cosignatures[department]
                pending.lines.pop(department, None)
        for attempt in range(2):
            signers = [d for d in self.settings.departments if d in pending.cosignatures]
            if len(signers) < self.settings.quorum:
                return None
            try:
                aggregate: bytes | None = bls.Aggregate([pending.cosignatures[d] for d in signers])
            except bls.AggregateError:
                aggregate = None
            pks = [self.witnesses[d].public_key for d in signers]
            if aggregate is not None and bls.FastAggregateVerify(pks, message, aggregate):
                return aggregate
            if attempt == 0:
                for d in signers:
                    if not bls.Verify(self.witnesses[d].public_key, message, pending.cosignatures[d]):
                        log.warning("witness %s sent a cosignature that does not verify", d)
                        del pending.cosignatures[d]
                        self._known_size.pop(d, None)
        return None

    async def _finalize(self, pending: _Pending) -> dict[str, Any] | None:
        order = list(self.settings.departments)
        loop = asyncio.get_running_loop()
        aggregate = await loop.run_in_executor(None, self._aggregate_verified, pending)
        if aggregate is None:
            return None
        signers = [d for d in order if d in pending.cosignatures]
        checkpoint = pending.checkpoint
        record = {
            "origin": checkpoint.origin,
            "size": checkpoint.size,
            "root_hash": base64.b64encode(checkpoint.root_hash).decode(),
            "note": pending.note,
            "quorum": self.settings.quorum,
            "witnesses": [
                {"department": d, "public_key": w.public_key.hex() if (w := self.witnesses.get(d)) else None}
                for d in order
            ],
            "signer_bitmap": encode_bitmap([d in pending.cosignatures for d in order]),
            "signers": signers,
            "cosignatures": [
                {"department": d, "signature": pending.cosignatures[d].hex(), "cosignature": pending.lines.get(d, "")}
                for d in signers
            ],
            "aggregate_signature": aggregate.hex(),
            # the time T every signer attested with the checkpoint (covered by the aggregate)
            "timestamp": pending.timestamp,
            "witnessed_at": datetime.fromtimestamp(pending.timestamp, UTC).isoformat(timespec="seconds"),
            # the note with each signer's C2SP tlog-cosignature/v1 line, for standard witness clients
            "cosigned_note": pending.note + "".join(pending.lines.get(d, "") for d in signers),
            # when quorum was reached, as the sequencer saw it: informational (not covered by any signature)
            "finalized_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        await self.log.store.save_checkpoint(record)
        async with self._final_changed:
            self.latest_final = record
            self._final_changed.notify_all()
        self._pending = None
        log.info("checkpoint %d final with %s", checkpoint.size, ", ".join(signers))
        return record
