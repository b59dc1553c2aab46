"""Real frames from the real clips in the face data folder (tests/support/facedata.py) video/, cut and joined into sessions.

Which frames show which action comes from the one frame table the evaluation uses too
(backend/face/frame_table.py: the MANIFEST notes' blink frames, located turns and mouth opening
from the engine's own signals), so the tests and face_eval cannot disagree about a clip. Each
segment shows its action and no other; `lead_in` is a quiet frontal stretch and `still` frontal
frames for an enrolment template.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2

from tests.support.facedata import FACEDATA, require_facedata

CLIP_ACTIONS = ("blink", "turn_left", "turn_right", "open_mouth")


@lru_cache(maxsize=1)
def _engine():
    from backend.face import FaceConfig, FaceEngine

    return FaceEngine(FaceConfig())


@lru_cache(maxsize=8)
def segments(clip: str) -> dict[str, tuple[int, int, int]]:
    """action (and lead_in, still): (first frame, end frame, step), from the frame table."""
    from backend.face.dataset import read_manifest
    from backend.face.frame_table import build_clip_table

    data = require_facedata()
    item = next((it for it in read_manifest(data) if it.kind == "video" and Path(it.file).stem == clip), None)
    if item is None:
        raise FileNotFoundError(f"no clip {clip} in {data}/MANIFEST.csv")
    table = build_clip_table(_engine(), data, item)
    out = {action: (cut.start, cut.stop, cut.step) for action, cut in table.actions.items()}
    if table.lead_in:
        out["lead_in"] = table.lead_in
    if table.still:
        out["still"] = table.still
    return out


@lru_cache(maxsize=8)
def clip_frames(clip: str) -> tuple[bytes, ...]:
    """Every frame of a clip as JPEG bytes (quality 85, what a phone would send)."""
    require_facedata()
    capture = cv2.VideoCapture(str(FACEDATA / "video" / f"{clip}.mp4"))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
    capture.release()
    if not frames:
        raise FileNotFoundError(f"no frames in {clip}")
    return tuple(frames)


def segment(clip: str, action: str) -> list[bytes]:
    start, end, step = segments(clip)[action]
    return list(clip_frames(clip)[start:end:step])


def session_frames(actions: list[str], clip: str = "lp_driving_d3") -> list[bytes]:
    """Frames performing `actions` in order: a short lead-in looking ahead, then one segment per action."""
    frames = segment(clip, "lead_in")
    for action in actions:
        frames += segment(clip, action)
    return frames


def enrolment_frames(clip: str = "lp_driving_d3") -> list[bytes]:
    return segment(clip, "still")


def photo(path: str) -> bytes:
    require_facedata()
    return as_phone_frame((FACEDATA / path).read_bytes())


def as_phone_frame(data: bytes, max_side: int = 640) -> bytes:
    """What a phone sends: the picture downscaled to at most `max_side` and JPEG-compressed."""
    import numpy as np

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    scale = max_side / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
