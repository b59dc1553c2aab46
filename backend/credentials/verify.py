"""Offline verification of a credential and its evidence: no server, no database, no settings.

A verifier needs only (DESIGN §6) the issuer's DID document, the status list credentials,
the inclusion proof with its final checkpoint, and its own trust roots for the chain (log
key, witness keys, quorum). Checks, each reported by name:

``format``          the document is a VC 2.0 ``ElderlyLivenessCertification``
``issuer_key``      the proof's verification method is an assertion method of the issuer
``signature``       the ``eddsa-jcs-2022`` proof (W3C vc-di-eddsa §3.3.2)
``status``          the signed Bitstring Status List bits (revocation, suspension) are 0
``checkpoint``      the C2SP signed-note checkpoint verifies under the log key
``witness_quorum``  a quorum of trusted witnesses cosigned it, with the time they saw it (BLS
                    aggregate over the checkpoint and that time; the C2SP tlog-cosignature
                    lines too when present); a credential whose ``validFrom`` is later than
                    that time (it cannot have been issued after it was witnessed) fails here
``inclusion``       SHA-256(JCS(credential)) is in the tree (RFC 9162 §2.1.3.2)

`verify_export_manifest` checks a department export the same way: the manifest's proof by
the community issuer, ``bundle_hash`` (the bundle file is the one the manifest names), and
the manifest's own anchor.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from backend.credentials import eddsa_jcs, status_list
from backend.credentials.did import resolve_assertion_key
from backend.credentials.errors import (
    AnchorMismatch,
    AnchorMissing,
    CheckpointInvalid,
    CredentialError,
    CredentialRevoked,
    CredentialSuspended,
    IssuerKeyUnknown,
    MalformedCredential,
    StatusListInvalid,
    WitnessQuorumFailed,
)

CREDENTIAL_TYPE = "ElderlyLivenessCertification"
CHECKS = ("format", "issuer_key", "signature", "status", "checkpoint", "witness_quorum", "inclusion")


@dataclass
class Check:
    name: str
    ok: bool | None  # None: not run (an earlier check of its group failed, or nothing to check)
    message: str = ""
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "message": self.message, "error": self.error}


@dataclass
class Report:
    credential_id: str | None
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok is not False for c in self.checks) and any(c.ok for c in self.checks)

    @property
    def failed(self) -> list[str]:
        return [c.name for c in self.checks if c.ok is False]

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "credential_id": self.credential_id,
            "verified": self.ok,
            "failed": self.failed,
            "checks": [c.as_dict() for c in self.checks],
        }


def leaf_hash(credential: dict[str, Any]) -> bytes:
    """The chain leaf of a credential: SHA-256 of its RFC 8785 form (proof included)."""
    return hashlib.sha256(eddsa_jcs.canonicalize(credential)).digest()


def _check_format(credential: Any) -> None:
    if not isinstance(credential, dict):
        raise MalformedCredential(f"expected a JSON object, got {type(credential).__name__}")
    types = credential.get("type")
    if not isinstance(types, list) or "VerifiableCredential" not in types or CREDENTIAL_TYPE not in types:
        raise MalformedCredential(f"expected type [VerifiableCredential, {CREDENTIAL_TYPE}], got {types!r}")
    context = credential.get("@context")
    if not isinstance(context, list) or not context or context[0] != status_list.VC_CONTEXT:
        raise MalformedCredential(f"expected @context to begin with {status_list.VC_CONTEXT}, got {context!r}")
    if not isinstance(credential.get("issuer"), str):
        raise MalformedCredential(f"expected issuer to be a DID string, got {credential.get('issuer')!r}")
    subject = credential.get("credentialSubject")
    if not isinstance(subject, dict) or not str(subject.get("id", "")).startswith("urn:uuid:"):
        raise MalformedCredential("expected credentialSubject.id to be a pseudonymous urn:uuid")


def _resolver(issuer: str, did_documents: dict[str, dict[str, Any]]):
    def resolve(method_id: str) -> bytes:
        document = did_documents.get(issuer)
        if document is None:
            raise IssuerKeyUnknown(f"expected the DID document of {issuer!r} among the keys given, it is missing")
        return resolve_assertion_key(document, method_id, issuer=issuer)

    return resolve


def _check_issuer_key(credential: dict[str, Any], did_documents: dict[str, dict[str, Any]]) -> bytes:
    proof = credential.get("proof")
    method = proof.get("verificationMethod") if isinstance(proof, dict) else None
    if not isinstance(method, str):
        raise IssuerKeyUnknown(f"expected proof.verificationMethod, got {method!r}")
    return _resolver(credential["issuer"], did_documents)(method)


def parse_time(value: Any) -> datetime | None:
    """An XML Schema dateTimeStamp as VC 2.0 writes it (``2026-11-05T08:00:00Z``), or None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _check_list_validity(url: str, list_credential: dict[str, Any], at: datetime) -> None:
    """A list states the status only until its ``validUntil`` (lists without one are pre-2026 exports)."""
    if "validUntil" not in list_credential:
        return
    until = parse_time(list_credential.get("validUntil"))
    if until is None:
        raise StatusListInvalid(f"expected validUntil of {url} to be a dateTimeStamp, got "
                                f"{list_credential.get('validUntil')!r}")
    if until <= at:
        raise StatusListInvalid(f"expected the status list {url} to be valid at {at:%Y-%m-%dT%H:%M:%SZ}, "
                                f"it was valid until {list_credential['validUntil']}: fetch it again")


