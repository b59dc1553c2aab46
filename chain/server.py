"""HTTP APIs of the sequencer and of a witness (Sanic app factories).

Sequencer (``create_app``):

* ``POST /v1/leaves`` — submitter-authenticated (``Zhilian-Ed25519``, see
  ``chain.keys``); body ``{"leaves": [{"hash": <64 hex>, "label": credential|export|audit_batch}]}``
  (1..10000 items, no other fields); answers ``{"leaves": [{"hash", "index", "duplicate"}]}``
  once the batch is durable; 503 ``log_starting`` (with ``Retry-After``) until the start-up
  consistency check has passed, 503 ``log_refusing`` (with the exact state) when it failed.
* ``GET /v1/checkpoint`` — latest final checkpoint (signed note, witnesses,
  signer bitmap, cosignatures, aggregate BLS signature); ``?wait_size=N&timeout=S``
  long-polls until a final checkpoint covers N leaves.
* ``GET /v1/inclusion/<hash>`` — RFC 9162 inclusion proof in the latest final
  checkpoint (404 unknown hash, 202 not yet final).
* ``GET /v1/consistency?first=M&second=N`` — RFC 9162 consistency proof.
* ``POST /v1/witnesses`` — admin bearer token; registers a witness key with its
  proof of possession.  ``GET /v1/witnesses``, ``GET /v1/trust``, ``GET /v1/log-key``.
* ``GET /v1/health`` — ``status`` ``starting|ok|refusing``, the refusal and witness states.

Witness (``create_witness_app``): ``POST /v1/add-checkpoint`` (C2SP
tlog-witness shape, JSON, plus the ``timestamp`` to attest), ``GET /v1/health``
(with the log-signed checkpoint it last cosigned).

Errors are JSON ``{"error": {"code", "message"}}`` with the HTTP status.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sanic import Request, Sanic
from sanic.exceptions import SanicException
from sanic.response import HTTPResponse, json

from . import keys
from .checkpoint import NoteVerifier
from .guard import REFUSING
from .log import LABELS, Entry, LeafRejected
from .merkle import TreeRangeError
from .sequencer import Sequencer, SequencerError, SequencerSettings
from .witness import DEFAULT_MAX_SKEW, OldSizeMismatch, Witness, WitnessError

log = logging.getLogger("chain.server")
MAX_LEAVES_PER_REQUEST = 10_000
_HEX32 = re.compile(r"^[0-9a-f]{64}$")
_app_counter = itertools.count()


class ApiError(Exception):
    """An HTTP-level failure with a stable error code."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.extra = status, code, extra


def _error(status: int, code: str, message: str, **extra: Any) -> HTTPResponse:
    return json({"error": {"code": code, "message": message}, **extra}, status=status)


def _install_error_handlers(app: Sanic) -> None:
    @app.exception(ApiError)
    async def api_error(request: Request, exc: ApiError) -> HTTPResponse:
        return _error(exc.status, exc.code, str(exc), **exc.extra)

    @app.exception(SequencerError)
    async def sequencer_error(request: Request, exc: SequencerError) -> HTTPResponse:
        return _error(exc.status, exc.code, str(exc))

    @app.exception(WitnessError)
    async def witness_error(request: Request, exc: WitnessError) -> HTTPResponse:
        extra = {"size": exc.size} if isinstance(exc, OldSizeMismatch) else {}
        return _error(exc.status, exc.code, str(exc), **extra)

    @app.exception(SanicException)
    async def sanic_error(request: Request, exc: SanicException) -> HTTPResponse:
        code = re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()
        return _error(exc.status_code, code, str(exc))

    @app.exception(Exception)
    async def internal_error(request: Request, exc: Exception) -> HTTPResponse:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _error(500, "internal_error", "the server failed to handle the request")


def _new_app(prefix: str) -> Sanic:
    """A bare Sanic app: unique name (tests build many), no sanic-ext, logging left to the caller."""
    app = Sanic(f"{prefix}_{next(_app_counter)}", configure_logging=False)
    app.config.AUTO_EXTEND = False
    app.config.FALLBACK_ERROR_FORMAT = "json"
    return app


def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = request.json
    except Exception as exc:
        raise ApiError(400, "invalid_json", f"expected a JSON body: {exc}") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "expected a JSON object")
    return body


def _parse_hash(text: Any) -> bytes:
    if not isinstance(text, str) or not _HEX32.match(text):
        raise ApiError(
            400, "invalid_hash", f"expected a 32-byte hash as 64 lowercase hex digits, got {text!r}"
        )
    return bytes.fromhex(text)


