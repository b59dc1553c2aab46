"""Printable QR cards: one A6 page per resident, large type, drawn with reportlab.

Chinese text uses reportlab's built-in CID font `STSong-Light` (Adobe-GB1; PDF viewers supply
the glyphs), so no font file ships with us. The QR code is drawn as vector rectangles from
the module matrix: crisp at any printer resolution and cheap (~6 ms per card).
This module is pure: it turns card data into PDF bytes (blocking: call it from a thread).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from reportlab.lib.pagesizes import A6
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas

from backend.qr.images import matrix

FONT = "STSong-Light"
_font_lock = threading.Lock()

INSTRUCTIONS = (
    "家人可用“智链”扫码帮老人认证",
    "老人本人用手机扫码也可认证",
    "请妥善保管，丢失请联系社区补发",
)


@dataclass(frozen=True)
class Card:
    """What one card shows. The QR content is the app link carrying the resident's token."""

    name: str
    community_name: str
    community_phone: str
    qr_content: str
    qr_version: int


def ensure_font() -> None:
    """Register the CID font once per process (also used by the work-order point signs)."""
    with _font_lock:
        if FONT not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(UnicodeCIDFont(FONT))


def _centred(canvas: Canvas, text: str, *, y: float, size: float, max_width: float, min_size: float = 9) -> None:
    """Draw `text` centred, shrinking the type until it fits the width."""
    while size > min_size and pdfmetrics.stringWidth(text, FONT, size) > max_width:
        size -= 1
    canvas.setFont(FONT, size)
    canvas.drawCentredString(A6[0] / 2, y, text)


def draw_qr(canvas: Canvas, modules: tuple[tuple[bool, ...], ...], *, x: float, y: float, side: float) -> None:
    """Draw the module matrix (quiet zone included) as a square of `side` points at (x, y)."""
    count = len(modules)
    cell = side / count
    path = canvas.beginPath()
    for row, line in enumerate(modules):
        top = y + side - (row + 1) * cell
        col = 0
        while col < count:
            if not line[col]:
                col += 1
                continue
            start = col
            while col < count and line[col]:
                col += 1
            path.rect(x + start * cell, top, (col - start) * cell, cell)
    canvas.setFillGray(0)
    canvas.drawPath(path, fill=1, stroke=0)


def _draw_card(canvas: Canvas, card: Card, printed_on: date) -> None:
    width, height = A6
    margin = 8 * mm
    usable = width - 2 * margin
    canvas.setFillGray(0)
    _centred(canvas, f"{card.community_name}  智链认证卡", y=height - 14 * mm, size=12, max_width=usable)
    _centred(canvas, card.name, y=height - 30 * mm, size=34, max_width=usable, min_size=16)

    side = 66 * mm
    qr_top = height - 36 * mm
    draw_qr(canvas, matrix(card.qr_content), x=(width - side) / 2, y=qr_top - side, side=side)

    y = qr_top - side - 7 * mm
    for line in INSTRUCTIONS:
        _centred(canvas, line, y=y, size=12.5, max_width=usable)
        y -= 6.5 * mm
    if card.community_phone:
        _centred(canvas, f"社区电话：{card.community_phone}", y=y - 1 * mm, size=15, max_width=usable)
    canvas.setFillGray(0.35)
    _centred(canvas, f"第 {card.qr_version} 版  {printed_on.isoformat()} 制", y=6 * mm, size=8, max_width=usable)


def render_cards(cards: Iterable[Card], *, printed_on: date | None = None, title: str = "智链二维码卡片") -> bytes:
    """A PDF with one A6 page per card, in the order given."""
    ensure_font()
    printed_on = printed_on or date.today()
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A6, pageCompression=1)
    canvas.setTitle(title)
    canvas.setAuthor("Zhilian")
    drawn = 0
    for card in cards:
        _draw_card(canvas, card, printed_on)
        canvas.showPage()
        drawn += 1
    if drawn == 0:
        raise ValueError("no cards to render")
    canvas.save()
    return buffer.getvalue()
