"""Checking a downloaded export online: what ``scripts/verify BUNDLE [--manifest M] [--xlsx X]`` does, on the server.

The checks are the very same (`backend.exports.attest.verify_export`); what differs is where
the keys come from. A department officer running the script has to bring trust roots obtained
elsewhere, or fall back on the copies inside the bundle. Here the server's own pinned chain trust
roots (``CHAIN_TRUST_FILE``) and its own issuer DID documents replace those copies whenever the
server has them, and the answer says which roots were used: a bundle checked against its own
copies is only shown to be self-consistent, not to come from this system.

Inclusion proofs missing from the files (a bundle or manifest downloaded before anchoring
finished) are taken from the server when it holds them: they are public evidence and are
checked against the pinned roots like any other.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from tortoise.expressions import Q

from backend.auth.tokens import Principal
from backend.credentials.keys import community_did, community_did_document
from backend.credentials.models import Credential
from backend.credentials.verify import Report, bundle_entries
from backend.errors import ApiError
from backend.exports.attest import BUNDLE_FORMAT, BUNDLE_FORMATS, ExportVerdict, verify_export
from backend.exports.models import Export
from backend.exports.service import MANIFEST_FORMAT, _may_see
from backend.residents.models import Community
from backend.settings import Settings

MAX_MANIFEST_BYTES = 1024 * 1024  # a manifest with its inclusion proof is a few KB
MAX_SERVER_ISSUERS = 50  # distinct issuer DIDs a bundle may make us look up
FAILED_LISTED = 200  # failed credentials named in the answer (the count is always complete)
CHECK_ZH = {
    "format": "格式", "issuer_key": "签发者公钥", "signature": "数字签名", "bundle_hash": "数据包哈希",
    "status": "凭证状态", "checkpoint": "存证链检查点", "witness_quorum": "见证人联署", "inclusion": "上链包含证明",
    "bundle_signature": "数据包签名", "bundle_period": "凭证月份与数据包一致", "bundle_complete": "数据包完整性",
    "xlsx_hash": "名单文件哈希", "xlsx_rows": "名单内容与数据包一致",
}
MAX_XLSX_BYTES = 20 * 1024 * 1024
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class BadUpload(ApiError):
    status = 422
    code = "exports.verify_bad_input"


@dataclass
class Roots:
    """Which trust roots a verification used: ``server`` (pinned here) or ``bundle`` (the file's own copy)."""

    chain: str = "none"  # "server" | "bundle" | "none"
    issuers: dict[str, str] = field(default_factory=dict)  # DID -> "server" | "bundle" | "missing"

    @property
    def label(self) -> str:
        pinned = self.chain == "server" and all(s == "server" for s in self.issuers.values())
        return "server_pinned" if pinned else "bundle_copies"

    def view(self) -> dict[str, Any]:
        return {"chain": self.chain, "issuers": [{"did": d, "source": s} for d, s in sorted(self.issuers.items())]}


@dataclass
class Outcome:
    """The answer of POST /api/exports/verify plus what the audit trail keeps."""

    body: dict[str, Any]
    export_id: str
    community_id: int | None

    def audit_details(self) -> dict[str, Any]:
        body = self.body
        creds = body["credentials"]
        return {
            "bundle_sha256": body["bundle_sha256"], "manifest_sha256": body["manifest_sha256"],
            "verified": body["verified"], "trust": body["trust"], "credentials_total": creds["total"],
            "credentials_failed": creds["failed_count"], "failed_ids": [f["id"] for f in creds["failed"][:20]],
            "manifest_failed": body["manifest"]["failed"] if body["manifest"] else None,
            "bundle_failed": body["bundle"]["failed"], "xlsx_sha256": body["xlsx_sha256"],
        }


def _decode(data: bytes, *, what: str, field_name: str) -> Any:
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise BadUpload(f"{what}不是 UTF-8 编码的 JSON 文件，请选择从本系统下载的原始文件",
                        code="exports.verify_not_json", field=field_name) from None
    except ValueError as exc:
        raise BadUpload(f"{what}不是有效的 JSON（第 {getattr(exc, 'lineno', '?')} 行附近有错误），请选择下载的原始文件",
                        code="exports.verify_not_json", field=field_name) from None


def _is_manifest(doc: Any) -> bool:
    inner = doc.get("manifest", doc) if isinstance(doc, dict) else None
    return isinstance(inner, dict) and inner.get("format") == MANIFEST_FORMAT


def parse_upload(bundle_bytes: bytes, manifest_bytes: bytes | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The bundle and manifest documents, or a 4xx naming what is wrong with the files (CPU: off the loop)."""
    bundle = _decode(bundle_bytes, what="数据包", field_name="bundle")
    if _is_manifest(bundle):
        raise BadUpload("选择的数据包其实是导出清单：数据包请选择导出的 JSON 数据包文件，清单放在“清单”一栏",
                        code="exports.verify_not_bundle", field="bundle")
    if not isinstance(bundle, dict) or bundle.get("format") not in BUNDLE_FORMATS or not isinstance(
        bundle.get("credentials"), list
    ):
        raise BadUpload(f"这不是本系统的导出数据包（应为 {BUNDLE_FORMAT} 格式的 JSON 文件）",
                        code="exports.verify_not_bundle", field="bundle")
    manifest = None
    if manifest_bytes is not None:
        manifest = _decode(manifest_bytes, what="清单", field_name="manifest")
        if isinstance(manifest, dict) and manifest.get("format") in BUNDLE_FORMATS:
            raise BadUpload("选择的清单其实是数据包：清单请选择导出的“清单”文件（manifest.json）",
                            code="exports.verify_not_manifest", field="manifest")
        if not _is_manifest(manifest):
            raise BadUpload(f"这不是本系统的导出清单（应为 {MANIFEST_FORMAT} 格式的 JSON 文件）",
                            code="exports.verify_not_manifest", field="manifest")
        if "manifest" not in manifest:
            manifest = {"manifest": manifest, "inclusion": None}
    if not bundle["credentials"] and manifest is None:
        raise BadUpload("数据包里没有凭证（当月还没有人完成认证），请同时选择清单以核验这份导出",
                        code="exports.verify_nothing", field="manifest")
    return bundle, manifest


def check_sizes(bundle_bytes: bytes | None, manifest_bytes: bytes | None, *, max_bundle_bytes: int,
                xlsx_bytes: bytes | None = None) -> None:
    """Refuse missing or oversized files before any parsing (a bundle is ~4 KB per credential)."""
    if not bundle_bytes:
        raise ApiError("请选择要核验的导出数据包（JSON 文件）", code="exports.verify_no_bundle", status=400,
                       field="bundle")
    if len(bundle_bytes) > max_bundle_bytes:
        raise ApiError(f"数据包超过 {max_bundle_bytes // (1024 * 1024)} MB，请确认选择的是导出数据包",
                       code="exports.verify_too_large", status=413, field="bundle")
    if manifest_bytes is not None and not manifest_bytes:
        raise ApiError("清单文件是空的，请重新下载清单", code="exports.verify_not_manifest", status=422,
                       field="manifest")
    if manifest_bytes is not None and len(manifest_bytes) > MAX_MANIFEST_BYTES:
        raise ApiError(f"清单超过 {MAX_MANIFEST_BYTES // 1024} KB，请确认选择的是导出清单",
                       code="exports.verify_too_large", status=413, field="manifest")
    if xlsx_bytes is not None and not xlsx_bytes.startswith(b"PK"):
        raise ApiError("名单文件不是 xlsx 表格，请选择导出的名单（.xlsx）", code="exports.verify_not_xlsx", status=422,
                       field="xlsx")
    if xlsx_bytes is not None and len(xlsx_bytes) > MAX_XLSX_BYTES:
        raise ApiError(f"名单超过 {MAX_XLSX_BYTES // (1024 * 1024)} MB，请确认选择的是导出名单",
                       code="exports.verify_too_large", status=413, field="xlsx")


def _issuer_dids(bundle: dict[str, Any], manifest: dict[str, Any] | None) -> list[str]:
    dids = {d for d in (bundle.get("issuers") or {}) if isinstance(d, str)} if isinstance(
        bundle.get("issuers"), dict) else set()
    for entry in bundle_entries(bundle):
        credential = entry.get("credential")
        if isinstance(credential, dict) and isinstance(credential.get("issuer"), str):
            dids.add(credential["issuer"])
    if manifest is not None and isinstance(manifest["manifest"].get("issuer"), str):
        dids.add(manifest["manifest"]["issuer"])
    return sorted(dids)


async def _did_documents(settings: Settings, bundle: dict[str, Any], dids: list[str],
                         roots: Roots) -> dict[str, dict[str, Any]]:
    """This server's DID document for every issuer it knows; the bundle's copy only for the others."""
    prefix = community_did(settings, "")
    codes = [unquote(d[len(prefix):]) for d in dids if d.startswith(prefix)][:MAX_SERVER_ISSUERS]
    documents: dict[str, dict[str, Any]] = {}
    for community in await Community.filter(code__in=codes) if codes else []:
        did = community_did(settings, community.code)
        if did in dids:
            documents[did] = await community_did_document(settings=settings, community=community)
    copies = bundle.get("issuers") if isinstance(bundle.get("issuers"), dict) else {}
    for did in dids:
        if did in documents:
            roots.issuers[did] = "server"
        elif isinstance(copies.get(did), dict):
            documents[did] = copies[did]
            roots.issuers[did] = "bundle"
        else:
            roots.issuers[did] = "missing"
    return documents


async def _fill_proofs(principal: Principal, bundle: dict[str, Any], manifest: dict[str, Any] | None) -> int:
    """Inclusion proofs the files lack but the server holds (checked like any other); how many were added."""
    added = 0
    wanting = {}
    for entry in bundle_entries(bundle):
        leaf = entry.get("leaf_hash")
        if entry.get("inclusion") is None and isinstance(leaf, str) and _HEX64.match(leaf):
            wanting.setdefault(leaf, []).append(entry)
    if wanting:
        for stored in await Credential.filter(leaf_hash__in=list(wanting), inclusion__isnull=False).only(
            "leaf_hash", "inclusion"
        ):
            for entry in wanting.get(stored.leaf_hash, []):
                entry["inclusion"] = stored.inclusion
                added += 1
    if manifest is not None and manifest.get("inclusion") is None:
        export = await _export(manifest["manifest"].get("export_id"))
        if export is not None and export.inclusion is not None and await _may_see(principal, export):
            manifest["inclusion"] = export.inclusion
            added += 1
    return added


async def _export(export_id: Any) -> Export | None:
    try:
        key = uuid.UUID(str(export_id))
    except ValueError:
        return None
    return await Export.filter(id=key).only("id", "community_id", "department_id", "inclusion").first()


def _run(bundle: dict[str, Any], manifest: dict[str, Any] | None, bundle_bytes: bytes,
         did_documents: dict[str, dict[str, Any]], server_trust: Any, roots: Roots, as_received: dict[str, Any],
         xlsx_bytes: bytes | None) -> ExportVerdict:
    """The CPU part (Ed25519, JCS, BLS pairings): always in a worker thread, never on the event loop."""
    trust = server_trust
    if trust is not None:
        roots.chain = "server"
    elif isinstance(bundle.get("trust"), dict):
        from chain.verify import Trust, VerificationError

        try:
            trust = Trust.from_json(bundle["trust"])  # proof-of-possession pairings: CPU
            roots.chain = "bundle"
        except (VerificationError, KeyError, TypeError, ValueError):
            trust = None
    return verify_export(bundle, did_documents=did_documents, trust=trust, manifest_document=manifest,
                         bundle_bytes=bundle_bytes, xlsx_bytes=xlsx_bytes, as_received=as_received)


def _failure_message(report: Report) -> str:
    failed = [c for c in report.checks if c.ok is False]
    labels = "、".join(CHECK_ZH.get(c.name, c.name) for c in failed)
    return f"{labels}未通过：{failed[0].message}" if failed else ""


def _only_unanchored(reports: list[Report]) -> bool:
    failed = [c for r in reports for c in r.checks if c.ok is False]
    return bool(failed) and all(c.error == "AnchorMissing" for c in failed)


def _message(*, verified: bool, total: int, failed: list[Report], manifest: Report | None, other_export: str | None,
             bundle_export: str, roots: Roots, bundle: Report, period: Any) -> str:
    if verified:
        text = f"核验通过：{total} 份凭证全部有效" if total else "核验通过：数据包中没有凭证（当月无人完成认证）"
        text += f"，数据包签名核对无误（{period} 月，凭证齐全，未被删减或改动）"
        if any(c.name == "xlsx_hash" and c.ok for c in bundle.checks):
            text += "，名单（xlsx）与数据包一致"
        text += ("，清单签名、数据包哈希和清单上链证明也全部核对无误。" if manifest is not None else "。")
    else:
        parts = []
        if not bundle.ok:
            parts.append(f"数据包本身的{'、'.join(CHECK_ZH.get(n, n) for n in bundle.failed)}未通过"
                         "（月份、行数或凭证可能被改动或删减，不能作为本系统的导出使用）")
        if manifest is not None and not manifest.ok:
            if other_export is not None:
                parts.append(f"清单属于另一份导出（编号 {other_export}），与这个数据包（编号 {bundle_export or '未知'}）"
                             "不对应，数据包哈希不符")
            else:
                parts.append(f"清单的{'、'.join(CHECK_ZH.get(n, n) for n in manifest.failed)}未通过")
        if failed:
            parts.append(f"{len(failed)} 份凭证未通过（共 {total} 份）")
        text = "核验未通过：" + "；".join(parts) + "。"
        if bundle.ok and _only_unanchored([*failed, *([manifest] if manifest is not None and not manifest.ok else [])]):
            text += "未通过的只是尚未上链的项目（通常几分钟内完成），请稍后重新下载后再核验。"
    if roots.label == "server_pinned":
        return text + "核验使用本系统固定的存证链信任根和签发者公钥。"
    notes = []
    if roots.chain == "bundle":
        notes.append("存证链信任根取自数据包自带的副本")
    elif roots.chain == "none":
        notes.append("本系统未配置存证链信任根，数据包也未附带，上链证明无法核对")
    if any(s == "bundle" for s in roots.issuers.values()):
        notes.append("部分签发者公钥取自数据包自带的副本")
    if any(s == "missing" for s in roots.issuers.values()):
        notes.append("有签发者不是本系统已知的社区，找不到它的公钥")
    text += "注意：" + "；".join(notes) + "。"
    if roots.chain == "bundle" or "bundle" in roots.issuers.values():
        text += "副本只能说明数据包内部一致，不能证明它出自本系统。"
    return text


async def verify_upload(*, settings: Settings, principal: Principal, server_trust: Any, bundle_bytes: bytes,
                        manifest_bytes: bytes | None, xlsx_bytes: bytes | None = None) -> Outcome:
    """Verify a bundle file (and its manifest and xlsx files) with the server's trust roots; tampering is a
    result, not an error."""
    check_sizes(bundle_bytes, manifest_bytes, max_bundle_bytes=settings.max_body_bytes,  # MAX_BODY_BYTES binds
                xlsx_bytes=xlsx_bytes)
    bundle, manifest = await asyncio.to_thread(parse_upload, bundle_bytes, manifest_bytes)
    as_received = await asyncio.to_thread(copy.deepcopy, bundle)  # the signature covers the file as made
    roots = Roots()
    did_documents = await _did_documents(settings, bundle, _issuer_dids(bundle, manifest), roots)
    proofs_added = await _fill_proofs(principal, bundle, manifest)
    verdict = await asyncio.to_thread(_run, bundle, manifest, bundle_bytes, did_documents, server_trust, roots,
                                      as_received, xlsx_bytes)
    reports, manifest_report, bundle_report = verdict.credentials, verdict.manifest, verdict.bundle
    failed = [r for r in reports if not r.ok]
    verified = verdict.ok
    info = bundle.get("export") if isinstance(bundle.get("export"), dict) else {}
    bundle_export = str(info.get("id") or "")[:64]
    manifest_export = str(manifest["manifest"].get("export_id") or "") if manifest is not None else ""
    other_export = manifest_export if manifest is not None and manifest_export != bundle_export else None
    manifest_view = None
    if manifest_report is not None:
        manifest_view = manifest_report.as_dict() | {"export_id": manifest_export or None,
                                                     "matches_bundle": other_export is None}
    changed = await changed_since_export(reports)
    message = _message(verified=verified, total=len(reports), failed=failed, manifest=manifest_report,
                       other_export=other_export, bundle_export=bundle_export, roots=roots, bundle=bundle_report,
                       period=info.get("period"))
    if changed:
        message += (f"另外，其中 {len(changed)} 份凭证在导出之后已被撤销或暂停（见“导出后状态变化”），"
                    "发放时请以当前状态为准。")
    body = {
        "verified": verified,
        "changed_since_export": changed,
        "manifest": manifest_view,
        "bundle": bundle_report.as_dict() | {"format": bundle.get("format")},
        "credentials": {
            "total": len(reports),
            "verified": len(reports) - len(failed),
            "failed_count": len(failed),
            "failed": [
                {"id": r.credential_id or f"第 {i + 1} 份", "index": i, "failed_checks": r.failed,
                 "message": _failure_message(r), "checks": [c.as_dict() for c in r.checks]}
                for i, r in enumerate(reports) if not r.ok
            ][:FAILED_LISTED],
        },
        "trust": roots.label,
        "roots": roots.view(),
        "proofs_from_server": proofs_added,
        "export": {k: info.get(k) for k in ("id", "community", "period", "programme", "department", "generated_at")},
        "bundle_sha256": hashlib.sha256(bundle_bytes).hexdigest(),
        "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest() if manifest_bytes is not None else None,
        "xlsx_sha256": hashlib.sha256(xlsx_bytes).hexdigest() if xlsx_bytes is not None else None,
        "message": message,
    }
    return Outcome(body, bundle_export, await _community_of(bundle_export, info.get("community")))


async def changed_since_export(reports: list[Report]) -> list[dict[str, Any]]:
    """Credentials of the bundle that this server has revoked or suspended since: the bundle stays authentic
    (its signed status lists are as of the export), but an officer deciding today needs to know."""
    ids = []
    for report in reports:
        try:
            ids.append(uuid.UUID(str(report.credential_id).removeprefix("urn:uuid:")))
        except ValueError:
            continue
    if not ids:
        return []
    rows = await Credential.filter(Q(revoked=True) | Q(suspended=True), id__in=ids).values(
        "id", "revoked", "suspended", "status_reason")
    return [{"id": f"urn:uuid:{row['id']}", "revoked": row["revoked"], "suspended": row["suspended"],
             "reason": row["status_reason"]} for row in rows]


async def _community_of(export_id: str, code: Any) -> int | None:
    """The community the audit event belongs to: the export's if this server made it, else by code."""
    export = await _export(export_id) if export_id else None
    if export is not None:
        return export.community_id  # type: ignore[attr-defined]
    community = await Community.get_or_none(code=code) if isinstance(code, str) and code else None
    return community.id if community is not None else None
