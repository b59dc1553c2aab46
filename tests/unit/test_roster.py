"""Roster import parsing: format sniffing, encodings, header aliases, per-row errors with the right line."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import date

import openpyxl
import pytest

from backend.residents.national_id import check_character
from backend.residents.roster import (
    FIELD_LABELS,
    ROSTER_HEADERS,
    RosterFileError,
    normalise_phone,
    parse_roster,
    write_roster_csv,
    write_roster_xlsx,
)

AS_OF = date(2026, 11, 1)


def nid(birth: str, seq: str = "123", region: str = "310120") -> str:
    """A checksum-valid ID for a YYYYMMDD birth date (odd last sequence digit = man)."""
    first17 = f"{region}{birth}{seq}"
    return first17 + check_character(first17)


ID_A = nid("19400315")  # 86 on AS_OF
ID_B = nid("19300101", "242")  # 96
ID_C = nid("19230601", "011")  # 103


def xlsx(rows: list[list[object]], *, title: str = "Sheet1", extra_sheets: int = 0) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = title
    for row in rows:
        sheet.append(row)
    for index in range(extra_sheets):
        workbook.create_sheet(f"空白{index}")
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def csv_text(rows: list[list[str]]) -> str:
    return "".join(",".join(row) + "\r\n" for row in rows)


HEADER = list(ROSTER_HEADERS)


def codes(result) -> list[tuple[int, str | None, str]]:
    return [(e.line, e.field, e.code) for e in result.errors]


def test_clean_xlsx_rows_are_normalised() -> None:
    data = xlsx(
        [
            HEADER,
            ["张桂英", ID_A, "13812345678", "上海市奉贤区南桥镇江海路128弄3号402室", None],
            ["  李  建国 ", ID_B.lower(), "+86 139-1234-5678", "南桥镇解放东路1号", "南桥镇敬老院"],
            ["王秀兰", ID_C, None, "南桥镇百齐路8号", ""],
        ]
    )
    result = parse_roster("名册.xlsx", data, as_of=AS_OF)
    assert result.ok and result.format == "xlsx" and result.header_line == 1 and result.sheet == "Sheet1"
    a, b, c = result.rows
    assert (a.line, a.name, a.national_id.number, a.phone, a.living_address, a.tier) == (
        2,
        "张桂英",
        ID_A,
        "13812345678",
        None,
        "80-89",
    )
    assert (b.line, b.name, b.phone, b.living_address, b.tier) == (
        3,
        "李 建国",
        "13912345678",
        "南桥镇敬老院",
        "90-99",
    )
    assert (c.line, c.phone, c.tier, c.national_id.sex) == (4, None, "100+", "M")
    assert a.national_id.sex == "M" and b.national_id.sex == "F"


def test_bad_rows_each_reported_on_its_line() -> None:
    rows = [
        HEADER,  # 1
        ["张桂英", ID_A, "13812345678", "江海路1号", ""],  # 2 ok
        ["李德明", ID_B[:-1] + ("0" if ID_B[-1] != "0" else "1"), "", "江海路2号", ""],  # 3 checksum
        ["", "", "", "", ""],  # 4 blank: skipped
        ["王建国", nid("19470101"), "", "江海路3号", ""],  # 5 79 on AS_OF
        ["张桂英", ID_A, "", "江海路1号", ""],  # 6 duplicate of 2
        ["陈秀英", ID_C, "12345", "江海路4号", ""],  # 7 phone
        ["", nid("19380808"), "", "江海路5号", ""],  # 8 name missing
        ["周玉兰", nid("19410230"), "", "江海路6号", ""],  # 9 30 Feb
        ["沈福根", nid("19391111"), "", "", ""],  # 10 address missing
        ["陆国华", "31012019391", "", "江海路7号", ""],  # 11 format
        ["顾 2", nid("19361212"), "021-57123456", "江海路8号", ""],  # 12 name + landline
        [
            "徐凤英",
            nid("19350505", "224"),
            " 138 1234 5679 ",
            "=HYPERLINK(1)",
            "",
        ],  # 13 formula cell: no cached value
        ["朱阿根", nid("19330303", "135"), "", "江海路9号", ""],  # 14 ok
    ]
    result = parse_roster("roster.xlsx", xlsx(rows), as_of=AS_OF)
    assert codes(result) == [
        (3, "national_id", "id.checksum"),
        (5, "national_id", "roster.too_young"),
        (6, "national_id", "roster.duplicate"),
        (7, "phone", "roster.phone"),
        (8, "name", "roster.name"),
        (9, "national_id", "id.birth_date"),
        (10, "address", "roster.address"),
        (11, "national_id", "id.format"),
        (12, "name", "roster.name"),
        (12, "phone", "roster.phone"),
        (13, "address", "roster.address"),
    ]
    assert [r.line for r in result.rows] == [2, 14]
    assert not result.ok
    by_line = {e.line: e.message for e in result.errors}
    assert "第2行" in by_line[6]
    assert "79" in by_line[5] and "80" in by_line[5]
    for error in result.errors:
        assert any("\u4e00" <= ch <= "\u9fff" for ch in error.message)


def test_same_rows_as_csv_report_same_lines() -> None:
    rows = [HEADER, ["张桂英", ID_A, "", "江海路1号", ""], [",,,,"], ["张桂英", ID_A, "", "江海路1号", ""]]
    text = csv_text([r for r in rows if r != [",,,,"]][:2]) + ",,,,\r\n" + csv_text(rows[3:])
    result = parse_roster("r.csv", text.encode("utf-8"), as_of=AS_OF)
    assert result.format == "csv"
    assert codes(result) == [(4, "national_id", "roster.duplicate")]


def test_too_young_depends_on_as_of() -> None:
    turns_80 = nid("19461102")
    data = write_roster_csv([{"姓名": "王建国", "身份证号": turns_80, "户籍地址": "江海路1号"}])
    assert codes(parse_roster("r.csv", data, as_of=AS_OF)) == [(2, "national_id", "roster.too_young")]
    assert parse_roster("r.csv", data, as_of=date(2026, 11, 2)).rows[0].tier == "80-89"
    assert parse_roster("r.csv", data, as_of=AS_OF, min_age=79).ok


def test_gb18030_csv() -> None:
    text = csv_text(
        [HEADER, ["欧阳桂英", ID_A, "13812345678", "上海市奉贤区南桥镇江海路128弄3号402室", "㐀䶵"]]
    )
    data = text.encode("gb18030")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    result = parse_roster("名册.csv", data, as_of=AS_OF)
    assert result.ok
    assert result.rows[0].name == "欧阳桂英"
    assert result.rows[0].address == "上海市奉贤区南桥镇江海路128弄3号402室"
    assert result.rows[0].living_address == "㐀䶵"  # beyond GBK: needs GB18030 proper


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_utf8_csv_with_and_without_bom(bom: bytes) -> None:
    data = bom + csv_text([HEADER, ["张桂英", ID_A, "", "江海路1号", ""]]).encode("utf-8")
    result = parse_roster("r.csv", data, as_of=AS_OF)
    assert result.ok and result.rows[0].name == "张桂英"


def test_utf16_tab_separated_unicode_text_export() -> None:
    text = "\t".join(HEADER) + "\r\n" + "\t".join(["张桂英", ID_A, "13812345678", "江海路1号", ""]) + "\r\n"
    result = parse_roster("r.txt", text.encode("utf-16"), as_of=AS_OF)
    assert result.ok and result.rows[0].phone == "13812345678"


def test_quoted_csv_fields_and_excel_text_tricks() -> None:
    text = (
        "姓名,身份证号,联系电话,户籍地址\r\n"
        f'张桂英,"=""{ID_A}""",\'13812345678,"江海路1号, 3号楼"\r\n'
        f"李德明,'{ID_B},,江海路2号\r\n"
    )
    result = parse_roster("r.csv", text.encode("utf-8"), as_of=AS_OF)
    assert result.ok, result.errors
    assert [r.national_id.number for r in result.rows] == [ID_A, ID_B]
    assert result.rows[0].address == "江海路1号, 3号楼"
    assert result.rows[0].phone == "13812345678"


