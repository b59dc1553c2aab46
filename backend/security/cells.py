"""Every cell written to an xlsx or CSV file goes through here, always, whatever its origin.

Two things go wrong with text in spreadsheets other people open:

* **Formula injection** (OWASP "CSV injection"): a cell that starts with ``=``, ``+``, ``-``,
  ``@``, a tab or a carriage return is run as a formula by Excel, WPS or LibreOffice
  (``=HYPERLINK(...)`` sends whoever clicks it elsewhere). Such text gets a leading apostrophe,
  so it is shown as the text it is and never evaluated; openpyxl then stores it as a string.
* **Characters a workbook cannot hold**: XML 1.0 has no NUL or other C0 controls, no lone
  surrogates, no U+FFFE/U+FFFF; openpyxl raises on them and the whole export failed. They are
  dropped (input validation refuses them; this protects against legacy rows).

Input rules live in `backend.residents.text`; this module is the output side, for every writer
(department exports, roster files, templates) and for text drawn into PDFs.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["FORMULA_TRIGGERS", "append_row", "csv_bytes", "safe_cell", "safe_text"]

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NOT_IN_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def safe_text(text: str) -> str:
    """`text` without the characters an xlsx (XML 1.0) or a PDF string cannot hold."""
    return _NOT_IN_XML.sub("", text)


def safe_cell(value: Any) -> Any:
    """A cell value that cannot run as a formula nor break the file; non-text values pass unchanged."""
    if not isinstance(value, str):
        return value
    text = safe_text(value)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def append_row(sheet: Any, values: Sequence[Any]) -> None:
    """Append one row of neutralised cells to an openpyxl worksheet."""
    sheet.append([safe_cell(value) for value in values])


def csv_bytes(rows: Iterable[Sequence[Any]]) -> bytes:
    """A UTF-8 CSV with BOM (so Excel shows Chinese) and CRLF line ends, every cell neutralised."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow(["" if value is None else safe_cell(value) for value in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")
