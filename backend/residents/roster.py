"""Parsing of the subsidy roster (高龄津贴名册) that staff upload as xlsx or csv.

The rules:

* The format is decided by the bytes, never by the file name: a workbook
  renamed ``.csv`` is still a workbook, and a PDF renamed ``.xlsx`` is refused.
* CSV is read as UTF-8 (with or without BOM), then GB18030 (what Chinese Excel
  writes by default), or UTF-16 with BOM (Excel's "Unicode text").
* Headers are matched by name (Chinese or English alias), in any order; a title
  row above the header is tolerated. Line numbers are the row numbers the user
  sees in Excel (header row = 1 when there is no title row).
* Names and addresses follow ``backend.residents.text``: the rules (and messages) the
  resident API applies, so a value refused there is refused here too.
* Every problem is reported per row and field with a stable code and a Chinese
  message; nothing is imported unless ``errors`` is empty (the caller decides).
* Problems that make the whole file unreadable raise ``RosterFileError``;
  a missing or repeated column is reported in ``errors`` against the header
  line, and no rows are parsed.

This module is pure (bytes in, values out): no database, no HTTP.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import warnings
import zipfile
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from backend.residents import text as text_rules
from backend.residents.national_id import (
    InvalidNationalId,
    NationalId,
    parse_national_id,
    programme_tier,
)
from backend.security import cells

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_ROW_LIMIT",
    "FIELD_LABELS",
    "MIN_AGE",
    "ROSTER_HEADERS",
    "RosterFileError",
    "RosterParseResult",
    "RosterRow",
    "RowError",
    "normalise_phone",
    "parse_roster",
    "write_roster_csv",
    "write_roster_xlsx",
]

DEFAULT_ROW_LIMIT = 20_000
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
MIN_AGE = 80
# Uncompressed size ceiling for an xlsx archive: stops zip bombs before openpyxl inflates them.
_MAX_XLSX_UNCOMPRESSED = 256 * 1024 * 1024
_HEADER_SCAN_ROWS = 10

_Rows = Iterator[tuple[int, tuple[Any, ...]]]  # (line as Excel shows it, cell values)
_Tables = Generator[tuple[str | None, _Rows], None, None]  # (sheet title or None for csv, rows)

#: Canonical field -> the header we write (template, demo, tests).
FIELD_LABELS: dict[str, str] = {
    "name": "姓名",
    "national_id": "身份证号",
    "phone": "联系电话",
    "address": "户籍地址",
    "living_address": "居住地址",
}
ROSTER_HEADERS: tuple[str, ...] = tuple(FIELD_LABELS.values())
_REQUIRED = ("name", "national_id", "address")

_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("姓名", "名字", "老人姓名", "居民姓名", "name", "full name", "fullname"),
    "national_id": (
        "身份证号",
        "身份证号码",
        "身份证",
        "公民身份号码",
        "身份证件号码",
        "证件号码",
        "national_id",
        "national id",
        "id number",
        "id_number",
        "id no",
        "idno",
    ),
    "phone": (
        "手机",
        "手机号",
        "手机号码",
        "联系电话",
        "电话",
        "电话号码",
        "联系方式",
        "phone",
        "mobile",
        "phone number",
        "mobile phone",
        "tel",
        "telephone",
    ),
    "address": ("户籍地址", "户籍地", "户口地址", "户籍所在地", "地址", "address", "registered address"),
    "living_address": (
        "居住地址",
        "实际居住地",
        "实际居住地址",
        "现居住地址",
        "现住址",
        "居住地",
        "living_address",
        "living address",
        "current address",
    ),
}

_BRACKETED = re.compile(r"\([^)]*\)|\[[^\]]*\]|【[^】]*】")
_HEADER_NOISE = re.compile(r"[\s_\-*:：]+")
_WHITESPACE = re.compile(r"\s+")
_MOBILE = re.compile(r"1[3-9]\d{9}")
_PHONE_NOISE = re.compile(r"[\s\-()]+")


def _header_key(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = _BRACKETED.sub("", text)  # "姓名(必填)", "身份证号【18位】"
    return _HEADER_NOISE.sub("", text)


_HEADER_LOOKUP: dict[str, str] = {
    _header_key(alias): fld for fld, aliases in _ALIASES.items() for alias in aliases
}


class RosterFileError(ValueError):
    """The file as a whole cannot be read as a roster; `code` is stable, `message` is for staff."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem in one row; `line` is the row number shown in Excel, `field` a canonical field name."""

    line: int
    field: str | None
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class RosterRow:
    """A roster row that passed every rule, normalised; `tier` is the programme tier on `as_of`."""

    line: int
    name: str = field(repr=False)  # personal data stays out of logs and tracebacks
    national_id: NationalId  # its repr shows only the last four characters
    phone: str | None = field(repr=False)
    address: str = field(repr=False)
    living_address: str | None = field(repr=False)
    tier: str


