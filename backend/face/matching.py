"""Templates and matching.

A template keeps the normalised embeddings of a few good enrolment frames, the model id and
version that produced them, and their quality.  Matching fuses frames on both sides by
comparing the normalised means (centroids): several frames of a session average out pose and
expression noise, which is what lets elderly residents reach a low false-accept rate.
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass, field

import numpy as np

from .config import FaceConfig
from .embed import l2n
from .errors import TemplateError

MAGIC = b"ZLFT"
FORMAT_VERSION = 1


@dataclass
class FaceTemplate:
    model_id: str
    model_version: str
    embeddings: np.ndarray  # (k, d) float32, L2-normalised
    qualities: list[float] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. {"dlib_resnet128": (k, 128)}

    @property
    def centroid(self) -> np.ndarray:
        return l2n(self.embeddings.mean(axis=0))

    def to_bytes(self) -> bytes:
        """Compact binary form (header JSON + float32 rows); encrypt it at rest."""
        arrays = {"main": self.embeddings, **{f"extra:{k}": v for k, v in self.extra.items()}}
        header = {
            "v": FORMAT_VERSION,
            "model_id": self.model_id,
            "model_version": self.model_version,
            "qualities": [round(float(q), 4) for q in self.qualities],
            "created_at": self.created_at,
            "arrays": {k: list(np.asarray(v).shape) for k, v in arrays.items()},
        }
        hb = json.dumps(header, separators=(",", ":")).encode()
        body = b"".join(np.ascontiguousarray(v, dtype="<f4").tobytes() for v in arrays.values())
        return MAGIC + struct.pack("<I", len(hb)) + hb + body

    @classmethod
    def from_bytes(cls, data: bytes) -> FaceTemplate:
        try:
            if not data.startswith(MAGIC):
                raise ValueError("bad magic")
            (n,) = struct.unpack("<I", data[4:8])
            header = json.loads(data[8 : 8 + n])
            if header.get("v") != FORMAT_VERSION:
                raise ValueError(f"unknown template version {header.get('v')}")
            off = 8 + n
            arrays: dict[str, np.ndarray] = {}
            for k, shape in header["arrays"].items():
                size = int(np.prod(shape)) * 4
                chunk = data[off : off + size]
                if len(chunk) != size:
                    raise ValueError("truncated")
                arrays[k] = np.frombuffer(chunk, dtype="<f4").reshape(shape).astype(np.float32)
                off += size
            if off != len(data):
                raise ValueError("trailing bytes")
            return cls(
                header["model_id"], header["model_version"], arrays.pop("main"), header.get("qualities", []),
                header.get("created_at", 0.0), {k.removeprefix("extra:"): v for k, v in arrays.items()},
            )
        except (ValueError, KeyError, TypeError, struct.error) as e:
            raise TemplateError(f"template bytes unreadable: {e}") from e


@dataclass(frozen=True)
class MatchResult:
    score: float  # cosine of the fused (centroid) embeddings
    decision: str  # "accept" | "review" | "reject"
    threshold: float  # accept threshold applied (age-aware)
    review_threshold: float
    frame_scores: tuple[float, ...]  # each probe frame against the template centroid
    second_opinion: float | None = None  # dlib ResNet fused cosine, when both sides have it (informational:
    # shown to reviewers; dlib's impostor tail is too long to decide on, see models/README.md)


def fused_score(template: FaceTemplate, embeddings: np.ndarray) -> float:
    emb = np.atleast_2d(np.asarray(embeddings, np.float32))
    if emb.shape[0] == 0:
        raise ValueError("no embeddings to match")
    if emb.shape[1] != template.embeddings.shape[1]:
        raise TemplateError(f"embedding size {emb.shape[1]} does not fit template of {template.model_id}")
    return float(l2n(emb.mean(axis=0)) @ template.centroid)


def decide(score: float, cfg: FaceConfig, age: int | None = None) -> str:
    if score >= cfg.accept_threshold(age):
        return "accept"
    if score >= cfg.match_review_threshold:
        return "review"
    return "reject"


def verify(template: FaceTemplate, embeddings: np.ndarray, cfg: FaceConfig, age: int | None = None) -> MatchResult:
    emb = np.atleast_2d(np.asarray(embeddings, np.float32))
    score = fused_score(template, emb)
    frames = tuple(float(v) for v in l2n(emb) @ template.centroid)
    return MatchResult(score, decide(score, cfg, age), cfg.accept_threshold(age), cfg.match_review_threshold, frames)
