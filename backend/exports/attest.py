"""What makes a department export bundle trustworthy as a whole, checked offline.

The one procedure behind ``scripts/verify`` and ``POST /api/exports/verify`` (they differ only in
where the issuer DID documents and chain trust roots come from). Pure: no database, no settings.

Each credential verifies on its own (``backend.credentials.verify``), but that says nothing of
the bundle: which month it is for, whether a credential was taken out. Since
``zhilian-export-bundle/v2`` the bundle is signed by the community issuer (``eddsa-jcs-2022``
over everything except ``issuers`` and ``trust``, the copies of the verifier's own roots, which a
signature cannot vouch for), so its header, counts, rows, the xlsx's hash and the list of
credentials are attested without the separate manifest. Checks of the bundle report:

``bundle_signature``  v2: the proof verifies under the issuer's DID document, and the signer is
                      the issuer of every credential in it; v1 (unsigned, before 2026): attested
                      only by a signed manifest whose ``bundle_hash`` matched, else it fails;
``bundle_period``     every credential is of the bundle's period and programme;
``bundle_complete``   v2: the signed counts and rows name exactly the credentials present;
``xlsx_hash`` / ``xlsx_rows``  the named list, when given (``backend.exports.sheet``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from backend.credentials import eddsa_jcs
from backend.credentials.errors import CredentialError
from backend.credentials.verify import Check, Report, _resolver, bundle_entries, parse_time, verify_bundle
from backend.exports.sheet import check_xlsx

BUNDLE_FORMAT_V1 = "zhilian-export-bundle/v1"
BUNDLE_FORMAT = "zhilian-export-bundle/v2"
BUNDLE_FORMATS = (BUNDLE_FORMAT_V1, BUNDLE_FORMAT)
UNSIGNED_MEMBERS = ("issuers", "trust")


@dataclass
class ExportVerdict:
    credentials: list[Report]
    manifest: Report | None
    bundle: Report

    @property
    def reports(self) -> list[Report]:
        """Bundle first, then each credential, then the manifest: what scripts/verify prints."""
        return [self.bundle, *self.credentials, *([self.manifest] if self.manifest is not None else [])]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.reports)


def signed_view(bundle: dict[str, Any]) -> dict[str, Any]:
    """The members the bundle's proof covers (the proof itself included, as Data Integrity expects)."""
    return {k: v for k, v in bundle.items() if k not in UNSIGNED_MEMBERS}


def sign(bundle: dict[str, Any], *, private_key: Any, verification_method: str) -> dict[str, Any]:
    """The bundle with its ``proof`` (``issuers`` and ``trust`` stay outside the signature)."""
    secured = eddsa_jcs.add_proof(signed_view(bundle), private_key=private_key, verification_method=verification_method)
    return {**bundle, "proof": secured["proof"]}


def _header(bundle: dict[str, Any]) -> dict[str, Any]:
    return bundle.get("export") if isinstance(bundle.get("export"), dict) else {}


def _credentials(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["credential"] for e in bundle_entries(bundle) if isinstance(e.get("credential"), dict)]


def _check_signature(bundle: dict[str, Any], did_documents: dict[str, dict[str, Any]],
                     manifest: Report | None) -> Check:
    if bundle.get("format") != BUNDLE_FORMAT:
        if manifest is not None and manifest.ok and any(c.name == "bundle_hash" and c.ok for c in manifest.checks):
            return Check("bundle_signature", True, f"unsigned {bundle.get('format')} bundle, attested by the signed "
                                                   "manifest's bundle_hash")
        return Check("bundle_signature", False,
                     f"expected a signed {BUNDLE_FORMAT} bundle or a verified manifest naming this file; got "
                     f"{bundle.get('format')!r} without a signature"
                     + ("" if manifest is None else " and a manifest that does not verify"), "BundleUnattested")
    issuer = bundle.get("issuer")
    if not isinstance(issuer, str):
        return Check("bundle_signature", False, f"expected the bundle's issuer DID, got {issuer!r}", "BundleUnattested")
    try:
        proof = eddsa_jcs.verify_proof(signed_view(bundle), _resolver(issuer, did_documents))
    except CredentialError as exc:
        return Check("bundle_signature", False, f"expected the bundle's eddsa-jcs-2022 proof by {issuer} to verify: "
                                                f"{exc}", type(exc).__name__)
    others = sorted({c.get("issuer") for c in _credentials(bundle) if c.get("issuer") != issuer}, key=str)
    if others:
        return Check("bundle_signature", False, f"expected every credential to be issued by the bundle's signer "
                                                f"{issuer}, found {others[:3]}", "BundleIssuerMismatch")
    return Check("bundle_signature", True, f"eddsa-jcs-2022 proof by {proof['verificationMethod']}")


