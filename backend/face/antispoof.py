"""Passive anti-spoof: MiniFASNetV2 (crop 2.7x) and MiniFASNetV1SE (crop 4.0x), softmax averaged.

Both models look at the context around the face (paper edges, screen bezels, moire), which
is why the crops are much larger than the face box; the crop is shifted, never padded.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from .align import antispoof_crop


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class AntiSpoof:
    def __init__(self, v2: ort.InferenceSession, v1se: ort.InferenceSession) -> None:
        self.models = ((v2, 2.7), (v1se, 4.0))

    def crops(self, img: np.ndarray, box: tuple[float, float, float, float]) -> tuple[np.ndarray, ...]:
        """The two 80x80 context crops (cheap; kept with an observation so scoring can wait)."""
        return tuple(antispoof_crop(img, box, scale, 80) for _sess, scale in self.models)

    def score_crops(self, crops: tuple[np.ndarray, ...]) -> float:
        """P(real) in [0, 1], the mean of both models' softmax index 1."""
        probs = []
        for (sess, _scale), crop in zip(self.models, crops, strict=True):
            blob = crop.astype(np.float32).transpose(2, 0, 1)[None]
            logits = sess.run(None, {sess.get_inputs()[0].name: blob})[0]
            probs.append(_softmax(logits)[0, 1])
        return float(np.mean(probs))

    def score(self, img: np.ndarray, box: tuple[float, float, float, float]) -> float:
        return self.score_crops(self.crops(img, box))