@dataclass(slots=True)
class RosterParseResult:
    """Valid rows and row-level errors; import only when `ok`."""

    rows: list[RosterRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    format: str = ""
    sheet: str | None = None
    header_line: int = 0

    @property
    def ok(self) -> bool:
        """True when the whole file is clean (all-or-nothing import)."""
        return not self.errors


# --------------------------------------------------------------------------- reading


def parse_roster(
    filename: str,
    data: bytes,
    *,
    as_of: date | None = None,
    limit: int = DEFAULT_ROW_LIMIT,
    min_age: int = MIN_AGE,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> RosterParseResult:
    """Parse an uploaded roster; raise RosterFileError when the file itself is unusable.

    `filename` is not trusted (nor needed): the format is sniffed from `data`.
    `as_of` (default today) is the day ages and tiers are computed on.
    """
    as_of = as_of or date.today()
    if not data or not data.strip():
        raise RosterFileError("roster.empty", "文件是空的")
    if len(data) > max_bytes:
        raise RosterFileError("roster.too_large", f"文件超过{max_bytes // (1024 * 1024)}MB，请拆分后分批导入")
    kind = _sniff(filename, data)
    tables = _xlsx_tables(data) if kind == "xlsx" else _csv_tables(data)
    try:
        return _parse_tables(kind, tables, as_of=as_of, limit=limit, min_age=min_age)
    finally:
        tables.close()  # closes the read-only workbook even when a rule raised half-way


def _parse_tables(
    kind: str,
    tables: _Tables,
    *,
    as_of: date,
    limit: int,
    min_age: int,
) -> RosterParseResult:
    sheet, header_line, header, body = _locate_header(tables)
    result = RosterParseResult(format=kind, sheet=sheet, header_line=header_line)

    columns, header_errors = _map_columns(header, header_line)
    if header_errors:
        result.errors.extend(header_errors)
        return result

    seen: dict[str, int] = {}
    count = 0
    for line, values in body:
        if _is_blank(values):
            continue
        count += 1
        if count > limit:
            raise RosterFileError("roster.too_many_rows", f"名册超过{limit}行，请拆分后分批导入")
        row, errors = _parse_row(line, values, columns, as_of=as_of, min_age=min_age, seen=seen)
        result.errors.extend(errors)
        if row is not None:
            result.rows.append(row)
    if count == 0:
        raise RosterFileError("roster.empty", "名册只有表头，没有居民数据")
    return result


def _sniff(filename: str, data: bytes) -> str:
    """'xlsx' or 'csv' by content; refuse everything else with a message that names what it looks like."""
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, ValueError, OSError):
            raise RosterFileError("roster.bad_file", "Excel文件已损坏，无法读取") from None
        if "xl/workbook.xml" in names:
            return "xlsx"
        raise RosterFileError("roster.bad_type", "文件是压缩包或其他Office文档，不是Excel表格（.xlsx）")
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise RosterFileError(
            "roster.xls_unsupported",
            "不支持旧版.xls或加密的Excel文件，请在Excel中另存为.xlsx（不设密码）或CSV后再上传",
        )
    for magic, what in (
        (b"%PDF", "PDF"),
        (b"\x89PNG", "图片"),
        (b"\xff\xd8\xff", "图片"),
        (b"GIF8", "图片"),
        (b"\x1f\x8b", "压缩包"),
        (b"Rar!", "压缩包"),
        (b"7z\xbc\xaf", "压缩包"),
    ):
        if data.startswith(magic):
            raise RosterFileError("roster.bad_type", f"上传的是{what}文件，请上传Excel（.xlsx）或CSV名册")
    return "csv"


def _xlsx_tables(data: bytes) -> _Tables:
    """Each worksheet as (title, numbered rows), read lazily in read-only mode."""
    import openpyxl  # imported here: only uploads pay its import time

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        if sum(info.file_size for info in archive.infolist()) > _MAX_XLSX_UNCOMPRESSED:
            raise RosterFileError("roster.too_large", "Excel文件解压后过大，请拆分后分批导入")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many types on malformed archives; all mean the same to the user
        raise RosterFileError("roster.bad_file", "Excel文件已损坏或格式不受支持，无法读取") from None
    try:
        for sheet in workbook.worksheets:
            if hasattr(sheet, "reset_dimensions"):
                sheet.reset_dimensions()  # a wrong <dimension> tag must not truncate the sheet
            yield sheet.title, _numbered_xlsx_rows(sheet)
    finally:
        workbook.close()


def _numbered_xlsx_rows(sheet: Any) -> Iterator[tuple[int, tuple[Any, ...]]]:
    try:
        for line, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield line, tuple(values)
    except RosterFileError:
        raise
    except Exception:
        raise RosterFileError("roster.bad_file", "Excel工作表内容损坏，无法读取") from None


def _decode_text(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encodings: Sequence[str] = ("utf-16",)
    else:
        if b"\x00" in data:
            raise RosterFileError("roster.bad_type", "文件不是Excel（.xlsx）或CSV名册")
        encodings = ("utf-8-sig", "gb18030")
    for encoding in encodings:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if any(unicodedata.category(ch) == "Cc" and ch not in "\t\r\n" for ch in text):
            raise RosterFileError("roster.bad_type", "文件不是Excel（.xlsx）或CSV名册")
        return text
    raise RosterFileError("roster.encoding", "无法识别CSV文件的编码，请在Excel中另存为“CSV UTF-8”后再上传")


def _csv_tables(data: bytes) -> _Tables:
    text = _decode_text(data)
    first_line = next((ln for ln in text.splitlines() if ln.strip()), "")
    delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
    yield None, _numbered_csv_rows(text, delimiter)


def _numbered_csv_rows(text: str, delimiter: str) -> Iterator[tuple[int, tuple[Any, ...]]]:
    # Line numbers count records, as Excel shows them, not physical lines.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for line, values in enumerate(reader, start=1):
            yield line, tuple(values)
    except csv.Error:
        raise RosterFileError("roster.bad_file", "CSV文件格式有误（引号不匹配或单元格过长）") from None


def _locate_header(
    tables: Iterable[tuple[str | None, Iterator[tuple[int, tuple[Any, ...]]]]],
) -> tuple[str | None, int, tuple[Any, ...], Iterator[tuple[int, tuple[Any, ...]]]]:
    """The first sheet whose first rows contain a recognisable header (≥ 2 known columns).

    Falls back to the first non-blank row of the first non-empty sheet, so that
    a header with unknown names is reported as missing columns rather than "empty".
    """
    fallback: tuple[str | None, int, tuple[Any, ...], Iterator[tuple[int, tuple[Any, ...]]]] | None = None
    for title, rows in tables:
        scanned: list[tuple[int, tuple[Any, ...]]] = []
        for line, values in rows:
            scanned.append((line, values))
            if _is_blank(values):
                if len(scanned) >= _HEADER_SCAN_ROWS * 5:
                    break
                continue
            known = {_HEADER_LOOKUP.get(_header_key(_text(v))) for v in values} - {None}
            if len(known) >= 2:
                return title, line, values, rows
            if fallback is None:
                fallback = (title, line, values, _chain_rest(scanned, line, rows))
            if sum(1 for _, v in scanned if not _is_blank(v)) >= _HEADER_SCAN_ROWS:
                break
    if fallback is not None:
        return fallback
    raise RosterFileError("roster.empty", "文件中没有任何内容")


def _chain_rest(
    scanned: list[tuple[int, tuple[Any, ...]]], header_line: int, rest: Iterator[tuple[int, tuple[Any, ...]]]
) -> Iterator[tuple[int, tuple[Any, ...]]]:
    for line, values in scanned:
        if line > header_line:
            yield line, values
    yield from rest


def _map_columns(header: tuple[Any, ...], line: int) -> tuple[dict[str, int], list[RowError]]:
    columns: dict[str, int] = {}
    errors: list[RowError] = []
    for index, cell in enumerate(header):
        fld = _HEADER_LOOKUP.get(_header_key(_text(cell)))
        if fld is None:
            continue  # extra columns (序号, 备注 ...) are allowed and ignored
        if fld in columns:
            errors.append(
                RowError(
                    line,
                    fld,
                    "roster.duplicate_column",
                    f"“{FIELD_LABELS[fld]}”列出现了不止一次，请只保留一列",
                )
            )
            continue
        columns[fld] = index
    for fld in _REQUIRED:
        if fld not in columns:
            names = "、".join(a for a in _ALIASES[fld] if not a.isascii())
            errors.append(
                RowError(
                    line,
                    fld,
                    "roster.missing_column",
                    f"缺少必填列“{FIELD_LABELS[fld]}”（可用列名：{names}）",
                )
            )
    return columns, errors


# --------------------------------------------------------------------------- row rules


def _text(value: Any) -> str:
    """A cell as text: numbers without a spurious '.0', dates as ISO."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _is_blank(values: Sequence[Any]) -> bool:
    return all(not _text(v).strip() for v in values)


def _clean(value: Any) -> str:
    """NFKC (full-width to half-width), trimmed, inner runs of whitespace collapsed."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", _text(value))).strip()