def _check_period(bundle: dict[str, Any]) -> Check:
    header = _header(bundle)
    period, programme = header.get("period"), header.get("programme")
    wrong = []
    for credential in _credentials(bundle):
        subject = credential.get("credentialSubject") if isinstance(credential.get("credentialSubject"), dict) else {}
        if subject.get("period") != period or subject.get("programme") != programme:
            wrong.append(f"{credential.get('id')} ({subject.get('period')} {subject.get('programme')})")
    if wrong:
        return Check("bundle_period", False, f"expected every credential to be of the bundle's period {period} "
                                             f"({programme}), {len(wrong)} are not: {', '.join(wrong[:3])}",
                     "BundlePeriodMismatch")
    return Check("bundle_period", True, f"{len(_credentials(bundle))} credentials of {period}")


def _check_complete(bundle: dict[str, Any]) -> Check:
    if bundle.get("format") != BUNDLE_FORMAT:
        return Check("bundle_complete", None, "an unsigned v1 bundle names no rows (the manifest's counts cover it)")
    present = [c.get("id") for c in _credentials(bundle)]
    rows = bundle.get("rows") if isinstance(bundle.get("rows"), list) else []
    named = [r.get("credential") for r in rows if isinstance(r, dict) and r.get("credential")]
    counts = bundle.get("counts") if isinstance(bundle.get("counts"), dict) else {}
    problems = []
    if counts.get("credentials") != len(present):
        problems.append(f"expected {counts.get('credentials')} credentials (signed counts), found {len(present)}")
    if counts.get("total") != len(rows):
        problems.append(f"expected {counts.get('total')} rows (signed counts), found {len(rows)}")
    missing = sorted(set(map(str, named)) - set(map(str, present)))
    extra = sorted(set(map(str, present)) - set(map(str, named)))
    if missing:
        problems.append(f"credentials named in the rows but missing: {missing[:3]}")
    if extra:
        problems.append(f"credentials present but named in no row: {extra[:3]}")
    if len(set(map(str, present))) != len(present):
        problems.append("a credential appears twice")
    if problems:
        return Check("bundle_complete", False, "; ".join(problems), "BundleIncomplete")
    return Check("bundle_complete", True, f"{len(rows)} rows, {len(present)} credentials")


def verify_export(
    bundle: dict[str, Any],
    *,
    did_documents: dict[str, dict[str, Any]],
    trust: Any = None,
    manifest_document: Any = None,
    bundle_bytes: bytes | None = None,
    xlsx_bytes: bytes | None = None,
    require_anchor: bool = True,
    as_received: dict[str, Any] | None = None,
) -> ExportVerdict:
    """Every credential, the signed manifest if given, and the bundle as a whole (and its xlsx).

    `as_received` is the bundle as it came when `bundle` is a copy into which the server filled
    inclusion proofs it holds (the signature covers the file as made). The credentials' status
    is as of the bundle's ``generated_at``. CPU-bound: run it off any event loop.
    """
    pristine = as_received if as_received is not None else copy.deepcopy(bundle)
    header = _header(bundle)
    credentials, manifest = verify_bundle(
        bundle, did_documents=did_documents, trust=trust, manifest_document=manifest_document,
        bundle_bytes=bundle_bytes, require_anchor=require_anchor, status_at=parse_time(header.get("generated_at")),
    )
    report = Report(f"bundle {header.get('id')}")
    report.checks.append(_check_signature(pristine, did_documents, manifest))
    report.checks.append(_check_period(pristine))
    report.checks.append(_check_complete(pristine))
    if xlsx_bytes is not None:
        files = pristine.get("files") if isinstance(pristine.get("files"), dict) else {}
        expected = files.get("xlsx")
        if expected is None and manifest is not None and manifest.ok and isinstance(manifest_document, dict):
            inner = manifest_document.get("manifest", manifest_document)
            expected = (inner.get("files") or {}).get("xlsx") if isinstance(inner, dict) else None
        report.checks.extend(check_xlsx(xlsx_bytes, expected_sha256=expected, rows=pristine.get("rows")))
    return ExportVerdict(credentials, manifest, report)