def _verified_list_bits(
    url: str, list_credential: dict[str, Any], issuer: str, did_documents: dict[str, dict[str, Any]], cache: dict,
    at: datetime,
) -> bytes:
    """The expanded bits of a status list whose issuer, proof and validity check out (once per list and run)."""
    key = ("status_list", url, issuer, id(list_credential), id(did_documents), at)
    if key not in cache:
        try:
            _check_list_validity(url, list_credential, at)
            if list_credential.get("issuer") != issuer:
                raise StatusListInvalid(
                    f"expected the status list to be issued by {issuer!r}, got {list_credential.get('issuer')!r}"
                )
            try:
                eddsa_jcs.verify_proof(list_credential, _resolver(issuer, did_documents))
            except CredentialError as exc:
                raise StatusListInvalid(f"expected a valid proof on the status list {url}: {exc}") from None
            subject = list_credential.get("credentialSubject") or {}
            cache[key] = status_list.expand_encoded_list(subject.get("encodedList", ""))
        except CredentialError as exc:
            cache[key] = exc
    value = cache[key]
    if isinstance(value, Exception):
        raise value
    return value


def _check_status(
    credential: dict[str, Any], did_documents: dict[str, dict[str, Any]], status_lists: dict[str, dict[str, Any]],
    cache: dict, at: datetime,
) -> str:
    entries = credential.get("credentialStatus")
    if entries is None:
        return "no credentialStatus"
    entries = entries if isinstance(entries, list) else [entries]
    seen = []
    for entry in entries:
        url = entry.get("statusListCredential") if isinstance(entry, dict) else None
        list_credential = status_lists.get(url or "")
        if list_credential is None:
            raise StatusListInvalid(f"expected the status list credential {url!r}, it is missing")
        bits = _verified_list_bits(url, list_credential, credential["issuer"], did_documents, cache, at)
        bit = status_list.read_status(entry, list_credential, bits)
        purpose = entry.get("statusPurpose")
        if bit:
            error = CredentialRevoked if purpose == "revocation" else CredentialSuspended
            raise error(f"expected {purpose} bit {entry.get('statusListIndex')} of {url} to be 0, it is 1")
        seen.append(f"{purpose}=0")
    return ", ".join(seen)