def _int_arg(request: Request, name: str, default: int | None = None) -> int | None:
    value = request.args.get(name)
    if value is None:
        return default
    if not value.isdigit():
        raise ApiError(400, "invalid_argument", f"expected a non-negative integer {name}, got {value!r}")
    return int(value)


# --- sequencer -------------------------------------------------------------------------------------


def _submitters(app: Sanic, data_dir: Path) -> dict:
    """Submitter public keys from ``submitters.json``, re-read when the file changes (no restart needed)."""
    path = data_dir / "submitters.json"
    mtime = path.stat().st_mtime_ns if path.exists() else 0
    if getattr(app.ctx, "submitters_mtime", None) != mtime:
        app.ctx.submitters = keys.load_submitters(data_dir)
        app.ctx.submitters_mtime = mtime
    return app.ctx.submitters


def create_app(settings: SequencerSettings) -> Sanic:
    """The sequencer app; keys are created in ``settings.data_dir`` on first run."""
    app = _new_app("chain_sequencer")
    _install_error_handlers(app)
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    @app.before_server_start
    async def start(app: Sanic) -> None:
        signer = keys.log_signer(settings.data_dir, settings.origin)
        app.ctx.admin_token = keys.admin_token(settings.data_dir)
        _submitters(app, settings.data_dir)
        app.ctx.sequencer = Sequencer(settings, signer)
        await app.ctx.sequencer.start()

    @app.after_server_stop
    async def stop(app: Sanic) -> None:
        await app.ctx.sequencer.stop()

    def seq(request: Request) -> Sequencer:
        return request.app.ctx.sequencer

    @app.get("/v1/health")
    async def health(request: Request) -> HTTPResponse:
        return json(seq(request).status())

    @app.get("/v1/log-key")
    async def log_key(request: Request) -> HTTPResponse:
        s = seq(request)
        return json({"origin": s.settings.origin, "vkey": s.signer.verifier.vkey})

    @app.get("/v1/trust")
    async def trust(request: Request) -> HTTPResponse:
        return json(seq(request).trust())

    @app.post("/v1/leaves")
    async def submit(request: Request) -> HTTPResponse:
        s = seq(request)
        if not s.accepting:
            state = s.status()
            if state["status"] == REFUSING:
                refusal = state["refusal"] or {}
                code, message = "log_refusing", f"the log refuses to sequence: {refusal.get('message', '')}"
            else:
                code = "log_starting"
                message = (
                    f"the log is checking its storage against the witnesses "
                    f"({len(state['witnesses_checked'])} of {state['witnesses_needed']} answered)"
                )
            return json({"error": {"code": code, "message": message}, "state": state},
                        status=503, headers={"retry-after": "1" if code == "log_starting" else "30"})
        try:
            submitter = keys.verify_authorization(
                request.headers.get("authorization"),
                request.method,
                request.path,
                request.body or b"",
                _submitters(request.app, settings.data_dir),
            )
        except keys.AuthError as exc:
            raise ApiError(401, "unauthorized", str(exc)) from exc
        body = _json_body(request)
        if set(body) != {"leaves"} or not isinstance(body["leaves"], list):
            raise ApiError(
                400, "invalid_request", f"expected exactly {{'leaves': [...]}}, got keys {sorted(body)}"
            )
        items = body["leaves"]
        if not 1 <= len(items) <= MAX_LEAVES_PER_REQUEST:
            raise ApiError(
                400, "invalid_request", f"expected 1..{MAX_LEAVES_PER_REQUEST} leaves, got {len(items)}"
            )
        entries = []
        for i, item in enumerate(items):
            if not isinstance(item, dict) or set(item) != {"hash", "label"}:
                got = sorted(item) if isinstance(item, dict) else type(item).__name__
                raise ApiError(
                    400, "invalid_leaf", f"expected leaves[{i}] to have exactly 'hash' and 'label', got {got}"
                )
            if item["label"] not in LABELS:
                raise ApiError(
                    400, "invalid_label", f"expected a label in {', '.join(LABELS)}, got {item['label']!r}"
                )
            entries.append(Entry(_parse_hash(item["hash"]), item["label"], submitter))
        try:
            appended = await seq(request).log.append(entries)
        except LeafRejected as exc:
            raise ApiError(400, "invalid_leaf", str(exc)) from exc
        return json(
            {
                "leaves": [
                    {"hash": e.leaf.hex(), "index": a.index, "duplicate": a.duplicate}
                    for e, a in zip(entries, appended, strict=True)
                ]
            }
        )

    @app.get("/v1/checkpoint")
    async def checkpoint(request: Request) -> HTTPResponse:
        s = seq(request)
        wait_size = _int_arg(request, "wait_size")
        record = s.latest_final
        if wait_size is not None:
            try:
                timeout = min(max(float(request.args.get("timeout", "10")), 0.0), 30.0)
            except ValueError as exc:
                raise ApiError(400, "invalid_argument", "expected a number of seconds for timeout") from exc
            record = await s.wait_final(wait_size, timeout) or s.latest_final
        if record is None:
            raise ApiError(
                404, "no_final_checkpoint", "expected a final checkpoint, none has reached quorum yet"
            )
        return json(record)

    @app.get("/v1/inclusion/<leaf_hex:str>")
    async def inclusion(request: Request, leaf_hex: str) -> HTTPResponse:
        s = seq(request)
        leaf = _parse_hash(leaf_hex)
        index = s.log.index_of(leaf)
        if index is None:
            raise ApiError(404, "leaf_not_found", f"expected a logged hash, {leaf_hex} is not in the log")
        final = s.latest_final
        if final is None or index >= final["size"]:
            return json({"hash": leaf_hex, "leaf_index": index, "status": "pending"}, status=202)
        proof = s.log.tree.inclusion_proof(index, final["size"])
        return json(
            {
                "hash": leaf_hex,
                "leaf_index": index,
                "tree_size": final["size"],
                "proof": [h.hex() for h in proof],
                "checkpoint": final,
            }
        )

    @app.get("/v1/consistency")
    async def consistency(request: Request) -> HTTPResponse:
        s = seq(request)
        first = _int_arg(request, "first", 0)
        default_second = s.latest_final["size"] if s.latest_final else s.log.size
        second = _int_arg(request, "second", default_second)
        try:
            proof = s.log.tree.consistency_proof(first, second)
        except TreeRangeError as exc:
            raise ApiError(400, "invalid_range", str(exc)) from exc
        return json({"first": first, "second": second, "proof": [h.hex() for h in proof]})

    @app.post("/v1/witnesses")
    async def register(request: Request) -> HTTPResponse:
        header = request.headers.get("authorization", "")
        expected = f"Bearer {request.app.ctx.admin_token}"
        if not hmac.compare_digest(header.encode(), expected.encode()):
            raise ApiError(401, "unauthorized", "expected the admin bearer token")
        body = _json_body(request)
        try:
            department, url = str(body["department"]), str(body["url"])
            public_key, pop = bytes.fromhex(body["public_key"]), bytes.fromhex(body["pop"])
            cosigner_vkey = str(body.get("cosigner_vkey") or "")
        except (KeyError, ValueError, TypeError) as exc:
            raise ApiError(
                400, "invalid_request", f"expected department, url, public_key and pop (hex): {exc}"
            ) from exc
        witness = await seq(request).register_witness(department, public_key, pop, url, cosigner_vkey)
        return json(witness.to_json())

    @app.get("/v1/witnesses")
    async def witnesses(request: Request) -> HTTPResponse:
        return json({"witnesses": [w.to_json() for w in seq(request).witnesses.values()]})

    return app


