"""The layout of an export's xlsx named list, and the check of such a file against its signed bundle.

Pure (openpyxl only, nothing of the backend's settings or database), so that ``scripts/verify``
can check an officer's xlsx offline. The bundle carries one row per resident without name or ID
number (``rows``); the xlsx carries the same rows with the name and masked ID number. The
bundle's signature covers the rows and the xlsx's SHA-256 (``files.xlsx``), so:

``xlsx_hash``  the file is byte for byte the one the export made (names included);
``xlsx_rows``  its rows say what the signed rows say: status, method, time, credential,
               credential status, anchoring, in order (what a re-saved copy can still prove;
               names cannot be checked this way, the bundle carries none by design).
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

from backend.credentials.verify import Check

TITLE_ROWS = 2  # the title, then the header
HEADER = ["序号", "姓名", "身份证号", "本月状态", "认证方式", "认证时间", "凭证编号", "凭证状态", "上链"]
NAME_COLUMNS = (1, 2)  # name and masked ID number: only in the xlsx
STATUS_ZH = {"certified": "已认证", "pending": "待认证", "in_review": "审核中", "overdue": "逾期",
             "suspended": "已暂停发放", "exempt": "免于认证"}
METHOD_ZH = {"self": "本人认证", "helper": "亲友代认证", "staff": "工作人员协助", "home_visit": "上门核验",
             "passive": "无感认证"}
CREDENTIAL_STATUS_ZH = {"valid": "有效", "revoked": "已撤销", "suspended": "已暂停"}
MAX_ROWS = 200_000


def display_cells(row: dict[str, Any]) -> list[Any]:
    """The cells of a bundle row as the xlsx shows them, in HEADER order with the two name columns empty."""
    credential = row.get("credential")
    method = row.get("method")
    certified_at = row.get("certified_at")
    return [
        row.get("row"), "", "",
        STATUS_ZH.get(row.get("status"), row.get("status")),
        METHOD_ZH.get(method, method) if method else "",
        certified_at.replace("T", " ").replace("Z", " UTC") if isinstance(certified_at, str) else "",
        credential.removeprefix("urn:uuid:") if isinstance(credential, str) else "",
        CREDENTIAL_STATUS_ZH.get(row.get("credential_status"), "") if credential else "",
        ("是" if row.get("anchored") else "待上链") if credential else "",
    ]


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _read_rows(xlsx: bytes) -> list[tuple[Any, ...]]:
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(xlsx), read_only=True, data_only=True).worksheets[0]
    rows = []
    for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
        if number > TITLE_ROWS + MAX_ROWS:
            break
        if number > TITLE_ROWS and any(v not in (None, "") for v in values):
            rows.append(tuple(values))
    return rows


def check_xlsx(xlsx: bytes, *, expected_sha256: Any, rows: Any) -> list[Check]:
    """``xlsx_hash`` and ``xlsx_rows`` of an xlsx against the (already signature-checked) bundle."""
    checks = []
    computed = hashlib.sha256(xlsx).hexdigest()
    if not isinstance(expected_sha256, str):
        checks.append(Check("xlsx_hash", False, "expected the bundle to name the xlsx's SHA-256 (files.xlsx), "
                                                "it names none (bundles before zhilian-export-bundle/v2)",
                            "XlsxMismatch"))
    elif computed == expected_sha256:
        checks.append(Check("xlsx_hash", True, f"SHA-256 {computed}"))
    else:
        checks.append(Check("xlsx_hash", False, f"expected the xlsx's SHA-256 to be {expected_sha256}, "
                                                f"computed {computed}", "XlsxMismatch"))
    if not isinstance(rows, list):
        checks.append(Check("xlsx_rows", None, "the bundle carries no rows to compare"))
        return checks
    try:
        found = _read_rows(xlsx)
    except Exception as exc:  # openpyxl raises many kinds on a file that is not an xlsx
        checks.append(Check("xlsx_rows", False, f"expected an xlsx workbook: {type(exc).__name__}: {exc}"[:300],
                            "XlsxMismatch"))
        return checks
    problems = []
    if len(found) != len(rows):
        problems.append(f"expected {len(rows)} rows, the sheet has {len(found)}")
    for index, (row, cells) in enumerate(zip(rows, found, strict=False)):
        expected = display_cells(row) if isinstance(row, dict) else []
        for column, (want, got) in enumerate(zip(expected, cells, strict=False)):
            if column in NAME_COLUMNS or _text(want) == _text(got):
                continue
            problems.append(f"row {index + 1} {HEADER[column]}: expected {_text(want)!r}, found {_text(got)!r}")
    if problems:
        checks.append(Check("xlsx_rows", False, "; ".join(problems[:5]) + (" …" if len(problems) > 5 else ""),
                            "XlsxMismatch"))
    else:
        checks.append(Check("xlsx_rows", True, f"{len(rows)} rows match the signed bundle"))
    return checks
