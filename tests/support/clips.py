"""Real frames from the real clips in the face data folder (tests/support/facedata.py) video/, cut and joined into sessions.

Frame ranges were measured with the engine (yaw, mouth opening) and the MANIFEST's blink notes,
and chosen so each segment shows its action and no other: in `lp_driving_d3` the woman looks
ahead at 36-47, blinks at 48-61, turns to her left (engine yaw > 0) at 255-290, to her right
(yaw < 0) at 0-35, and opens her mouth at 326-353 (sampled at every frame: it opens briefly).
"""

from __future__ import annotations

from functools import lru_cache

import cv2

from tests.support.facedata import FACEDATA, require_facedata

SEGMENTS = {  # action: (first frame, end frame, step)
    "lp_driving_d3": {
        "lead_in": (36, 48, 2),
        "blink": (40, 72, 3),
        "turn_left": (255, 291, 3),
        "turn_right": (0, 36, 3),
        "open_mouth": (326, 354, 1),
        "still": (66, 100, 10),
    },
}
CLIP_ACTIONS = ("blink", "turn_left", "turn_right", "open_mouth")


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
    start, end, step = SEGMENTS[clip][action]
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
