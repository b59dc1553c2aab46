"""Typed errors with stable codes and Chinese hints for everything a client can send wrong."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from backend.face import (
    BadImageError,
    FaceConfig,
    FaceError,
    ImageTooLargeError,
    MultipleFacesError,
    NoFaceError,
    NotAnImageError,
)


def _has_chinese(s: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in s)


def _png_header_claiming(w: int, h: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


@pytest.mark.parametrize(
    ("payload", "exc", "code"),
    [
        (b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + b"garbage" * 50, BadImageError, "face.bad_image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, BadImageError, "face.bad_image"),
        (b"hello, this is not a picture", NotAnImageError, "face.not_image"),
        (b"%PDF-1.7\n" + b"0" * 100, NotAnImageError, "face.not_image"),
        (b"", NotAnImageError, "face.not_image"),
        (_png_header_claiming(60000, 60000) + b"\x00" * 64, ImageTooLargeError, "face.image_too_large"),
    ],
)
def test_bad_bytes_are_typed(engine, payload, exc, code):
    with pytest.raises(exc) as ei:
        engine.analyze(payload)
    assert ei.value.code == code
    assert isinstance(ei.value, FaceError)
    assert _has_chinese(ei.value.hint)


def test_truncated_real_jpeg_is_bad_image(engine, read_bytes):
    data = read_bytes("faces/df01/img1.jpg")
    with pytest.raises(BadImageError):
        engine.analyze(data[:600])


def test_too_many_bytes(engine, read_bytes):
    from backend.face import FaceEngine

    small = FaceEngine.__new__(FaceEngine)  # same sessions, stricter limit
    small.__dict__.update(engine.__dict__)
    small.config = FaceConfig(max_image_bytes=10_000)
    with pytest.raises(ImageTooLargeError) as ei:
        small.analyze(read_bytes("faces/df01/img1.jpg"))
    assert ei.value.code == "face.image_too_large"


def test_huge_and_odd_arrays(engine):
    with pytest.raises(ImageTooLargeError):
        engine.analyze(np.zeros((9000, 9000), np.uint8))
    with pytest.raises(NotAnImageError):
        engine.analyze(np.zeros((5,), np.uint8))
    with pytest.raises(NotAnImageError):
        engine.analyze(np.zeros((10, 10, 7), np.uint8))
    with pytest.raises(NotAnImageError):
        engine.analyze("faces/df01/img1.jpg")  # a path is not a frame


def test_no_face(engine, read_img):
    grey = np.full((480, 640, 3), 128, np.uint8)
    with pytest.raises(NoFaceError) as ei:
        engine.analyze(grey)
    assert ei.value.code == "face.no_face" and "请正对屏幕" in ei.value.hint
    # real picture content without a face: the astronaut photo's lower-right corner
    scene = read_img("faces/single_astronaut/astronaut.png")[300:, 300:]
    with pytest.raises(NoFaceError):
        engine.analyze(cv2.imencode(".png", scene)[1].tobytes())


def test_several_faces(engine, read_img):
    a = cv2.resize(read_img("faces/nuaa_0001/nuaa_0001_live_0001_00_00_01_253.jpg"), (320, 240))
    b = cv2.resize(read_img("faces/trueface_A/trueface_A_near_real.jpg"), (320, 240))
    both = np.hstack([a, b])
    assert engine.analyze(a).box  # each alone is fine
    with pytest.raises(MultipleFacesError) as ei:
        engine.analyze(cv2.imencode(".jpg", both)[1].tobytes())
    assert ei.value.code == "face.multiple_faces" and "只保留一张人脸" in ei.value.hint


def test_quality_guidance_not_exceptions(engine, read_img):
    img = read_img("faces/trueface_A/trueface_A_near_real.jpg")
    ok = engine.analyze(img)
    assert not any(g.code == "face.too_dark" for g in ok.guidance)
    dark = engine.analyze((img * 0.15).astype(np.uint8))
    assert "face.too_dark" in [g.code for g in dark.guidance]
    assert any("光线太暗" in g.hint for g in dark.guidance)
    blurry = engine.analyze(cv2.GaussianBlur(img, (0, 0), 6))
    assert "face.blurry" in [g.code for g in blurry.guidance]
    assert any("请保持手机稳定" in g.hint for g in blurry.guidance)
    scale = 50 / ok.quality.face_px  # the same face, 50 px wide, in a 640x480 frame
    small = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.full((480, 640, 3), 90, np.uint8)
    canvas[100 : 100 + small.shape[0], 200 : 200 + small.shape[1]] = small
    far = engine.analyze(canvas)
    assert "face.too_small" in [g.code for g in far.guidance]
    assert any("请靠近一点" in g.hint for g in far.guidance)


def test_observation_fields(engine, read_bytes):
    obs = engine.analyze(read_bytes("faces/trueface_A/trueface_A_near_real.jpg"), embed=True)
    assert obs.landmarks.shape == (468, 3)
    assert obs.kps.shape == (5, 2)
    assert 0.0 <= obs.antispoof <= 1.0
    assert obs.embedding.shape == (192,) and abs(float(np.linalg.norm(obs.embedding)) - 1) < 1e-4
    assert all(np.isfinite([obs.yaw, obs.pitch, obs.roll, obs.mouth_open, *obs.eye_open]))
    assert obs.quality.face_px > 80