def test_xlsx_renamed_csv_is_parsed_by_content() -> None:
    data = write_roster_xlsx([{"姓名": "张桂英", "身份证号": ID_A, "户籍地址": "江海路1号"}])
    result = parse_roster("roster.csv", data, as_of=AS_OF)
    assert result.format == "xlsx" and result.ok and result.rows[0].name == "张桂英"


def test_csv_renamed_xlsx_is_parsed_by_content() -> None:
    data = write_roster_csv([{"姓名": "张桂英", "身份证号": ID_A, "户籍地址": "江海路1号"}])
    result = parse_roster("roster.xlsx", data, as_of=AS_OF)
    assert result.format == "csv" and result.ok


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "roster.empty"),
        (b"  \r\n ", "roster.empty"),
        (b"%PDF-1.7\n...", "roster.bad_type"),
        (b"\x89PNG\r\n\x1a\n" + bytes(20), "roster.bad_type"),
        (b"\xff\xd8\xff\xe0" + bytes(20), "roster.bad_type"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "roster.xls_unsupported"),
        (b"abc\x00def\x01" * 10, "roster.bad_type"),
        (b"PK\x03\x04garbage", "roster.bad_file"),
        (bytes([0x81, 0x30, 0x81]) + b"\xff\xff", "roster.encoding"),
    ],
)
def test_file_level_errors(data: bytes, code: str) -> None:
    with pytest.raises(RosterFileError) as info:
        parse_roster("roster.xlsx", data, as_of=AS_OF)
    assert info.value.code == code
    assert any("\u4e00" <= ch <= "\u9fff" for ch in info.value.message)


