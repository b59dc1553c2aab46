"""Fixed QR points (lamp posts, gates, charging sheds, stair halls) and their printed signs.

A point's sign carries the app link with the point's token (`WP1.` + 80 random bits, base32), so a
phone camera opens the report with the exact place filled in: no GPS needed, and the phone's own
location stays a hint. The token only names a public place; it grants nothing. Signs are A5 pages
in large type, drawn with the QR card code of `backend.qr.cards` (vector modules, CID font).
"""

from __future__ import annotations

import asyncio
import base64
import io
import secrets
from collections.abc import Sequence
from datetime import date
from typing import Any

from reportlab.lib.pagesizes import A5
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen.canvas import Canvas
from tortoise.exceptions import IntegrityError

from backend.errors import Conflict, NotFoundError, ValidationFailed
from backend.qr.cards import FONT, draw_qr, ensure_font
from backend.qr.images import matrix
from backend.qr.tokens import extract_token, scan_url
from backend.residents.models import Community
from backend.workorders import geo, wording
from backend.workorders.models import QrPoint

TOKEN_PREFIX = "WP1."
POINT_KINDS = {"lamp_post": "路灯杆", "gate": "出入口", "charging_shed": "充电棚", "stair_hall": "楼道",
               "other": "公共点位"}
MAX_SIGNS = 500


def new_token() -> str:
    return TOKEN_PREFIX + base64.b32encode(secrets.token_bytes(10)).decode("ascii")


def content_for(point: QrPoint, public_url: str) -> str:
    """What the sign's QR code holds: the app's scan link carrying the point token."""
    return scan_url(public_url, point.token)


async def create_point(*, community_id: int, name: str, kind: str, address: str, grid: str,
                       lat: float | None, long: float | None, code: str | None) -> QrPoint:
    if (lat is None) != (long is None) or (lat is not None and not geo.valid(lat, long)):
        raise ValidationFailed("经纬度应成对填写且在有效范围内", code="workorder.bad_location", field="lat")
    if kind not in POINT_KINDS:
        raise ValidationFailed("点位类型不正确", code="workorder.point_kind", field="kind")
    name = wording.line(name, field="name", label="点位名称", max_length=64, required=True)
    address = wording.address(address)
    grid = wording.line(grid, field="grid", label="网格", max_length=32)
    code = code or f"P{await QrPoint.filter(community_id=community_id).count() + 1:04d}"
    try:
        return await QrPoint.create(community_id=community_id, code=code, name=name, kind=kind, address=address,
                                    grid=grid, lat=lat, long=long, token=new_token())
    except IntegrityError:
        raise Conflict("点位编号已经存在", code="workorder.point_exists", field="code") from None


async def list_points(*, community_ids: list[int] | None) -> list[QrPoint]:
    query = QrPoint.filter(active=True)
    if community_ids is not None:
        query = query.filter(community_id__in=community_ids)
    return await query.order_by("community_id", "code")


async def point_or_raise(*, point_id: int, community_ids: list[int] | None) -> QrPoint:
    query = QrPoint.filter(id=point_id)
    if community_ids is not None:
        query = query.filter(community_id__in=community_ids)
    point = await query.first()
    if point is None:
        raise NotFoundError("没有找到这个点位", code="workorder.point_not_found", field="point_id")
    return point


async def point_by_scan(text: str) -> QrPoint:
    """The active point a scanned sign names (the bare token or the app link around it)."""
    token = extract_token(text or "").strip().upper()
    point = await QrPoint.get_or_none(token=token, active=True) if token.startswith(TOKEN_PREFIX) else None
    if point is None:
        raise NotFoundError("无法识别这个点位二维码，请确认是社区张贴的“随手拍”二维码",
                            code="workorder.point_unknown")
    return point


def point_view(point: QrPoint, public_url: str | None = None) -> dict[str, Any]:
    view = {"id": point.id, "community_id": point.community_id, "code": point.code,  # type: ignore[attr-defined]
            "name": point.name, "kind": point.kind, "kind_label": POINT_KINDS.get(point.kind, point.kind),
            "address": point.address, "grid": point.grid, "lat": point.lat, "long": point.long}
    if public_url is not None:
        view["qr_content"] = content_for(point, public_url)
    return view


# ---- signs ----

def _centred(canvas: Canvas, text: str, *, y: float, size: float, width: float, min_size: float = 10) -> None:
    while size > min_size and pdfmetrics.stringWidth(text, FONT, size) > width - 16 * mm:
        size -= 1
    canvas.setFont(FONT, size)
    canvas.drawCentredString(width / 2, y, text)


def _draw_sign(canvas: Canvas, point: QrPoint, community: Community, content: str, printed_on: date) -> None:
    width, height = A5
    canvas.setFillGray(0)
    _centred(canvas, "随手拍", y=height - 26 * mm, size=44, width=width)
    _centred(canvas, "发现问题  扫码反映", y=height - 40 * mm, size=22, width=width)
    side = 92 * mm
    top = height - 48 * mm
    draw_qr(canvas, matrix(content), x=(width - side) / 2, y=top - side, side=side)
    y = top - side - 12 * mm
    _centred(canvas, point.name, y=y, size=26, width=width)
    y -= 10 * mm
    _centred(canvas, "用智链或手机相机扫码，位置自动填好", y=y, size=15, width=width)
    y -= 8 * mm
    _centred(canvas, "路灯不亮、垃圾堆放、楼道堆物、飞线充电……", y=y, size=13, width=width)
    if community.phone:
        y -= 10 * mm
        _centred(canvas, f"社区电话：{community.phone}", y=y, size=16, width=width)
    canvas.setFillGray(0.35)
    _centred(canvas, f"{community.name}  点位 {point.code}  {printed_on.isoformat()} 制", y=8 * mm, size=9,
             width=width)


def render_signs(items: Sequence[tuple[QrPoint, Community, str]], *, printed_on: date | None = None) -> bytes:
    """A PDF with one A5 sign per point (blocking: call from a thread)."""
    if not items:
        raise ValueError("no signs to render")
    ensure_font()
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A5, pageCompression=1)
    canvas.setTitle("随手拍点位二维码")
    canvas.setAuthor("Zhilian")
    for point, community, content in items:
        _draw_sign(canvas, point, community, content, printed_on or date.today())
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


async def signs(*, point_ids: Sequence[int], community_ids: list[int] | None, public_url: str) -> bytes:
    """The signs of the named points (each must be visible to the caller), in the order given."""
    wanted = list(dict.fromkeys(point_ids))
    if not wanted or len(wanted) > MAX_SIGNS:
        raise ValidationFailed(f"请选择 1 到 {MAX_SIGNS} 个点位", code="workorder.sign_count", field="point_ids")
    query = QrPoint.filter(id__in=wanted, active=True)
    if community_ids is not None:
        query = query.filter(community_id__in=community_ids)
    found = {p.id: p for p in await query}
    if len(found) != len(wanted):
        raise NotFoundError("没有找到这个点位", code="workorder.point_not_found", field="point_ids")
    communities = {c.id: c for c in await Community.filter(id__in=[p.community_id for p in found.values()])}  # type: ignore[attr-defined]
    items = [(found[i], communities[found[i].community_id], content_for(found[i], public_url))  # type: ignore[attr-defined]
             for i in wanted]
    return await asyncio.to_thread(render_signs, items)
