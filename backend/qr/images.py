"""Drawing QR codes (PNG, SVG, module matrix) and caching them per token version.

A PNG costs ~20–30 ms and an SVG a few ms of pure CPU, so images are rendered in a worker
thread and kept in a small per-process LRU keyed by the exact content: rotating a code
changes the content, so a stale image can never be served for a new version.
"""

from __future__ import annotations

import asyncio
import functools
import io
import threading
from collections import OrderedDict
from typing import Literal

import qrcode
import qrcode.image.svg
from qrcode.constants import ERROR_CORRECT_M

ImageKind = Literal["png", "svg"]
CONTENT_TYPES: dict[str, str] = {"png": "image/png", "svg": "image/svg+xml"}

# Level M (15 % recovery) survives a worn, folded card; the link fits version 4–5 (33–37 modules).
ERROR_CORRECTION = ERROR_CORRECT_M
BORDER = 4  # the quiet zone the standard asks for
PNG_BOX = 10  # pixels per module: ~450 px, sharp on screens and easy for cameras


def _build(content: str, *, box_size: int = PNG_BOX) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=ERROR_CORRECTION, box_size=box_size, border=BORDER)
    code.add_data(content)
    code.make(fit=True)
    return code


@functools.lru_cache(maxsize=4096)
def matrix(content: str) -> tuple[tuple[bool, ...], ...]:
    """Dark/light modules including the quiet zone (for drawing the code in a PDF); memoised."""
    return tuple(tuple(row) for row in _build(content).get_matrix())


def render(content: str, kind: ImageKind) -> bytes:
    """Draw `content` as a PNG or an SVG (blocking CPU work: call from a thread)."""
    code = _build(content)
    if kind == "svg":
        return code.make_image(image_factory=qrcode.image.svg.SvgPathImage).to_string(encoding="utf-8")
    buffer = io.BytesIO()
    code.make_image().save(buffer)
    return buffer.getvalue()


class QrImageCache:
    """Bounded LRU of rendered images, shared by the requests of one worker process."""

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._items: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.renders = 0  # how many times we actually drew (tests and metrics)

    def _get(self, key: tuple[str, str]) -> bytes | None:
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
            return data

    def _put(self, key: tuple[str, str], data: bytes) -> None:
        with self._lock:
            self._items[key] = data
            self._items.move_to_end(key)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)
            self.renders += 1

    async def get(self, content: str, kind: ImageKind) -> bytes:
        key = (kind, content)
        cached = self._get(key)
        if cached is not None:
            return cached
        data = await asyncio.to_thread(render, content, kind)
        self._put(key, data)
        return data