def test_zip_that_is_not_a_workbook() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w/>")
    with pytest.raises(RosterFileError) as info:
        parse_roster("roster.xlsx", buffer.getvalue(), as_of=AS_OF)
    assert info.value.code == "roster.bad_type"


def test_header_only_and_template_are_empty() -> None:
    for data in (write_roster_xlsx([]), write_roster_csv([])):
        with pytest.raises(RosterFileError) as info:
            parse_roster("t", data, as_of=AS_OF)
        assert info.value.code == "roster.empty"


def test_too_many_rows_and_too_many_bytes() -> None:
    rows = [
        {"姓名": "张桂英", "身份证号": nid("19400315", f"{i:03d}"), "户籍地址": "江海路1号"} for i in range(4)
    ]
    data = write_roster_csv(rows)
    assert len(parse_roster("r.csv", data, as_of=AS_OF, limit=4).rows) == 4
    with pytest.raises(RosterFileError) as info:
        parse_roster("r.csv", data, as_of=AS_OF, limit=3)
    assert info.value.code == "roster.too_many_rows"
    with pytest.raises(RosterFileError) as info:
        parse_roster("r.csv", data, as_of=AS_OF, max_bytes=100)
    assert info.value.code == "roster.too_large"


def test_missing_required_columns_reported_against_header() -> None:
    data = xlsx([["序号", "名字", "手机"], [1, "张桂英", "13812345678"]])
    result = parse_roster("r.xlsx", data, as_of=AS_OF)
    assert result.rows == []
    assert codes(result) == [
        (1, "national_id", "roster.missing_column"),
        (1, "address", "roster.missing_column"),
    ]
    assert "身份证号" in result.errors[0].message


def test_unrecognised_header_reports_all_required_columns() -> None:
    result = parse_roster("r.csv", b"a,b,c\r\n1,2,3\r\n", as_of=AS_OF)
    assert [e.field for e in result.errors] == ["name", "national_id", "address"]


def test_duplicate_column() -> None:
    data = csv_text(
        [["姓名", "身份证号", "身份证号码", "地址"], ["张桂英", ID_A, ID_A, "江海路1号"]]
    ).encode()
    result = parse_roster("r.csv", data, as_of=AS_OF)
    assert codes(result) == [(1, "national_id", "roster.duplicate_column")]


def test_aliases_order_decorations_title_row_and_extra_columns() -> None:
    data = xlsx(
        [
            ["南桥社区高龄津贴名册（2026年11月）"],
            [],
            ["序号", "居住地址", "Phone Number", "身份证号码（必填）", "*姓名", "户籍地址", "备注"],
            [1, "敬老院", 13812345678, f" {ID_A} ", "张桂英", "江海路1号", "无"],
            [2, None, None, ID_B, "李秀兰", "江海路2号", None],
        ]
    )
    result = parse_roster("r.xlsx", data, as_of=AS_OF)
    assert result.ok, result.errors
    assert result.header_line == 3
    assert [(r.line, r.name, r.phone, r.living_address) for r in result.rows] == [
        (4, "张桂英", "13812345678", "敬老院"),
        (5, "李秀兰", None, None),
    ]


def test_english_headers() -> None:
    data = csv_text(
        [
            ["Name", "National_ID", "Mobile", "Address", "Living Address"],
            ["Zhang Guiying", ID_A, "", "Jianghai Rd 1", ""],
        ]
    )
    result = parse_roster("r.csv", data.encode(), as_of=AS_OF)
    assert result.ok and result.rows[0].name == "Zhang Guiying"


def test_roster_on_second_sheet_is_found() -> None:
    workbook = openpyxl.Workbook()
    notes = workbook.active
    notes.title = "填表说明"
    notes.append(["请按模板填写，身份证号列设为文本格式"])
    roster = workbook.create_sheet("名册")
    roster.append(HEADER)
    roster.append(["张桂英", ID_A, None, "江海路1号", None])
    buffer = io.BytesIO()
    workbook.save(buffer)
    result = parse_roster("r.xlsx", buffer.getvalue(), as_of=AS_OF)
    assert result.ok and result.sheet == "名册" and result.rows[0].line == 2


def test_id_stored_as_excel_number_is_flagged() -> None:
    data = xlsx(
        [
            HEADER,
            ["张桂英", 310120194003151230, None, "江海路1号", None],
            ["李秀兰", 3.1012019300101e17, None, "江海路2号", None],
        ]
    )
    result = parse_roster("r.xlsx", data, as_of=AS_OF)
    assert codes(result) == [(2, "national_id", "roster.id_numeric"), (3, "national_id", "roster.id_numeric")]
    assert "文本" in result.errors[0].message