# --- witness ---------------------------------------------------------------------------------------


@dataclass
class WitnessSettings:
    """How a witness runs (CLI flags and ``ZHILIAN_WITNESS_*`` variables map onto these)."""

    department: str
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8651
    sequencer_url: str | None = None
    log_vkey: str | None = None
    admin_token: str | None = None
    public_url: str | None = None
    cosigner_name: str | None = None  # C2SP cosigner name; default zhilian.local/witness/<department>
    max_skew: int = DEFAULT_MAX_SKEW  # seconds a proposed time may differ from this witness's clock


async def _resolve_log_vkey(settings: WitnessSettings) -> NoteVerifier:
    """Configured key, else the pinned ``log.vkey``, else trust-on-first-use from the sequencer (then pinned)."""
    pinned = settings.data_dir / "log.vkey"
    if settings.log_vkey:
        verifier = NoteVerifier.from_vkey(settings.log_vkey)
    elif pinned.exists():
        return NoteVerifier.from_vkey(pinned.read_text())
    elif settings.sequencer_url:
        async with httpx.AsyncClient(timeout=5) as http:
            for _ in range(100):
                try:
                    response = await http.get(f"{settings.sequencer_url}/v1/log-key")
                    response.raise_for_status()
                    break
                except httpx.HTTPError:
                    await asyncio.sleep(0.2)
            else:
                raise RuntimeError(f"could not fetch the log key from {settings.sequencer_url}")
        verifier = NoteVerifier.from_vkey(response.json()["vkey"])
    else:
        raise RuntimeError("expected --log-vkey, a pinned log.vkey or --sequencer-url")
    keys.write_public(pinned, verifier.vkey + "\n")
    return verifier