def _unwrap_excel_text(text: str) -> str:
    """'="3101..."' and a leading apostrophe are Excel's ways of forcing text; they are not data."""
    if text.startswith('="') and text.endswith('"') and len(text) >= 3:
        text = text[2:-1]
    return text.lstrip("'")


def normalise_phone(raw: str) -> str:
    """Digits only, a +86/0086 country prefix removed; validation is separate."""
    text = _PHONE_NOISE.sub("", unicodedata.normalize("NFKC", raw))
    text = _unwrap_excel_text(text)
    for prefix in ("+86", "0086"):
        if text.startswith(prefix):
            return text[len(prefix) :]
    if len(text) == 13 and text.startswith("86"):
        return text[2:]
    return text


def _cell(values: tuple[Any, ...], columns: Mapping[str, int], fld: str) -> Any:
    index = columns.get(fld)
    if index is None or index >= len(values):
        return None
    return values[index]


def _check_name(line: int, value: Any) -> tuple[str | None, RowError | None]:
    try:
        return text_rules.clean_name(_text(value)), None
    except text_rules.TextRejected as exc:
        return None, RowError(line, "name", "roster.name", exc.message)


def _check_address(line: int, value: Any, fld: str, *, required: bool) -> tuple[str | None, RowError | None]:
    try:
        return text_rules.clean_address(_text(value), field=fld, label=FIELD_LABELS[fld], required=required), None
    except text_rules.TextRejected as exc:
        return None, RowError(line, fld, f"roster.{fld}", exc.message)


