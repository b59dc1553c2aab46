"""FaceMesh (468 points, mouth, head pose) and the iris model's eyelid contour (blinks).

FaceMesh runs on a rotated square ROI around the detector box (MediaPipe framing) and the
iris model on a small ROI per eye, so both cost a few ms regardless of frame size.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import onnxruntime as ort

from . import align

# mesh indices
MOUTH_TOP, MOUTH_BOTTOM, MOUTH_LEFT, MOUTH_RIGHT = 13, 14, 78, 308
EYE_A = (33, 133)  # subject's right eye (image left): outer, inner corner
EYE_B = (263, 362)  # subject's left eye (image right): outer, inner corner
@dataclass(frozen=True)
class MeshResult:
    points: np.ndarray  # (468, 3): x, y in image pixels, z relative (same scale as x)
    presence: float
    mouth_open: float  # inner-lip gap / mouth width
    eye_open: tuple[float, float]  # eyelid gap / eye width (subject's right, left)
    yaw: float  # degrees, + = subject turned to their own left (nose towards image right, unmirrored frame)
    pitch: float  # degrees, + = chin down (looking down)
    roll: float  # degrees, angle of the eye line in the image (+ = clockwise on screen)


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


class Landmarker:
    def __init__(self, mesh: ort.InferenceSession, iris: ort.InferenceSession) -> None:
        self.mesh = mesh
        self.iris = iris
        self.mesh_in = mesh.get_inputs()[0].name
        self.mesh_out = [o.name for o in mesh.get_outputs()]
        self.iris_in = iris.get_inputs()[0].name
        self.iris_out = [o.name for o in iris.get_outputs()]

    def run(self, img: np.ndarray, box: tuple[float, float, float, float], kps: np.ndarray, *,
            eyes: str = "both") -> MeshResult:
        """Mesh, mouth and pose; ``eyes`` picks the eyelid measurements ("both", "right",
        "left" (the subject's), "none"): the iris model costs about as much as the mesh per eye."""
        x, y, w, h = box
        center = np.array([x + w / 2, y + h / 2])
        eye_vec = kps[1] - kps[0]
        angle = float(np.arctan2(eye_vec[1], eye_vec[0]))
        m = align.rotated_square(center, 1.5 * max(w, h), angle, 192)
        roi = align.warp(img, m, 192)
        blob = cv2.cvtColor(roi, cv2.COLOR_BGR2RGB).astype(np.float32).transpose(2, 0, 1)[None] / 255.0
        raw, pres = self.mesh.run(self.mesh_out, {self.mesh_in: blob})
        pts192 = raw.reshape(468, 3)
        minv = align.invert(m)
        pts = np.empty((468, 3), np.float32)
        pts[:, :2] = align.apply(minv, pts192)
        pts[:, 2] = pts192[:, 2] * (1.5 * max(w, h) / 192)
        mouth = float(np.linalg.norm(pts[MOUTH_TOP, :2] - pts[MOUTH_BOTTOM, :2]) / (np.linalg.norm(pts[MOUTH_LEFT, :2] - pts[MOUTH_RIGHT, :2]) + 1e-6))
        nan = float("nan")
        eye_open = (
            self._eye(img, pts, EYE_A, flip=False) if eyes in ("both", "right") else nan,
            self._eye(img, pts, EYE_B, flip=True) if eyes in ("both", "left") else nan,
        )
        yaw, pitch = head_angles(pts192)
        roll = float(np.degrees(angle))
        return MeshResult(pts, _sigmoid(float(pres.reshape(-1)[0])), mouth, eye_open, yaw, pitch, roll)

    def _eye(self, img: np.ndarray, pts: np.ndarray, idx: tuple[int, int], flip: bool) -> float:
        """Eyelid gap / eye width from the iris model's 16-point eyelid contour."""
        a, b = pts[idx[0], :2], pts[idx[1], :2]
        center = (a + b) / 2
        v = b - a if not flip else a - b
        width = float(np.linalg.norm(v))
        if width < 2:
            return float("nan")
        angle = float(np.arctan2(v[1], v[0]))
        side = 2.3 * width
        m = align.rotated_square(center, side, angle, 64)
        roi = align.warp(img, m, 64)
        if flip:
            roi = roi[:, ::-1]
        blob = cv2.cvtColor(np.ascontiguousarray(roi), cv2.COLOR_BGR2RGB).astype(np.float32).transpose(2, 0, 1)[None] / 255.0
        contour, _iris = self.iris.run(self.iris_out, {self.iris_in: blob})
        lid = contour.reshape(71, 3)[:16, :2]
        # points 0..8 run along the lower lid corner to corner, 9..15 along the upper lid
        lower, upper = lid[1:8], lid[9:16][::-1]
        gap = float(np.mean(np.abs(lower[:, 1] - upper[:, 1])))
        span = float(np.ptp(lid[:, 0])) + 1e-6
        return gap / span


def head_angles(pts: np.ndarray) -> tuple[float, float]:
    """Yaw and pitch in degrees from the mesh's own depth, in the roll-free ROI frame.

    Yaw: angle of the outer-eye-corner line in the x-z plane; + = the subject turned to
    their own left (in an unmirrored frame the nose moves towards image right).
    Pitch: angle of the forehead-chin line in the y-z plane; + = chin down (looking down).
    solvePnP on a generic head was tried first and flipped sign when the mouth opened.
    """
    r, left = pts[33], pts[263]
    yaw = np.degrees(np.arctan2(left[2] - r[2], left[0] - r[0]))
    top, chin = pts[10], pts[152]
    pitch = np.degrees(np.arctan2(chin[2] - top[2], chin[1] - top[1]))
    return float(yaw), float(pitch)