def test_full_width_id_and_minority_name() -> None:
    full_width = "".join(chr(ord(ch) + 0xFEE0) for ch in ID_A)
    data = csv_text(
        [HEADER, ["阿依古丽•买买提", full_width, "１３８１２３４５６７８", "江海路1号", ""]]
    ).encode()
    result = parse_roster("r.csv", data, as_of=AS_OF)
    assert result.ok, result.errors
    row = result.rows[0]
    assert (row.name, row.national_id.number, row.phone) == ("阿依古丽·买买提", ID_A, "13812345678")


def test_name_rules() -> None:
    rows = [
        HEADER,
        ["张" * 31, ID_A, "", "江海路1号", ""],
        ["=cmd|' /C calc'!A0", ID_B, "", "江海路2号", ""],
        ["·张", ID_C, "", "江海路3号", ""],
    ]
    result = parse_roster("r.csv", csv_text(rows).encode(), as_of=AS_OF)
    assert codes(result) == [
        (2, "name", "roster.name"),
        (3, "name", "roster.name"),
        (4, "name", "roster.name"),
    ]
    assert "30" in result.errors[0].message


def test_formula_like_addresses_rejected() -> None:
    rows = [
        HEADER,
        ["张桂英", ID_A, "", '=HYPERLINK("http://x")', "@SUM(A1)"],
        ["李秀兰", ID_B, "", "江海路1号", "-"],
    ]
    result = parse_roster("r.csv", csv_text(rows).encode(), as_of=AS_OF)
    assert codes(result) == [
        (2, "address", "roster.address"),
        (2, "living_address", "roster.living_address"),
        (3, "living_address", "roster.living_address"),
    ]
    assert "=" in result.errors[0].message


def test_row_repr_keeps_personal_data_out() -> None:
    data = write_roster_csv(
        [{"姓名": "张桂英", "身份证号": ID_A, "联系电话": "13812345678", "户籍地址": "江海路1号"}]
    )
    text = repr(parse_roster("r.csv", data, as_of=AS_OF).rows[0])
    assert "张桂英" not in text and ID_A not in text and "13812345678" not in text and "江海路" not in text
    assert ID_A[-4:] in text


def test_wrong_dimension_tag_does_not_truncate() -> None:
    data = xlsx(
        [HEADER] + [["张桂英", nid("19400315", f"{i:03d}"), None, "江海路1号", None] for i in range(5)]
    )
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        parts = {name: src.read(name) for name in src.namelist()}
    sheet, count = re.subn(
        r'<dimension ref="A1:[A-Z]+6"\s*/>',
        '<dimension ref="A1:E2"/>',
        parts["xl/worksheets/sheet1.xml"].decode(),
    )
    assert count == 1
    parts["xl/worksheets/sheet1.xml"] = sheet.encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as dst:
        for name, content in parts.items():
            dst.writestr(name, content)
    assert len(parse_roster("r.xlsx", buffer.getvalue(), as_of=AS_OF).rows) == 5


def test_normalise_phone() -> None:
    assert normalise_phone("+86 138-1234-5678") == "13812345678"
    assert normalise_phone("0086 13812345678") == "13812345678"
    assert normalise_phone("8613812345678") == "13812345678"
    assert normalise_phone("(138) 1234 5678") == "13812345678"


def test_writers_round_trip_and_keep_ids_as_text() -> None:
    rows = [
        {
            "姓名": "张桂英",
            "身份证号": ID_A,
            "联系电话": "13812345678",
            "户籍地址": "江海路1号",
            "居住地址": "",
        },
        {
            "name": "李德明",
            "national_id": ID_B,
            "phone": None,
            "address": "江海路2号",
            "living_address": "敬老院",
        },
    ]
    xlsx_bytes = write_roster_xlsx(rows)
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx_bytes)).active
    assert [c.value for c in sheet[1]] == HEADER
    assert sheet["B2"].value == ID_A and isinstance(sheet["B2"].value, str)
    assert sheet.column_dimensions["B"].number_format == "@"
    for data, kind in ((xlsx_bytes, "xlsx"), (write_roster_csv(rows), "csv")):
        result = parse_roster("r", data, as_of=AS_OF)
        assert result.format == kind and result.ok
        assert [(r.name, r.national_id.number, r.phone, r.living_address) for r in result.rows] == [
            ("张桂英", ID_A, "13812345678", None),
            ("李德明", ID_B, None, "敬老院"),
        ]
    csv_bytes = write_roster_csv(rows)
    assert csv_bytes.startswith(b"\xef\xbb\xbf" + "姓名".encode())
    assert FIELD_LABELS["national_id"] == "身份证号"