def _check_phone(line: int, value: Any) -> tuple[str | None, RowError | None]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = _text(value)  # 11 digits survive Excel's number type intact
    text = normalise_phone(_text(value))
    if not text:
        return None, None
    if not _MOBILE.fullmatch(text) or not text.isascii():
        return None, RowError(
            line, "phone", "roster.phone", "联系电话须为11位手机号码（用于短信验证码登录），不能填固定电话"
        )
    return text, None


def _check_national_id(
    line: int, value: Any, *, as_of: date, min_age: int, seen: dict[str, int]
) -> tuple[NationalId | None, RowError | None]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        # Excel keeps 15 significant digits: an 18-digit number stored as a number has lost its tail.
        return None, RowError(
            line,
            "national_id",
            "roster.id_numeric",
            "身份证号被Excel存成了数字，末尾几位可能已丢失；请把该列设为“文本”格式后重新录入",
        )
    try:
        nid = parse_national_id(_unwrap_excel_text(_clean(value)), today=as_of)
    except InvalidNationalId as exc:
        return None, RowError(line, "national_id", exc.code, exc.message)
    first = seen.get(nid.number)
    if first is not None:
        return None, RowError(line, "national_id", "roster.duplicate", f"身份证号与第{first}行重复")
    seen[nid.number] = line
    age = nid.age_on(as_of)
    if age < min_age:
        return None, RowError(
            line,
            "national_id",
            "roster.too_young",
            f"截至{as_of.year}年{as_of.month}月{as_of.day}日年满{age}周岁，未满{min_age}周岁，不属于高龄津贴对象",
        )
    return nid, None


