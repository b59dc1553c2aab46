"""Face detection with 5 points: YuNet (default) or an operator-supplied SCRFD.

YuNet's raw outputs are decoded here (as MANIFEST.tsv describes) rather than through
cv2.FaceDetectorYN so that the same onnxruntime session, thread count and sha256 check apply.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import onnxruntime as ort


@dataclass(frozen=True)
class Detection:
    """Box (x, y, w, h) and 5 points (right eye, left eye, nose, right/left mouth corner:
    subject's right = image left) in the original image's pixels."""

    box: tuple[float, float, float, float]
    score: float
    kps: np.ndarray  # (5, 2) float32

    @property
    def width(self) -> float:
        return self.box[2]


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Greedy NMS on (x, y, w, h) boxes."""
    order = np.argsort(-scores)
    x1, y1 = boxes[:, 0], boxes[:, 1]
    x2, y2 = x1 + boxes[:, 2], y1 + boxes[:, 3]
    areas = boxes[:, 2] * boxes[:, 3]
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(x1[i], x1[rest])
        yy1 = np.maximum(y1[i], y1[rest])
        xx2 = np.minimum(x2[i], x2[rest])
        yy2 = np.minimum(y2[i], y2[rest])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        ov = inter / (areas[i] + areas[rest] - inter + 1e-9)
        order = rest[ov <= iou]
    return keep


class YuNetDetector:
    name = "yunet"
    strides = (8, 16, 32)

    def __init__(self, session: ort.InferenceSession, score_threshold: float, nms_iou: float) -> None:
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.output_names = [o.name for o in session.get_outputs()]
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self._grid_cache: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}

    def _grid(self, h: int, w: int, s: int) -> tuple[np.ndarray, np.ndarray]:
        key = (h, w, s)
        if key not in self._grid_cache:
            rows, cols = np.mgrid[0 : h // s, 0 : w // s]
            self._grid_cache[key] = (cols.reshape(-1).astype(np.float32), rows.reshape(-1).astype(np.float32))
        return self._grid_cache[key]

    def detect(self, img: np.ndarray, max_side: int) -> list[Detection]:
        """All faces above the score threshold, largest first."""
        h0, w0 = img.shape[:2]
        scale = min(1.0, max_side / max(h0, w0)) if max(h0, w0) > max_side else 1.0
        # small photos are enlarged a little so that tight crops still meet YuNet's anchors
        if max(h0, w0) < 320:
            scale = 320 / max(h0, w0)
        nw, nh = max(1, round(w0 * scale)), max(1, round(h0 * scale))
        resized = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR) if scale != 1.0 else img
        ph, pw = (nh + 31) // 32 * 32, (nw + 31) // 32 * 32
        blob = np.zeros((1, 3, ph, pw), np.float32)
        blob[0, :, :nh, :nw] = resized.transpose(2, 0, 1)
        outs = dict(zip(self.output_names, self.session.run(self.output_names, {self.input_name: blob}), strict=True))
        boxes, scores, kpss = [], [], []
        for s in self.strides:
            cls = outs[f"cls_{s}"][0, :, 0]
            obj = outs[f"obj_{s}"][0, :, 0]
            score = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
            idx = np.nonzero(score >= self.score_threshold)[0]
            if idx.size == 0:
                continue
            cols, rows = self._grid(ph, pw, s)
            c, r = cols[idx], rows[idx]
            bb = outs[f"bbox_{s}"][0, idx]
            kp = outs[f"kps_{s}"][0, idx]
            cx, cy = (c + bb[:, 0]) * s, (r + bb[:, 1]) * s
            bw, bh = np.exp(bb[:, 2]) * s, np.exp(bb[:, 3]) * s
            boxes.append(np.stack([cx - bw / 2, cy - bh / 2, bw, bh], 1))
            k = np.empty((idx.size, 5, 2), np.float32)
            k[:, :, 0] = (c[:, None] + kp[:, 0::2]) * s
            k[:, :, 1] = (r[:, None] + kp[:, 1::2]) * s
            kpss.append(k)
            scores.append(score[idx])
        if not boxes:
            return []
        b = np.concatenate(boxes) / scale
        sc = np.concatenate(scores)
        kp = np.concatenate(kpss) / scale
        keep = nms(b, sc, self.nms_iou)
        dets = [Detection(tuple(float(v) for v in b[i]), float(sc[i]), kp[i].astype(np.float32)) for i in keep]
        dets.sort(key=lambda d: -d.box[2] * d.box[3])
        return dets


class ScrfdDetector:
    """SCRFD from a licensed insightface pack, through insightface's own decoder."""

    name = "scrfd"

    def __init__(self, model_file: str, session: ort.InferenceSession, score_threshold: float, nms_iou: float) -> None:
        from insightface.model_zoo.scrfd import SCRFD

        self.model = SCRFD(model_file=model_file, session=session)
        self.model.det_thresh = score_threshold
        self.model.nms_thresh = max(nms_iou, 0.4)

    def detect(self, img: np.ndarray, max_side: int) -> list[Detection]:
        size = (max_side // 32 * 32, max_side // 32 * 32)
        det, kpss = self.model.detect(img, input_size=size)
        out = []
        for i in range(det.shape[0]):
            x1, y1, x2, y2, sc = (float(v) for v in det[i])
            out.append(Detection((x1, y1, x2 - x1, y2 - y1), sc, kpss[i].astype(np.float32)))
        out.sort(key=lambda d: -d.box[2] * d.box[3])
        return out
