"""Crops and warps for each model: one place that knows each model's expected framing."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
from insightface.utils import face_align


def arcface_crop(img: np.ndarray, kps: np.ndarray, size: int = 112) -> np.ndarray:
    """ArcFace-style 112x112 alignment (MobileFaceNet and insightface recognisers)."""
    with warnings.catch_warnings():
        # scikit-image 0.26 deprecates SimilarityTransform.estimate, which face_align still calls
        warnings.simplefilter("ignore", FutureWarning)
        return face_align.norm_crop(img, kps, size)


def dlib_chip(img: np.ndarray, kps: np.ndarray, template: np.ndarray, size: int = 150) -> np.ndarray:
    """dlib 150x150 chip: similarity transform of the 5 points onto the measured dlib template."""
    m, _ = cv2.estimateAffinePartial2D(kps.astype(np.float32), template.astype(np.float32), method=cv2.LMEDS)
    if m is None:
        m = cv2.getAffineTransform(kps[:3].astype(np.float32), template[:3].astype(np.float32))
    return cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR)


def antispoof_crop(img: np.ndarray, box: tuple[float, float, float, float], scale: float, size: int = 80) -> np.ndarray:
    """Silent-Face crop: box scaled about its centre, shrunk to fit and shifted inside the image."""
    ih, iw = img.shape[:2]
    x, y, w, h = box
    scale = min((ih - 1) / max(h, 1), (iw - 1) / max(w, 1), scale)
    nw, nh = w * scale, h * scale
    cx, cy = x + w / 2, y + h / 2
    x1, y1 = cx - nw / 2, cy - nh / 2
    x2, y2 = cx + nw / 2, cy + nh / 2
    if x1 < 0:
        x2 -= x1
        x1 = 0
    if y1 < 0:
        y2 -= y1
        y1 = 0
    if x2 > iw - 1:
        x1 -= x2 - iw + 1
        x2 = iw - 1
    if y2 > ih - 1:
        y1 -= y2 - ih + 1
        y2 = ih - 1
    crop = img[int(y1) : int(y2) + 1, int(x1) : int(x2) + 1]
    return cv2.resize(crop, (size, size))


def rotated_square(center: np.ndarray, side: float, angle: float, out: int) -> np.ndarray:
    """2x3 affine mapping a square ROI (centre, side, rotation in radians) to an out x out image."""
    c, s = np.cos(angle), np.sin(angle)
    k = out / side
    # rotate by -angle about the centre so the ROI becomes axis-aligned, then scale and shift
    m = np.array([[c * k, s * k, 0.0], [-s * k, c * k, 0.0]], np.float64)
    m[:, 2] = np.array([out / 2, out / 2]) - m[:, :2] @ center
    return m


def warp(img: np.ndarray, m: np.ndarray, out: int) -> np.ndarray:
    return cv2.warpAffine(img, m, (out, out), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def invert(m: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(m)


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts[:, :2] @ m[:, :2].T + m[:, 2]