def _parse_row(
    line: int,
    values: tuple[Any, ...],
    columns: Mapping[str, int],
    *,
    as_of: date,
    min_age: int,
    seen: dict[str, int],
) -> tuple[RosterRow | None, list[RowError]]:
    name, e_name = _check_name(line, _cell(values, columns, "name"))
    nid, e_id = _check_national_id(
        line, _cell(values, columns, "national_id"), as_of=as_of, min_age=min_age, seen=seen
    )
    phone, e_phone = _check_phone(line, _cell(values, columns, "phone"))
    address, e_addr = _check_address(line, _cell(values, columns, "address"), "address", required=True)
    living, e_living = _check_address(
        line, _cell(values, columns, "living_address"), "living_address", required=False
    )
    errors = [e for e in (e_name, e_id, e_phone, e_addr, e_living) if e is not None]
    if errors or name is None or nid is None or address is None:
        return None, errors
    tier = programme_tier(nid.age_on(as_of)) or ""
    return RosterRow(line, name, nid, phone, address, living, tier), []


# --------------------------------------------------------------------------- writing


def _row_values(row: Mapping[str, Any]) -> list[str]:
    """Values in header order; a row may be keyed by Chinese header or by canonical field name."""
    out = []
    for fld, label in FIELD_LABELS.items():
        value = row.get(label, row.get(fld))
        out.append("" if value is None else str(value))
    return out


def write_roster_xlsx(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """An xlsx roster with the Chinese header; ID and phone columns are text so Excel keeps every digit.

    With no rows it is the blank template offered for download.
    """
    import openpyxl
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "居民名册"
    cells.append_row(sheet, ROSTER_HEADERS)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    widths = {"name": 12, "national_id": 22, "phone": 15, "address": 44, "living_address": 44}
    text_columns = {list(FIELD_LABELS).index("national_id") + 1, list(FIELD_LABELS).index("phone") + 1}
    for index, fld in enumerate(FIELD_LABELS, start=1):
        dimension = sheet.column_dimensions[get_column_letter(index)]
        dimension.width = widths[fld]
        if index in text_columns:
            dimension.number_format = "@"  # cells typed later into the template stay text
    for line, row in enumerate(rows, start=2):
        cells.append_row(sheet, [value or None for value in _row_values(row)])
        for index in text_columns:  # (sheet.max_row here would make this quadratic)
            sheet.cell(row=line, column=index).number_format = "@"
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def write_roster_csv(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """A UTF-8 (with BOM, so Excel shows the Chinese) CSV roster with the Chinese header."""
    return cells.csv_bytes([ROSTER_HEADERS, *(_row_values(row) for row in rows)])
