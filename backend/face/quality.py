"""Frame quality (size, sharpness, brightness, pose) and the Chinese guidance it implies.

Quality problems are guidance for a live stream ("move closer"), not exceptions: the next
frame may be fine.  Measured on the aligned 112x112 face so the numbers do not depend on
the camera resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .config import FaceConfig


@dataclass(frozen=True)
class Guidance:
    code: str
    hint: str


TOO_SMALL = Guidance("face.too_small", "请靠近一点")
TOO_CLOSE = Guidance("face.too_close", "请离远一点")
TOO_DARK = Guidance("face.too_dark", "光线太暗，请到亮一点的地方")
TOO_BRIGHT = Guidance("face.too_bright", "光线太亮，请避开强光")
BLURRY = Guidance("face.blurry", "请保持手机稳定")
NOT_FRONTAL = Guidance("face.not_frontal", "请正对屏幕")


@dataclass(frozen=True)
class Quality:
    face_px: float  # detector box width in frame pixels
    face_ratio: float  # box width / frame width
    sharpness: float  # variance of the Laplacian on the aligned grey face
    brightness: float  # mean grey level of the aligned face
    yaw: float
    pitch: float
    score: float  # 0..1, used to pick the best frames
    guidance: tuple[Guidance, ...]

    @property
    def ok(self) -> bool:
        return not self.guidance


def assess(aligned: np.ndarray, face_px: float, frame_w: int, yaw: float, pitch: float, cfg: FaceConfig) -> Quality:
    grey = cv2.cvtColor(aligned, cv2.COLOR_BGR2GRAY)
    inner = grey[24:100, 20:92]  # the face itself, not the warp's black border
    sharp = float(cv2.Laplacian(inner, cv2.CV_32F).var())
    bright = float(inner.mean())
    ratio = face_px / max(frame_w, 1)
    g: list[Guidance] = []
    if face_px < cfg.min_face_px:
        g.append(TOO_SMALL)
    if ratio > cfg.max_face_ratio:
        g.append(TOO_CLOSE)
    if bright < cfg.min_brightness:
        g.append(TOO_DARK)
    elif bright > cfg.max_brightness:
        g.append(TOO_BRIGHT)
    if sharp < cfg.min_sharpness:
        g.append(BLURRY)
    if (np.isfinite(yaw) and abs(yaw) > cfg.max_quality_yaw) or (np.isfinite(pitch) and abs(pitch) > cfg.max_quality_pitch):
        g.append(NOT_FRONTAL)
    pose_pen = 0.0
    if np.isfinite(yaw):
        pose_pen = min(1.0, (abs(yaw) + 0.5 * abs(pitch)) / 45.0)
    score = (
        0.35 * min(1.0, face_px / (2 * cfg.min_face_px))
        + 0.25 * min(1.0, sharp / (4 * cfg.min_sharpness))
        + 0.15 * (1.0 - min(1.0, abs(bright - 128) / 128))
        + 0.25 * (1.0 - pose_pen)
    )
    return Quality(face_px, ratio, sharp, bright, yaw, pitch, float(score), tuple(g))
