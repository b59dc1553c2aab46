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


KINDS = ("genuine", "print", "screen", "video")


def read_manifest(data_dir: Path, problems: list[str] | None = None) -> list[Item]:
    """The folder's MANIFEST rows.  With ``problems`` given, rows that cannot be used (unknown
    kind, missing or unreadable file, unparsable age) are named there and skipped instead of
    raising; without it a bad row raises (the tests' data must be whole)."""
    items = []
    with (data_dir / "MANIFEST.csv").open(newline="", encoding="utf-8") as fh:
        for n, r in enumerate(csv.DictReader(fh), start=2):
            try:
                age_text = (r.get("age") or "").strip()
                item = Item((r.get("file") or "").strip(), (r.get("identity") or "").strip(),
                            (r.get("kind") or "").strip(), int(float(age_text)) if age_text else None,
                            r.get("notes") or "")
                if not item.file or not item.identity:
                    raise ValueError("no file or identity")
                if item.kind not in KINDS:
                    raise ValueError(f"unknown kind {item.kind!r}")
                if not (data_dir / item.file).is_file():
                    raise ValueError("file missing")
            except (ValueError, TypeError) as e:
                if problems is None:
                    raise
                problems.append(f"MANIFEST line {n} ({r.get('file') or '?'}): {e}")
                continue
            items.append(item)
    return items


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
