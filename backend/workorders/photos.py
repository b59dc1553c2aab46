"""Photos of a case: checked by content, re-encoded without EXIF (GPS included), sealed at rest.

A phone photo carries the place it was taken, the phone's make and serial, sometimes the owner's
name. None of it may be stored: the picture is decoded, turned upright by its orientation tag,
and encoded again as a fresh JPEG from the pixels alone, so no metadata block of the original
survives (nor anything hidden after the image data). The result is encrypted with the field
cipher under its own purpose, as home-visit photos are. Blocking CPU work: call from a thread.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from backend.errors import ValidationFailed
from backend.security.fieldcrypt import FieldCipher

PURPOSE = "workorder.photo"
MAX_BYTES = 8 * 1024 * 1024  # the app compresses first; this only stops abuse
MAX_PIXELS = 40_000_000  # refuse decompression bombs before decoding them
MAX_EDGE = 2560  # longer edge kept: plenty to see a broken lamp, small to store
MIN_EDGE = 32
ACCEPTED_FORMATS = {"JPEG", "PNG", "WEBP"}
JPEG_QUALITY = 85


@dataclass(frozen=True)
class CleanPhoto:
    data: bytes
    width: int
    height: int


def _refuse(message: str, code: str) -> ValidationFailed:
    return ValidationFailed(message, code=code, field="photo")


def clean(data: bytes) -> CleanPhoto:
    """A JPEG of the same picture with no metadata at all; ValidationFailed for anything else."""
    if not data:
        raise _refuse("请拍一张照片", "workorder.photo_missing")
    if len(data) > MAX_BYTES:
        raise _refuse(f"照片太大（最大 {MAX_BYTES // 1024 // 1024}MB）", "workorder.photo_too_large")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in ACCEPTED_FORMATS:
                raise _refuse("照片格式应为 JPG、PNG 或 WebP", "workorder.photo_type")
            if image.width * image.height > MAX_PIXELS:
                raise _refuse("照片像素太多", "workorder.photo_too_large")
            image.load()
    except ValidationFailed:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError,
            Image.DecompressionBombWarning):
        raise _refuse("无法识别这张照片，请重新拍摄", "workorder.photo_type") from None
    if min(image.size) < MIN_EDGE:
        raise _refuse("照片太小，看不清", "workorder.photo_too_small")
    upright = ImageOps.exif_transpose(image)  # keep what the eye saw, then drop the tag with the rest
    if upright.mode not in ("RGB", "L"):
        background = Image.new("RGB", upright.size, "white")
        rgba = upright.convert("RGBA")
        background.paste(rgba, mask=rgba.getchannel("A"))
        upright = background
    upright.thumbnail((MAX_EDGE, MAX_EDGE))
    pixels = Image.frombytes(upright.mode, upright.size, upright.tobytes())  # a new image: no info carried over
    out = io.BytesIO()
    pixels.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return CleanPhoto(out.getvalue(), pixels.width, pixels.height)


def seal(photo: CleanPhoto, cipher: FieldCipher) -> str:
    return cipher.encrypt_bytes(photo.data, purpose=PURPOSE)


def unseal(token: str, cipher: FieldCipher) -> bytes:
    return cipher.decrypt_bytes(token, purpose=PURPOSE)
