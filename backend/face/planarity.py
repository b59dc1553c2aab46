"""Is the face that turns a flat picture?  A second presentation-attack signal, independent of MiniFASNet.

A printed photo or a phone screen is a plane; a plane seen from two angles maps onto itself by a
homography, a face does not (the nose and cheeks stand out of any plane: parallax).  We follow
texture points of the face from frame to frame with pyramidal Lucas-Kanade optical flow (points
on the picture itself: the landmark networks infer a 3D face even from a flat print, so their
points cannot be used for this test), and whenever the head has turned from the most frontal
frame (FaceMesh yaw) or the points have deformed beyond an affine map, we fit the best homography
between the frontal frame's points and the current ones.  Its median residual, divided by the
eye distance, is ~0.003-0.006 for a tilted print or screen and ~0.013-0.08 for a real head turn
(development clips; see face_eval).  Cheap: ~1 ms a frame on a 160-pixel grey patch.

Also kept, as a cross-check: the nose's sideways shift relative to the eyes per degree of yaw
(``parallax``): a turning head moves its nose across its face, a turned card does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

PATCH = 160  # side of the grey face patch the points are tracked on
_LK = {"winSize": (15, 15), "maxLevel": 2, "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)}


def face_patch(img: np.ndarray, box: tuple[float, float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """A PATCH x PATCH grey crop around the face box, and the 2x3 map image -> patch."""
    x, y, w, h = box
    side = 1.25 * max(w, h, 1.0)
    s = PATCH / side
    m = np.array([[s, 0, PATCH / 2 - s * (x + w / 2)], [0, s, PATCH / 2 - s * (y + h / 2)]], np.float32)
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img
    return cv2.warpAffine(grey, m, (PATCH, PATCH), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE), m


def _to(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return (pts @ m[:, :2].T + m[:, 2]).astype(np.float32)


@dataclass
class PlanarityProbe:
    """Feed each observation in order (``update``); read ``residual`` (None until measured)."""

    min_dyaw: float = 8.0  # degrees from the frontal reference before a frame is measured
    min_deform: float = 0.02  # or: affine misfit (x eye distance) that counts as real motion
    min_points: int = 10
    samples: list[float] = field(default_factory=list)  # homography residual per measured frame
    parallax: list[float] = field(default_factory=list)  # nose shift per unit sin(yaw) per measured frame
    _ref_yaw: float | None = None
    _ref_pts: np.ndarray | None = None  # image coordinates in the reference frame
    _ref_nose: float | None = None
    _cur: np.ndarray | None = None  # the same points, image coordinates in the last frame
    _prev: tuple[np.ndarray, np.ndarray] | None = None  # (patch, map) of the last frame

    @property
    def residual(self) -> float | None:
        """Median homography residual over the measured frames (needs 3 of them)."""
        return float(np.median(self.samples)) if len(self.samples) >= 3 else None

    @property
    def nose_parallax(self) -> float | None:
        return float(np.median(self.parallax)) if len(self.parallax) >= 3 else None

    def reset_track(self) -> None:
        """A frame without a face (or a cut): the points cannot be followed across it."""
        self._prev = None
        self._ref_pts = self._cur = None
        self._ref_yaw = None

    def update(self, patch: np.ndarray | None, m: np.ndarray | None, yaw: float | None, kps: np.ndarray,
               landmarks: np.ndarray | None) -> None:
        if patch is None or m is None or yaw is None or not np.isfinite(yaw):
            self.reset_track()
            return
        iod = float(np.linalg.norm(kps[0] - kps[1])) or 1.0
        if self._prev is not None and self._ref_pts is not None:
            self._follow(patch, m)
            if self._ref_pts is not None and len(self._ref_pts) >= self.min_points:
                self._measure(yaw, iod, landmarks)
        if self._ref_yaw is None or abs(yaw) < abs(self._ref_yaw) - 2 or (
                self._ref_pts is not None and len(self._ref_pts) < self.min_points):
            self._new_reference(patch, m, yaw, landmarks)
        self._prev = (patch, m)

    def _new_reference(self, patch: np.ndarray, m: np.ndarray, yaw: float, landmarks: np.ndarray | None) -> None:
        mask = np.zeros_like(patch)
        cv2.ellipse(mask, (PATCH // 2, PATCH // 2), (int(PATCH * 0.3), int(PATCH * 0.38)), 0, 0, 360, 255, -1)
        corners = cv2.goodFeaturesToTrack(patch, 60, 0.01, 5, mask=mask)
        if corners is None or len(corners) < self.min_points:
            self._ref_pts = self._cur = None
            self._ref_yaw = None
            return
        pts = _to(cv2.invertAffineTransform(m), corners.reshape(-1, 2))
        self._ref_pts, self._cur, self._ref_yaw = pts, pts.copy(), yaw
        self._ref_nose = _nose_offset(landmarks)

    def _follow(self, patch: np.ndarray, m: np.ndarray) -> None:
        prev_patch, prev_m = self._prev
        start = _to(prev_m, self._cur)
        guess = _to(m, self._cur)  # the box moved with the face: start from where the points should be
        nxt, st, _ = cv2.calcOpticalFlowPyrLK(prev_patch, patch, start, guess.copy(),
                                              flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **_LK)
        back, st2, _ = cv2.calcOpticalFlowPyrLK(patch, prev_patch, nxt, start.copy(), **_LK)
        good = (st[:, 0] == 1) & (st2[:, 0] == 1) & (np.linalg.norm(back - start, axis=1) < 1.0)
        self._ref_pts = self._ref_pts[good]
        self._cur = _to(cv2.invertAffineTransform(m), nxt[good])

    def _measure(self, yaw: float, iod: float, landmarks: np.ndarray | None) -> None:
        src, dst = self._ref_pts, self._cur
        dyaw = yaw - (self._ref_yaw or 0.0)
        if abs(dyaw) < self.min_dyaw:  # not turned: measure only if the points deformed beyond an affine map
            aff, _ = cv2.estimateAffine2D(src, dst, method=cv2.LMEDS)
            if aff is None or float(np.median(np.linalg.norm(_to(aff, src) - dst, axis=1))) / iod < self.min_deform:
                return
        h, _ = cv2.findHomography(src, dst, cv2.LMEDS)
        if h is None:
            return
        proj = cv2.perspectiveTransform(src[None].astype(np.float64), h)[0]
        self.samples.append(float(np.median(np.linalg.norm(proj - dst, axis=1))) / iod)
        nose = _nose_offset(landmarks)
        if nose is not None and self._ref_nose is not None and abs(dyaw) >= self.min_dyaw:
            self.parallax.append(abs(nose - self._ref_nose) / abs(np.sin(np.radians(dyaw))))
        del self.samples[:-64], self.parallax[:-64]


def _nose_offset(landmarks: np.ndarray | None) -> float | None:
    """Nose tip's position along the eye line, from the eyes' midpoint, in eye distances."""
    if landmarks is None:
        return None
    a, b, nose = landmarks[33, :2], landmarks[263, :2], landmarks[1, :2]
    v = b - a
    d2 = float(v @ v)
    return None if d2 < 1 else float((nose - (a + b) / 2) @ v / d2)