def _verified_checkpoint(record: dict[str, Any], trust: Any, cache: dict, verify_final_checkpoint: Any) -> Any:
    """chain.verify.verify_final_checkpoint once per distinct checkpoint record and run (a pairing each)."""
    import json

    key = ("checkpoint", id(trust), json.dumps(record, sort_keys=True))
    if key not in cache:
        try:
            cache[key] = verify_final_checkpoint(record, trust)
        except Exception as exc:
            cache[key] = exc
    value = cache[key]
    if isinstance(value, Exception):
        raise value
    return value


def _witnessed(document: dict[str, Any], record: dict[str, Any]) -> str | CredentialError:
    """The attested time of a verified checkpoint (ISO), or the failure when the document says it was
    issued after the witnesses had already seen it (beyond the verifiers' clock allowance)."""
    from datetime import UTC, datetime

    from chain.verify import MAX_FUTURE_SKEW

    seen = int(record["timestamp"])  # present and signed: verify_final_checkpoint checked it
    seen_iso = datetime.fromtimestamp(seen, UTC).isoformat(timespec="seconds")
    valid_from = document.get("validFrom")
    if isinstance(valid_from, str):
        try:
            issued = datetime.fromisoformat(valid_from.replace("Z", "+00:00"))
        except ValueError:
            return seen_iso  # the format check owns malformed dates
        if issued.tzinfo is not None and issued.timestamp() > seen + MAX_FUTURE_SKEW:
            return WitnessQuorumFailed(
                f"expected the credential to be issued before the witnesses saw it: validFrom {valid_from}, "
                f"witnessed by {seen_iso}"
            )
    return seen_iso


def _check_anchor(
    credential: dict[str, Any], inclusion: dict[str, Any] | None, trust: Any, report: Report, require_anchor: bool,
    cache: dict,
) -> None:
    """checkpoint -> witness_quorum -> inclusion, with chain.verify doing the chain's own steps."""
    from chain.checkpoint import NoteError
    from chain.merkle import MerkleError, hash_leaf, verify_inclusion
    from chain.verify import VerificationError, verify_final_checkpoint

    def record(name: str, exc: Exception | None, message: str = "") -> bool:
        report.checks.append(Check(name, exc is None, message if exc is None else str(exc),
                                   "" if exc is None else type(exc).__name__))
        return exc is None

    def skip(*names: str, why: str) -> None:
        report.checks.extend(Check(n, None, why) for n in names)

    if inclusion is None:
        skip("checkpoint", "witness_quorum", why="no inclusion proof to check")
        if require_anchor:
            record("inclusion", AnchorMissing("expected an inclusion proof with a final checkpoint, none given"))
        else:
            skip("inclusion", why="not anchored yet")
        return
    if trust is None:
        if require_anchor:
            record("checkpoint", CheckpointInvalid(
                "expected the chain's trust roots (log key, witness keys, quorum) to check the proof, none given"))
            skip("witness_quorum", "inclusion", why="no chain trust roots given")
        else:
            skip("checkpoint", "witness_quorum", "inclusion", why="no chain trust roots given")
        return
    leaf = leaf_hash(credential)
    try:
        checkpoint = _verified_checkpoint(inclusion["checkpoint"], trust, cache, verify_final_checkpoint)
    except NoteError as exc:
        record("checkpoint", CheckpointInvalid(f"expected a checkpoint signed by the trusted log key: {exc}"))
        skip("witness_quorum", "inclusion", why="checkpoint failed")
        return
    except VerificationError as exc:
        record("checkpoint", None, "log signature verifies")
        record("witness_quorum", WitnessQuorumFailed(str(exc)))
        skip("inclusion", why="witness quorum failed")
        return
    except (KeyError, TypeError, ValueError) as exc:
        record("checkpoint", CheckpointInvalid(f"expected a final checkpoint record: {exc!r}"))
        skip("witness_quorum", "inclusion", why="checkpoint failed")
        return
    record("checkpoint", None, f"log signature verifies ({checkpoint.origin}, size {checkpoint.size})")
    signers = inclusion["checkpoint"].get("signers", [])
    witnessed = _witnessed(credential, inclusion["checkpoint"])
    if isinstance(witnessed, CredentialError):
        record("witness_quorum", witnessed)
        skip("inclusion", why="witnessed time contradicts the credential")
        return
    record("witness_quorum", None,
           f"{len(signers)} of {len(trust.witnesses)} witnesses, quorum {trust.quorum}, witnessed by {witnessed}")
    try:
        if bytes.fromhex(str(inclusion.get("hash", leaf.hex()))) != leaf:
            raise AnchorMismatch(f"expected a proof for leaf {leaf.hex()}, the proof is for {inclusion.get('hash')}")
        if int(inclusion["tree_size"]) != checkpoint.size:
            raise AnchorMismatch(f"expected a proof for tree size {checkpoint.size}, got {inclusion['tree_size']}")
        proof = [bytes.fromhex(h) for h in inclusion["proof"]]
        verify_inclusion(hash_leaf(leaf), int(inclusion["leaf_index"]), checkpoint.size, proof, checkpoint.root_hash)
    except MerkleError as exc:
        record("inclusion", AnchorMismatch(f"expected the inclusion proof of {leaf.hex()} to verify: {exc}"))
        return
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, AnchorMismatch):
            record("inclusion", exc)
        else:
            record("inclusion", AnchorMismatch(f"expected an inclusion proof record: {exc!r}"))
        return
    record("inclusion", None, f"leaf {inclusion['leaf_index']} of {checkpoint.size}")


