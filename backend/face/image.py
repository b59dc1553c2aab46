"""Frame input: JPEG/PNG (and WebP) bytes or numpy arrays -> BGR uint8, with byte and pixel limits.

Dimensions are read from the file header before decoding, so a small file that would
decompress into a huge bitmap is refused without allocating it.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

from .config import FaceConfig
from .errors import BadImageError, ImageTooLargeError, NotAnImageError

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    w, h = struct.unpack(">II", data[16:24])
    return w, h


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Width/height from the first SOF marker; None if the header is unreadable."""
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        seg_len = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if i + 9 > n:
                return None
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        i += 2 + seg_len
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 30 or data[8:12] != b"WEBP":
        return None
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L" and data[20] == 0x2F:
        b = data[21:25]
        w = 1 + (((b[1] & 0x3F) << 8) | b[0])
        h = 1 + (((b[3] & 0x0F) << 10) | (b[2] << 2) | ((b[1] & 0xC0) >> 6))
        return w, h
    if chunk == b"VP8X":
        w = 1 + int.from_bytes(data[24:27], "little")
        h = 1 + int.from_bytes(data[27:30], "little")
        return w, h
    return None


def _check_pixels(w: int, h: int, cfg: FaceConfig) -> None:
    if w * h > cfg.max_image_pixels or max(w, h) > cfg.max_image_side:
        raise ImageTooLargeError(f"image {w}x{h} above limits ({cfg.max_image_pixels} px, side {cfg.max_image_side})")


def decode_image(data: bytes | bytearray | memoryview, cfg: FaceConfig) -> np.ndarray:
    data = bytes(data)
    if len(data) > cfg.max_image_bytes:
        raise ImageTooLargeError(f"image of {len(data)} bytes above limit {cfg.max_image_bytes}")
    if data.startswith(JPEG_MAGIC):
        size = _jpeg_size(data)
    elif data.startswith(PNG_MAGIC):
        size = _png_size(data)
    elif data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        size = _webp_size(data)  # some phone and WeChat pictures are WebP whatever their name says
    else:
        raise NotAnImageError("bytes are neither JPEG, PNG nor WebP")
    if size is None:
        raise BadImageError("image header unreadable")
    if size[0] == 0 or size[1] == 0:
        raise BadImageError("image has zero size")
    _check_pixels(*size, cfg)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise BadImageError("image could not be decoded")
    return img


def as_bgr(frame: bytes | bytearray | memoryview | np.ndarray, cfg: FaceConfig) -> np.ndarray:
    """Any accepted frame -> contiguous BGR uint8 (arrays are taken as OpenCV BGR/BGRA/grey)."""
    if isinstance(frame, bytes | bytearray | memoryview):
        return decode_image(frame, cfg)
    if not isinstance(frame, np.ndarray):
        raise NotAnImageError(f"unsupported frame type {type(frame).__name__}")
    if frame.ndim not in (2, 3) or frame.size == 0 or (frame.ndim == 3 and frame.shape[2] not in (1, 3, 4)):
        raise NotAnImageError(f"array of shape {frame.shape} is not an image")
    _check_pixels(frame.shape[1], frame.shape[0], cfg)
    if frame.dtype != np.uint8:
        if np.issubdtype(frame.dtype, np.floating) and frame.size and float(np.nanmax(frame)) <= 1.0:
            frame = frame * 255.0
        frame = np.clip(np.nan_to_num(frame), 0, 255).astype(np.uint8)
    if frame.ndim == 2 or frame.shape[2] == 1:
        frame = cv2.cvtColor(frame.reshape(frame.shape[0], frame.shape[1]), cv2.COLOR_GRAY2BGR)
    elif frame.shape[2] == 4:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(frame)
