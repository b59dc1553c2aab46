"""Typed face-engine errors.

Each error carries a stable machine ``code`` (the API and the miniapp switch on it) and a
short Chinese ``hint`` that can be shown or spoken to the resident as is.  The engine knows
nothing of HTTP: the certification service maps these to responses.
"""

from __future__ import annotations


class FaceError(Exception):
    """Base class: ``code`` is stable, ``hint`` is for the user, ``str(e)`` is for logs."""

    code = "face.error"
    hint = "请稍后再试"

    def __init__(self, message: str | None = None, *, hint: str | None = None) -> None:
        super().__init__(message or self.code)
        if hint is not None:
            self.hint = hint


# --- input -----------------------------------------------------------------------------------


class BadImageError(FaceError):
    """Looks like an image (known magic bytes) but cannot be decoded: truncated or corrupt."""

    code = "face.bad_image"
    hint = "照片读取失败，请重新拍摄"


class NotAnImageError(FaceError):
    """Bytes are not a JPEG/PNG at all, or the array is not an image-shaped array."""

    code = "face.not_image"
    hint = "请上传照片（JPG 或 PNG）"


class ImageTooLargeError(FaceError):
    """Byte size or pixel count above the configured limits (decompression-bomb guard)."""

    code = "face.image_too_large"
    hint = "照片太大，请重新拍摄"


class NoFaceError(FaceError):
    code = "face.no_face"
    hint = "没有检测到人脸，请正对屏幕"


class MultipleFacesError(FaceError):
    code = "face.multiple_faces"
    hint = "画面中有多张人脸，请只保留一张人脸"


# --- models and templates --------------------------------------------------------------------


class ModelError(FaceError):
    """Model bundle problem (missing file, not in MANIFEST): an operator error, not a user one."""

    code = "face.model_error"
    hint = "系统维护中，请稍后再试"


class ModelIntegrityError(ModelError):
    """A model file's sha256 differs from MANIFEST.tsv: refuse to load it."""

    code = "face.model_integrity"

    def __init__(self, file: str, expected: str, actual: str) -> None:
        super().__init__(f"model file {file!r} sha256 mismatch: expected {expected}, got {actual}")
        self.file = file
        self.expected = expected
        self.actual = actual


class TemplateError(FaceError):
    """Template bytes are corrupt, of an unknown version, or from another model."""

    code = "face.bad_template"
    hint = "需要重新录入人脸"