def verify_credential(
    credential: Any,
    *,
    did_documents: dict[str, dict[str, Any]],
    status_lists: dict[str, dict[str, Any]] | None = None,
    inclusion: dict[str, Any] | None = None,
    trust: Any = None,
    check_anchor: bool = True,
    require_anchor: bool = True,
    cache: dict | None = None,
    status_at: datetime | None = None,
) -> Report:
    """Run every check; a failure names its check and says expected vs computed.

    `cache` (any dict, shared across calls) lets a verifier of many credentials check each
    status list and each checkpoint once. `status_at` is the time the status is asked for
    (default now; an export bundle's status is as of its generation): each list must still
    have been valid then.
    """
    cache = {} if cache is None else cache
    status_at = status_at or datetime.now(UTC)
    report = Report(credential.get("id") if isinstance(credential, dict) else None)
    try:
        _check_format(credential)
    except CredentialError as exc:
        report.checks.append(Check("format", False, str(exc), type(exc).__name__))
        return report
    report.checks.append(Check("format", True, "VC 2.0 ElderlyLivenessCertification"))
    # issuer_key -> signature
    try:
        _check_issuer_key(credential, did_documents)
        report.checks.append(Check("issuer_key", True, credential["proof"]["verificationMethod"]))
        try:
            eddsa_jcs.verify_proof(credential, _resolver(credential["issuer"], did_documents))
            report.checks.append(Check("signature", True, "eddsa-jcs-2022 proof verifies"))
        except CredentialError as exc:
            report.checks.append(Check("signature", False, str(exc), type(exc).__name__))
    except CredentialError as exc:
        report.checks.append(Check("issuer_key", False, str(exc), type(exc).__name__))
        report.checks.append(Check("signature", None, "issuer key unknown"))
    # status
    if status_lists is None:
        report.checks.append(Check("status", None, "no status lists given"))
    else:
        try:
            report.checks.append(Check("status", True, _check_status(credential, did_documents, status_lists, cache, status_at)))
        except CredentialError as exc:
            report.checks.append(Check("status", False, str(exc), type(exc).__name__))
    if check_anchor:
        _check_anchor(credential, inclusion, trust, report, require_anchor, cache)
    return report