async def _register_with_sequencer(app: Sanic, settings: WitnessSettings) -> None:
    """Keep trying until the sequencer accepts our key; a definite refusal is logged and ends it."""
    witness: Witness = app.ctx.witness
    url = settings.public_url or f"http://{settings.host}:{settings.port}"
    body = {
        "department": witness.department,
        "public_key": witness.public_key.hex(),
        "pop": witness.pop.hex(),
        "url": url,
        "cosigner_vkey": witness.cosigner.verifier.vkey,
    }
    headers = {"authorization": f"Bearer {settings.admin_token}"}
    async with httpx.AsyncClient(timeout=5) as http:
        while True:
            try:
                response = await http.post(
                    f"{settings.sequencer_url}/v1/witnesses", json=body, headers=headers
                )
                if response.status_code == 200:
                    app.ctx.registered = True
                    log.info("registered %s with %s", witness.department, settings.sequencer_url)
                    return
                if 400 <= response.status_code < 500:
                    log.error("sequencer refused registration: %s", response.text)
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)


def create_witness_app(settings: WitnessSettings) -> Sanic:
    """A department witness; its BLS key is created in ``settings.data_dir`` on first run."""
    app = _new_app("chain_witness")
    _install_error_handlers(app)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app.ctx.registered = False

    @app.before_server_start
    async def start(app: Sanic) -> None:
        verifier = await _resolve_log_vkey(settings)
        sk = keys.witness_secret_key(settings.data_dir)
        name = settings.cosigner_name or keys.witness_cosigner_name(settings.department)
        cosigner = keys.witness_cosigner_key(settings.data_dir, name)
        app.ctx.witness = Witness(
            settings.department, sk, verifier, settings.data_dir, cosigner=cosigner, max_skew=settings.max_skew
        )
        app.ctx.register_task = None

    @app.after_server_start
    async def register(app: Sanic) -> None:
        if settings.sequencer_url and settings.admin_token:
            app.ctx.register_task = asyncio.create_task(_register_with_sequencer(app, settings))

    @app.before_server_stop
    async def stop(app: Sanic) -> None:
        if app.ctx.register_task is not None:
            app.ctx.register_task.cancel()

    @app.get("/v1/health")
    async def health(request: Request) -> HTTPResponse:
        w: Witness = request.app.ctx.witness
        return json(
            {
                "status": "ok",
                "role": "witness",
                "department": w.department,
                "public_key": w.public_key.hex(),
                "pop": w.pop.hex(),
                "cosigner_vkey": w.cosigner.verifier.vkey,
                "size": w.state.size,
                "root_hash": w.state.root_hash,
                "checkpoint": w.state.note,  # signed by the log: its own word for what we cosigned
                "timestamp": w.state.timestamp,
                "refused": w.state.refused,
                "registered": request.app.ctx.registered,
            }
        )

    @app.post("/v1/add-checkpoint")
    async def add_checkpoint(request: Request) -> HTTPResponse:
        body = _json_body(request)
        try:
            old_size = int(body["old_size"])
            proof = [bytes.fromhex(h) for h in body["consistency_proof"]]
            note = str(body["checkpoint"])
            timestamp = body["timestamp"]
            if not isinstance(timestamp, int) or isinstance(timestamp, bool):
                raise TypeError(f"timestamp must be an integer, got {timestamp!r}")
        except (KeyError, ValueError, TypeError) as exc:
            raise ApiError(
                400, "invalid_request",
                f"expected old_size, consistency_proof (hex), checkpoint and timestamp: {exc}",
            ) from exc
        w: Witness = request.app.ctx.witness
        loop = asyncio.get_running_loop()
        cosigned = await loop.run_in_executor(None, w.add_checkpoint, old_size, proof, note, timestamp)
        return json(
            {
                "department": w.department,
                "public_key": w.public_key.hex(),
                "size": cosigned.checkpoint.size,
                "timestamp": cosigned.timestamp,
                "signature": cosigned.signature.hex(),
                "cosignature": cosigned.line,
            }
        )

    return app
