"""Every cell written to xlsx or CSV is neutralised and holdable (issue 13, items 7 and 8)."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest

from backend.residents.roster import write_roster_csv, write_roster_xlsx
from backend.security.cells import append_row, csv_bytes, safe_cell, safe_text


@pytest.mark.parametrize("value", ['=HYPERLINK("http://e.cn")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"])
def test_formula_triggers_get_an_apostrophe(value: str) -> None:
    assert safe_cell(value) == "'" + value


def test_what_a_workbook_cannot_hold_is_dropped_and_the_rest_kept() -> None:
    assert safe_text("王\x00桂\x1b英\ufffe") == "王桂英"
    assert safe_cell("\x00=1") == "'=1"  # a control character cannot hide a formula
    assert safe_text("𠀀家\u202e") == "𠀀家\u202e"  # characters outside the BMP and bidi marks are holdable
    assert safe_cell(42) == 42 and safe_cell(None) is None


def test_an_xlsx_row_written_through_the_helper_never_holds_a_formula() -> None:
    book = openpyxl.Workbook()
    append_row(book.active, ["=1+1", "王\x00桂英", 3])
    saved = io.BytesIO()
    book.save(saved)
    row = next(openpyxl.load_workbook(io.BytesIO(saved.getvalue())).active.iter_rows())
    assert [(c.value, c.data_type) for c in row] == [("'=1+1", "s"), ("王桂英", "s"), (3, "n")]


def test_csv_cells_are_neutralised_and_the_roster_writers_use_the_helper() -> None:
    data = csv_bytes([["姓名", "地址"], ["=cmd|' /C calc'!A0", "@x"]])
    assert data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[1] == ["'=cmd|' /C calc'!A0", "'@x"]
    roster = {"姓名": "=1+1", "身份证号": "110101194001010012", "户籍地址": "+江海路"}
    assert "'=1+1" in write_roster_csv([roster]).decode("utf-8-sig")
    sheet = openpyxl.load_workbook(io.BytesIO(write_roster_xlsx([roster]))).active
    assert sheet["A2"].value == "'=1+1" and sheet["D2"].value == "'+江海路" and sheet["A2"].data_type == "s"


def test_the_work_order_figures_export_goes_through_the_same_writer() -> None:
    from backend.workorders import figures

    counts = {key: 0 for key, _ in figures.COLUMNS if key not in ("group", "name")}
    counts.update({key: None for key in counts if key.endswith("_rate")})
    data = {"month": "2026-02", "total": counts,
            "by_category": [{"name": "@SUM(A1)", **counts}], "by_team": [{"name": "=HYPERLINK(\"http://e.cn\")", **counts}]}
    sheet = openpyxl.load_workbook(io.BytesIO(figures.to_xlsx(data))).active
    names = [row[1].value for row in sheet.iter_rows(min_row=2)]
    assert names == ["全部", "'@SUM(A1)", "'=HYPERLINK(\"http://e.cn\")"]
    assert all(row[1].data_type == "s" for row in sheet.iter_rows(min_row=2))
    rows = list(csv.reader(io.StringIO(figures.to_csv(data).decode("utf-8-sig"))))
    assert [row[1] for row in rows[1:]] == names