MANIFEST_FORMAT = "zhilian-export-manifest/v1"


def verify_export_manifest(
    manifest: Any,
    *,
    bundle_bytes: bytes | None,
    did_documents: dict[str, dict[str, Any]],
    inclusion: dict[str, Any] | None = None,
    trust: Any = None,
    require_anchor: bool = True,
    cache: dict | None = None,
) -> Report:
    """Check a signed export manifest, that `bundle_bytes` is the bundle it names, and its anchor."""
    cache = {} if cache is None else cache
    report = Report(f"export {manifest.get('export_id')}" if isinstance(manifest, dict) else None)
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT or not isinstance(
        manifest.get("issuer"), str
    ):
        report.checks.append(Check("format", False, f"expected a {MANIFEST_FORMAT} manifest with an issuer",
                                   "MalformedCredential"))
        return report
    report.checks.append(Check("format", True, MANIFEST_FORMAT))
    try:
        eddsa_jcs.verify_proof(manifest, _resolver(manifest["issuer"], did_documents))
        report.checks.append(Check("signature", True, f"eddsa-jcs-2022 proof by {manifest['proof']['verificationMethod']}"))
    except CredentialError as exc:
        report.checks.append(Check(exc.check, False, str(exc), type(exc).__name__))
    if bundle_bytes is not None:
        expected = (manifest.get("files") or {}).get("json")
        computed = hashlib.sha256(bundle_bytes).hexdigest()
        if computed == expected:
            report.checks.append(Check("bundle_hash", True, f"SHA-256 {computed}"))
        else:
            report.checks.append(Check("bundle_hash", False,
                                       f"expected the bundle's SHA-256 to be {expected}, computed {computed}",
                                       "AnchorMismatch"))
    _check_anchor(manifest, inclusion, trust, report, require_anchor, cache)
    return report


def bundle_entries(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``{credential, inclusion}`` entries of an export bundle, a single entry, or a bare credential."""
    if isinstance(document.get("credentials"), list):
        return [e if isinstance(e, dict) else {"credential": e} for e in document["credentials"]]
    if isinstance(document.get("credential"), dict):
        return [document]
    return [{"credential": document}]


def verify_bundle(
    document: dict[str, Any],
    *,
    did_documents: dict[str, dict[str, Any]],
    trust: Any = None,
    manifest_document: Any = None,
    bundle_bytes: bytes | None = None,
    require_anchor: bool = True,
    status_at: datetime | None = None,
) -> tuple[list[Report], Report | None]:
    """Every credential of a bundle (its own status lists, one cache), then the signed manifest if given.

    The credential part of ``backend.exports.attest.verify_export`` (which adds the bundle's own
    signature, period and completeness checks). `manifest_document` is the downloaded manifest
    file (``{"manifest", "inclusion"}``) or a bare manifest; `bundle_bytes` is the bundle file as is.
    CPU-bound (signatures, BLS pairings): run it off any event loop.
    """
    status_lists = document.get("status_lists") or {}
    if not isinstance(status_lists, dict):
        status_lists = {}
    cache: dict = {}  # each status list and checkpoint is checked once for the whole bundle
    reports = [
        verify_credential(entry.get("credential"), did_documents=did_documents, status_lists=status_lists,
                          inclusion=entry.get("inclusion"), trust=trust, require_anchor=require_anchor, cache=cache,
                          status_at=status_at)
        for entry in bundle_entries(document)
    ]
    manifest_report = None
    if manifest_document is not None:
        wrapped = isinstance(manifest_document, dict) and isinstance(manifest_document.get("manifest"), dict)
        manifest_report = verify_export_manifest(
            manifest_document["manifest"] if wrapped else manifest_document, bundle_bytes=bundle_bytes,
            did_documents=did_documents, inclusion=manifest_document.get("inclusion") if wrapped else None,
            trust=trust, require_anchor=require_anchor, cache=cache,
        )
    return reports, manifest_report
