"""Face embeddings: MobileFaceNet (recommended), dlib ResNet (second opinion), or a licensed ArcFace.

MobileFaceNet has a fixed batch of 2, so frames are embedded in pairs (an odd one is padded
with a copy); every embedding is L2-normalised, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import cv2
import numpy as np
import onnxruntime as ort

from .align import arcface_crop, dlib_chip


def l2n(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-9)


class MobileFaceNet:
    model_id = "mobilefacenet_192"

    def __init__(self, session: ort.InferenceSession, version: str) -> None:
        self.session = session
        self.version = version
        self.input_name = session.get_inputs()[0].name
        self.batch = int(session.get_inputs()[0].shape[0]) if isinstance(session.get_inputs()[0].shape[0], int) else 2
        self.dim = 192

    def crop(self, img: np.ndarray, kps: np.ndarray) -> np.ndarray:
        return arcface_crop(img, kps, 112)

    def embed_crops(self, crops: list[np.ndarray]) -> np.ndarray:
        """(n, 192) embeddings of aligned 112x112 BGR crops."""
        out = []
        for i in range(0, len(crops), self.batch):
            chunk = crops[i : i + self.batch]
            n = len(chunk)
            chunk = chunk + [chunk[-1]] * (self.batch - n)
            blob = np.stack([cv2.cvtColor(c, cv2.COLOR_BGR2RGB) for c in chunk]).astype(np.float32)
            blob = ((blob - 127.5) / 128.0).transpose(0, 3, 1, 2)
            out.append(self.session.run(None, {self.input_name: blob})[0][:n])
        return l2n(np.concatenate(out)) if out else np.zeros((0, self.dim), np.float32)


class ArcFace:
    """insightface recogniser (w600k_r50 etc.) from an operator-supplied pack."""

    model_id = "insightface_arcface"

    def __init__(self, model_file: str, session: ort.InferenceSession, version: str) -> None:
        from insightface.model_zoo.arcface_onnx import ArcFaceONNX

        self.model = ArcFaceONNX(model_file=model_file, session=session)
        self.version = version
        self.model_id = f"insightface_{model_file.rsplit('/', 1)[-1].removesuffix('.onnx')}"
        self.dim = int(session.get_outputs()[0].shape[-1])

    def crop(self, img: np.ndarray, kps: np.ndarray) -> np.ndarray:
        return arcface_crop(img, kps, self.model.input_size[0])

    def embed_crops(self, crops: list[np.ndarray]) -> np.ndarray:
        if not crops:
            return np.zeros((0, self.dim), np.float32)
        return l2n(self.model.get_feat(crops))


class DlibResNet:
    model_id = "dlib_resnet128"

    def __init__(self, session: ort.InferenceSession, template: np.ndarray, version: str) -> None:
        self.session = session
        self.template = template
        self.version = version
        self.input_name = session.get_inputs()[0].name
        self.dim = 128

    def crop(self, img: np.ndarray, kps: np.ndarray) -> np.ndarray:
        return dlib_chip(img, kps, self.template, 150)

    def embed_crops(self, crops: list[np.ndarray]) -> np.ndarray:
        if not crops:
            return np.zeros((0, self.dim), np.float32)
        blob = np.stack([cv2.cvtColor(c, cv2.COLOR_BGR2RGB) for c in crops]).astype(np.float32).transpose(0, 3, 1, 2)
        return l2n(self.session.run(None, {self.input_name: blob})[0])
