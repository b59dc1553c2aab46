"""Challenge sessions cut from the evaluation videos (for face_eval and the tests).

Each clip performs some actions at known frames: blink frames are the ones measured in
facedata's MANIFEST notes; turn and mouth frames were read from the engine's per-frame
yaw / mouth signals.  An ordered session joins one person's segments in the order the
challenge asks; the negative sessions join them in the wrong order, swap the person half
way, freeze one frame, replay an attack picture, or run past the deadline.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .dataset import Item, video_fps, video_frames
from .engine import FaceEngine
from .liveness import Challenge, Verdict
from .matching import FaceTemplate

# clip -> action -> (first frame, stop frame) of a segment that performs it (native frame numbers)
CLIP_ACTIONS: dict[str, dict[str, tuple[int, int]]] = {
    "video/lp_driving_d3.mp4": {  # blinks 48-50, 57-61 (notes); yaw -15 at 10-24, +20..24 at 245-280
        "turn_right": (0, 26),
        "blink": (40, 68),
        "turn_left": (232, 264),
        "open_mouth": (290, 316),
    },
    "video/st_WDA_KatieHill_000.mp4": {  # blink 170-172 (notes); mouth 0.4 at 23-31; yaw -16..-25 at 33-61
        "open_mouth": (10, 32),
        "turn_right": (33, 63),
        "blink": (158, 180),
    },
    "video/lp_driving_d9.mp4": {"blink": (0, 26)},  # blink 11-16
    "video/lp_driving_d11.mp4": {"open_mouth": (0, 14), "blink": (138, 168)},  # blink 148-156; MAR 0.6
    "video/lp_driving_d14.mp4": {"blink": (6, 28)},  # blink 16-19
    "video/lp_driving_d0.mp4": {"blink": (54, 78)},  # blink 65-67
}
STILL_CLIPS = ("video/lp_driving_d19.mp4", "video/lp_source_s29.mp4", "video/vretalk_5/vretalk_5.mp4")


@dataclass(frozen=True)
class Segment:
    file: str  # relative to the data folder: a clip, or a still image repeated
    start: int = 0
    stop: int = 0
    step: int = 2  # every 2nd frame: 12.5-15 fps, what a phone sends
    repeat: int = 0  # a still: this many copies of the image (or of the clip's frame ``start``)


@dataclass
class Session:
    name: str
    challenge: Challenge
    segments: list[Segment]
    expect_pass: bool
    template_from: tuple[str, int] | None = None  # (clip, frame) to enroll from, if matching
    start_offset_s: float = 0.5  # first frame this long after the challenge was issued
    notes: str = field(default="")


def session_frames(data: Path, s: Session) -> Iterator[tuple[float, np.ndarray]]:
    """Frames with a continuous clock, as if sent live one after another."""
    t = s.challenge.issued_at + s.start_offset_s
    for seg in s.segments:
        if seg.repeat:
            if seg.file.endswith(".mp4"):
                img = next(video_frames(data / seg.file, seg.start, seg.start + 1))[2]
            else:
                img = cv2.imread(str(data / seg.file))
            for _ in range(seg.repeat):
                yield t, img
                t += 1 / 12.5
            continue
        dt = seg.step / video_fps(data / seg.file)
        for _i, _ts, frame in video_frames(data / seg.file, seg.start, seg.stop, seg.step):
            yield t, frame
            t += dt


def template_from_clip(engine: FaceEngine, data: Path, clip: str, frame_no: int) -> FaceTemplate:
    frames = [f for i, _t, f in video_frames(data / clip, frame_no, frame_no + 3)]
    return engine.enroll(frames)


def run_session(engine: FaceEngine, s: Session, data: Path) -> Verdict:
    template = template_from_clip(engine, data, *s.template_from) if s.template_from else None
    tr = engine.tracker(s.challenge, template=template)
    for t, frame in session_frames(data, s):
        if tr.finished:
            break
        tr.feed(frame, t)
    return tr.verdict()


def _ch(*actions: str, ttl: float = 45.0) -> Challenge:
    return Challenge(tuple(actions), issued_at=1000.0, ttl_s=ttl)


def ordered(clip: str, *actions: str) -> list[Segment]:
    return [Segment(clip, *CLIP_ACTIONS[clip][a]) for a in actions]


def build_sessions(items: list[Item]) -> list[Session]:
    """Accepted: each clip's actions asked in the order joined.  Rejected: the traps of issue 3."""
    d3, kh = "video/lp_driving_d3.mp4", "video/st_WDA_KatieHill_000.mp4"
    S: list[Session] = [
        Session("d3 turn_right,blink,turn_left", _ch("turn_right", "blink", "turn_left"),
                ordered(d3, "turn_right", "blink", "turn_left"), True),
        Session("d3 turn_left,open_mouth", _ch("turn_left", "open_mouth"), ordered(d3, "turn_left", "open_mouth"), True),
        Session("d3 blink,open_mouth,turn_right", _ch("blink", "open_mouth", "turn_right"),
                ordered(d3, "blink", "open_mouth", "turn_right"), True),
        Session("katiehill open_mouth,turn_right", _ch("open_mouth", "turn_right"),
                ordered(kh, "open_mouth", "turn_right"), True),
        Session("katiehill turn_right,blink", _ch("turn_right", "blink"), ordered(kh, "turn_right", "blink"), True),
        Session("katiehill blink,open_mouth", _ch("blink", "open_mouth"), ordered(kh, "blink", "open_mouth"), True),
        Session("d11 open_mouth,blink", _ch("open_mouth", "blink"), ordered("video/lp_driving_d11.mp4", "open_mouth", "blink"), True),
        Session("d9 blink", _ch("blink"), ordered("video/lp_driving_d9.mp4", "blink"), True),
        Session("d14 blink", _ch("blink"), ordered("video/lp_driving_d14.mp4", "blink"), True),
        Session("d0 blink", _ch("blink"), ordered("video/lp_driving_d0.mp4", "blink"), True),
        Session("d3 turn_left,open_mouth + own template", _ch("turn_left", "open_mouth"),
                ordered(d3, "turn_left", "open_mouth"), True, template_from=(d3, 180)),
        # --- traps ---
        Session("d3 wrong order (asked open_mouth,turn_left)", _ch("open_mouth", "turn_left"),
                ordered(d3, "turn_left", "open_mouth"), False),
        Session("katiehill wrong order (asked turn_right,open_mouth)", _ch("turn_right", "open_mouth"),
                ordered(kh, "open_mouth", "turn_right"), False),
        Session("identity swap d3 -> katiehill", _ch("turn_right", "open_mouth"),
                [Segment(d3, *CLIP_ACTIONS[d3]["turn_right"]), Segment(kh, *CLIP_ACTIONS[kh]["open_mouth"])], False),
        Session("d3 with katiehill's template", _ch("turn_left", "open_mouth"),
                ordered(d3, "turn_left", "open_mouth"), False, template_from=(kh, 90)),
        Session("d3 actions after the deadline", _ch("turn_left", "open_mouth", ttl=3.0),
                ordered(d3, "turn_left", "open_mouth"), False, start_offset_s=1.5),
        Session("d3 still frame x40", _ch("blink", "turn_left"), [Segment(d3, 100, repeat=40)], False),
        Session("still photo df01 x40", _ch("blink", "open_mouth"), [Segment("faces/df01/img1.jpg", repeat=40)], False),
    ]
    for clip in STILL_CLIPS:
        S.append(Session(f"{Path(clip).stem} (no actions) asked blink,turn_left", _ch("blink", "turn_left"),
                         [Segment(clip, 0, 120)], False))
    for it in items:
        if it.is_attack:
            S.append(Session(f"attack {Path(it.file).name} x20", _ch("blink", "turn_right"),
                             [Segment(it.file, repeat=20)], False))
    return S
