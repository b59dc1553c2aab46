"""Reading an evaluation folder laid out like ``../shared/facedata`` (MANIFEST.csv + files).

Shared by ``scripts/bench/face_eval.py`` and the tests; nothing here ships data.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .config import REPO_ROOT


def default_data_dir() -> Path:
    env = os.environ.get("FACEDATA_DIR")
    p = Path(env) if env else Path("../shared/facedata")
    return p if p.is_absolute() else (REPO_ROOT / p).resolve()


@dataclass(frozen=True)
class Item:
    file: str
    identity: str
    kind: str  # genuine | print | screen | video
    age: int | None
    notes: str

    @property
    def is_attack(self) -> bool:
        return self.kind in ("print", "screen")


def read_manifest(data_dir: Path) -> list[Item]:
    with (data_dir / "MANIFEST.csv").open(newline="", encoding="utf-8") as fh:
        return [
            Item(r["file"], r["identity"], r["kind"], int(float(r["age"])) if (r.get("age") or "").strip() else None,
                 r.get("notes") or "")
            for r in csv.DictReader(fh)
        ]


def video_frames(path: Path, start: int = 0, stop: int | None = None, step: int = 1) -> Iterator[tuple[int, float, np.ndarray]]:
    """(frame index, seconds from the clip start, BGR frame) for frames start..stop by step."""
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    i = 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok or (stop is not None and i >= stop):
                break
            if i >= start and (i - start) % step == 0:
                yield i, i / fps, frame
            i += 1
    finally:
        cap.release()


def video_fps(path: Path) -> float:
    cap = cv2.VideoCapture(str(path))
    try:
        return cap.get(cv2.CAP_PROP_FPS) or 25.0
    finally:
        cap.release()
